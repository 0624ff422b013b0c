"""Optional reference attacks from the Adversarial Robustness Toolbox (ART).

ART (``pip install adversarial-robustness-toolbox``) supplies the attacks that
evaluation adds on top of gradmod's own PGD: AutoPGD with the cross-entropy
and the difference-of-logits-ratio losses (Croce and Hein, "Reliable
evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks", ICML 2020) and the gradient-free Square Attack
(Andriushchenko et al., "Square Attack: a query-efficient black-box adversarial
attack via random search", ECCV 2020). Gradient-free and adaptive-step attacks
catch models whose gradients mislead PGD.

ART draws its random numbers from NumPy's global generator. This module seeds
it for the duration of each attack and puts the previous state back.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from gradmod.robustness._base import select_logits, model_mode, preserved_parameter_grads

__all__ = ["ART_ATTACKS", "art_installed", "art_correct", "make_art_classifier"]

ART_ATTACKS = ("apgd-ce", "apgd-dlr", "square")


def art_installed() -> bool:
    """Return whether the ``art`` package (adversarial-robustness-toolbox) can be imported."""
    return importlib.util.find_spec("art") is not None


class _LogitsOnly(nn.Module):
    """Expose a model whose output may be a tuple as one that returns the logits tensor."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return select_logits(self.model(images))


def make_art_classifier(model: nn.Module, input_shape: tuple[int, ...], num_classes: int):
    """Wrap ``model`` in an ART ``PyTorchClassifier`` on the model's device, inputs clipped to [0, 1]."""
    from art.estimators.classification import PyTorchClassifier

    device = next(model.parameters()).device
    # NOTE: ART places the model on the *current* CUDA device, so a model on
    # another GPU than the current one would be moved.
    return PyTorchClassifier(
        model=_LogitsOnly(model),
        loss=nn.CrossEntropyLoss(),
        input_shape=input_shape,
        nb_classes=num_classes,
        clip_values=(0.0, 1.0),
        device_type="gpu" if device.type == "cuda" else "cpu",
    )


@contextlib.contextmanager
def _seeded_numpy(seed: int) -> Iterator[None]:
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def _make_attack(name: str, classifier, *, eps: float, norm: str, batch_size: int, apgd_steps: int, square_queries: int):
    from art.attacks.evasion import AutoProjectedGradientDescent, SquareAttack

    art_norm = np.inf if norm == "linf" else 2
    if name == "square":
        return SquareAttack(
            classifier, norm=art_norm, eps=eps, max_iter=square_queries, batch_size=batch_size, verbose=False
        )
    loss_type = {"apgd-ce": "cross_entropy", "apgd-dlr": "difference_logits_ratio"}[name]
    # AutoPGD's first step size is 2 * eps (Croce and Hein), passed as eps_step.
    return AutoProjectedGradientDescent(
        classifier,
        norm=art_norm,
        eps=eps,
        eps_step=2.0 * eps,
        max_iter=apgd_steps,
        nb_random_init=1,
        batch_size=batch_size,
        loss_type=loss_type,
        verbose=False,
    )


def art_correct(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    eps: float,
    *,
    attack: str,
    norm: str,
    batch_size: int,
    seed: int,
    apgd_steps: int,
    square_queries: int,
) -> torch.Tensor:
    """Return a CPU bool tensor: whether each image stays correctly classified under ART's ``attack``.

    ``images`` are float32 in [0, 1] and ``labels`` class indices, both on any
    device. The model is attacked and evaluated in eval mode, its modes and
    parameter gradients are restored afterwards, and NumPy's global random state
    is left as it was.
    """
    if attack not in ART_ATTACKS:
        raise ValueError(f"attack must be one of {ART_ATTACKS}, got {attack!r}")
    device = next(model.parameters()).device
    with model_mode(model, False), preserved_parameter_grads(model), _seeded_numpy(seed):
        with torch.no_grad():
            num_classes = select_logits(model(images[:1].to(device))).shape[1]
        classifier = make_art_classifier(model, tuple(images.shape[1:]), num_classes)
        art_attack = _make_attack(
            attack,
            classifier,
            eps=eps,
            norm=norm,
            batch_size=batch_size,
            apgd_steps=apgd_steps,
            square_queries=square_queries,
        )
        # NOTE: ART works on float32 arrays, so a float64 model fails here.
        x = images.detach().cpu().float().numpy()
        y = labels.detach().cpu().numpy()
        adversarial = torch.from_numpy(art_attack.generate(x=x, y=y))
        predictions = []
        with torch.no_grad():
            for start in range(0, adversarial.shape[0], batch_size):
                batch = adversarial[start : start + batch_size].to(device)
                predictions.append(select_logits(model(batch)).argmax(dim=1).cpu())
    return torch.cat(predictions) == labels.detach().cpu()
