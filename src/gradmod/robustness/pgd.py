"""Projected gradient descent (PGD), the multi-step attack of Madry et al.

Madry, Makelov, Schmidt, Tsipras and Vladu, "Towards Deep Learning Models
Resistant to Adversarial Attacks" (ICLR 2018). Starting from a random point
x_0 in the eps ball B(x, eps) around the clean image x, each step is

    x_{t+1} = Proj_{B(x, eps) ∩ [0,1]^d}( x_t + a * s(grad_x L(f(x_t), y)) )

with L the cross-entropy of the logits, s = sign for L-inf and s(g) = g / ||g||_2
for L2. Targeted attacks take ``labels`` as the target classes and descend on L
instead. The default step size a = 2.5 * eps / steps follows the paper's choice
of a step of about 2.5 eps / steps, which lets a path reach the boundary of the
ball from anywhere inside it. The attack returns the last iterate, as in the
paper.
"""

from __future__ import annotations

import torch
from torch import nn

from gradmod.robustness._balls import make_ball
from gradmod.robustness._base import ModelLogits, input_gradient, run_attack
from gradmod.robustness._checks import check_eps, check_norm, check_step_size, check_steps

__all__ = ["default_step_size", "pgd", "pgd_iterations"]


def default_step_size(eps: float, steps: int) -> float:
    """Return Madry et al.'s step size 2.5 * eps / steps."""
    return 2.5 * eps / steps


def pgd_iterations(
    forward: ModelLogits,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    eps: float,
    steps: int,
    step_size: float,
    norm: str,
    random_start: bool,
    targeted: bool,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """Run the PGD update on one batch that is already on the model's device.

    Arguments are not checked here. Public entry points check them and set the
    model's mode through :func:`gradmod.robustness._base.run_attack`.
    """
    ball = make_ball(norm, images, eps)
    adversarial = ball.random_point(generator) if random_start else images.clone()
    for _ in range(steps):
        gradient = input_gradient(forward, adversarial, labels, targeted)
        adversarial = ball.project(ball.ascent_step(adversarial, gradient, step_size))
    return adversarial


def pgd(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    eps: float = 0.1,
    steps: int = 20,
    step_size: float | None = None,
    norm: str = "linf",
    random_start: bool = True,
    targeted: bool = False,
    generator: torch.Generator | None = None,
    *,
    batch_size: int | None = None,
) -> torch.Tensor:
    """Return PGD adversarial examples of ``images`` within ``eps`` in the ``norm`` ball.

    Args:
        model: classifier returning logits ``[B, C]`` for images ``[B, ...]`` in
            [0, 1]. It runs in eval mode during the attack, and each submodule's
            previous mode is restored afterwards, also on exceptions. Parameter
            ``.grad`` fields are left exactly as they were.
        images: float images in [0, 1], or uint8 images (divided by 255).
        labels: true classes, or target classes when ``targeted``.
        eps: radius of the ball in [0, 1] pixel units (L-inf or L2 norm per image).
        steps: number of gradient steps, >= 1.
        step_size: step length a; None for 2.5 * eps / steps.
        norm: "linf" or "l2".
        random_start: start from a uniform random point in the ball (True) or
            from the clean image.
        targeted: minimise the loss of ``labels`` instead of maximising it.
        generator: torch generator for the random start, for reproducible
            results. Draws happen on the generator's device.
        batch_size: attack this many images at a time; None for one batch.

    Returns:
        Detached adversarial images with ``|x_adv - x| <= eps`` in the chosen norm
        (up to float rounding) and values in [0, 1], on the device of ``images``.
    """
    eps = check_eps(eps)
    steps = check_steps(steps)
    norm = check_norm(norm)
    step_size = check_step_size(step_size, default_step_size(eps, steps))

    def craft(forward: ModelLogits, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return pgd_iterations(
            forward,
            x,
            y,
            eps=eps,
            steps=steps,
            step_size=step_size,
            norm=norm,
            random_start=random_start,
            targeted=targeted,
            generator=generator,
        )

    return run_attack(model, images, labels, craft, batch_size=batch_size)
