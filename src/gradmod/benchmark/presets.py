"""Presets of the comparison: workloads, arms, seeds and evaluation settings.

Each workload fixes its model, training length and the target validation
accuracy in the preset, before any run, so that time to target cannot be
chosen after seeing the results. The targets come from one pilot run of the
baseline on seed 100, outside the presets' seeds: the validation accuracy it
had reached at 75% of its training (step 234 of 312), rounded down to a whole
percent. Standard training: cnn 0.8874, vit 0.7696. ``fgsm_rs`` training at
eps 0.1, which lowers clean accuracy: cnn 0.8236, vit 0.5810. Standard
training of resnet, run only on request: 0.8400. NOTE: resnet's ``fgsm_rs``
target has had no pilot and falls back to the standard one.

The full preset trains every arm at the quick preset's size (20,000 images,
2 epochs) so that its 72 runs fit in about an hour and a half on 2 CPU cores;
``--epochs`` and ``--train-subset`` grow it where more time is available.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from gradmod.benchmark.arms import DEFAULT_ARMS
from gradmod.training._fields import nearest_hint

__all__ = ["WorkloadSetting", "Preset", "PRESETS", "get_preset"]


@dataclass(frozen=True)
class WorkloadSetting:
    """Training settings of one workload in a preset.

    Attributes:
        name: the workload's name, also the model's name in ``gradmod.models``.
        target_accuracy: validation accuracy (a fraction) for time to target.
        epochs: passes over the (subset of the) training split.
        train_subset: train on the first N images of the shuffled training split; None for all.
        eval_every: optimizer steps between validation evaluations.
        changes: further dotted config keys for this workload.
        adversarial_target_accuracy: the target for ``fgsm_rs`` training, whose
            clean accuracy is lower; None uses ``target_accuracy``.
    """

    name: str
    target_accuracy: float
    epochs: int
    train_subset: int | None
    eval_every: int
    changes: dict[str, Any] = field(default_factory=dict)
    adversarial_target_accuracy: float | None = None

    def target_for(self, training: str) -> float:
        """Return the target validation accuracy of ``training`` ("standard" or "fgsm_rs")."""
        if training != "standard" and self.adversarial_target_accuracy is not None:
            return self.adversarial_target_accuracy
        return self.target_accuracy


@dataclass(frozen=True)
class Preset:
    """A named comparison: which workloads, arms and seeds, and how to evaluate them."""

    name: str
    description: str
    workloads: dict[str, WorkloadSetting]
    default_workloads: tuple[str, ...]
    arms: tuple[str, ...]
    seeds: tuple[int, ...]
    trainings: tuple[str, ...] = ("standard",)
    adversarial_eps: float = 0.1
    robust_eps: tuple[float, ...] = (0.05, 0.1, 0.2)
    robust_images: int = 500
    robust_steps: int = 20
    lr_scales: tuple[float, ...] = (1.0,)
    val_size: int = 5000

    def with_changes(self, **changes: Any) -> "Preset":
        return replace(self, **changes)


_QUICK_WORKLOADS = {
    "cnn": WorkloadSetting("cnn", target_accuracy=0.88, epochs=2, train_subset=20000, eval_every=39),
    "vit": WorkloadSetting("vit", target_accuracy=0.76, epochs=2, train_subset=20000, eval_every=39),
    "resnet": WorkloadSetting("resnet", target_accuracy=0.84, epochs=2, train_subset=20000, eval_every=39),
}

_FULL_WORKLOADS = {
    "cnn": WorkloadSetting("cnn", target_accuracy=0.88, epochs=2, train_subset=20000, eval_every=39, adversarial_target_accuracy=0.82),
    "vit": WorkloadSetting("vit", target_accuracy=0.76, epochs=2, train_subset=20000, eval_every=39, adversarial_target_accuracy=0.58),
    "resnet": WorkloadSetting("resnet", target_accuracy=0.84, epochs=2, train_subset=20000, eval_every=39),
}

PRESETS: dict[str, Preset] = {
    "quick": Preset(
        name="quick",
        description="cnn and vit, baseline and lgm, 2 seeds, 20,000 training images for 2 epochs, standard training",
        workloads=_QUICK_WORKLOADS,
        default_workloads=("cnn", "vit"),
        arms=DEFAULT_ARMS,
        seeds=(0, 1),
        robust_images=256,
    ),
    "full": Preset(
        name="full",
        description="cnn and vit, every arm, 3 seeds, 20,000 training images for 2 epochs, standard and fgsm_rs training",
        workloads=_FULL_WORKLOADS,
        default_workloads=("cnn", "vit"),
        arms=("baseline", "lgm", "agc", "lamb", "lars", "muon"),
        seeds=(0, 1, 2),
        trainings=("standard", "fgsm_rs"),
        robust_images=500,
    ),
}


def get_preset(name: str) -> Preset:
    """Return the preset ``name``; an unknown name raises ValueError with the nearest."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}{nearest_hint(name, PRESETS)} (choose from {', '.join(PRESETS)})")
    return PRESETS[name]
