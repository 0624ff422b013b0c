"""Trainer support for adversarial training.

- ``clean_feedback_gradients``: the gradient of the clean loss, on which the
  modulator measures its feedback when ``modulation.feedback_loss = "clean"``.
- ``BestRobustWeights``: the weights of the epoch with the best PGD accuracy on
  the overfitting monitor's batch, kept so that a run that overfits
  catastrophically can end with them (``adversarial.restore_best``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gradmod.modulation import LayerwiseGradientModulator
from gradmod.training.checkpoint import CHECKPOINT_FORMAT, save_checkpoint

__all__ = ["BEST_NAME", "clean_feedback_gradients", "BestRobustWeights"]

logger = logging.getLogger(__name__)

BEST_NAME = "best.pt"


def clean_feedback_gradients(
    model: nn.Module, modulator: LayerwiseGradientModulator, images: torch.Tensor, labels: torch.Tensor
) -> list[torch.Tensor | None]:
    """Return the clean loss's gradient for each of ``modulator.parameters()``, None where frozen.

    The forward pass runs in the model's current (training) mode. Buffers such as
    BatchNorm's running statistics are restored afterwards, so the extra pass
    changes nothing but the modulator's feedback. ``.grad`` is left untouched.
    """
    buffers = list(model.buffers())
    saved = [buffer.clone() for buffer in buffers]
    params = modulator.parameters()
    trainable = [p for p in params if p.requires_grad]
    with torch.enable_grad():
        loss = F.cross_entropy(model(images), labels)
        grads = torch.autograd.grad(loss, trainable, allow_unused=True)
    with torch.no_grad():
        for buffer, value in zip(buffers, saved):
            buffer.copy_(value)
    by_param = {id(p): g for p, g in zip(trainable, grads)}
    return [by_param.get(id(p)) for p in params]


class BestRobustWeights:
    """Keep the weights of the epoch with the best PGD accuracy seen so far.

    The Trainer calls ``offer`` after each monitor measurement. A new best is
    copied in memory, so that a resumed run still has it. Given a folder, it is
    also written to ``best.pt`` there with the run's config, which lets
    ``gradmod attack --checkpoint RUN/best.pt`` read it. ``restore`` loads the
    kept weights.
    """

    def __init__(self) -> None:
        self.epoch: int | None = None
        self.step: int | None = None
        self.pgd_accuracy: float | None = None
        self.weights: dict[str, torch.Tensor] | None = None

    def offer(
        self,
        model: nn.Module,
        epoch: int,
        step: int,
        pgd_accuracy: float,
        folder: Path | None = None,
        config: dict[str, Any] | None = None,
    ) -> bool:
        """Keep ``model``'s weights when ``pgd_accuracy`` beats the best so far; return whether it did."""
        if self.pgd_accuracy is not None and pgd_accuracy <= self.pgd_accuracy:
            return False
        self.epoch, self.step, self.pgd_accuracy = epoch, step, pgd_accuracy
        self.weights = {name: value.detach().clone() for name, value in model.state_dict().items()}
        if folder is not None:
            state = {"format": CHECKPOINT_FORMAT, "config": config, "model": self.weights, **self._numbers()}
            save_checkpoint(state, folder / BEST_NAME)
        return True

    def restore(self, model: nn.Module) -> None:
        """Load the kept weights into ``model``."""
        if self.weights is None:
            raise RuntimeError("no weights were kept: the monitor has not measured an epoch yet")
        model.load_state_dict(self.weights)
        logger.warning(
            "catastrophic overfitting: the run ends with the weights of epoch %d (step %d), whose PGD "
            "accuracy on the monitor batch was best (%.4f)",
            self.epoch,
            self.step,
            self.pgd_accuracy,
        )

    def _numbers(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "step": self.step, "pgd_accuracy": self.pgd_accuracy}

    def state_dict(self) -> dict[str, Any]:
        return {**self._numbers(), "weights": self.weights}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.step = state["epoch"], state["step"]
        self.pgd_accuracy, self.weights = state["pgd_accuracy"], state["weights"]
