"""Argument and input checks shared by every attack and evaluation function.

Errors name the argument, show the value and list what is accepted.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

__all__ = [
    "NORMS",
    "check_batch_size",
    "check_eps",
    "check_norm",
    "check_step_size",
    "check_steps",
    "model_device",
    "prepare_images",
    "prepare_labels",
]

NORMS = ("linf", "l2")


def check_eps(eps: float, name: str = "eps") -> float:
    """Return ``eps`` as a float after checking that it is finite and >= 0."""
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps < 0:
        raise ValueError(
            f"{name} must be a finite number >= 0 (perturbation budget in [0, 1] pixel units), got {eps!r}"
        )
    return float(eps)


def check_norm(norm: str) -> str:
    """Return ``norm`` after checking that it is one of :data:`NORMS`."""
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    return norm


def check_steps(steps: int, name: str = "steps") -> int:
    """Return ``steps`` after checking that it is an integer >= 1."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {steps!r}")
    return steps


def check_step_size(step_size: float | None, default: float) -> float:
    """Return ``step_size``, or ``default`` when it is None, after checking it is finite and >= 0."""
    if step_size is None:
        return default
    if isinstance(step_size, bool) or not isinstance(step_size, (int, float)) or not math.isfinite(step_size):
        raise ValueError(f"step_size must be a finite number >= 0 or None for the default, got {step_size!r}")
    if step_size < 0:
        raise ValueError(f"step_size must be a finite number >= 0 or None for the default, got {step_size!r}")
    return float(step_size)


def check_batch_size(batch_size: int | None) -> int | None:
    """Return ``batch_size`` after checking that it is None or an integer >= 1."""
    if batch_size is None:
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1 or None (one batch), got {batch_size!r}")
    return batch_size


def model_device(model: nn.Module, images: Any) -> torch.device:
    """Return the device of the model's first parameter or buffer, else that of ``images``."""
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return images.device if isinstance(images, torch.Tensor) else torch.device("cpu")


def _float_dtype(model: nn.Module) -> torch.dtype:
    for parameter in model.parameters():
        if parameter.is_floating_point():
            return parameter.dtype
    return torch.float32


def prepare_images(images: torch.Tensor, model: nn.Module) -> torch.Tensor:
    """Return ``images`` as floats in [0, 1] (uint8 divided by 255), raising on any other dtype or range."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor of shape [batch, ...], got {type(images).__name__}")
    if images.dim() < 2:
        raise ValueError(f"images must have a batch dimension and at least one more, got shape {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        return images.to(_float_dtype(model)) / 255.0
    if not images.is_floating_point():
        raise TypeError(
            f"images must be floating point in [0, 1] or uint8 in [0, 255], got dtype {images.dtype}; "
            "convert with images.float() / 255 if they are pixel counts"
        )
    if images.numel() > 0:
        low, high = float(images.min()), float(images.max())
        if not (0.0 <= low and high <= 1.0):
            raise ValueError(
                f"images must lie in [0, 1], got values in [{low}, {high}]; attacks work in input space, "
                "so move any normalisation inside the model"
            )
    return images


def prepare_labels(labels: Any, batch: int) -> torch.Tensor:
    """Return ``labels`` as an int64 tensor of shape [batch], raising on another shape, dtype or a negative label."""
    labels = torch.as_tensor(labels)
    if labels.dtype == torch.bool or labels.is_floating_point() or labels.is_complex():
        raise TypeError(f"labels must be integer class indices, got dtype {labels.dtype}")
    if labels.dim() != 1 or labels.shape[0] != batch:
        raise ValueError(
            f"labels must have shape [{batch}] to match the {batch} images, got shape {tuple(labels.shape)}"
        )
    if batch > 0 and int(labels.min()) < 0:
        raise ValueError(f"labels must be class indices >= 0, got {int(labels.min())}")
    return labels.long()
