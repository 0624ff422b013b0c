"""Follow-up checks of the LGM study: adversarial training, learning-rate robustness, schedule, Muon.

The selection in ``lgm_study.py`` chose ``lgm:feedback=centred`` and tuned
baseline rates of 1x (cnn) and 2x (vit) the recipe's. These checks ask what
the selection left open. Their protocol is fixed here, before any of their runs:

- adversarial: the vit under fgsm_rs (full preset: target 58%, 500 robust
  images), seeds 0-2. Three baseline rates (1x, 2x, 3x the recipe's) against
  three LGM settings (centred at 1x and 2x, raw at 1x): the same budget. Each
  side keeps its setting with the highest mean final validation accuracy;
  the report gives every setting paired by seed against the best baseline.
- lr-sweep: cnn and vit, quick preset, seeds 0-2. The baseline and centred
  LGM at 0.1x, 0.3x, 1x, 3x and 10x of their tuned rates. A method is more
  robust to the learning rate when its mean shortfall from its own best,
  over the five rates, is smaller. At each rate, LGM and the baseline are
  paired by seed.
- schedule: cnn and vit, quick preset, seeds 0-2. A constant rate (no warmup,
  no decay) at the tuned rates, for the baseline, centred LGM and raw LGM.
  Raw LGM can lower its gains over time, so it is the one that could serve as
  the only schedule. Compared with the constant baseline and with the
  baseline on its own schedule.
- muon: cnn and vit, quick preset, seeds 0-2. The muon arm against the same
  arm with centred LGM on top.
- raw-high-lr: raw LGM at 3x and 10x in the lr-sweep's setting, to see if its
  falling gains rescue a rate that is too high (run last, dropped first).
- adversarial-edge and adversarial-confirm, added after the adversarial stage
  showed both sides best at the top of their grids (baseline 3x, centred LGM
  2x): each grid gets one more rate (baseline 4x, centred LGM 3x) on seeds
  0-2. The best of each side by the same rule then meets the other on fresh
  seeds 10-14; those paired numbers are the adversarial headline.

These checks do not choose again: the library default is the selection's choice.

Usage:
    python benchmarks/lgm_followup.py run OUT [--stages adversarial,lr-sweep] [--workers 2]
    python benchmarks/lgm_followup.py report OUT
"""

from __future__ import annotations

import argparse
import multiprocessing
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from lgm_study import SELECT_SEEDS, _interval, load_runs  # noqa: E402

from gradmod.benchmark.arms import ARMS, Arm, arm_variant  # noqa: E402
from gradmod.benchmark.matrix import RunSpec, build_matrix  # noqa: E402
from gradmod.benchmark.presets import get_preset  # noqa: E402
from gradmod.benchmark.stats import paired_difference, paired_ratio  # noqa: E402

CENTRED = "lgm:feedback=centred"
RAW = "lgm:feedback=raw"
TUNED = {"cnn": 1.0, "vit": 2.0}  # the selection's baseline rates. LGM's tuned rate is 1x on both.
SWEEP = (0.1, 0.3, 1.0, 3.0, 10.0)
CONSTANT = {"schedule.warmup_steps": 0, "schedule.min_lr_ratio": 1.0}
STAGES = ("adversarial", "lr-sweep", "schedule", "muon", "raw-high-lr", "adversarial-edge", "adversarial-confirm")
ADVERSARIAL_BASELINES = (("baseline", 1.0), ("baseline", 2.0), ("baseline", 3.0), ("baseline", 4.0))
ADVERSARIAL_LGM = ((CENTRED, 1.0), (CENTRED, 2.0), (CENTRED, 3.0), (RAW, 1.0))
CONFIRM_SEEDS = (10, 11, 12, 13, 14)
OVERRIDES = {"device": "cpu", "threads": 1}  # as gradmod compare --threads 1, so keys match its runs
ROBUST_GAP = 0.02  # a rate is within range when its mean validation accuracy is within 2 points of the best


def _arm(name: str, changes: dict | None = None) -> Arm:
    arm = arm_variant(name) if ":" in name else ARMS[name]
    if not changes:
        return arm
    label = name + "".join(f":{key}={value:g}" for key, value in changes.items())
    return Arm(label, arm.summary, {**arm.changes, **changes}, arm.requires, arm.extra)


def _muon_lgm() -> Arm:
    muon = ARMS["muon"]
    changes = {**muon.changes, "modulation.policy": "hypergradient", "modulation.options": {"feedback": "centred"}}
    return Arm("muon+lgm:feedback=centred", "muon with centred LGM", changes, muon.requires, muon.extra)


