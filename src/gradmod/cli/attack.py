"""``gradmod attack``: robust accuracy of a trained run under FGSM, PGD and ART's attacks.

The model is rebuilt from the checkpoint's config and loaded with its weights.
The evaluation uses the first ``--images`` images of the Fashion-MNIST test
split, which is read in file order, so every call evaluates the same images. Each
eps is evaluated by :func:`gradmod.robustness.evaluate_robustness`, eps 0
(clean accuracy) included, and the results go to a JSON file and a PNG plot of
accuracy against eps.

Exit codes: 0 when the evaluation finished, also when a gradient-masking
sanity check failed (the failure is printed and stored in the JSON, with
``sanity_passed`` false); 2 for invalid input, printed as one line. Any other
error propagates as an exception, which Python reports with exit code 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import logging
import math
import pickle
import sys
import time
from pathlib import Path
from typing import Any

from gradmod.cli import UsageError

__all__ = ["add_parser", "merge_reports", "parse_eps", "run"]

logger = logging.getLogger(__name__)

DEFAULT_EPS = "0.05,0.1,0.2"
DEFAULT_IMAGES = 1000
# ART budgets sized for 1000 images of the default CNN at 3 budgets in about 5 minutes on
# 2 CPU cores. NOTE: an estimate from timings on a shared 2-core machine (load average
# about 2, torch 2.13 CPU, ART 1.20.1). Per eps and 1000 images, PGD took 0.3 s per step,
# AutoPGD 0.45 s per step and loss, and Square Attack 0.6 s per query, because each query
# predicts all images. Both budgets are far below those of standard AutoAttack
# (github.com/fra31/auto-attack: 100 APGD iterations, 5000 Square queries), so raise them
# for a final evaluation.
DEFAULT_APGD_STEPS = 50
DEFAULT_SQUARE_QUERIES = 50
NORM_NAMES = {"linf": "L-inf", "l2": "L2"}


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "attack",
        help="measure the robust accuracy of a trained run under adversarial attacks",
        description=(
            "Load the model of a run that gradmod train wrote, attack the first test images with FGSM, "
            "PGD, PGD with twice the steps and, when the adversarial-robustness-toolbox (ART) is "
            "installed, AutoPGD-CE, AutoPGD-DLR and Square Attack. Print, per eps, the PGD accuracy and "
            "the worst-case accuracy (an image counts only if every attack failed on it), and the "
            "gradient-masking sanity checks. Write a JSON result and a PNG plot. Budgets are in [0, 1] "
            "pixel units: for L-inf the largest change of one pixel, for L2 the Euclidean norm of the "
            "whole perturbation. Exit code 0 when the evaluation finishes, even if a sanity check fails "
            "(it is printed and recorded in the JSON); 2 for invalid input."
        ),
        epilog="Example: gradmod attack --checkpoint runs/cnn --eps 0.05,0.1,0.2 --steps 20",
    )
    parser.add_argument("--checkpoint", required=True, type=Path, metavar="RUN", help="run folder written by gradmod train (its checkpoint.pt is read), or a checkpoint file")
    parser.add_argument("--eps", default=DEFAULT_EPS, metavar="LIST", help=f"comma-separated perturbation budgets in [0, 1] pixel units; eps 0 (clean accuracy) is always added (default: {DEFAULT_EPS})")
    parser.add_argument("--norm", default="linf", choices=("linf", "l2"), help="norm that bounds the perturbation (default: linf)")
    parser.add_argument("--steps", type=int, default=20, metavar="N", help="PGD iterations; PGD with 2N iterations also runs, for the more-steps sanity check (default: 20)")
    parser.add_argument("--images", type=int, default=DEFAULT_IMAGES, metavar="N", help=f"evaluate the first N test images (default: {DEFAULT_IMAGES})")
    parser.add_argument("--data", metavar="PATH", help="folder with the Fashion-MNIST IDX files (default: the run's data.path, else search $GRADMOD_DATA, the user cache, /usr/share/datasets/fashion-mnist)")
    parser.add_argument("--no-art", action="store_true", help="skip ART's AutoPGD and Square Attack even when ART is installed")
    parser.add_argument("--apgd-steps", type=int, default=DEFAULT_APGD_STEPS, metavar="N", help=f"AutoPGD iterations per loss, one restart (default: {DEFAULT_APGD_STEPS})")
    parser.add_argument("--square-queries", type=int, default=DEFAULT_SQUARE_QUERIES, metavar="N", help=f"Square Attack iterations, one model query per image each (default: {DEFAULT_SQUARE_QUERIES})")
    parser.add_argument("--batch-size", type=int, default=256, metavar="IMAGES", help="images per attack batch (default: 256)")
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the PGD random starts and of ART's random numbers (default: 0)")
    parser.add_argument("--out", type=Path, metavar="FILE", help="JSON result; the PNG plot goes next to it with the suffix .png (default: RUN/robustness.json)")
    parser.add_argument("--device", default="cpu", metavar="DEVICE", help="torch device such as cpu or cuda:0 (default: cpu)")
    parser.add_argument("--threads", type=int, metavar="N", help="torch intra-op threads (default: torch's own choice)")
    parser.set_defaults(func=run)
    return parser


def parse_eps(text: str, norm: str) -> list[float]:
    """Return the budgets of a comma-separated list, with 0 first; raise UsageError for an invalid one."""
    values = []
    for item in text.split(","):
        item = item.strip()
        try:
            eps = float(item)
        except ValueError:
            raise UsageError(f"--eps: {item!r} is not a number; pass comma-separated budgets such as {DEFAULT_EPS}") from None
        if not math.isfinite(eps) or eps < 0:
            raise UsageError(f"--eps: {item!r} is invalid; each eps must be a finite number >= 0 in [0, 1] pixel units")
        if norm == "linf" and eps > 1:
            raise UsageError(f"--eps: {item!r} is above 1, the whole [0, 1] pixel range for L-inf; use budgets in [0, 1]")
        if eps in values:
            raise UsageError(f"--eps: {item!r} appears twice; list each budget once")
        values.append(eps)
    return [0.0] + [eps for eps in values if eps != 0.0]


def _check_counts(args: argparse.Namespace) -> None:
    for flag, value in (
        ("--steps", args.steps),
        ("--images", args.images),
        ("--apgd-steps", args.apgd_steps),
        ("--square-queries", args.square_queries),
        ("--batch-size", args.batch_size),
        ("--threads", args.threads),
    ):
        if value is not None and value < 1:
            raise UsageError(f"{flag} must be an integer >= 1, got {value}")
    if args.seed < 0:
        raise UsageError(f"--seed must be an integer >= 0, got {args.seed}")


def _checkpoint_file(path: Path) -> Path:
    """Return the checkpoint file that ``--checkpoint`` names: the path itself or the folder's checkpoint.pt."""
    from gradmod.training.checkpoint import CHECKPOINT_NAME

    if path.is_dir():
        if not (path / CHECKPOINT_NAME).is_file():
            raise UsageError(
                f"--checkpoint {path}: the folder has no {CHECKPOINT_NAME}; pass the folder of a "
                f"run that gradmod train --out wrote, or the checkpoint file itself"
            )
        return path / CHECKPOINT_NAME
    if not path.exists():
        raise UsageError(f"--checkpoint {path}: no such file or folder; pass a run folder written by gradmod train --out")
    return path


