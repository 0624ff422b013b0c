"""Render ``report.md`` from the contents of ``results.json``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["render_report", "format_interval"]


def format_interval(interval: dict[str, Any], percent: bool = False, suffix: str = "") -> str:
    """Format a mean with its 95% interval, marked "~" when the interval contains the neutral value.

    A single pair has no interval, so it is marked "(1 pair)" instead of "~".
    """
    if interval["mean"] is None:
        return "n/a"
    scale, unit = (100.0, " pt") if percent else (1.0, suffix)
    text = f"{interval['mean'] * scale:+.2f}{unit}" if percent else f"{interval['mean'] * scale:.2f}{unit}"
    if interval["low"] is not None:
        low, high = interval["low"] * scale, interval["high"] * scale
        text += f" [{low:.2f}, {high:.2f}]" if not percent else f" [{low:+.2f}, {high:+.2f}]"
    elif interval.get("n") == 1:
        return text + " (1 pair)"
    if interval["within_noise"]:
        text += " ~"
    return text


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def _summary_table(rows: list[dict[str, Any]]) -> list[str]:
    eps_list = sorted({eps for row in rows for eps in row["robust"]}, key=float)
    header = ["workload", "training", "lr x", "arm", "reached", "speed-up (steps)", "speed-up (seconds)",
              "test acc", "test acc vs baseline"]
    header += [f"PGD eps {eps}" for eps in eps_list]
    header += [f"robust change eps {eps}" for eps in eps_list]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        baseline = row["arm"] == "baseline"
        cells = [
            row["workload"],
            row["training"],
            f"{row['lr_scale']:g}",
            row["arm"],
            f"{row['reached']}/{row['runs']}",
            "1 (reference)" if baseline else format_interval(row["speedup_steps"], suffix="x"),
            "1 (reference)" if baseline else format_interval(row["speedup_seconds"], suffix="x"),
            _percent(row["test_accuracy"]),
            "" if baseline else format_interval(row["test_accuracy_difference"], percent=True),
        ]
        cells += [_percent(row["robust"].get(eps, {}).get("mean")) for eps in eps_list]
        for eps in eps_list:
            entry = row["robust"].get(eps)
            if baseline or entry is None:
                cells.append("")
            else:
                cells.append(format_interval(entry["relative_change"], percent=True).replace(" pt", "%"))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _sensitivity_table(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    scales = sorted({scale for row in rows for scale in row["per_scale"]}, key=float)
    header = ["workload", "training", "arm"] + [f"test acc at lr x{s}" for s in scales]
    header += ["accuracy spread", "scales reaching target", "time-to-target spread"]
    lines = ["", "## Learning-rate sensitivity", "",
             "Each arm at the same multiples of its learning rate; a smaller spread means less dependence "
             "on a well-chosen learning rate. The time spread is slowest / fastest over the scales that reached the target.",
             "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row["workload"], row["training"], row["arm"]]
        cells += [_percent(row["per_scale"].get(s, {}).get("test_accuracy")) for s in scales]
        spread = row["test_accuracy_spread"]
        cells.append("n/a" if spread is None else f"{100 * spread:.2f} pt")
        cells.append(f"{row['scales_reaching_target']}/{len(row['per_scale'])}")
        time_spread = row["seconds_to_target_spread"]
        cells.append("n/a" if time_spread is None else f"{time_spread:.2f}x")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def render_report(results: dict[str, Any], plots: list[str]) -> str:
    """Return the Markdown report of a comparison."""
    meta = results["meta"]
    failed = [run for run in results["runs"] if run.get("status") != "ok"]
    lines = [
        f"# gradmod compare: preset {meta['preset']}",
        "",
        f"Command: `{meta['command']}`  ",
        f"Date: {meta['date']}; machine: {meta['machine']}; torch {meta['versions']['torch']}, "
        f"gradmod {meta['versions']['gradmod']}; {len(results['runs'])} runs ({len(failed)} failed).",
        "",
        "Speed-ups are baseline / arm in steps and in training seconds to the preset's fixed validation "
        "target, paired by seed, as mean [95% interval] over the seeds where both runs reached it; "
        "'reached' counts the runs that got there at all. Accuracy differences are paired by seed, in "
        "percentage points; robust change is (arm - baseline) / baseline of PGD accuracy. "
        "'~' marks an interval that contains no change (within noise); '(1 pair)' a value with no interval. The test set is read only for "
        "final numbers; robust accuracy uses a fixed subset of it. Training seconds are wall-clock time, "
        "so on a shared machine they also measure the load while each run trained; steps do not.",
        "",
        "## Summary",
        "",
        *_summary_table(results["summary"]),
        *_sensitivity_table(results.get("lr_sensitivity", [])),
        "",
        "## Checks",
        "",
    ]
    problems = results.get("fairness_problems", [])
    if problems:
        lines += [f"- FAIRNESS PROBLEM: {problem}" for problem in problems]
    else:
        lines.append("- Every arm of a workload and seed started from identical initial weights (hash checked).")
    for run in failed:
        lines.append(f"- FAILED: {run['workload']}/{run['arm']}/seed {run['seed']}: {run.get('error')}")
    for run in results["runs"]:
        if run.get("restored_epoch") is not None:
            lines.append(
                f"- CATASTROPHIC OVERFITTING: {run['workload']}/{run['arm']}/seed {run['seed']} ({run['training']}); "
                f"its numbers are those of epoch {run['restored_epoch']}, the most robust on the monitor batch."
            )
    targets = sorted(
        {(run["workload"], run["training"], run.get("target_accuracy")) for run in results["runs"] if run.get("status") == "ok"}
    )
    for workload, training, target in targets:
        lines.append(f"- {workload}, {training} training: target validation accuracy {_percent(target)}, fixed in the preset.")
    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"![{Path(plot).stem}]({Path(plot).name})" for plot in plots]
    return "\n".join(lines) + "\n"
