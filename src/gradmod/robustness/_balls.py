"""Threat-model geometry: the eps ball around each image, intersected with [0, 1].

Each ball offers the three operations that FGSM, PGD and FGSM-RS are made of:
a random point inside the ball, a steepest-ascent step for the norm, and the
projection back onto the ball intersected with the valid pixel range.
"""

from __future__ import annotations

import torch

__all__ = ["L2Ball", "LinfBall", "make_ball"]

# Gradient and perturbation norms below this count as zero, so that an image
# with a vanishing gradient takes no step instead of a division by zero.
_TINY_NORM = 1e-12


def _uniform(shape: torch.Size, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Draw U[0, 1) samples with ``generator`` (on its own device) and move them next to ``like``."""
    device = generator.device if generator is not None else torch.device("cpu")
    sample = torch.rand(shape, generator=generator, device=device, dtype=like.dtype)
    return sample.to(like.device)


def _normal(shape: torch.Size, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    device = generator.device if generator is not None else torch.device("cpu")
    sample = torch.randn(shape, generator=generator, device=device, dtype=like.dtype)
    return sample.to(like.device)


def _per_image_norm(tensor: torch.Tensor) -> torch.Tensor:
    """Return the L2 norm of each image, shaped [B, 1, ..., 1] for broadcasting."""
    norms = torch.linalg.vector_norm(tensor.flatten(1), dim=1)
    return norms.view(-1, *([1] * (tensor.dim() - 1)))


class LinfBall:
    """{x' : ||x' - x||_inf <= eps} intersected with [0, 1].

    Both sets are boxes, so the exact projection is one clamp of every pixel to
    [max(x - eps, 0), min(x + eps, 1)]. The steepest-ascent step of length a is
    a * sign(gradient) (Goodfellow et al., "Explaining and Harnessing
    Adversarial Examples").
    """

    def __init__(self, center: torch.Tensor, eps: float) -> None:
        self.center = center
        self.eps = eps
        self.lower = (center - eps).clamp_(min=0.0)
        self.upper = (center + eps).clamp_(max=1.0)

    def random_point(self, generator: torch.Generator | None) -> torch.Tensor:
        """Return x + U[-eps, eps]^d, projected onto the ball."""
        noise = _uniform(self.center.shape, self.center, generator).mul_(2.0).sub_(1.0).mul_(self.eps)
        return self.project(self.center + noise)

    def ascent_step(self, images: torch.Tensor, gradient: torch.Tensor, step_size: float) -> torch.Tensor:
        return images + step_size * gradient.sign()

    def project(self, images: torch.Tensor) -> torch.Tensor:
        return torch.clamp(images, self.lower, self.upper)


class L2Ball:
    """{x' : ||x' - x||_2 <= eps} intersected with [0, 1], norms taken per image.

    The projection rescales the perturbation d to d * min(1, eps / ||d||) and
    then clamps the image to [0, 1]. Because x is in [0, 1], the clamp only
    moves pixels toward x, so the norm bound still holds. This is the usual
    approximation to the exact projection onto the intersection. The
    steepest-ascent step of length a is a * g / ||g||.
    """

    def __init__(self, center: torch.Tensor, eps: float) -> None:
        self.center = center
        self.eps = eps

    def random_point(self, generator: torch.Generator | None) -> torch.Tensor:
        """Return a point drawn uniformly from the ball, projected onto [0, 1].

        A uniform point in the d-dimensional ball is a uniform direction (a
        normalised Gaussian vector) times the radius eps * U^(1/d).
        """
        direction = _normal(self.center.shape, self.center, generator)
        direction = direction / _per_image_norm(direction).clamp_min(_TINY_NORM)
        dimension = self.center[0].numel()
        radius_shape = (self.center.shape[0],) + (1,) * (self.center.dim() - 1)
        radius = self.eps * _uniform(torch.Size(radius_shape), self.center, generator).pow(1.0 / dimension)
        return self.project(self.center + radius * direction)

    def ascent_step(self, images: torch.Tensor, gradient: torch.Tensor, step_size: float) -> torch.Tensor:
        return images + step_size * gradient / _per_image_norm(gradient).clamp_min(_TINY_NORM)

    def project(self, images: torch.Tensor) -> torch.Tensor:
        perturbation = images - self.center
        norm = _per_image_norm(perturbation)
        scale = torch.clamp(self.eps / norm.clamp_min(_TINY_NORM), max=1.0)
        return torch.clamp(self.center + perturbation * scale, 0.0, 1.0)


def make_ball(norm: str, center: torch.Tensor, eps: float) -> LinfBall | L2Ball:
    """Return the ball of radius ``eps`` around ``center`` for ``norm`` ("linf" or "l2")."""
    if norm == "linf":
        return LinfBall(center, eps)
    if norm == "l2":
        return L2Ball(center, eps)
    raise ValueError(f"norm must be 'linf' or 'l2', got {norm!r}")
