"""``compare``: run a preset's matrix and write results.json, report.md and plots."""

from __future__ import annotations

import datetime
import json
import logging
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from gradmod.benchmark.arms import resolve_arms
from gradmod.benchmark.matrix import build_matrix
from gradmod.benchmark.plots import write_plots
from gradmod.benchmark.presets import get_preset
from gradmod.benchmark.report import render_report
from gradmod.benchmark.runner import run_matrix
from gradmod.benchmark.summary import fairness_check, lr_sensitivity, summarize
from gradmod.data import load_fashion_mnist

__all__ = ["compare", "render", "RESULTS_NAME"]

logger = logging.getLogger(__name__)

RESULTS_NAME = "results.json"


def _versions() -> dict[str, str | None]:
    versions = {"python": platform.python_version(), "torch": torch.__version__}
    for package in ("gradmod", "numpy", "pytorch_optimizer", "adversarial-robustness-toolbox"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def _machine(threads: int | None) -> str:
    """Describe the machine; ``threads`` is the per-run thread setting, if one was given."""
    threads = threads if threads is not None else torch.get_num_threads()
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, torch threads {threads}"


def _check_names(kind: str, names: Sequence[str], valid: Sequence[str]) -> None:
    for name in names:
        if name not in valid:
            raise ValueError(f"unknown {kind} {name!r} (choose from {', '.join(valid)})")


def compare(
    preset: str = "quick",
    *,
    workloads: Sequence[str] | None = None,
    arms: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    lr_scales: Sequence[float] | None = None,
    trainings: Sequence[str] | None = None,
    epochs: int | None = None,
    train_subset: int | None = None,
    out: str | Path = "runs/compare",
    data: str | None = None,
    device: str = "cpu",
    threads: int | None = None,
    progress: bool = True,
    command: str | None = None,
) -> dict[str, Any]:
    """Run (or continue) a comparison into ``out`` and return the results.

    Every argument left as None takes the preset's value. Raises ValueError for
    an unknown preset, workload, arm or training before anything runs.
    """
    chosen = get_preset(preset)
    workloads = list(workloads or chosen.default_workloads)
    _check_names("workload", workloads, list(chosen.workloads))
    selected = resolve_arms(arms or chosen.arms)
    skipped = [arm for arm in selected if not arm.available()]
    for arm in skipped:
        logger.warning("arm %s skipped: %s is not installed (pip install 'gradmod[%s]')", arm.name, arm.requires, arm.extra)
    selected = [arm for arm in selected if arm.available()]
    seeds = list(seeds if seeds is not None else chosen.seeds)
    lr_scales = [float(scale) for scale in (lr_scales or chosen.lr_scales)]
    if any(scale <= 0 for scale in lr_scales):
        raise ValueError(f"learning-rate scales must be > 0, got {lr_scales}")
    trainings = list(trainings or chosen.trainings)

    overrides: dict[str, Any] = {"device": device}
    if threads is not None:
        overrides["threads"] = threads
    if epochs is not None:
        overrides["epochs"] = epochs
    if train_subset is not None:
        overrides["data.train_subset"] = train_subset
    specs = build_matrix(chosen, workloads, selected, seeds, lr_scales, trainings, overrides)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    records = run_matrix(
        specs,
        lambda: load_fashion_mnist(data, val_size=chosen.val_size, split_seed=0),
        out,
        progress=progress,
    )
    settings = {
        "preset": asdict(chosen),
        "workloads": workloads,
        "arms": [arm.name for arm in selected],
        "skipped_arms": [arm.name for arm in skipped],
        "seeds": seeds,
        "lr_scales": lr_scales,
        "trainings": trainings,
        "overrides": overrides,
    }
    meta = {
        "preset": chosen.name,
        "command": command or "gradmod.benchmark.compare(...)",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": _machine(threads),
        "versions": _versions(),
        "settings": settings,
    }
    results = {"meta": meta, "runs": records}
    return render(out, results)


def render(out: str | Path, results: dict[str, Any] | None = None) -> dict[str, Any]:
    """Recompute the summary of ``results`` (or of ``out/results.json``) and write results, plots and report."""
    out = Path(out)
    if results is None:
        path = out / RESULTS_NAME
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found; run 'gradmod compare --out {out}' first")
        results = json.loads(path.read_text(encoding="utf-8"))
    records = results["runs"]
    results["summary"] = summarize(records)
    results["lr_sensitivity"] = lr_sensitivity(records)
    results["fairness_problems"] = fairness_check(records)
    temporary = out / (RESULTS_NAME + ".tmp")
    temporary.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    os.replace(temporary, out / RESULTS_NAME)
    plots = write_plots(records, out)
    (out / "report.md").write_text(render_report(results, [str(p) for p in plots]), encoding="utf-8")
    logger.info("wrote %s, report.md and %d plots to %s", RESULTS_NAME, len(plots), out)
    return results


def command_line() -> str:
    """Return the command that started this process, for the report."""
    program = Path(sys.argv[0]).name
    return " ".join([program if program != "__main__.py" else "python -m gradmod", *sys.argv[1:]])
