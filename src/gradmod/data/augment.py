"""Batched image augmentation: random crop with zero padding and horizontal flip.

Both are pure functions of the batch and of per-image random draws, so the
caller decides where the randomness comes from (``BatchLoader`` draws it from
the epoch's seeded generator). Both work on any dtype and on whole batches
with tensor indexing, with no Python loop over images.

Random crop with padding p: pad each image with p zero pixels on every side,
then cut out a window of the original size whose top-left corner (dy, dx) is
drawn uniformly from {0, ..., 2p}^2. Offsets (p, p) give back the image
unchanged. Zero is the background value of Fashion-MNIST.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["draw_augmentation", "horizontal_flip", "random_crop"]


def random_crop(images: torch.Tensor, offsets_y: torch.Tensor, offsets_x: torch.Tensor, padding: int) -> torch.Tensor:
    """Crop each zero-padded image of ``images`` [B, C, H, W] at its own offsets.

    ``offsets_y`` and ``offsets_x`` are integer tensors of shape [B] with values
    in 0..2*padding; output[b] = pad(images[b])[:, dy:dy+H, dx:dx+W].
    """
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    if images.dim() != 4:
        raise ValueError(f"images must have shape [B, C, H, W], got {list(images.shape)}")
    batch, channels, height, width = images.shape
    for name, offsets in (("offsets_y", offsets_y), ("offsets_x", offsets_x)):
        if offsets.shape != (batch,):
            raise ValueError(f"{name} must have shape [{batch}], got {list(offsets.shape)}")
    padded = F.pad(images, (padding, padding, padding, padding))
    rows = offsets_y[:, None] + torch.arange(height)  # [B, H]
    cols = offsets_x[:, None] + torch.arange(width)  # [B, W]
    batch_index = torch.arange(batch)[:, None, None, None]
    channel_index = torch.arange(channels)[None, :, None, None]
    return padded[batch_index, channel_index, rows[:, None, :, None], cols[:, None, None, :]]


def horizontal_flip(images: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Mirror left-right the images of ``images`` [B, C, H, W] where the bool mask ``flip`` [B] is True."""
    if flip.shape != images.shape[:1] or flip.dtype != torch.bool:
        raise ValueError(
            f"flip must be a bool tensor of shape [{images.shape[0]}], "
            f"got {flip.dtype} of shape {list(flip.shape)}"
        )
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


def draw_augmentation(
    num_items: int, padding: int, flip_probability: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Draw (offsets_y, offsets_x, flip) for ``num_items`` images from ``generator``.

    Offsets are uniform in 0..2*padding and each flip is True with
    probability ``flip_probability``. The three draws are made in that order.
    """
    offsets_y = torch.randint(0, 2 * padding + 1, (num_items,), generator=generator)
    offsets_x = torch.randint(0, 2 * padding + 1, (num_items,), generator=generator)
    flip = torch.rand(num_items, generator=generator) < flip_probability
    return offsets_y, offsets_x, flip
