"""The fast gradient sign method (FGSM) and its L2 counterpart.

Goodfellow, Shlens and Szegedy, "Explaining and Harnessing Adversarial
Examples" (ICLR 2015): one step of length eps from the clean image,

    x_adv = clip_[0,1]( x + eps * sign(grad_x L(f(x), y)) )

with L the cross-entropy of the logits. With ``norm="l2"`` the step is
eps * g / ||g||_2 per image (the fast gradient method). A targeted attack takes
``labels`` as the target classes and steps down the loss instead. FGSM is PGD
with one step of size eps and no random start, and is computed that way.
"""

from __future__ import annotations

import torch
from torch import nn

from gradmod.robustness._base import ModelLogits, run_attack
from gradmod.robustness._checks import check_eps, check_norm
from gradmod.robustness.pgd import pgd_iterations

__all__ = ["fgsm"]


def fgsm(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    eps: float,
    targeted: bool = False,
    *,
    norm: str = "linf",
    batch_size: int | None = None,
) -> torch.Tensor:
    """Return FGSM adversarial examples of ``images`` within ``eps``.

    The model runs in eval mode and gets its previous mode back afterwards;
    parameter ``.grad`` fields are left untouched. ``images`` are float in [0, 1]
    or uint8 (divided by 255). The result is detached, lies in [0, 1] and on the
    device of ``images``. See :func:`gradmod.robustness.pgd` for the conventions
    shared by all attacks.
    """
    eps = check_eps(eps)
    norm = check_norm(norm)

    def craft(forward: ModelLogits, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return pgd_iterations(
            forward,
            x,
            y,
            eps=eps,
            steps=1,
            step_size=eps,
            norm=norm,
            random_start=False,
            targeted=targeted,
            generator=None,
        )

    return run_attack(model, images, labels, craft, batch_size=batch_size)
