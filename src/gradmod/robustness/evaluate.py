"""Robust accuracy: per-epsilon accuracy under attack, and the full robustness report.

:func:`robust_accuracy` runs one of gradmod's attacks. :func:`evaluate_robustness`
runs FGSM, PGD and PGD with more steps, and adds ART's AutoPGD (cross-entropy
and difference-of-logits-ratio losses) and Square Attack when ART is installed.
It counts an image as robust only if it is classified correctly without attack
and under every attack. It also runs the gradient-masking checks of
:mod:`gradmod.robustness.sanity`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from functools import partial
from typing import Any

import torch
from torch import nn

from gradmod.robustness._art import ART_ATTACKS, art_correct, art_installed
from gradmod.robustness._base import model_mode, select_logits
from gradmod.robustness._checks import (
    check_batch_size,
    check_eps,
    check_norm,
    check_steps,
    model_device,
    prepare_images,
    prepare_labels,
)
from gradmod.robustness.fgsm import fgsm
from gradmod.robustness.pgd import pgd
from gradmod.robustness.report import RobustnessReport
from gradmod.robustness.sanity import check_large_eps, check_more_steps, check_pgd_vs_fgsm

__all__ = [
    "EVALUATION_ATTACKS",
    "correct_predictions",
    "correct_under_attack",
    "evaluate_robustness",
    "robust_accuracy",
]

logger = logging.getLogger(__name__)

EVALUATION_ATTACKS = ("fgsm", "pgd")


def correct_predictions(model: nn.Module, images: torch.Tensor, labels: Any, batch_size: int = 256) -> torch.Tensor:
    """Return a CPU bool tensor: whether the model (in eval mode, restored after) classifies each image correctly."""
    batch_size = check_batch_size(batch_size) or 256
    images = prepare_images(images, model)
    labels = prepare_labels(labels, images.shape[0])
    device = model_device(model, images)
    predictions = []
    with model_mode(model, False), torch.no_grad():
        for start in range(0, images.shape[0], batch_size):
            logits = select_logits(model(images[start : start + batch_size].to(device)))
            predictions.append(logits.argmax(dim=1).cpu())
    if not predictions:
        return torch.zeros(0, dtype=torch.bool)
    return torch.cat(predictions) == labels.cpu()


def correct_under_attack(
    model: nn.Module,
    images: torch.Tensor,
    labels: Any,
    eps: float,
    *,
    attack: str = "pgd",
    steps: int = 20,
    norm: str = "linf",
    batch_size: int = 256,
    seed: int = 0,
) -> torch.Tensor:
    """Return a CPU bool tensor: whether each image stays correctly classified under ``attack`` at ``eps``.

    ``attack`` is "fgsm" or "pgd". PGD uses the default step size and a random
    start drawn from a CPU generator seeded with ``seed``, so equal arguments
    give equal results. At eps = 0 no attack runs.
    """
    if attack not in EVALUATION_ATTACKS:
        raise ValueError(f"attack must be one of {EVALUATION_ATTACKS}, got {attack!r}")
    eps = check_eps(eps)
    batch_size = check_batch_size(batch_size) or 256
    if eps == 0.0:
        return correct_predictions(model, images, labels, batch_size)

    images = prepare_images(images, model)
    labels = prepare_labels(labels, images.shape[0])
    generator = torch.Generator().manual_seed(seed)
    correct = []
    for start in range(0, images.shape[0], batch_size):
        x = images[start : start + batch_size]
        y = labels[start : start + batch_size]
        if attack == "fgsm":
            adversarial = fgsm(model, x, y, eps, norm=norm)
        else:
            adversarial = pgd(model, x, y, eps=eps, steps=steps, norm=norm, generator=generator)
        correct.append(correct_predictions(model, adversarial, y, batch_size))
    return torch.cat(correct) if correct else torch.zeros(0, dtype=torch.bool)


def _check_eps_list(eps_list: Iterable[float]) -> list[float]:
    if isinstance(eps_list, (int, float)):
        eps_list = [eps_list]
    values = [check_eps(eps, name="each eps in eps_list") for eps in eps_list]
    if not values:
        raise ValueError("eps_list must contain at least one eps, got an empty list")
    return values


def _accuracy(correct: torch.Tensor) -> float:
    return float(correct.float().mean()) if correct.numel() else math.nan


def robust_accuracy(
    model: nn.Module,
    images: torch.Tensor,
    labels: Any,
    eps_list: Iterable[float],
    attack: str = "pgd",
    steps: int = 20,
    norm: str = "linf",
    batch_size: int = 256,
    seed: int = 0,
) -> dict[float, float]:
    """Return ``{eps: accuracy}``: the fraction of images still classified correctly under ``attack``.

    ``attack`` is "fgsm" or "pgd" (``steps`` steps of size 2.5 * eps / steps,
    random start seeded by ``seed``). Accuracy at eps = 0 is the clean accuracy.
    The model runs in eval mode and gets its previous mode back.
    """
    eps_values = _check_eps_list(eps_list)
    steps = check_steps(steps)
    norm = check_norm(norm)
    return {
        eps: _accuracy(
            correct_under_attack(
                model, images, labels, eps, attack=attack, steps=steps, norm=norm, batch_size=batch_size, seed=seed
            )
        )
        for eps in eps_values
    }


def _default_large_eps(norm: str, image_shape: torch.Size) -> float:
    """Return the budget that reaches the constant 0.5 image from any image: 0.5 (L-inf) or 0.5 * sqrt(d) (L2)."""
    if norm == "linf":
        return 0.5
    return 0.5 * math.sqrt(math.prod(image_shape))


def _resolve_art(use_art: bool | None) -> tuple[bool, str]:
    installed = art_installed()
    if use_art is True and not installed:
        raise ImportError(
            "use_art=True needs the adversarial-robustness-toolbox package; install it with "
            "pip install 'gradmod[robustness]', or pass use_art=None to fall back to PGD"
        )
    if use_art is False:
        return False, "ART disabled (use_art=False, or --no-art in gradmod attack); the headline uses gradmod's FGSM and PGD only"
    if not installed:
        return False, "adversarial-robustness-toolbox is not installed; the headline uses gradmod's FGSM and PGD only"
    return True, "ART AutoPGD (cross-entropy, difference of logits ratio) and Square Attack included"


def evaluate_robustness(
    model: nn.Module,
    images: torch.Tensor,
    labels: Any,
    eps_list: Iterable[float],
    *,
    norm: str = "linf",
    steps: int = 20,
    more_steps_factor: int = 2,
    batch_size: int = 256,
    seed: int = 0,
    use_art: bool | None = None,
    apgd_steps: int = 100,
    square_queries: int = 1000,
    large_eps: float | None = None,
    max_accuracy_at_large_eps: float = 0.10,
    noise_z: float = 2.0,
) -> RobustnessReport:
    """Evaluate robust accuracy at each eps with several attacks and check for gradient masking.

    Attacks per eps > 0: FGSM, PGD with ``steps`` steps, PGD with
    ``more_steps_factor * steps`` steps, and, when ART is used, AutoPGD-CE and
    AutoPGD-DLR (``apgd_steps`` iterations, one restart) and Square Attack
    (``square_queries`` iterations). ``use_art`` None uses ART if it is
    installed, True requires it and False skips it. The headline
    ``robust_accuracy`` counts an image as correct only if it is correct without
    attack and under every attack (per-image worst case).

    Sanity checks (see :mod:`gradmod.robustness.sanity`):

    * PGD accuracy at ``large_eps`` (default 0.5 for L-inf, 0.5 * sqrt(d) for
      L2) is at most ``max_accuracy_at_large_eps``.
    * PGD is not weaker than FGSM, up to ``noise_z`` binomial standard errors.
    * PGD with more steps is not weaker than PGD, up to the same noise.

    A failed check is logged as a warning and recorded in the report.
    """
    eps_values = _check_eps_list(eps_list)
    norm = check_norm(norm)
    steps = check_steps(steps)
    if isinstance(more_steps_factor, bool) or not isinstance(more_steps_factor, int) or more_steps_factor < 2:
        raise ValueError(f"more_steps_factor must be an integer >= 2, got {more_steps_factor!r}")
    more_steps = steps * more_steps_factor
    check_steps(apgd_steps, name="apgd_steps")
    check_steps(square_queries, name="square_queries")
    batch_size = check_batch_size(batch_size) or 256
    if not 0.0 <= max_accuracy_at_large_eps <= 1.0:
        raise ValueError(f"max_accuracy_at_large_eps must be in [0, 1], got {max_accuracy_at_large_eps!r}")
    if not (math.isfinite(noise_z) and noise_z >= 0):
        raise ValueError(f"noise_z must be a finite number >= 0, got {noise_z!r}")
    images = prepare_images(images, model)
    labels = prepare_labels(labels, images.shape[0])
    if images.shape[0] == 0:
        raise ValueError("images must contain at least one image to evaluate, got an empty batch")
    large_eps = _default_large_eps(norm, images.shape[1:]) if large_eps is None else check_eps(large_eps, "large_eps")
    art_used, art_note = _resolve_art(use_art)

    clean = correct_predictions(model, images, labels, batch_size)
    common = {"norm": norm, "batch_size": batch_size, "seed": seed}
    runners = {
        "fgsm": partial(correct_under_attack, model, images, labels, attack="fgsm", **common),
        f"pgd-{steps}": partial(correct_under_attack, model, images, labels, steps=steps, **common),
        f"pgd-{more_steps}": partial(correct_under_attack, model, images, labels, steps=more_steps, **common),
    }
    if art_used:
        for name in ART_ATTACKS:
            art_settings = {"attack": name, "apgd_steps": apgd_steps, "square_queries": square_queries}
            runners[name] = partial(art_correct, model, images, labels, **art_settings, **common)

    attack_accuracy: dict[str, dict[float, float]] = {name: {} for name in runners}
    robust: dict[float, float] = {}
    for eps in eps_values:
        worst = clean.clone()
        for name, run in runners.items():
            correct = clean if eps == 0.0 else run(eps)
            attack_accuracy[name][eps] = _accuracy(correct)
            worst &= correct
        robust[eps] = _accuracy(worst)
        logger.info("eps=%g: robust accuracy %.4f (%s)", eps, robust[eps], ", ".join(runners))

    pgd_accuracy = attack_accuracy[f"pgd-{steps}"]
    more_steps_accuracy = attack_accuracy[f"pgd-{more_steps}"]
    large_accuracy = _accuracy(runners[f"pgd-{steps}"](large_eps))
    checks = [
        check_large_eps(large_accuracy, large_eps, max_accuracy_at_large_eps),
        check_pgd_vs_fgsm(pgd_accuracy, attack_accuracy["fgsm"], images.shape[0], noise_z),
        check_more_steps(pgd_accuracy, more_steps_accuracy, steps, more_steps, images.shape[0], noise_z),
    ]
    for check in checks:
        if not check.passed:
            logger.warning("robustness sanity check %s failed: %s", check.name, check.message)

    config = {
        "steps": steps,
        "more_steps": more_steps,
        "batch_size": batch_size,
        "seed": seed,
        "apgd_steps": apgd_steps if art_used else None,
        "square_queries": square_queries if art_used else None,
        "large_eps": large_eps,
        "max_accuracy_at_large_eps": max_accuracy_at_large_eps,
        "noise_z": noise_z,
        "pgd_step_size": "2.5 * eps / steps",
    }
    return RobustnessReport(
        norm=norm,
        eps=eps_values,
        num_images=images.shape[0],
        clean_accuracy=_accuracy(clean),
        robust_accuracy=robust,
        attack_accuracy=attack_accuracy,
        attacks_used=list(runners),
        art_used=art_used,
        art_note=art_note,
        checks=checks,
        config=config,
    )