def adversarial_choice(records) -> tuple[tuple[str, float] | None, tuple[str, float] | None]:
    """Return the best baseline and the best LGM setting under fgsm_rs on seeds 0-2 (None while incomplete)."""
    records = [r for r in records if r["workload"] == "vit" and r["training"] == "fgsm_rs" and r["seed"] in SELECT_SEEDS]
    complete = all(len(_by(records, arm=a, lr_scale=x)) == len(SELECT_SEEDS) for a, x in ADVERSARIAL_BASELINES + ADVERSARIAL_LGM)
    if not complete:
        return None, None
    return _best(records, ADVERSARIAL_BASELINES), _best(records, ADVERSARIAL_LGM)


def stage_specs(stage: str, out: Path | None = None) -> list[RunSpec]:
    """Return every run of one stage, vit first (the longer runs).

    The adversarial-confirm stage reads its choice from the runs in ``out``.
    """
    quick, full = get_preset("quick"), get_preset("full")

    def matrix(preset, workload, arm, scales, training="standard", seeds=SELECT_SEEDS):
        return build_matrix(preset, [workload], [arm], seeds, scales, [training], OVERRIDES)

    if stage == "adversarial-confirm":
        chosen = adversarial_choice(load_runs(out, training=None)) if out is not None else (None, None)
        if None in chosen:
            raise SystemExit(
                f"missing runs in {out}: adversarial-confirm needs every run of the adversarial and "
                "adversarial-edge stages; run those stages first"
            )
        return [spec for arm, scale in chosen for spec in matrix(full, "vit", _arm(arm), (scale,), "fgsm_rs", CONFIRM_SEEDS)]

    specs: list[RunSpec] = []
    for workload in ("vit", "cnn"):
        tuned = TUNED[workload]
        if stage == "adversarial" and workload == "vit":
            specs += matrix(full, workload, ARMS["baseline"], (1.0, 2.0, 3.0), "fgsm_rs")
            specs += matrix(full, workload, _arm(CENTRED), (1.0, 2.0), "fgsm_rs")
            specs += matrix(full, workload, _arm(RAW), (1.0,), "fgsm_rs")
        elif stage == "adversarial-edge" and workload == "vit":
            specs += matrix(full, workload, ARMS["baseline"], (4.0,), "fgsm_rs")
            specs += matrix(full, workload, _arm(CENTRED), (3.0,), "fgsm_rs")
        elif stage == "lr-sweep":
            specs += matrix(quick, workload, ARMS["baseline"], [tuned * s for s in SWEEP])
            specs += matrix(quick, workload, _arm(CENTRED), SWEEP)
        elif stage == "schedule":
            specs += matrix(quick, workload, _arm("baseline", CONSTANT), (tuned,))
            specs += matrix(quick, workload, _arm(CENTRED, CONSTANT), (1.0,))
            specs += matrix(quick, workload, _arm(RAW, CONSTANT), (1.0,))
        elif stage == "muon":
            specs += matrix(quick, workload, ARMS["muon"], (1.0,))
            specs += matrix(quick, workload, _muon_lgm(), (1.0,))
        elif stage == "raw-high-lr":
            specs += matrix(quick, workload, _arm(RAW), (3.0, 10.0))
    return specs


_DATASET = None


def _run_one(args: tuple[RunSpec, str]) -> str:
    """Run one spec into OUT in a worker process, unless its record exists."""
    global _DATASET
    import torch

    from gradmod.benchmark.runner import run_matrix
    from gradmod.data import load_fashion_mnist

    spec, out = args
    torch.set_num_threads(1)
    if _DATASET is None:
        _DATASET = load_fashion_mnist(None, val_size=get_preset("quick").val_size, split_seed=0)
    record = run_matrix([spec], _DATASET, Path(out), progress=False)[0]
    return f"{record['status']:6} {spec.label} ({spec.key})"


def run(out: Path, stages: list[str], workers: int) -> None:
    specs = [spec for stage in stages for spec in stage_specs(stage, out)]
    print(f"{len(specs)} runs in stages {', '.join(stages)}; {workers} workers", flush=True)
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers) as pool:
        for number, line in enumerate(pool.imap(_run_one, [(spec, str(out)) for spec in specs]), start=1):
            print(f"[{number}/{len(specs)}] {line}", flush=True)


def _by(records, lr_scale: float, **fields):
    """Return the runs with these fields and learning-rate scale, by seed."""
    return {
        r["seed"]: r
        for r in records
        if math.isclose(r["lr_scale"], lr_scale) and all(r[key] == value for key, value in fields.items())
    }


def _pct(values) -> str:
    return f"{100 * statistics.mean(values):.2f}%" if values else "-"


