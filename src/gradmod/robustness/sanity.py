"""Sanity checks that expose gradient masking in a robustness evaluation.

A model that hides or distorts its gradients (saturated softmax, shattered or
stochastic gradients) can look robust to gradient attacks without being so.
The checks below test three symptoms of that:

1. At a large budget the attack must win: at L-inf eps = 0.5 every image can be
   moved to the constant grey image, so a working attack drives accuracy to
   about 0 (at most the share of images whose class the model predicts there).
2. An iterative attack is never weaker than a single step: PGD accuracy <=
   FGSM accuracy + noise.
3. More iterations never help the defender: PGD with more steps has accuracy
   <= PGD with fewer steps + noise.

"Noise" is :func:`noise_tolerance`: z binomial standard errors
sqrt(p (1 - p) / n) of the larger of the two accuracies, and at least one image
(1 / n). Two attacks with random starts can disagree on a few borderline
images, so a small excess is no evidence of masking.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "SanityCheck",
    "check_large_eps",
    "check_more_steps",
    "check_pgd_vs_fgsm",
    "noise_tolerance",
]


@dataclass(frozen=True)
class SanityCheck:
    """Outcome of one gradient-masking check: its name, verdict, explanation and the numbers behind it."""

    name: str
    passed: bool
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def noise_tolerance(accuracy: float, num_images: int, z: float = 2.0) -> float:
    """Return max(z * sqrt(p (1 - p) / n), 1 / n), the slack allowed between two accuracies on n images."""
    if num_images < 1:
        raise ValueError(f"num_images must be >= 1, got {num_images}")
    standard_error = math.sqrt(max(accuracy * (1.0 - accuracy), 0.0) / num_images)
    return max(z * standard_error, 1.0 / num_images)


def check_large_eps(accuracy: float, eps: float, max_accuracy: float) -> SanityCheck:
    """Check that the attack's accuracy at the large budget ``eps`` is at most ``max_accuracy``."""
    passed = accuracy <= max_accuracy
    verdict = "within" if passed else "above"
    message = (
        f"PGD accuracy at eps={eps:g} is {accuracy:.4f}, {verdict} the limit {max_accuracy:.4f}"
        + ("" if passed else "; the attack fails where it must win, a sign of gradient masking")
    )
    details = {"eps": eps, "accuracy": accuracy, "max_accuracy": max_accuracy}
    return SanityCheck("accuracy_near_zero_at_large_eps", passed, message, details)


def _compare_per_eps(
    name: str,
    stronger: Mapping[float, float],
    weaker: Mapping[float, float],
    stronger_name: str,
    weaker_name: str,
    num_images: int,
    z: float,
) -> SanityCheck:
    """Check stronger[eps] <= weaker[eps] + noise for every eps."""
    rows = []
    violations = []
    for eps in stronger:
        tolerance = noise_tolerance(max(stronger[eps], weaker[eps]), num_images, z)
        excess = stronger[eps] - weaker[eps]
        ok = excess <= tolerance
        rows.append({"eps": eps, stronger_name: stronger[eps], weaker_name: weaker[eps], "tolerance": tolerance})
        if not ok:
            violations.append(f"eps={eps:g}: {stronger_name} {stronger[eps]:.4f} > {weaker_name} {weaker[eps]:.4f}")
    if violations:
        message = (
            f"{stronger_name} accuracy exceeds {weaker_name} accuracy by more than noise ("
            + "; ".join(violations)
            + "), a sign of gradient masking or a too small step size"
        )
    else:
        message = f"{stronger_name} accuracy <= {weaker_name} accuracy + noise at every eps"
    return SanityCheck(name, not violations, message, {"z": z, "num_images": num_images, "per_eps": rows})


def check_pgd_vs_fgsm(
    pgd_accuracy: Mapping[float, float],
    fgsm_accuracy: Mapping[float, float],
    num_images: int,
    z: float = 2.0,
) -> SanityCheck:
    """Check that PGD is never weaker than FGSM beyond noise, at each eps."""
    return _compare_per_eps(
        "pgd_not_weaker_than_fgsm", pgd_accuracy, fgsm_accuracy, "pgd", "fgsm", num_images, z
    )


def check_more_steps(
    accuracy: Mapping[float, float],
    accuracy_more_steps: Mapping[float, float],
    steps: int,
    more_steps: int,
    num_images: int,
    z: float = 2.0,
) -> SanityCheck:
    """Check that PGD with ``more_steps`` never has higher accuracy than with ``steps`` beyond noise."""
    return _compare_per_eps(
        "more_steps_not_weaker",
        accuracy_more_steps,
        accuracy,
        f"pgd-{more_steps}",
        f"pgd-{steps}",
        num_images,
        z,
    )
