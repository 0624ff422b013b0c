"""Per-channel input normalisation as a layer, so models take images in [0, 1].

Keeping normalisation inside the model lets attacks and augmentation work in
pixel space [0, 1]: the model computes (x - mean) / std itself. The mean and
standard deviation are buffers, so they move with ``.to(device)`` and are
saved in the state dict, but they are not parameters and no optimizer updates them.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["FASHION_MNIST_MEAN", "FASHION_MNIST_STD", "Normalize"]

# Mean and standard deviation of the Fashion-MNIST training pixels scaled to [0, 1].
FASHION_MNIST_MEAN = 0.2860
FASHION_MNIST_STD = 0.3530


class Normalize(nn.Module):
    """Compute (x - mean) / std per channel for x of shape [B, C, H, W]."""

    def __init__(self, mean: float | tuple[float, ...], std: float | tuple[float, ...]) -> None:
        super().__init__()
        mean_tensor = torch.as_tensor(mean, dtype=torch.float32).reshape(1, -1, 1, 1)
        std_tensor = torch.as_tensor(std, dtype=torch.float32).reshape(1, -1, 1, 1)
        if mean_tensor.shape != std_tensor.shape:
            raise ValueError(f"mean and std must have one value per channel, got {mean} and {std}")
        if (std_tensor <= 0).any():
            raise ValueError(f"std must be positive, got {std}")
        self.register_buffer("mean", mean_tensor)
        self.register_buffer("std", std_tensor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        return f"mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()}"