def _paired_row(label: str, base: dict, other: dict, eps: bool = True) -> str:
    seeds = sorted(set(base) & set(other))
    b, o = [base[s] for s in seeds], [other[s] for s in seeds]
    reached = f"{sum(r['steps_to_target'] is not None for r in b)} / {sum(r['steps_to_target'] is not None for r in o)}"
    steps = paired_ratio([r["steps_to_target"] for r in b], [r["steps_to_target"] for r in o])
    val = paired_difference([r["final_val_accuracy"] for r in b], [r["final_val_accuracy"] for r in o])
    test = paired_difference([r["test_accuracy"] for r in b], [r["test_accuracy"] for r in o])
    cells = [label, str(len(seeds)), reached, _interval(steps), _interval(val, "pt", 100), _interval(test, "pt", 100)]
    if eps:
        for key in b[0]["robust_accuracy"]:
            cells.append(_interval(paired_difference([r["robust_accuracy"][key] for r in b], [r["robust_accuracy"][key] for r in o]), "pt", 100))
    return "| " + " | ".join(cells) + " |"


def _settings_table(records, settings) -> None:
    print("| arm | lr x | val acc | test acc | reached | " + " | ".join(f"PGD {k}" for k in records[0]["robust_accuracy"]) + " |")
    print("|---|---|---|---|---|" + "---|" * len(records[0]["robust_accuracy"]))
    for arm, scale in settings:
        runs = list(_by(records, arm=arm, lr_scale=scale).values())
        if runs:
            robust = [_pct([r["robust_accuracy"][k] for r in runs]) for k in runs[0]["robust_accuracy"]]
            reached = sum(r["steps_to_target"] is not None for r in runs)
            print(f"| {arm} | {scale:g} | {_pct([r['final_val_accuracy'] for r in runs])} | "
                  f"{_pct([r['test_accuracy'] for r in runs])} | {reached}/{len(runs)} | " + " | ".join(robust) + " |")


def _best(records, settings):
    scored = {s: [r["final_val_accuracy"] for r in _by(records, arm=s[0], lr_scale=s[1]).values()] for s in settings}
    scored = {s: statistics.mean(v) for s, v in scored.items() if len(v) == len(SELECT_SEEDS)}
    return max(scored, key=scored.get) if scored else None


def report_adversarial(records) -> None:
    everything = [r for r in records if r["workload"] == "vit" and r["training"] == "fgsm_rs"]
    records = [r for r in everything if r["seed"] in SELECT_SEEDS]
    if not records:
        return
    print("\n### adversarial (vit, fgsm_rs, seeds 0-2)\n")
    baselines, lgms = list(ADVERSARIAL_BASELINES), list(ADVERSARIAL_LGM)
    _settings_table(records, baselines + lgms)
    best_base, best_lgm = _best(records, baselines), _best(records, lgms)  # among the settings with every seed
    print(f"\nbest baseline: x{best_base[1]:g}; best LGM: {best_lgm[0]} x{best_lgm[1]:g}\n" if best_base and best_lgm else "")
    print("| LGM setting against the best baseline | pairs | reached (baseline / lgm) | speed-up steps | val acc (pt) | test acc (pt) | "
          + " | ".join(f"PGD {k} (pt)" for k in records[0]["robust_accuracy"]) + " |")
    print("|---|---|---|---|---|---|" + "---|" * len(records[0]["robust_accuracy"]))
    if best_base:
        base = _by(records, arm="baseline", lr_scale=best_base[1])
        for arm, scale in lgms:
            other = _by(records, arm=arm, lr_scale=scale)
            if other:
                print(_paired_row(f"{arm} x{scale:g}", base, other))
    fresh = [r for r in everything if r["seed"] in CONFIRM_SEEDS]
    if best_base and best_lgm and fresh:
        print(f"\nConfirmation on seeds 10-14, {best_lgm[0]} x{best_lgm[1]:g} against baseline x{best_base[1]:g}:\n")
        print("| comparison | pairs | reached (baseline / lgm) | speed-up steps | val acc (pt) | test acc (pt) | "
              + " | ".join(f"PGD {k} (pt)" for k in fresh[0]["robust_accuracy"]) + " |")
        print("|---|---|---|---|---|---|" + "---|" * len(fresh[0]["robust_accuracy"]))
        base, other = _by(fresh, arm="baseline", lr_scale=best_base[1]), _by(fresh, arm=best_lgm[0], lr_scale=best_lgm[1])
        print(_paired_row("best LGM against best baseline", base, other))
        print()
        _settings_table(fresh, [best_base, best_lgm])


