"""Crafting adversarial training batches: FGSM with random start, or PGD.

``fgsm_rs`` follows Wong, Rice and Kolter, "Fast is better than free:
Revisiting adversarial training" (ICLR 2020): start from a uniform random point
in the L-inf ball, take one signed-gradient step of a = 1.25 * eps and project
back,

    d_0 ~ U[-eps, eps]^d,   x_adv = Proj( x + d_0 + a * sign(grad_x L(f(x + d_0), y)) ).

``pgd`` follows Madry et al., "Towards Deep Learning Models Resistant to
Adversarial Attacks" (ICLR 2018): PGD from a random start, step 2.5 * eps / steps
by default.

Model mode while crafting: :meth:`AdversarialTraining.perturb` leaves the model
in the mode it is in. In a training loop that is train mode, as in Wong et al.'s
fast adversarial training. Batch norm then normalises with the statistics of
the attacked batch, so the attack targets the same function that the training
loss is computed on. A consequence: batch
norm running statistics are updated by each crafting forward pass (``steps``
extra updates per batch), and dropout draws a fresh mask at each step.
Evaluation attacks (:func:`gradmod.robustness.pgd`) use eval mode instead.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gradmod.robustness._base import ModelLogits, run_attack
from gradmod.robustness._checks import check_eps, check_norm, check_step_size, check_steps
from gradmod.robustness.pgd import default_step_size, pgd_iterations

__all__ = ["TRAINING_METHODS", "AdversarialTraining"]

TRAINING_METHODS = ("fgsm_rs", "pgd")

# Step size of FGSM with random start, as a multiple of eps (Wong et al.).
FGSM_RS_STEP_FACTOR = 1.25
# PGD steps when none are given: a common training budget, cheaper than the
# 20 steps used for evaluation.
DEFAULT_PGD_STEPS = 10


class AdversarialTraining:
    """Craft the adversarial batch that an adversarial-training step trains on.

    Args:
        method: "fgsm_rs" (FGSM with random start) or "pgd".
        eps: perturbation budget in [0, 1] pixel units.
        step_size: step length; None for 1.25 * eps (fgsm_rs) or
            2.5 * eps / steps (pgd).
        steps: number of steps; None for 1 (fgsm_rs, which accepts only 1) or
            10 (pgd).
        norm: "linf" or "l2" for pgd; fgsm_rs is defined for "linf" only.
        generator: torch generator for the random starts, for reproducible runs.

    :meth:`perturb` keeps the model's current mode and never reads or writes
    parameter ``.grad`` fields, so it can run between ``zero_grad()`` and
    ``backward()`` of the training step.
    """

    def __init__(
        self,
        method: str = "fgsm_rs",
        *,
        eps: float,
        step_size: float | None = None,
        steps: int | None = None,
        norm: str = "linf",
        generator: torch.Generator | None = None,
    ) -> None:
        if method not in TRAINING_METHODS:
            raise ValueError(f"method must be one of {TRAINING_METHODS}, got {method!r}")
        self.method = method
        self.eps = check_eps(eps)
        self.norm = check_norm(norm)
        if method == "fgsm_rs":
            if steps not in (None, 1):
                raise ValueError(f"steps must be 1 or None for method 'fgsm_rs' (one step), got {steps!r}")
            if norm != "linf":
                raise ValueError(f"method 'fgsm_rs' is defined for norm 'linf' only, got {norm!r}; use method 'pgd'")
            self.steps = 1
            self.step_size = check_step_size(step_size, FGSM_RS_STEP_FACTOR * self.eps)
        else:
            self.steps = DEFAULT_PGD_STEPS if steps is None else check_steps(steps)
            self.step_size = check_step_size(step_size, default_step_size(self.eps, self.steps))
        self.generator = generator

    def perturb(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Return detached adversarial images for ``images``, crafted in the model's current mode."""

        def craft(forward: ModelLogits, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return pgd_iterations(
                forward,
                x,
                y,
                eps=self.eps,
                steps=self.steps,
                step_size=self.step_size,
                norm=self.norm,
                random_start=True,
                targeted=False,
                generator=self.generator,
            )

        return run_attack(model, images, labels, craft, train=None)

    def config(self) -> dict[str, Any]:
        """Return the resolved settings, for logs and checkpoints."""
        return {
            "method": self.method,
            "eps": self.eps,
            "steps": self.steps,
            "step_size": self.step_size,
            "norm": self.norm,
        }

    def __repr__(self) -> str:
        settings = ", ".join(f"{key}={value!r}" for key, value in self.config().items())
        return f"AdversarialTraining({settings})"
