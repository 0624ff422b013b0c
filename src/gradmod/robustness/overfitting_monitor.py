"""Detection of catastrophic overfitting during fast adversarial training.

Wong, Rice and Kolter ("Fast is better than free: Revisiting adversarial
training", ICLR 2020) describe catastrophic overfitting: FGSM-based training
can lose its robustness to PGD within a few iterations while FGSM accuracy
keeps rising. The remedy is to watch PGD accuracy during training and keep the
model from before the collapse. :class:`CatastrophicOverfittingMonitor`
does that measurement once per epoch with the same images and the same random
start each time, so changes in accuracy come from the model alone.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from gradmod.robustness._checks import check_eps, check_norm, check_step_size, check_steps, prepare_labels
from gradmod.robustness.evaluate import correct_predictions
from gradmod.robustness.pgd import default_step_size, pgd

__all__ = ["CatastrophicOverfittingMonitor", "MonitorResult"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MonitorResult:
    """One epoch's measurement: PGD accuracy, the best so far, and whether robustness collapsed."""

    epoch: int
    accuracy: float
    best_accuracy: float
    best_epoch: int
    collapsed: bool
    reason: str = ""


class CatastrophicOverfittingMonitor:
    """Track PGD accuracy on a fixed validation batch and flag a collapse.

    A collapse is PGD accuracy below ``best - max_drop``, or below ``floor`` after
    the best accuracy had reached ``floor``. On a collapse the monitor logs a
    warning and returns a result whose ``best_epoch`` names the checkpoint the
    caller should keep.

    Args:
        images, labels: the fixed batch, small (a few hundred images) to keep
            the check cheap. Images are float in [0, 1] or uint8.
        eps: PGD budget in [0, 1] pixel units, usually the training eps.
        norm: "linf" or "l2".
        steps: PGD steps; step_size None for 2.5 * eps / steps.
        max_drop: largest tolerated fall from the best accuracy (0.20 = 20 points).
        floor: accuracy below which a previously reached level counts as a
            collapse; None to disable.
        seed: seed of the PGD random start, reused every epoch.
        batch_size: attack batch size; None for one batch.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: Any,
        *,
        eps: float,
        norm: str = "linf",
        steps: int = 10,
        step_size: float | None = None,
        max_drop: float = 0.20,
        floor: float | None = None,
        seed: int = 0,
        batch_size: int | None = None,
    ) -> None:
        if not isinstance(images, torch.Tensor) or images.dim() < 2 or images.shape[0] == 0:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"images must be a non-empty tensor of shape [batch, ...], got {shape}")
        if not (isinstance(max_drop, (int, float)) and 0.0 < max_drop <= 1.0):
            raise ValueError(f"max_drop must be in (0, 1] (a fraction of accuracy), got {max_drop!r}")
        if floor is not None and not (isinstance(floor, (int, float)) and 0.0 <= floor <= 1.0):
            raise ValueError(f"floor must be in [0, 1] or None, got {floor!r}")
        self.images = images.detach().clone()
        self.labels = prepare_labels(labels, images.shape[0])
        self.eps = check_eps(eps)
        self.norm = check_norm(norm)
        self.steps = check_steps(steps)
        self.step_size = check_step_size(step_size, default_step_size(self.eps, self.steps))
        self.max_drop = float(max_drop)
        self.floor = None if floor is None else float(floor)
        self.seed = seed
        self.batch_size = batch_size
        self.history: list[tuple[int, float]] = []
        self.best_accuracy = -math.inf
        self.best_epoch = -1

    def measure(self, model: nn.Module) -> float:
        """Return the model's PGD accuracy on the fixed batch (eval mode, restored after)."""
        generator = torch.Generator().manual_seed(self.seed)
        adversarial = pgd(
            model,
            self.images,
            self.labels,
            eps=self.eps,
            steps=self.steps,
            step_size=self.step_size,
            norm=self.norm,
            generator=generator,
            batch_size=self.batch_size,
        )
        return float(correct_predictions(model, adversarial, self.labels).float().mean())

    def check(self, model: nn.Module, epoch: int) -> MonitorResult:
        """Measure PGD accuracy after ``epoch``, update the best, and report whether robustness collapsed."""
        accuracy = self.measure(model)
        self.history.append((epoch, accuracy))
        if accuracy > self.best_accuracy:
            self.best_accuracy, self.best_epoch = accuracy, epoch

        reason = ""
        if accuracy < self.best_accuracy - self.max_drop:
            reason = f"dropped more than {self.max_drop:.2f} below the best {self.best_accuracy:.4f}"
        elif self.floor is not None and self.best_accuracy >= self.floor > accuracy:
            reason = f"fell below the floor {self.floor:.4f} after reaching {self.best_accuracy:.4f}"
        if reason:
            logger.warning(
                "catastrophic overfitting at epoch %d: PGD accuracy %.4f %s; keep the checkpoint from epoch %d",
                epoch,
                accuracy,
                reason,
                self.best_epoch,
            )
        return MonitorResult(epoch, accuracy, self.best_accuracy, self.best_epoch, bool(reason), reason)

    def state_dict(self) -> dict[str, Any]:
        return {"history": list(self.history), "best_accuracy": self.best_accuracy, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the history and best accuracy saved by :meth:`state_dict` (the batch is not saved)."""
        self.history = [(int(epoch), float(accuracy)) for epoch, accuracy in state.get("history", [])]
        self.best_accuracy = float(state.get("best_accuracy", -math.inf))
        self.best_epoch = int(state.get("best_epoch", -1))