def report_sweep(records) -> None:
    records = [r for r in records if r["training"] == "standard"]
    print("\n### lr-sweep (quick, seeds 0-2): final validation accuracy by multiple of the tuned rate\n")
    arms = [("baseline", "baseline"), (CENTRED, "LGM centred"), (RAW, "LGM raw")]
    print("| workload | arm | " + " | ".join(f"x{s:g}" for s in SWEEP) + " | mean shortfall from best | rates within 2 pt |")
    print("|---|---|" + "---|" * (len(SWEEP) + 2))
    for workload, tuned in TUNED.items():
        for arm, label in arms:
            base_scale = tuned if arm == "baseline" else 1.0
            means = {}
            for s in SWEEP:
                runs = [r["final_val_accuracy"] for r in _by(records, workload=workload, arm=arm, lr_scale=base_scale * s).values()]
                means[s] = statistics.mean(runs) if len(runs) == len(SELECT_SEEDS) else None
            if not any(v is not None for v in means.values()):
                continue
            cells = [f"{100 * v:.2f}%" if v is not None else "-" for v in means.values()]
            known = [v for v in means.values() if v is not None]
            summary = ["-", "-"]
            if len(known) == len(SWEEP):
                best = max(known)
                summary = [f"{100 * statistics.mean(best - v for v in known):.2f} pt", str(sum(best - v <= ROBUST_GAP for v in known))]
            print(f"| {workload} | {label} | " + " | ".join(cells) + " | " + " | ".join(summary) + " |")
    print("\nLGM centred against the baseline at the same multiple of each one's tuned rate, paired by seed:\n")
    print("| workload | multiple | pairs | reached (baseline / lgm) | speed-up steps | val acc (pt) | test acc (pt) |")
    print("|---|---|---|---|---|---|---|")
    for workload, tuned in TUNED.items():
        for s in SWEEP:
            base = _by(records, workload=workload, arm="baseline", lr_scale=tuned * s)
            other = _by(records, workload=workload, arm=CENTRED, lr_scale=s)
            if base and other:
                print(_paired_row(f"{workload} | x{s:g}", base, other, eps=False))


def report_pairs(records, title: str, rows) -> None:
    """Print rows of (label, workload, (arm, scale) of the reference, (arm, scale) of the other)."""
    records = [r for r in records if r["training"] == "standard"]
    lines = []
    for label, workload, (arm_a, scale_a), (arm_b, scale_b) in rows:
        base = _by(records, workload=workload, arm=arm_a, lr_scale=scale_a)
        other = _by(records, workload=workload, arm=arm_b, lr_scale=scale_b)
        if base and other:
            lines.append(_paired_row(f"{workload} | {label}", base, other, eps=False))
    if lines:
        print(f"\n### {title}\n")
        print("| workload | comparison (reference -> other) | pairs | reached | speed-up steps | val acc (pt) | test acc (pt) |")
        print("|---|---|---|---|---|---|---|")
        print("\n".join(lines))


def report(out: Path) -> None:
    everything = load_runs(out, training=None)
    report_adversarial(everything)
    records = [r for r in everything if r["seed"] in SELECT_SEEDS]
    report_sweep(records)
    constant = "".join(f":{k}={v:g}" for k, v in CONSTANT.items())
    rows = []
    for workload, tuned in TUNED.items():
        for arm, name in ((CENTRED, "centred"), (RAW, "raw")):
            rows.append((f"constant baseline -> constant LGM {name}", workload, (f"baseline{constant}", tuned), (arm + constant, 1.0)))
            rows.append((f"scheduled baseline -> constant LGM {name}", workload, ("baseline", tuned), (arm + constant, 1.0)))
        rows.append(("scheduled baseline -> constant baseline", workload, ("baseline", tuned), (f"baseline{constant}", tuned)))
    report_pairs(records, "schedule: a constant rate, no warmup (quick, seeds 0-2)", rows)
    rows = [("muon -> muon + centred LGM", w, ("muon", 1.0), ("muon+lgm:feedback=centred", 1.0)) for w in TUNED]
    report_pairs(records, "muon (quick, seeds 0-2)", rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("run", "report"))
    parser.add_argument("out", type=Path, help="output folder (runs are kept in OUT/runs)")
    parser.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated, in order (default: {','.join(STAGES)})")
    parser.add_argument("--workers", type=int, default=2, help="processes, one torch thread each (default: 2)")
    args = parser.parse_args()
    if args.action == "run":
        stages = [s for s in args.stages.split(",") if s]
        unknown = [s for s in stages if s not in STAGES]
        if unknown:
            parser.error(f"unknown stage {', '.join(unknown)} (choose from {', '.join(STAGES)})")
        run(args.out, stages, args.workers)
    else:
        report(args.out)


if __name__ == "__main__":
    main()
