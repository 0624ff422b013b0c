"""Summarise run records into the comparison table.

For every workload, training and learning-rate scale, each arm is paired with
the baseline by seed:

- speed-up in steps and in training seconds to the target accuracy:
  baseline / arm, over the seeds where both reached it (the reach counts are
  reported beside it, so an arm that never reaches the target is visible);
- final test accuracy, and its paired difference from the baseline;
- robust accuracy at each epsilon, and its paired relative change
  (arm - baseline) / baseline.

An interval that contains the neutral value (1 for speed-ups, 0 for
differences) is marked as within noise. With several learning-rate scales,
``lr_sensitivity`` gives per arm the spread of final accuracy and of time to
target across the scales.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from gradmod.benchmark.stats import mean_interval, paired_difference, paired_ratio

__all__ = ["summarize", "lr_sensitivity", "fairness_check"]


def _mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def _group(records: list[dict[str, Any]]) -> dict[tuple, dict[str, dict[int, dict]]]:
    """Return {(workload, training, lr_scale): {arm: {seed: record}}} of successful runs."""
    groups: dict[tuple, dict[str, dict[int, dict]]] = defaultdict(lambda: defaultdict(dict))
    for record in records:
        if record.get("status") == "ok":
            key = (record["workload"], record["training"], record["lr_scale"])
            groups[key][record["arm"]][record["seed"]] = record
    return groups


def _relative(baseline: float | None, arm: float | None) -> float | None:
    if baseline is None or arm is None or baseline <= 0:
        return None
    return (arm - baseline) / baseline


def summarize(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return one summary row per workload, training, learning-rate scale and arm."""
    rows = []
    for (workload, training, lr_scale), arms in sorted(_group(records).items()):
        baseline = arms.get("baseline", {})
        for arm, runs in sorted(arms.items(), key=lambda item: item[0] != "baseline"):
            seeds = sorted(set(runs) & set(baseline))
            base = [baseline[s] for s in seeds]
            mine = [runs[s] for s in seeds]
            robust_eps = sorted({eps for r in runs.values() for eps in r["robust_accuracy"]}, key=float)
            robust = {}
            for eps in robust_eps:
                base_values = [r["robust_accuracy"].get(eps) for r in base]
                arm_values = [r["robust_accuracy"].get(eps) for r in mine]
                robust[eps] = {
                    "mean": _mean(r["robust_accuracy"].get(eps) for r in runs.values()),
                    "relative_change": mean_interval(
                        [_relative(b, a) for b, a in zip(base_values, arm_values)], neutral=0.0
                    ).to_dict(),
                    "difference": paired_difference(base_values, arm_values).to_dict(),
                }
            rows.append(
                {
                    "workload": workload,
                    "training": training,
                    "lr_scale": lr_scale,
                    "arm": arm,
                    "seeds": sorted(runs),
                    "paired_seeds": seeds,
                    "reached": sum(r["steps_to_target"] is not None for r in runs.values()),
                    "runs": len(runs),
                    "target_accuracy": next(iter(runs.values()))["target_accuracy"],
                    "steps_to_target": _mean(r["steps_to_target"] for r in runs.values()),
                    "seconds_to_target": _mean(r["seconds_to_target"] for r in runs.values()),
                    "speedup_steps": paired_ratio(
                        [r["steps_to_target"] for r in base], [r["steps_to_target"] for r in mine]
                    ).to_dict(),
                    "speedup_seconds": paired_ratio(
                        [r["seconds_to_target"] for r in base], [r["seconds_to_target"] for r in mine]
                    ).to_dict(),
                    "test_accuracy": _mean(r["test_accuracy"] for r in runs.values()),
                    "test_accuracy_difference": paired_difference(
                        [r["test_accuracy"] for r in base], [r["test_accuracy"] for r in mine]
                    ).to_dict(),
                    "train_seconds": _mean(r["train_seconds"] for r in runs.values()),
                    "robust": robust,
                }
            )
    return rows


def lr_sensitivity(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return, per workload, training and arm run at several scales, how much results move with the scale."""
    by_arm: dict[tuple, dict[float, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        if record.get("status") == "ok":
            by_arm[(record["workload"], record["training"], record["arm"])][record["lr_scale"]].append(record)
    rows = []
    for (workload, training, arm), scales in sorted(by_arm.items()):
        if len(scales) < 2:
            continue
        per_scale = {
            f"{scale:g}": {
                "test_accuracy": _mean(r["test_accuracy"] for r in runs),
                "seconds_to_target": _mean(r["seconds_to_target"] for r in runs),
                "reached": sum(r["steps_to_target"] is not None for r in runs),
                "runs": len(runs),
            }
            for scale, runs in sorted(scales.items())
        }
        accuracies = [v["test_accuracy"] for v in per_scale.values() if v["test_accuracy"] is not None]
        times = [v["seconds_to_target"] for v in per_scale.values() if v["seconds_to_target"] is not None]
        rows.append(
            {
                "workload": workload,
                "training": training,
                "arm": arm,
                "per_scale": per_scale,
                "test_accuracy_spread": max(accuracies) - min(accuracies) if accuracies else None,
                "seconds_to_target_spread": max(times) / min(times) if len(times) >= 2 else None,
                "scales_reaching_target": sum(v["reached"] > 0 for v in per_scale.values()),
            }
        )
    return rows


def fairness_check(records: list[dict[str, Any]]) -> list[str]:
    """Return a problem line for every workload and seed whose arms started from different weights.

    Arms that change the optimizer start from the same weights too; only the
    model and the seed determine them.
    """
    digests: dict[tuple, set[str]] = defaultdict(set)
    for record in records:
        if record.get("status") == "ok":
            digests[(record["workload"], record["seed"])].add(record["initial_weights"])
    return [
        f"{workload} seed {seed}: arms started from {len(found)} different initial weights"
        for (workload, seed), found in sorted(digests.items())
        if len(found) > 1
    ]