def _load_model(checkpoint: Path, device: str) -> tuple[Any, Any, dict[str, Any]]:
    """Rebuild the run's model on ``device`` with the checkpoint's weights; return (model, config, state)."""
    from gradmod.training import ConfigError, TrainConfig, load_checkpoint
    from gradmod.training._components import build_seeded_model

    try:
        state = load_checkpoint(checkpoint)
    except (OSError, EOFError, RuntimeError, ValueError, pickle.UnpicklingError) as error:
        raise UsageError(f"--checkpoint {checkpoint}: cannot read the checkpoint ({error}); pass a checkpoint.pt written by gradmod train") from None
    if not isinstance(state, dict) or "config" not in state or "model" not in state:
        raise UsageError(f"--checkpoint {checkpoint}: not a gradmod train checkpoint (no config or model weights); pass a checkpoint.pt written by gradmod train")

    # The run may have trained on another device or thread count than this evaluation uses.
    saved = {**state["config"], "device": device, "threads": None}
    try:
        config = TrainConfig.from_dict(saved)
        model = build_seeded_model(config, config.device)
    except ConfigError as error:
        raise UsageError(f"--checkpoint {checkpoint}: {error}") from None
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as error:
        raise UsageError(f"--checkpoint {checkpoint}: the weights do not fit the model its config describes ({error})") from None
    model.eval()
    return model, config, state


