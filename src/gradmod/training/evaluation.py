"""Loss and accuracy of a classifier on a whole split."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gradmod.data import BatchLoader, Split

__all__ = ["Evaluation", "evaluate"]


@dataclass(frozen=True)
class Evaluation:
    """Mean cross-entropy loss and accuracy (a fraction) over ``count`` images."""

    loss: float
    accuracy: float
    count: int


@torch.no_grad()
def evaluate(model: nn.Module, split: Split, batch_size: int = 1000, device: str | torch.device = "cpu") -> Evaluation:
    """Evaluate ``model`` on every image of ``split``, in eval mode, without augmentation.

    The model's training mode is restored afterwards. Loss and correct counts are
    summed on the device and read once at the end.
    """
    if len(split) == 0:
        raise ValueError("cannot evaluate on an empty split")
    was_training = model.training
    model.eval()
    try:
        loader = BatchLoader(split, batch_size, shuffle=False)
        total_loss = torch.zeros((), dtype=torch.float64, device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        for images, labels in loader:
            images = images.to(device, non_blocking=True)
            labels = labels.to(device, non_blocking=True)
            logits = model(images)
            total_loss += F.cross_entropy(logits.float(), labels, reduction="sum").double()
            correct += (logits.argmax(dim=1) == labels).sum()
    finally:
        model.train(was_training)
    count = len(split)
    return Evaluation(loss=total_loss.item() / count, accuracy=correct.item() / count, count=count)
