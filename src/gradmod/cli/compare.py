"""``gradmod compare``: the comparison harness on real Fashion-MNIST."""

from __future__ import annotations

import argparse
import logging

from gradmod.cli import UsageError

__all__ = ["add_parser"]

logger = logging.getLogger(__name__)


def _names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
    return names


def _numbers(kind):
    def parse(text: str) -> list:
        try:
            return [kind(item) for item in _names(text)]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {kind.__name__} values, got {text!r}") from None

    return parse


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from gradmod.benchmark.arms import ARMS
    from gradmod.benchmark.presets import PRESETS

    presets = "; ".join(f"{p.name}: {p.description}" for p in PRESETS.values())
    parser = subparsers.add_parser(
        "compare",
        help="compare LGM with baseline optimizers on Fashion-MNIST (the main job)",
        description=(
            "Train every arm on every workload for several seeds, then report speed-up to a fixed "
            "validation target, test accuracy and PGD robust accuracy, paired by seed against the "
            f"baseline. Presets: {presets}. Runs finished in an earlier call with the same --out are reused."
        ),
        epilog="Example: gradmod compare --preset quick --out runs/quick",
    )
    parser.add_argument("--preset", default="quick", choices=sorted(PRESETS), help="preset (default: quick)")
    parser.add_argument("--workloads", type=_names, metavar="LIST", help="comma-separated workloads: cnn, vit, resnet (default: the preset's)")
    parser.add_argument("--arms", type=_names, metavar="LIST", help=f"comma-separated arms: {', '.join(ARMS)}, or variants such as lgm:feedback=raw:beta=0.05 or baseline:optimizer.lr=0.1 (default: the preset's; baseline is always added)")
    parser.add_argument("--seeds", type=_numbers(int), metavar="LIST", help="comma-separated seeds (default: the preset's)")
    parser.add_argument("--lr-scale", type=_numbers(float), metavar="LIST", help="comma-separated multiples of every arm's learning rate, e.g. 0.1,1,10 (default: 1)")
    parser.add_argument("--training", type=_names, metavar="LIST", help="standard and/or fgsm_rs adversarial training (default: the preset's)")
    parser.add_argument("--epochs", type=int, metavar="N", help="epochs for every workload (default: the preset's)")
    parser.add_argument("--train-subset", type=int, metavar="IMAGES", help="train on the first N training images (default: the preset's)")
    parser.add_argument("--out", default="runs/compare", metavar="DIR", help="output folder (default: runs/compare)")
    parser.add_argument("--data", metavar="PATH", help="folder with the Fashion-MNIST IDX files (default: search $GRADMOD_DATA, the user cache, /usr/share/datasets/fashion-mnist)")
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument("--threads", type=int, metavar="N", help="torch intra-op threads (default: torch's own choice)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from gradmod.benchmark import compare
    from gradmod.benchmark.compare import command_line
    from gradmod.data import DataError
    from gradmod.training import ConfigError, TrainingInterrupted

    for flag, value in (("--epochs", args.epochs), ("--train-subset", args.train_subset), ("--threads", args.threads)):
        if value is not None and value < 1:
            raise UsageError(f"{flag} must be >= 1, got {value}")
    try:
        results = compare(
            args.preset,
            workloads=args.workloads,
            arms=args.arms,
            seeds=args.seeds,
            lr_scales=args.lr_scale,
            trainings=args.training,
            epochs=args.epochs,
            train_subset=args.train_subset,
            out=args.out,
            data=args.data,
            device=args.device,
            threads=args.threads,
            progress=not args.quiet,
            command=command_line(),
        )
    except (ValueError, ConfigError, DataError) as error:
        raise UsageError(str(error)) from None
    except TrainingInterrupted as interrupted:
        print(f"gradmod compare: {interrupted}; run the same command again to continue where it stopped")
        return interrupted.exit_code
    failed = sum(run.get("status") != "ok" for run in results["runs"])
    print(f"wrote {args.out}/results.json, {args.out}/report.md and plots ({len(results['runs'])} runs, {failed} failed)")
    return 1 if failed else 0
