"""The run matrix: one ``RunSpec`` per workload, arm, seed, learning-rate scale and training.

A spec carries the complete training configuration, so its key (a hash of
that configuration and the evaluation settings) identifies a finished run: a
compare run again into the same folder reuses every run whose key it finds.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from gradmod.benchmark.arms import Arm
from gradmod.benchmark.presets import Preset, WorkloadSetting
from gradmod.training import TrainConfig, resolve_recipe

__all__ = ["RunSpec", "TRAININGS", "build_matrix", "run_key"]

TRAININGS = ("standard", "fgsm_rs")
# Bump when a change to the harness makes old results incomparable.
HARNESS_VERSION = 1
# Settings that do not change what a run computes, so they stay out of its key.
_KEY_EXCLUDED = {("run", "out"), ("run", "quiet"), ("run", "checkpoint_every"), ("data", "path")}


@dataclass(frozen=True)
class RunSpec:
    """One cell of the matrix: what to train and how to evaluate it."""

    workload: str
    arm: str
    seed: int
    lr_scale: float
    training: str
    config: dict[str, Any]
    robust: dict[str, Any]

    @property
    def key(self) -> str:
        return run_key(self.config, self.robust)

    @property
    def label(self) -> str:
        label = f"{self.workload}/{self.arm}/seed {self.seed}"
        if self.lr_scale != 1.0:
            label += f"/lr x{self.lr_scale:g}"
        if self.training != "standard":
            label += f"/{self.training}"
        return label


def run_key(config: dict[str, Any], robust: dict[str, Any]) -> str:
    """Return a 16-hex-digit hash of everything that determines a run's numbers."""
    kept = {
        section: ({k: v for k, v in values.items() if (section, k) not in _KEY_EXCLUDED} if isinstance(values, dict) else values)
        for section, values in config.items()
    }
    text = json.dumps({"version": HARNESS_VERSION, "config": kept, "robust": robust}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _run_config(
    setting: WorkloadSetting,
    arm: Arm,
    seed: int,
    lr_scale: float,
    training: str,
    preset: Preset,
    overrides: dict[str, Any],
) -> dict[str, Any]:
    config = TrainConfig.from_dict(
        {
            "seed": seed,
            "epochs": setting.epochs,
            "target_accuracy": setting.target_for(training),
            "model": {"name": setting.name},
            "data": {"val_size": preset.val_size, "train_subset": setting.train_subset},
            "run": {"eval_every": setting.eval_every, "quiet": True},
        }
    )
    changes = {**setting.changes, **arm.changes, **overrides}
    if training == "fgsm_rs":
        changes.update({"adversarial.method": "fgsm_rs", "adversarial.eps": preset.adversarial_eps})
    if changes:
        config = config.replace(**changes)
    config = resolve_recipe(config)
    if lr_scale != 1.0:
        config = config.replace(**{"optimizer.lr": config.optimizer.lr * lr_scale})
    return config.to_dict()


def build_matrix(preset: Preset, workloads, arms: list[Arm], seeds, lr_scales, trainings, overrides=None) -> list[RunSpec]:
    """Return the specs of every run, ordered seed-major so early results cover every arm.

    ``overrides`` maps dotted config keys to values applied to every run (for
    example ``{"epochs": 1, "data.train_subset": 2000}`` for a smoke test).
    """
    overrides = dict(overrides or {})
    robust = {"eps": list(preset.robust_eps), "images": preset.robust_images, "steps": preset.robust_steps}
    for training in trainings:
        if training not in TRAININGS:
            raise ValueError(f"unknown training {training!r} (choose from {', '.join(TRAININGS)})")
    specs = []
    for training in trainings:
        for seed in seeds:
            for workload in workloads:
                setting = preset.workloads[workload]
                for lr_scale in lr_scales:
                    for arm in arms:
                        config = _run_config(setting, arm, seed, lr_scale, training, preset, overrides)
                        specs.append(RunSpec(workload, arm.name, seed, lr_scale, training, config, robust))
    return specs
