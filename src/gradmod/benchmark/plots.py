"""PNG plots of a comparison (matplotlib, imported only when plotting).

- ``curves_<workload>.png``: validation accuracy against steps and against
  training seconds, one line per arm (mean over seeds, seed range shaded);
- ``gains_<workload>.png``: heatmap of the per-layer gains of the ``lgm`` arm
  over training (first seed), and ``gains_<workload>_<variant>.png`` for each
  variant such as ``lgm:feedback=centred``;
- ``robust_<workload>.png``: robust accuracy against epsilon per arm.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["write_plots"]

logger = logging.getLogger(__name__)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _standard_runs(records: list[dict[str, Any]]) -> dict[str, dict[str, list[dict]]]:
    """Return {workload: {arm: [runs]}} for standard training at learning-rate scale 1."""
    grouped: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        if record.get("status") == "ok" and record["training"] == "standard" and record["lr_scale"] == 1.0:
            grouped[record["workload"]][record["arm"]].append(record)
    return grouped


def _aligned(runs: list[dict], field: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Return (x, accuracy) arrays [seeds, points] cut to the shortest curve."""
    length = min(len(run["curve"]) for run in runs)
    if length == 0:
        return None
    x = np.array([[point[field] for point in run["curve"][:length]] for run in runs], dtype=float)
    y = np.array([[point["val_accuracy"] for point in run["curve"][:length]] for run in runs], dtype=float)
    return x, y


def _plot_curves(plt, workload: str, arms: dict[str, list[dict]], folder: Path) -> Path:
    figure, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for arm, runs in sorted(arms.items()):
        for axis, field, label in ((axes[0], "step", "optimizer steps"), (axes[1], "seconds", "training seconds")):
            aligned = _aligned(runs, field)
            if aligned is None:
                continue
            x, y = aligned
            seeds = f"{len(runs)} seed" + ("s" if len(runs) != 1 else "")
            line = axis.plot(x.mean(axis=0), y.mean(axis=0), marker="o", markersize=3, label=f"{arm} ({seeds})")[0]
            axis.fill_between(x.mean(axis=0), y.min(axis=0), y.max(axis=0), color=line.get_color(), alpha=0.2)
            axis.set_xlabel(label)
    target = arms[next(iter(arms))][0].get("target_accuracy")
    for axis in axes:
        if target is not None:
            axis.axhline(target, color="grey", linestyle="--", linewidth=1, label="target")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("validation accuracy")
    axes[0].legend(loc="lower right")
    figure.suptitle(f"{workload}: validation accuracy (mean over seeds, range shaded)")
    return _save(plt, figure, folder / f"curves_{workload}.png")


def _plot_gains(plt, workload: str, arm: str, runs: list[dict], folder: Path) -> Path | None:
    run = min(runs, key=lambda r: r["seed"])
    history = run.get("gains_history") or []
    if not history:
        return None
    layers = list(history[0]["gains"])
    values = np.array([[entry["gains"][layer] for entry in history] for layer in layers], dtype=float)
    figure, axis = plt.subplots(figsize=(10, max(3.0, 0.25 * len(layers) + 1.5)))
    bound = max(abs(np.log2(values)).max(), 0.1)
    first, last = history[0]["step"], history[-1]["step"]
    if first == last:
        first, last = first - 0.5, last + 0.5  # one record: give the column a width
    image = axis.imshow(
        np.log2(values), aspect="auto", cmap="coolwarm", vmin=-bound, vmax=bound, interpolation="nearest",
        extent=(first, last, len(layers) - 0.5, -0.5),
    )
    axis.set_yticks(range(len(layers)), layers, fontsize=7)
    axis.set_xlabel("optimizer step")
    colorbar = figure.colorbar(image, ax=axis)
    colorbar.set_label("log2 gain")
    axis.set_title(f"{workload}: per-layer gains of {arm}, seed {run['seed']}")
    variant = arm.partition(":")[2]
    suffix = "_" + re.sub(r"[^A-Za-z0-9.=-]+", "_", variant) if variant else ""
    return _save(plt, figure, folder / f"gains_{workload}{suffix}.png")


def _plot_robust(plt, workload: str, records: list[dict[str, Any]], folder: Path) -> Path | None:
    series: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        if record.get("status") != "ok" or record["workload"] != workload or record["lr_scale"] != 1.0:
            continue
        name = record["arm"] if record["training"] == "standard" else f"{record['arm']} ({record['training']})"
        series[name][0.0].append(record["robust_clean_accuracy"])
        for eps, accuracy in record["robust_accuracy"].items():
            series[name][float(eps)].append(accuracy)
    if not series:
        return None
    figure, axis = plt.subplots(figsize=(6, 4))
    for name, points in sorted(series.items()):
        eps = sorted(points)
        axis.plot(eps, [np.mean(points[e]) for e in eps], marker="o", label=name)
    axis.set_xlabel("L-inf epsilon (images in [0, 1])")
    axis.set_ylabel("accuracy under PGD")
    axis.set_ylim(0, 1)
    axis.grid(alpha=0.3)
    axis.legend()
    axis.set_title(f"{workload}: robust accuracy (mean over seeds)")
    return _save(plt, figure, folder / f"robust_{workload}.png")


def write_plots(records: list[dict[str, Any]], folder: Path) -> list[Path]:
    """Write every plot the records allow into ``folder`` and return their paths."""
    try:
        plt = _pyplot()
    except ImportError:
        logger.warning("matplotlib is not installed, so no plots were written; pip install 'gradmod[plots]'")
        return []
    paths: list[Path | None] = []
    standard = _standard_runs(records)
    for workload, arms in sorted(standard.items()):
        paths.append(_plot_curves(plt, workload, arms, folder))
        for arm in sorted(arms):
            if arm == "lgm" or arm.startswith("lgm:"):
                paths.append(_plot_gains(plt, workload, arm, arms[arm], folder))
    for workload in sorted({r["workload"] for r in records if r.get("status") == "ok"}):
        paths.append(_plot_robust(plt, workload, records, folder))
    return [path for path in paths if path is not None]
