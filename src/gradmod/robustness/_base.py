"""Shared machinery of every attack: model mode, input gradient, batching.

Threat model common to all attacks in this package: images live in input space
[0, 1] (normalisation belongs inside the model), the model returns logits, and
the perturbation is measured in the same [0, 1] pixel units as ``eps``.

Input conventions, enforced by :func:`run_attack`:

* ``images`` is a tensor ``[B, ...]``. Floating-point images must lie in [0, 1].
  ``uint8`` images are converted to floats by ``x / 255`` (in the dtype of the
  model's first floating-point parameter, float32 if it has none). Other integer
  and boolean dtypes are rejected.
* ``labels`` contains ``B`` integer class indices. It may be a tensor on any
  device, a list or a NumPy array, and is moved to the model's device.
* The logits of a model that returns a tuple or list are its first element.
  An output object with a ``logits`` attribute (Hugging Face style) supplies
  that attribute.
* Work runs batch by batch on the model's device. The result has the dtype of
  the working images and lies on the device ``images`` came from.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gradmod.robustness._checks import check_batch_size, model_device, prepare_images, prepare_labels

__all__ = [
    "ModelLogits",
    "input_gradient",
    "model_mode",
    "preserved_parameter_grads",
    "run_attack",
    "select_logits",
]


@contextlib.contextmanager
def model_mode(model: nn.Module, train: bool | None) -> Iterator[None]:
    """Put ``model`` in train (True) or eval (False) mode, or leave it (None), and restore it.

    Every submodule gets back its own previous ``training`` flag, also when the
    body raises, so a model with some submodules frozen in eval mode keeps them so.
    """
    previous = [(module, module.training) for module in model.modules()]
    if train is not None:
        model.train(train)
    try:
        yield
    finally:
        for module, training in previous:
            module.training = training


@contextlib.contextmanager
def preserved_parameter_grads(model: nn.Module) -> Iterator[None]:
    """Restore every parameter's ``.grad`` and ``requires_grad`` after the body.

    Use it around third-party code that calls ``zero_grad()`` or ``backward()``
    on the model (ART's estimators do both). Inside the body the parameters do not
    require gradients, which spares the weight-gradient work such code would do.
    """
    parameters = list(model.parameters())
    saved = [(p.grad, p.requires_grad) for p in parameters]
    for parameter in parameters:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter, (grad, requires_grad) in zip(parameters, saved):
            parameter.requires_grad_(requires_grad)
            parameter.grad = grad


class ModelLogits:
    """Call a model and return its logits ``[B, C]``.

    The first call checks the output's shape and that every label is a valid
    class index, so that a wrong label fails with a clear message on every
    device (CUDA would otherwise stop with a device-side assert).
    """

    def __init__(self, model: nn.Module, max_label: int) -> None:
        self.model = model
        self.max_label = max_label
        self.checked = False

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        output = self.model(images)
        logits = select_logits(output)
        if not self.checked:
            self._check(logits, images.shape[0])
            self.checked = True
        return logits

    def _check(self, logits: torch.Tensor, batch: int) -> None:
        if logits.dim() != 2 or logits.shape[0] != batch:
            raise ValueError(
                f"the model must return logits of shape [batch, classes]; for a batch of {batch} "
                f"it returned shape {tuple(logits.shape)}"
            )
        if self.max_label >= logits.shape[1]:
            raise ValueError(
                f"labels must be class indices below the model's {logits.shape[1]} classes, "
                f"got label {self.max_label}"
            )


def select_logits(output: Any) -> torch.Tensor:
    """Return the logits in a model output: the tensor itself, a tuple's first element, or ``.logits``."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    logits = getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    raise TypeError(
        "the model must return a logits tensor, a tuple or list whose first element is the logits, "
        f"or an object with a .logits tensor; it returned {type(output).__name__}"
    )


def input_gradient(forward: ModelLogits, images: torch.Tensor, labels: torch.Tensor, targeted: bool) -> torch.Tensor:
    """Return the gradient of the attack objective with respect to ``images`` only.

    The objective is the summed cross-entropy of the logits, negated for a
    targeted attack, so the result always points uphill for the attacker. Summing
    keeps each image's gradient independent of the batch size. Only the input
    gradient is requested from ``torch.autograd.grad``, so no parameter's
    ``.grad`` is read or written.
    """
    images = images.detach().requires_grad_(True)
    loss = F.cross_entropy(forward(images), labels, reduction="sum")
    if targeted:
        loss = -loss
    (gradient,) = torch.autograd.grad(loss, images)
    return gradient


def run_attack(
    model: nn.Module,
    images: torch.Tensor,
    labels: Any,
    craft_batch: Callable[[ModelLogits, torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    batch_size: int | None = None,
    train: bool | None = False,
) -> torch.Tensor:
    """Check the inputs, then run ``craft_batch(forward, x, y)`` batch by batch on the model's device.

    ``train`` sets the model's mode during the attack: False for eval mode (every
    evaluation attack), None to keep the mode it is in. The previous mode of each
    submodule is restored afterwards, also on exceptions. Autograd is enabled
    inside even when the caller runs under ``torch.no_grad()``.
    """
    if torch.is_inference_mode_enabled():
        raise RuntimeError(
            "attacks need autograd for the input gradient and cannot run under torch.inference_mode(); "
            "call them outside it (torch.no_grad() is fine)"
        )
    batch_size = check_batch_size(batch_size)
    device = model_device(model, images)
    images = prepare_images(images, model)
    labels = prepare_labels(labels, images.shape[0])
    if images.shape[0] == 0:
        return images.clone()

    forward = ModelLogits(model, max_label=int(labels.max()))
    step = batch_size or images.shape[0]
    adversarial = torch.empty_like(images)
    with model_mode(model, train), torch.enable_grad():
        for start in range(0, images.shape[0], step):
            x = images[start : start + step].to(device, copy=True)
            y = labels[start : start + step].to(device)
            x_adv = craft_batch(forward, x, y)
            adversarial[start : start + step] = x_adv.detach().to(adversarial.device)
    return adversarial
