"""The result of :func:`gradmod.robustness.evaluate_robustness`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gradmod.robustness.sanity import SanityCheck

__all__ = ["RobustnessReport"]


@dataclass
class RobustnessReport:
    """Robust accuracy per epsilon, per attack, and the gradient-masking checks.

    Attributes:
        norm: "linf" or "l2".
        eps: the evaluated budgets, in the order given.
        num_images: number of evaluated images.
        clean_accuracy: accuracy without attack.
        robust_accuracy: headline accuracy per eps: an image counts as correct
            only if every attack in ``attacks_used`` failed on it.
        attack_accuracy: accuracy per attack name, then per eps.
        attacks_used: names of the attacks behind ``robust_accuracy``.
        art_used: whether ART's AutoPGD and Square Attack were run.
        art_note: why ART was or was not used.
        checks: the gradient-masking sanity checks, failed ones included.
        config: the settings of the evaluation (steps, seed, batch size, ...).
    """

    norm: str
    eps: list[float]
    num_images: int
    clean_accuracy: float
    robust_accuracy: dict[float, float]
    attack_accuracy: dict[str, dict[float, float]]
    attacks_used: list[str]
    art_used: bool
    art_note: str
    checks: list[SanityCheck] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def sanity_passed(self) -> bool:
        """Whether every sanity check passed."""
        return all(check.passed for check in self.checks)

    @property
    def failed_checks(self) -> list[SanityCheck]:
        return [check for check in self.checks if not check.passed]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict: one record per eps, and the checks with their verdicts."""
        per_eps = []
        for eps in self.eps:
            attacks = {name: accuracy[eps] for name, accuracy in self.attack_accuracy.items() if eps in accuracy}
            per_eps.append({"eps": eps, "robust_accuracy": self.robust_accuracy[eps], "attacks": attacks})
        return {
            "norm": self.norm,
            "num_images": self.num_images,
            "clean_accuracy": self.clean_accuracy,
            "attacks_used": list(self.attacks_used),
            "art": {"used": self.art_used, "note": self.art_note},
            "per_eps": per_eps,
            "sanity_passed": self.sanity_passed,
            "sanity_checks": [check.to_dict() for check in self.checks],
            "config": dict(self.config),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def save_json(self, path: str | Path) -> Path:
        """Write :meth:`to_json` to ``path`` and return the path."""
        path = Path(path)
        path.write_text(self.to_json() + "\n", encoding="utf-8")
        return path
