"""Run the comparison matrix: train, evaluate, store each run as it finishes.

Each run trains in ``OUT/runs/KEY/`` with periodic checkpoints and, when it
is done, its record goes to ``OUT/runs/KEY.json`` (written atomically). Run
again with the same folder, the runner reuses every finished record, resumes
an interrupted run from its checkpoint and starts only what is missing. A run
that raises is recorded with its error and the others go on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from gradmod.benchmark.matrix import RunSpec
from gradmod.data import FashionMNIST
from gradmod.robustness import robust_accuracy
from gradmod.training import TrainConfig, Trainer, TrainingInterrupted
from gradmod.training._components import build_seeded_model

__all__ = ["run_matrix", "execute_run", "load_record", "weights_digest"]

logger = logging.getLogger(__name__)

CHECKPOINT_EVERY = 100  # optimizer steps between checkpoints of a compare run


def weights_digest(model: torch.nn.Module) -> str:
    """Return a short hash of a model's parameters and buffers, to show arms start alike."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _write_json(path: Path, data: Any) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(_clean(data), indent=1, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def _clean(value: Any) -> Any:
    """Replace NaN and infinities (JSON has none) by None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _clean(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(item) for item in value]
    return value


def load_record(path: Path) -> dict[str, Any] | None:
    """Return a stored run record, or None when it is missing, unreadable or failed."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if record.get("status") == "ok" else None


class _StepProgress:
    """A pipeline hook that advances the matrix's progress bar by one per training step."""

    def __init__(self, bar: tqdm, label: str):
        self.bar = bar
        self.label = label

    def on_step_end(self, trainer: Trainer, step: int, loss: float) -> None:
        self.bar.update(1)
        if step % 10 == 0:
            self.bar.set_postfix_str(f"{self.label} epoch {step / trainer.steps_per_epoch:.2f} loss {loss:.3f}", refresh=False)


def _identity(spec: RunSpec) -> dict[str, Any]:
    """Return the fields that name a run in its record."""
    return {
        "key": spec.key,
        "workload": spec.workload,
        "arm": spec.arm,
        "seed": spec.seed,
        "lr_scale": spec.lr_scale,
        "training": spec.training,
    }


def _curve(result) -> list[dict[str, float]]:
    return [
        {"step": r["step"], "seconds": r["train_seconds"], "val_accuracy": r["val_accuracy"]}
        for r in result.evaluations()
    ]


def execute_run(spec: RunSpec, dataset: FashionMNIST, folder: Path, bar: tqdm | None = None) -> dict[str, Any]:
    """Train and evaluate one run in ``folder``, resuming from its checkpoint if there is one."""
    config = TrainConfig.from_dict(spec.config).replace(
        **{"run.out": str(folder), "run.checkpoint_every": CHECKPOINT_EVERY, "run.quiet": True}
    )
    initial = weights_digest(build_seeded_model(config, torch.device(config.device)))
    if (folder / "checkpoint.pt").exists():
        trainer = Trainer.resume(folder, dataset, overrides={"run.quiet": True})
    else:
        trainer = Trainer(config, dataset)
    if bar is not None:
        trainer.controllers.append(_StepProgress(bar, spec.label))
        bar.update(trainer.step)  # steps a resumed run already has
    started = time.perf_counter()
    result = trainer.fit()

    robust = spec.robust
    images = dataset.test.images[: robust["images"]]
    labels = dataset.test.labels[: robust["images"]]
    if bar is not None:  # the bar counts training steps, so it would look stalled here
        bar.set_postfix_str(f"{spec.label}: PGD-{robust['steps']} on {len(labels)} test images")
    accuracy = robust_accuracy(
        trainer.model, images, labels, [0.0, *robust["eps"]], steps=robust["steps"], seed=spec.seed
    )
    return {
        "status": "ok",
        **_identity(spec),
        "target_accuracy": result.target_accuracy,
        "steps_to_target": result.steps_to_target,
        "seconds_to_target": result.seconds_to_target,
        "steps": result.steps,
        "train_seconds": result.train_seconds,
        "final_val_accuracy": result.final_val_accuracy,
        "test_accuracy": result.test_accuracy,
        "robust_accuracy": {f"{eps:g}": accuracy[eps] for eps in robust["eps"]},
        "robust_clean_accuracy": accuracy[0.0],
        "robust_images": int(len(labels)),
        "diverged": result.diverged,
        "restored_epoch": result.restored_epoch,
        "initial_weights": initial,
        "curve": _curve(result),
        "gains_history": result.gains_history,
        "events": result.events,
        "wall_seconds": time.perf_counter() - started,
        "config": result.config,
    }


def run_matrix(
    specs: list[RunSpec],
    dataset: FashionMNIST | Callable[[], FashionMNIST],
    out: Path,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Run every spec not already finished in ``out`` and return all records in spec order.

    Raises TrainingInterrupted after SIGINT or SIGTERM, once the current run's
    checkpoint is written; running again continues from there.
    """
    runs_folder = Path(out) / "runs"
    runs_folder.mkdir(parents=True, exist_ok=True)
    records: dict[str, dict[str, Any]] = {}
    pending = []
    for spec in specs:
        record = load_record(runs_folder / f"{spec.key}.json")
        if record is not None:
            records[spec.key] = record
        else:
            pending.append(spec)
    logger.info("%d runs in the matrix: %d finished before, %d to run", len(specs), len(records), len(pending))
    if pending and callable(dataset):
        dataset = dataset()

    total_steps = sum(_planned_steps(spec, dataset) for spec in pending)
    with tqdm(total=total_steps, disable=not progress, unit="step", desc="compare", dynamic_ncols=True) as bar:
        for number, spec in enumerate(pending, start=1):
            bar.set_description(f"compare {number}/{len(pending)}")
            folder = runs_folder / spec.key
            try:
                record = execute_run(spec, dataset, folder, bar)
            except TrainingInterrupted:
                raise
            except Exception as error:  # one failed run must not end the comparison
                logger.error("run %s (%s) failed: %s", spec.label, spec.key, error)
                record = {
                    "status": "failed",
                    **_identity(spec),
                    "error": f"{type(error).__name__}: {error}",
                    "traceback": traceback.format_exc(limit=8),
                    "config": spec.config,
                }
            _write_json(runs_folder / f"{spec.key}.json", record)
            records[spec.key] = record
    return [records[spec.key] for spec in specs]


def _planned_steps(spec: RunSpec, dataset: FashionMNIST) -> int:
    config = spec.config
    images = len(dataset.train.labels)
    subset = config["data"]["train_subset"]
    if subset is not None:
        images = min(images, subset)
    steps = config["epochs"] * (images // config["data"]["batch_size"])
    return min(steps, config["max_steps"]) if config.get("max_steps") else steps
