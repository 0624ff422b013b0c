"""The LGM algorithm study: its protocol, and the tables that choose and confirm a default.

The protocol is fixed here, before any result is read:

- Selection: workloads cnn and vit of the quick preset, seeds 0-2, validation
  split only. LGM gets five settings (VARIANTS), the baseline five learning
  rates (BASELINE_SCALES times the recipe's): the same tuning budget.
- Choice: the LGM setting with the highest final validation accuracy, averaged
  over seeds and both workloads, because one default must serve every
  workload. Within 0.1 point, more runs reaching the target wins, then fewer
  steps to it. The
  baseline's learning rate is chosen per workload by the same accuracy, which
  makes it the stronger opponent.
- Confirmation: the chosen LGM setting at the recipe's learning rate against
  the tuned baseline (and the untuned one) on fresh seeds 10-14, on cnn and vit
  and on resnet, which played no part in the choice. Paired by seed: speed-up
  in steps and seconds to the target, test accuracy, PGD accuracy.

Usage:
    python benchmarks/lgm_study.py commands OUT      # the gradmod compare commands of the selection
    python benchmarks/lgm_study.py select OUT        # selection table and the choice
    python benchmarks/lgm_study.py commands OUT --lgm ARM --scales cnn=S,vit=S   # ... of the confirmation
    python benchmarks/lgm_study.py confirm OUT --lgm ARM --scales cnn=S,vit=S
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from pathlib import Path

from gradmod.benchmark.stats import paired_difference, paired_ratio

VARIANTS = (
    "lgm",
    "lgm:feedback=centred",
    "lgm:feedback=ema",
    "lgm:feedback=relative",
    "lgm:normalise=ratio",
)
BASELINE_SCALES = (0.5, 0.7, 1.0, 1.4, 2.0)
SELECT_SEEDS = (0, 1, 2)
SELECT_WORKLOADS = ("cnn", "vit")
CONFIRM_SEEDS = (10, 11, 12, 13, 14)
CONFIRM_WORKLOADS = ("cnn", "vit", "resnet")
TIE = 0.001  # final validation accuracies closer than 0.1 point count as equal


def load_runs(folder: Path, training: str | None = "standard") -> list[dict]:
    """Return every finished run record in ``folder/runs`` of this training (None: any)."""
    records = [json.loads(path.read_text()) for path in sorted((folder / "runs").glob("*.json"))]
    return [r for r in records if r.get("status") == "ok" and training in (None, r["training"])]


def _setting(record: dict) -> tuple[str, float]:
    return record["arm"], float(record["lr_scale"])


def _table(records: list[dict], seeds, workloads) -> dict[tuple[str, float], dict[str, list[dict]]]:
    table: dict = defaultdict(lambda: defaultdict(list))
    for record in records:
        if record["seed"] in seeds and record["workload"] in workloads:
            table[_setting(record)][record["workload"]].append(record)
    return table


def _score(runs_by_workload: dict[str, list[dict]], workloads) -> tuple[float, int, float] | None:
    """(mean final validation accuracy over workloads, runs reaching the target, mean steps to it)."""
    if any(len(runs_by_workload.get(w, [])) < len(SELECT_SEEDS) for w in workloads):
        return None  # incomplete: not eligible
    runs = [run for w in workloads for run in runs_by_workload[w]]
    accuracy = sum(sum(r["final_val_accuracy"] for r in runs_by_workload[w]) / len(runs_by_workload[w]) for w in workloads)
    reached = [r["steps_to_target"] for r in runs if r["steps_to_target"] is not None]
    return accuracy / len(workloads), len(reached), (sum(reached) / len(reached) if reached else math.inf)


def _best(candidates: dict) -> tuple:
    """Highest accuracy; within TIE, more runs reaching the target, then fewer steps."""
    top = max(score[0] for score in candidates.values())
    close = {setting: score for setting, score in candidates.items() if score[0] >= top - TIE}
    return min(close, key=lambda setting: (-close[setting][1], close[setting][2], -close[setting][0]))


def select(folder: Path) -> None:
    table = _table(load_runs(folder), SELECT_SEEDS, SELECT_WORKLOADS)
    print("| setting | lr x | " + " | ".join(f"{w} val acc | {w} reached | {w} steps" for w in SELECT_WORKLOADS) + " |")
    print("|---|---|" + "---|---|---|" * len(SELECT_WORKLOADS))
    for (arm, scale), by_workload in sorted(table.items(), key=lambda item: (item[0][0] != "baseline", item[0])):
        cells = []
        for workload in SELECT_WORKLOADS:
            runs = by_workload.get(workload, [])
            steps = [r["steps_to_target"] for r in runs if r["steps_to_target"] is not None]
            if not runs:
                cells += ["-", "-", "-"]
                continue
            accuracy = sum(r["final_val_accuracy"] for r in runs) / len(runs)
            cells += [f"{100 * accuracy:.2f}%", f"{len(steps)}/{len(runs)}", f"{sum(steps) / len(steps):.0f}" if steps else "-"]
        print(f"| {arm} | {scale:g} | " + " | ".join(cells) + " |")

    lgm = {s: _score(t, SELECT_WORKLOADS) for s, t in table.items() if s[0] in VARIANTS and s[1] == 1.0}
    lgm = {s: score for s, score in lgm.items() if score is not None}
    if len(lgm) < len(VARIANTS):
        print(f"\nselection incomplete: {len(lgm)} of {len(VARIANTS)} LGM settings have every run")
    if lgm:
        print(f"\nchosen LGM setting: {_best(lgm)[0]}")
    for workload in SELECT_WORKLOADS:
        base = {s: _score(t, (workload,)) for s, t in table.items() if s[0] == "baseline" and s[1] in BASELINE_SCALES}
        base = {s: score for s, score in base.items() if score is not None}
        if base:
            print(f"chosen baseline learning-rate scale for {workload}: {_best(base)[1]:g} ({len(base)} of {len(BASELINE_SCALES)} measured)")


def _pairs(records, workload, first, second, seeds):
    by_setting = {(_setting(r), r["seed"]): r for r in records if r["workload"] == workload}
    return [(by_setting[(first, s)], by_setting[(second, s)]) for s in seeds if (first, s) in by_setting and (second, s) in by_setting]


def _interval(interval, unit="x", scale=1.0) -> str:
    if interval.mean is None:
        return "n/a"
    text = f"{interval.mean * scale:+.2f}" if unit == "pt" else f"{interval.mean:.2f}x"
    if interval.low is not None:
        low, high = interval.low * scale, interval.high * scale
        text += f" [{low:+.2f}, {high:+.2f}]" if unit == "pt" else f" [{low:.2f}, {high:.2f}]"
    return text + (" ~" if interval.within_noise else "")


def confirm(folder: Path, lgm: str, scales: dict[str, float]) -> None:
    records = [r for r in load_runs(folder) if r["seed"] in CONFIRM_SEEDS]
    print("| workload | LGM against | pairs | reached (baseline / lgm) | speed-up steps | speed-up seconds | test acc (pt) | " + "PGD (pt) |")
    print("|---|---|---|---|---|---|---|---|")
    for workload in CONFIRM_WORKLOADS:
        opponents = [("baseline, recipe lr", 1.0)]
        if scales.get(workload, 1.0) != 1.0:  # tuned to another rate than the recipe's
            opponents.insert(0, ("baseline, tuned lr", scales[workload]))
        for label, scale in opponents:
            pairs = _pairs(records, workload, ("baseline", scale), (lgm, 1.0), CONFIRM_SEEDS)
            if not pairs:
                continue
            base, mine = zip(*pairs)
            reached = f"{sum(r['steps_to_target'] is not None for r in base)} / {sum(r['steps_to_target'] is not None for r in mine)}"
            steps = paired_ratio([r["steps_to_target"] for r in base], [r["steps_to_target"] for r in mine])
            seconds = paired_ratio([r["seconds_to_target"] for r in base], [r["seconds_to_target"] for r in mine])
            test = paired_difference([r["test_accuracy"] for r in base], [r["test_accuracy"] for r in mine])
            robust = ", ".join(
                f"{eps}: {_interval(paired_difference([r['robust_accuracy'][eps] for r in base], [r['robust_accuracy'][eps] for r in mine]), 'pt', 100)}"
                for eps in base[0]["robust_accuracy"]
            )
            print(
                f"| {workload} | {label} (x{scale:g}) | {len(pairs)} | {reached} | {_interval(steps)} | "
                f"{_interval(seconds)} | {_interval(test, 'pt', 100)} | {robust} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stage", choices=("commands", "select", "confirm"))
    parser.add_argument("out", type=Path, help="the study's compare output folder")
    parser.add_argument("--lgm", help="confirmation: the chosen LGM arm")
    parser.add_argument("--scales", default="", help="confirmation: the baseline's chosen scales, e.g. cnn=0.7,vit=1.4")
    args = parser.parse_args()
    scales = {k: float(v) for k, v in (item.split("=") for item in args.scales.split(",") if item)}
    if args.stage == "commands" and args.lgm:
        seeds = ",".join(map(str, CONFIRM_SEEDS))
        common = f"--preset quick --seeds {seeds} --threads 1 --quiet --out {args.out}"
        print(f"gradmod compare --arms {args.lgm} --workloads {','.join(CONFIRM_WORKLOADS)} {common}")
        for workload, scale in scales.items():
            if scale != 1.0:
                print(f"gradmod compare --arms baseline --lr-scale {scale:g} --workloads {workload} {common}")
    elif args.stage == "commands":
        seeds = ",".join(map(str, SELECT_SEEDS))
        common = f"--preset quick --workloads {','.join(SELECT_WORKLOADS)} --seeds {seeds} --threads 1 --quiet --out {args.out}"
        print(f"gradmod compare --arms {','.join(VARIANTS)} {common}")
        extra = ",".join(f"{s:g}" for s in BASELINE_SCALES if s != 1.0)
        print(f"gradmod compare --arms baseline --lr-scale {extra} {common}")
    elif args.stage == "select":
        select(args.out)
    else:
        if not args.lgm:
            parser.error("confirm needs --lgm, the chosen LGM arm")
        confirm(args.out, args.lgm, scales)


if __name__ == "__main__":
    main()
