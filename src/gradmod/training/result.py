"""``TrainResult``: what ``Trainer.fit`` returns and writes to ``result.json``."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["TrainResult"]


@dataclass
class TrainResult:
    """Outcome of one training run.

    Attributes:
        config: the resolved configuration (recipe values filled in), as a dict.
        steps: optimizer steps taken.
        epochs: epochs completed, fractional (steps / batches per epoch).
        train_seconds: training time, excluding evaluation and checkpoint writing.
        final_val_loss, final_val_accuracy: on the validation split at the last step.
        test_loss, test_accuracy: on the test split, measured once at the end;
            None when the run ended without a final evaluation.
        target_accuracy: the validation accuracy target, or None.
        steps_to_target, seconds_to_target: step and training seconds of the first
            evaluation that reached ``target_accuracy``; None when never reached.
        history: every metric record (see ``gradmod.training.metrics``).
        gains_history: ``{"step": s, "gains": {layer: gain}}`` every ``run.gains_every`` steps.
        events: controller events, ``{"kind", "step", ...values}``.
        diverged: training stopped at a non-finite loss.
        stopped_early: training ended before the configured length
            (``max_steps`` or ``time_budget`` of ``fit``, or ``run.stop_at_target``).
        restored_epoch: after catastrophic overfitting, the epoch whose weights the
            run ended with (``adversarial.restore_best``); None when it ended with
            the last step's weights.
    """

    config: dict[str, Any]
    steps: int
    epochs: float
    train_seconds: float
    final_val_loss: float | None = None
    final_val_accuracy: float | None = None
    test_loss: float | None = None
    test_accuracy: float | None = None
    target_accuracy: float | None = None
    steps_to_target: int | None = None
    seconds_to_target: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    gains_history: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    diverged: bool = False
    stopped_early: bool = False
    restored_epoch: int | None = None

    def losses(self) -> list[float]:
        """Return the training loss of every logged step, in step order."""
        return [record["loss"] for record in self.history if record["kind"] == "train"]

    def evaluations(self) -> list[dict[str, Any]]:
        """Return the validation records."""
        return [record for record in self.history if record["kind"] == "eval"]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> Path:
        """Write the result as JSON (NaN and infinities as strings) and return the path."""
        path = Path(path)
        path.write_text(json.dumps(_finite_json(self.to_dict()), indent=1) + "\n", encoding="utf-8")
        return path


def _finite_json(value: Any) -> Any:
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return str(value)
    if isinstance(value, dict):
        return {key: _finite_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_json(item) for item in value]
    return value