def _test_images(data_path: str | None, count: int) -> tuple[Any, Any, str]:
    """Return the first ``count`` test images (uint8), their labels and the data folder."""
    from gradmod.data import DataError, load_fashion_mnist

    try:
        dataset = load_fashion_mnist(data_path, val_size=0)
    except DataError as error:
        raise UsageError(str(error)) from None
    test = dataset.test
    if count > len(test):
        raise UsageError(f"--images {count} exceeds the {len(test)} test images in {dataset.source}; pass --images {len(test)} or fewer")
    return test.images[:count], test.labels[:count], str(dataset.source)


def _attack_names(steps: int, art: bool) -> str:
    names = f"FGSM, PGD-{steps}, PGD-{2 * steps}"
    return names + ", AutoPGD-CE, AutoPGD-DLR, Square" if art else names


def _evaluate_each_eps(model: Any, images: Any, labels: Any, eps_values: list[float], art: bool, settings: dict[str, Any]) -> Any:
    """Run ``evaluate_robustness`` once per eps, logging progress, and merge the reports into one.

    The per-eps calls give the same numbers as one call with every eps, because
    each attack seeds its random start per eps. NOTE: each call also repeats the
    large-eps PGD of the sanity check, about one PGD run per eps in extra time.
    """
    from gradmod.robustness import evaluate_robustness

    reports = []
    for index, eps in enumerate(eps_values, start=1):
        running = "clean accuracy" if eps == 0.0 else _attack_names(settings["steps"], art)
        logger.info("eps %g (%d of %d): running %s, then the large-eps PGD check", eps, index, len(eps_values), running)
        reports.append(evaluate_robustness(model, images, labels, [eps], **settings))
    return merge_reports(reports)


def merge_reports(reports: list[Any]) -> Any:
    """Combine single-eps reports of one model and image set into one report, checks recomputed over every eps."""
    from gradmod.robustness.sanity import check_more_steps, check_pgd_vs_fgsm

    if not reports:
        raise ValueError("reports must contain at least one RobustnessReport, got an empty list")
    first = reports[0]
    for field in ("norm", "num_images", "attacks_used", "config"):
        values = [getattr(report, field) for report in reports]
        if any(value != values[0] for value in values):
            raise ValueError(f"reports must share {field} to be merged, got {values!r}")
    eps_values = [eps for report in reports for eps in report.eps]
    if len(set(eps_values)) != len(eps_values):
        raise ValueError(f"reports must cover each eps once, got eps {eps_values}")

    attack_accuracy: dict[str, dict[float, float]] = {name: {} for name in first.attacks_used}
    robust: dict[float, float] = {}
    for report in reports:
        robust.update(report.robust_accuracy)
        for name, accuracy in report.attack_accuracy.items():
            attack_accuracy[name].update(accuracy)

    steps, more_steps, noise_z = first.config["steps"], first.config["more_steps"], first.config["noise_z"]
    pgd_accuracy = attack_accuracy[f"pgd-{steps}"]
    recomputed = [
        check_pgd_vs_fgsm(pgd_accuracy, attack_accuracy["fgsm"], first.num_images, noise_z),
        check_more_steps(pgd_accuracy, attack_accuracy[f"pgd-{more_steps}"], steps, more_steps, first.num_images, noise_z),
    ]
    # The other checks (the large-eps PGD) do not depend on the eps list: every report ran
    # the same seeded attack, so the first report's verdict applies to all.
    names = {check.name for check in recomputed}
    unchanged = [check for check in first.checks if check.name not in names]
    return dataclasses.replace(
        first,
        eps=eps_values,
        robust_accuracy=robust,
        attack_accuracy=attack_accuracy,
        checks=unchanged + recomputed,
    )


def _output_paths(args: argparse.Namespace, checkpoint: Path) -> tuple[Path, Path]:
    json_path = args.out if args.out is not None else checkpoint.parent / "robustness.json"
    if json_path.suffix == ".png":
        raise UsageError(f"--out {json_path}: the JSON result needs another suffix than .png, which the plot uses; pass e.g. {json_path.with_suffix('.json')}")
    if json_path.is_dir():
        raise UsageError(f"--out {json_path} is a folder; pass a file name such as {json_path / 'robustness.json'}")
    return json_path, json_path.with_suffix(".png")


def _versions(art_used: bool) -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    import torch

    import gradmod

    art_version = None
    if art_used:
        try:
            art_version = version("adversarial-robustness-toolbox")
        except PackageNotFoundError:
            art_version = "unknown"
    return {"gradmod": gradmod.__version__, "torch": torch.__version__, "adversarial-robustness-toolbox": art_version}


