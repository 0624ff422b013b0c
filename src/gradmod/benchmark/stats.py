"""Paired statistics for the comparison harness.

Arms are compared with the baseline seed by seed (and learning-rate scale by
scale). For a given seed every arm starts from the same weights and gets the
same data order, so the paired difference removes most seed-to-seed noise.
Intervals are two-sided 95% Student-t intervals of the mean over pairs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

__all__ = ["Interval", "t_critical_95", "mean_interval", "paired_ratio", "paired_difference"]

# Two-sided 95% critical values of Student's t, by degrees of freedom 1..30
# (standard tables; beyond 30 the normal value 1.96 is used, an error under 2%).
_T95 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)


def t_critical_95(degrees_of_freedom: int) -> float:
    """Return the two-sided 95% critical value of Student's t."""
    if degrees_of_freedom < 1:
        raise ValueError(f"degrees_of_freedom must be >= 1, got {degrees_of_freedom}")
    if degrees_of_freedom <= len(_T95):
        return _T95[degrees_of_freedom - 1]
    return 1.96


@dataclass(frozen=True)
class Interval:
    """A mean with its 95% confidence interval over ``n`` paired values.

    ``low`` and ``high`` are None when ``n`` < 2 (no spread to estimate).
    ``within_noise`` is True when the interval contains ``neutral`` (1 for
    ratios, 0 for differences), or when it could not be computed.
    """

    mean: float | None
    low: float | None
    high: float | None
    n: int
    neutral: float
    within_noise: bool

    def to_dict(self) -> dict:
        return asdict(self)


def mean_interval(values: Sequence[float], neutral: float) -> Interval:
    """Return the mean of ``values`` with a t interval, and whether it excludes ``neutral``."""
    values = [float(v) for v in values if v is not None and math.isfinite(v)]
    n = len(values)
    if n == 0:
        return Interval(None, None, None, 0, neutral, True)
    mean = sum(values) / n
    if n < 2:
        return Interval(mean, None, None, 1, neutral, True)
    variance = sum((v - mean) ** 2 for v in values) / (n - 1)
    half = t_critical_95(n - 1) * math.sqrt(variance / n)
    low, high = mean - half, mean + half
    return Interval(mean, low, high, n, neutral, low <= neutral <= high)


def paired_ratio(baseline: Sequence[float | None], arm: Sequence[float | None]) -> Interval:
    """Return the mean speed-up baseline / arm over pairs where both values exist.

    A pair where either run never reached the target is left out of the mean;
    callers report how many runs reached it next to the interval.
    """
    if len(baseline) != len(arm):
        raise ValueError(f"paired values need equal lengths, got {len(baseline)} and {len(arm)}")
    ratios = [b / a for b, a in zip(baseline, arm) if b is not None and a is not None and a > 0]
    return mean_interval(ratios, neutral=1.0)


def paired_difference(baseline: Sequence[float | None], arm: Sequence[float | None]) -> Interval:
    """Return the mean of arm - baseline over pairs where both values exist."""
    if len(baseline) != len(arm):
        raise ValueError(f"paired values need equal lengths, got {len(baseline)} and {len(arm)}")
    differences = [a - b for b, a in zip(baseline, arm) if b is not None and a is not None]
    return mean_interval(differences, neutral=0.0)
