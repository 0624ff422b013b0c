"""PGD throughput of gradmod against ART's ProjectedGradientDescent on CPU.

Both sides attack the same CNN (conv32-conv64-fc) on the same images with
PGD-20, L-inf eps 0.1, step 2.5 * eps / 20, one random start, batch 128. One
warm-up run per side, then repeats that alternate which side goes first, so
both see the same machine load. Prints images per second (median, min, max)
and the median of the per-repeat ratios gradmod / ART.

Where the difference comes from: ART's loss_gradient runs a full backward
pass, weight gradients included, and ART's generate() ends with one more
prediction pass to log the success rate. gradmod asks autograd for the input
gradient only.

    python benchmarks/attack_throughput.py --repeats 5 --threads 2

Target: gradmod >= 1.5x ART.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import art
import numpy as np
import torch
from art.attacks.evasion import ProjectedGradientDescent
from art.estimators.classification import PyTorchClassifier
from torch import nn

import gradmod
from gradmod.robustness import pgd

EPS = 0.1
STEPS = 20


def make_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 7 * 7, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )


def make_art_attack(model: nn.Module, batch_size: int):
    classifier = PyTorchClassifier(
        model=model,
        loss=nn.CrossEntropyLoss(),
        input_shape=(1, 28, 28),
        nb_classes=10,
        clip_values=(0.0, 1.0),
        device_type="cpu",
    )
    return ProjectedGradientDescent(
        classifier,
        norm=np.inf,
        eps=EPS,
        eps_step=2.5 * EPS / STEPS,
        max_iter=STEPS,
        num_random_init=1,
        batch_size=batch_size,
        verbose=False,
    )


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def summary(images_per_second: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(images_per_second),
        "min": min(images_per_second),
        "max": max(images_per_second),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512, help="number of images attacked per run")
    parser.add_argument("--batch-size", type=int, default=128, help="attack batch size")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per side, after one warm-up")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--json", help="also write the figures and configuration to this JSON file")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = make_cnn().eval()
    images = torch.rand(args.images, 1, 28, 28)
    labels = torch.randint(0, 10, (args.images,))
    images_np, labels_np = images.numpy(), labels.numpy()
    art_attack = make_art_attack(model, args.batch_size)

    def run_gradmod() -> None:
        generator = torch.Generator().manual_seed(0)
        pgd(model, images, labels, eps=EPS, steps=STEPS, batch_size=args.batch_size, generator=generator)

    def run_art() -> None:
        art_attack.generate(x=images_np, y=labels_np)

    run_gradmod()
    run_art()
    seconds = {"gradmod": [], "art": []}
    for repeat in range(args.repeats):
        order = [("gradmod", run_gradmod), ("art", run_art)]
        if repeat % 2:
            order.reverse()
        for name, run in order:
            seconds[name].append(timed(run))

    rate = {name: [args.images / s for s in values] for name, values in seconds.items()}
    ratios = [ours / theirs for ours, theirs in zip(rate["gradmod"], rate["art"])]

    result = {
        "gradmod_images_per_second": summary(rate["gradmod"]),
        "art_images_per_second": summary(rate["art"]),
        "ratio_gradmod_over_art": summary(ratios),
        "config": {
            "model": "conv32-conv64-fc128",
            "attack": f"PGD-{STEPS} linf eps={EPS} step=2.5*eps/steps, random start",
            "images": args.images,
            "batch_size": args.batch_size,
            "repeats": args.repeats,
            "threads": args.threads,
        },
        "versions": {
            "gradmod": gradmod.__version__,
            "torch": torch.__version__,
            "art": art.__version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "processor": platform.processor(),
        },
    }
    for name in ("gradmod", "art"):
        figures = result[f"{name}_images_per_second"]
        print(f"{name:8s} {figures['median']:8.1f} images/s  (min {figures['min']:.1f}, max {figures['max']:.1f})")
    ratio = result["ratio_gradmod_over_art"]
    print(f"ratio gradmod/ART: median {ratio['median']:.2f}x (min {ratio['min']:.2f}, max {ratio['max']:.2f}), target >= 1.5x")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
