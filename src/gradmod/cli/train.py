"""``gradmod train``: train one model from a TOML config and command-line overrides.

Settings come from, in increasing priority: the model's recipe
(``gradmod.training.recipes``), the ``--config`` file, then the flags. Every
value is validated before the data is loaded; an invalid one prints a single
line and exits with code 2. SIGINT and SIGTERM write a checkpoint at the next
step boundary and exit with 130 or 143.

Under ``torchrun --nproc_per_node W -m gradmod train --out DIR ...`` every rank
runs this command. The Trainer joins the process group, rank 0 alone prints
and writes files, and the group is destroyed on the way out.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import tomllib
from pathlib import Path
from typing import Any

from gradmod.cli import UsageError

__all__ = ["add_parser", "run"]

# (flag, config key, argparse options). Flags left unset do not override anything.
OVERRIDES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("--model", "model.name", {"metavar": "NAME", "help": "model: cnn, resnet or vit (default: cnn)"}),
    ("--optimizer", "optimizer.name", {"metavar": "NAME", "help": "optimizer: sgd, adamw, muon, lamb or lars (default: the model's recipe)"}),
    ("--modulation", "modulation.policy", {"metavar": "POLICY", "help": "gain policy: off, hypergradient, trust_ratio, clip or constant (default: off)"}),
    ("--adversarial", "adversarial.method", {"metavar": "METHOD", "help": "adversarial training: none, fgsm_rs (FGSM with a random start) or pgd (default: none)"}),
    ("--adversarial-eps", "adversarial.eps", {"type": float, "metavar": "EPS", "help": "L-inf radius of adversarial training, in pixel units of [0, 1] (default: 0.1)"}),
    ("--epochs", "epochs", {"type": int, "metavar": "N", "help": "passes over the training split (default: the model's recipe)"}),
    ("--max-steps", "max_steps", {"type": int, "metavar": "STEPS", "help": "end the run after this many optimizer steps; the schedule ends there too"}),
    ("--lr", "optimizer.lr", {"type": float, "metavar": "LR", "help": "peak learning rate, reached after warmup (default: the model's recipe)"}),
    ("--batch-size", "data.batch_size", {"type": int, "metavar": "IMAGES", "help": "training images per optimizer step (default: the model's recipe)"}),
    ("--seed", "seed", {"type": int, "metavar": "N", "help": "seed of initial weights, data order, augmentation and dropout (default: 0)"}),
    ("--train-subset", "data.train_subset", {"type": int, "metavar": "IMAGES", "help": "train on the first N images of the training split, for quick runs (default: all)"}),
    ("--target-accuracy", "target_accuracy", {"type": float, "metavar": "FRACTION", "help": "validation accuracy in (0, 1] whose first reach is recorded as step and training seconds"}),
    ("--eval-every", "run.eval_every", {"type": int, "metavar": "STEPS", "help": "evaluate on the validation split every N optimizer steps, besides each epoch end"}),
    ("--checkpoint-every", "run.checkpoint_every", {"type": int, "metavar": "STEPS", "help": "write a checkpoint every N optimizer steps, besides the end of the run"}),
    ("--out", "run.out", {"metavar": "DIR", "help": "run folder for metrics, checkpoint and result (default: runs/<model>-<date>-<time>)"}),
    ("--data", "data.path", {"metavar": "PATH", "help": "folder with the Fashion-MNIST IDX files (default: search $GRADMOD_DATA, the user cache, /usr/share/datasets/fashion-mnist)"}),
    ("--device", "device", {"metavar": "DEVICE", "help": "torch device such as cpu or cuda:0 (default: cpu)"}),
    ("--backend", "distributed.backend", {"metavar": "NAME", "help": "torch.distributed backend under torchrun: auto (nccl on CUDA, gloo on the CPU), gloo or nccl (default: auto)"}),
    ("--dist-timeout", "distributed.timeout_seconds", {"type": float, "metavar": "SECONDS", "help": "under torchrun, how long a rank waits for the others in a collective before it fails (default: 600)"}),
    ("--threads", "threads", {"type": int, "metavar": "N", "help": "torch intra-op threads (default: torch's own choice, usually one per core); on a machine busy with other jobs, 1 can be several times faster"}),
)
SWITCHES: tuple[tuple[str, str, str], ...] = (
    ("--quiet", "run.quiet", "no progress bar"),
    ("--tensorboard", "run.tensorboard", "also write TensorBoard event files to DIR/tensorboard"),
    ("--csv", "run.csv", "also write DIR/metrics.csv"),
)
# Keys that a resumed run may change: they do not alter the training itself.
RESUMABLE_KEYS = (
    "run.quiet",
    "run.tensorboard",
    "run.csv",
    "data.path",
    "device",
    "threads",
    "distributed.backend",
    "distributed.timeout_seconds",
)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "train",
        help="train one model, with or without layerwise gradient modulation",
        description=(
            "Train a model on Fashion-MNIST. Settings come from the model's recipe, then the "
            "--config file, then the flags below. Output goes to the run folder: metrics.jsonl, "
            "events.jsonl, config.json, checkpoint.pt and result.json."
        ),
        epilog="Example: gradmod train --model vit --modulation hypergradient --epochs 5 --out runs/vit-lgm",
    )
    parser.add_argument("--config", metavar="FILE", type=Path, help="TOML file with the settings (see configs/)")
    for flag, key, options in OVERRIDES:
        parser.add_argument(flag, dest=_dest(key), default=None, **options)
    for flag, key, text in SWITCHES:
        parser.add_argument(flag, dest=_dest(key), action="store_const", const=True, default=None, help=text)
    parser.add_argument(
        "--time-budget",
        type=float,
        metavar="SECONDS",
        help="stop after this many training seconds and evaluate, without shortening the schedule",
    )
    parser.add_argument(
        "--resume",
        metavar="DIR",
        type=Path,
        help="continue the run saved in DIR (its checkpoint.pt); only --quiet, --tensorboard, --csv, "
        "--data, --device, --threads, --backend and --dist-timeout may change",
    )
    parser.set_defaults(func=run)
    return parser


def _dest(key: str) -> str:
    return "set:" + key


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Return the dotted config keys that flags set."""
    return {
        name[len("set:"):]: value
        for name, value in vars(args).items()
        if name.startswith("set:") and value is not None
    }


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise UsageError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"{path} is not valid TOML: {error}") from None
    except OSError as error:
        raise UsageError(f"cannot read config file {path}: {error}") from None


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    *sections, key = dotted.split(".")
    target = data
    for section in sections:
        existing = target.setdefault(section, {})
        if not isinstance(existing, dict):
            raise UsageError(f"{section} in the config file must be a table, got {existing!r}")
        target = existing
    target[key] = value