def run(args: argparse.Namespace) -> int:
    """Evaluate the run's robustness, write the JSON and the plot, print the table; return the exit code."""
    import torch

    _check_counts(args)
    if not getattr(args, "verbose", False):
        # ART logs each classifier it builds at INFO, several times per eps.
        logging.getLogger("art").setLevel(logging.WARNING)
    eps_values = parse_eps(args.eps, args.norm)
    checkpoint = _checkpoint_file(args.checkpoint)
    json_path, png_path = _output_paths(args, checkpoint)
    if json_path.exists():
        logger.warning("%s exists and will be replaced; pass --out FILE to keep it", json_path)
    try:
        torch.device(args.device)
    except RuntimeError as error:
        raise UsageError(f"--device {args.device!r} is not a torch device ({error}); use e.g. cpu or cuda:0") from None
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    model, config, state = _load_model(checkpoint, args.device)
    if not (checkpoint.parent / "result.json").is_file():
        logger.warning("%s has no result.json next to it, so its run may not have finished training", checkpoint)
    images, labels, data_source = _test_images(args.data if args.data is not None else config.data.path, args.images)

    art = not args.no_art and importlib.util.find_spec("art") is not None
    settings = {
        "norm": args.norm,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "use_art": False if args.no_art else None,
        "apgd_steps": args.apgd_steps,
        "square_queries": args.square_queries,
    }
    started = time.perf_counter()
    report = _evaluate_each_eps(model, images, labels, eps_values, art, settings)
    seconds = time.perf_counter() - started

    result = _result_dict(report, checkpoint, config, state)
    result["data"] = {"source": data_source, "split": "test", "first_images": args.images}
    result["seconds"] = seconds
    result["threads"] = torch.get_num_threads()
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    _plot(report, config, png_path)

    _print_table(report, checkpoint, seconds)
    print(f"wrote {json_path} and {png_path}")
    return 0


def _result_dict(report: Any, checkpoint: Path, config: Any, state: dict[str, Any]) -> dict[str, Any]:
    """Return the report's dict with the run it evaluated and the library versions added."""
    result = report.to_dict()
    result["run"] = {
        "checkpoint": str(checkpoint),
        "step": state.get("step"),
        "model": config.model.name,
        "model_options": dict(config.model.options),
        "adversarial_training": {"method": config.adversarial.method, "eps": config.adversarial.eps},
    }
    result["versions"] = _versions(report.art_used)
    return result


def _plot(report: Any, config: Any, png_path: Path) -> None:
    """Write PGD accuracy and worst-case accuracy against eps to ``png_path``."""
    from gradmod.robustness import plot_robustness

    steps = report.config["steps"]
    curves = {
        f"PGD-{steps}": report.attack_accuracy[f"pgd-{steps}"],
        "worst case of all attacks": report.robust_accuracy,
    }
    # The report-dict form carries the norm, which the plot writes on the eps axis.
    curves = {
        label: {"norm": report.norm, "per_eps": [{"eps": eps, "robust_accuracy": accuracy[eps]} for eps in report.eps]}
        for label, accuracy in curves.items()
    }
    training = "standard" if config.adversarial.method == "none" else config.adversarial.method
    title = f"{config.model.name}, {training} training, {report.num_images} test images"
    plot_robustness(curves, png_path, title=title)


def _print_table(report: Any, checkpoint: Path, seconds: float) -> None:
    steps = report.config["steps"]
    norm = NORM_NAMES[report.norm]
    lines = [
        f"{checkpoint}: first {report.num_images} test images, {norm}, {seconds:.1f} s",
        f"attacks: {', '.join(report.attacks_used)} ({report.art_note})",
        f"{'eps':>8}  {f'PGD-{steps}':>9}  {'worst case':>10}",
    ]
    pgd = report.attack_accuracy[f"pgd-{steps}"]
    for eps in report.eps:
        lines.append(f"{eps:>8g}  {pgd[eps]:>9.4f}  {report.robust_accuracy[eps]:>10.4f}")
    lines.append("gradient-masking sanity checks:")
    for check in report.checks:
        lines.append(f"  {'PASS' if check.passed else 'FAIL'}  {check.name}: {check.message}")
    print("\n".join(lines))

    failed = report.failed_checks
    if failed:
        names = ", ".join(check.name for check in failed)
        print(
            f"gradmod attack: WARNING: {len(failed)} of {len(report.checks)} sanity checks FAILED ({names}); "
            "the robust accuracies above may overstate robustness (gradient masking or a too weak attack)",
            file=sys.stderr,
        )
