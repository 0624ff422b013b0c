"""Metric sinks: JSON Lines, CSV and TensorBoard, and the logger that feeds them.

A record is a flat dict with ``kind`` ("train", "eval" or "test"), ``step`` and
numbers. Per-layer gains go under namespaced keys ``lgm/gain/<layer name>``.
``MetricLogger`` keeps every record in memory (the run's history, saved in
checkpoints) and writes it to each open sink:

- ``metrics.jsonl``: one JSON object per record, always written when there is a run folder;
- ``events.jsonl``: one JSON object per controller event;
- ``metrics.csv`` (optional): the columns in ``CSV_COLUMNS``, empty where a record
  has no value. Gains are left out because the layer set depends on the model;
- TensorBoard (optional): each number as a scalar tagged ``<kind>/<key>``, gains
  as ``lgm/gain/<layer>``.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from pathlib import Path
from typing import Any

__all__ = ["MetricLogger", "JsonLinesSink", "CsvSink", "TensorBoardSink", "CSV_COLUMNS"]

logger = logging.getLogger(__name__)

CSV_COLUMNS = (
    "kind",
    "step",
    "epoch",
    "loss",
    "accuracy",
    "lr",
    "images_per_second",
    "train_seconds",
    "val_loss",
    "val_accuracy",
    "test_loss",
    "test_accuracy",
)


def _json_value(value: Any) -> Any:
    """Map NaN and infinities to strings, because JSON has no literal for them."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class JsonLinesSink:
    """Append records to a ``.jsonl`` file, one JSON object a line, flushed per record."""

    def __init__(self, path: str | Path, history: list[dict[str, Any]] = ()) -> None:
        self.path = Path(path)
        self._file = self.path.open("w", encoding="utf-8")
        for record in history:
            self.write(record)

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps({key: _json_value(value) for key, value in record.items()}) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class CsvSink:
    """Write records as rows of ``CSV_COLUMNS``."""

    def __init__(self, path: str | Path, history: list[dict[str, Any]] = ()) -> None:
        self.path = Path(path)
        self._file = self.path.open("w", encoding="utf-8", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        self._writer.writeheader()
        for record in history:
            self.write(record)

    def write(self, record: dict[str, Any]) -> None:
        self._writer.writerow(record)
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class TensorBoardSink:
    """Write numeric values as TensorBoard scalars (needs the tensorboard package).

    ``purge_step`` drops events at or after that step left by an interrupted run,
    so a resumed run does not draw its curves twice.
    """

    def __init__(self, log_dir: str | Path, purge_step: int | None = None) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ImportError(
                "TensorBoard logging needs the tensorboard package; install it with: pip install 'gradmod[tensorboard]'"
            ) from None
        self._writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)

    def write(self, record: dict[str, Any]) -> None:
        kind = record.get("kind", "train")
        step = record.get("step", 0)
        for key, value in record.items():
            if key in ("kind", "step") or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            tag = key if "/" in key else f"{kind}/{key}"
            self._writer.add_scalar(tag, value, global_step=step)

    def close(self) -> None:
        self._writer.close()


class MetricLogger:
    """The run's history of metric records and controller events, and the sinks they go to.

    Without a folder the records are kept in memory only. ``open`` rewrites the
    JSON Lines and CSV files from the history already present, which is how a
    resumed run drops the records of steps after its checkpoint.
    """

    def __init__(self) -> None:
        self.history: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self._metric_sinks: list[Any] = []
        self._event_sinks: list[Any] = []

    def open(self, folder: str | Path | None, *, csv_file: bool = False, tensorboard: bool = False, step: int = 0) -> None:
        """Open the sinks in ``folder`` (None: memory only). ``step`` is the step training starts at."""
        self.close()
        if folder is None:
            return
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self._metric_sinks.append(JsonLinesSink(folder / "metrics.jsonl", self.history))
        self._event_sinks.append(JsonLinesSink(folder / "events.jsonl", self.events))
        if csv_file:
            self._metric_sinks.append(CsvSink(folder / "metrics.csv", self.history))
        if tensorboard:
            self._metric_sinks.append(TensorBoardSink(folder / "tensorboard", purge_step=step + 1 if step else None))

    def log(self, record: dict[str, Any]) -> None:
        self.history.append(record)
        for sink in self._metric_sinks:
            sink.write(record)

    def log_event(self, record: dict[str, Any]) -> None:
        self.events.append(record)
        for sink in self._event_sinks:
            sink.write(record)

    def close(self) -> None:
        for sink in self._metric_sinks + self._event_sinks:
            try:
                sink.close()
            except OSError as error:
                logger.warning("could not close metric sink %s: %s", type(sink).__name__, error)
        self._metric_sinks, self._event_sinks = [], []