def _default_out(config_data: dict[str, Any]) -> str:
    model_section = config_data.get("model")
    model = model_section.get("name", "cnn") if isinstance(model_section, dict) else "cnn"
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return str(Path("runs") / f"{model}-{stamp}")


def run(args: argparse.Namespace) -> int:
    """Build the Trainer, train, print a summary; return the exit code."""
    # Imported here so that ``gradmod --help`` does not pay for torch.
    from gradmod.distributed import leave_process_group

    if args.time_budget is not None and not args.time_budget > 0:
        raise UsageError(f"--time-budget must be > 0 seconds, got {args.time_budget}")
    overrides = _overrides(args)
    try:
        return _train(args, overrides)
    finally:
        leave_process_group()


def _train(args: argparse.Namespace, overrides: dict[str, Any]) -> int:
    from gradmod.data import DataError
    from gradmod.training import ConfigError, Trainer, TrainingInterrupted

    try:
        if args.resume is not None:
            trainer = _resume(args, overrides)
        else:
            data = _read_config_file(args.config) if args.config is not None else {}
            for key, value in overrides.items():
                _set(data, key, value)
            run_section = data.get("run", {})
            if not (isinstance(run_section, dict) and "out" in run_section):
                _require_out_under_torchrun()
                _set(data, "run.out", _default_out(data))
            trainer = Trainer(data)
        result = trainer.fit(time_budget=args.time_budget)
    except (ConfigError, DataError, FileNotFoundError) as error:
        raise UsageError(str(error)) from None
    except TrainingInterrupted as stop:
        print(f"gradmod train: {stop}", file=sys.stderr)
        return stop.exit_code

    if trainer.place.is_main:
        _print_summary(result, trainer.config.run.out)
    return 0


def _require_out_under_torchrun() -> None:
    """Reject a torchrun job without --out: each rank would stamp its own clock into the default name."""
    from gradmod.distributed import detect_torchrun

    try:
        place = detect_torchrun()
    except ValueError as error:
        raise UsageError(str(error)) from None
    if place.is_distributed:
        raise UsageError(
            f"under torchrun (WORLD_SIZE={place.world_size}) pass --out DIR (or run.out in the config), "
            "so that every rank uses the same run folder"
        )


def _resume(args: argparse.Namespace, overrides: dict[str, Any]):
    from gradmod.training import Trainer

    if args.config is not None:
        raise UsageError("--config cannot be combined with --resume: a resumed run keeps its saved settings")
    fixed = sorted(key for key in overrides if key not in RESUMABLE_KEYS)
    if fixed:
        flags = {key: flag for flag, key, _ in OVERRIDES} | {key: flag for flag, key, _ in SWITCHES}
        names = ", ".join(flags[key] for key in fixed)
        raise UsageError(
            f"{names} cannot change when resuming, because the run must continue as it started; "
            f"only {', '.join(flags[key] for key in RESUMABLE_KEYS)} may"
        )
    if not args.resume.exists():
        raise UsageError(f"--resume {args.resume}: no such run folder")
    return Trainer.resume(args.resume, overrides=overrides)


def _print_summary(result: Any, out: str | None) -> None:
    lines = [
        f"steps: {result.steps} ({result.epochs:.2f} epochs), training time: {result.train_seconds:.1f} s",
        f"validation accuracy: {result.final_val_accuracy:.4f}, test accuracy: {result.test_accuracy:.4f}",
    ]
    if result.target_accuracy is not None:
        if result.steps_to_target is None:
            lines.append(f"target {result.target_accuracy:.4f}: not reached")
        else:
            lines.append(
                f"target {result.target_accuracy:.4f}: reached at step {result.steps_to_target} "
                f"after {result.seconds_to_target:.1f} training seconds"
            )
    if result.diverged:
        lines.append("training diverged: the loss and the weights became non-finite")
    if out is not None:
        lines.append(f"run folder: {out}")
    print("\n".join(lines))
