"""Overhead of the LayerwiseGradientModulator on CPU.

For each model, times full training steps (forward, backward, step) and the
optimizer step alone, with and without LGM, interleaved in one run so both
sides see the same machine load. Prints median times, the median ratio with
its interquartile range, and the modulator's extra memory.

    python benchmarks/modulator_overhead.py --models cnn,vit --repeats 30

Targets: training-step ratio <= 1.03, optimizer-step ratio <= 2 (against SGD
with momentum), extra memory <= one copy of the parameters.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
from torch import nn

import gradmod
from gradmod import LayerwiseGradientModulator
from gradmod.models import build_model


def make_side(name: str, modulated: bool, seed: int):
    torch.manual_seed(seed)
    model = build_model(name)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    modulator = LayerwiseGradientModulator(model).attach(optimizer) if modulated else None
    return model, optimizer, modulator


def train_step(model, optimizer, images, labels) -> None:
    optimizer.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(model(images), labels).backward()
    optimizer.step()


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def ratios(modulated: list[float], plain: list[float]) -> dict[str, float]:
    values = sorted(m / p for m, p in zip(modulated, plain))
    quartiles = statistics.quantiles(values, n=4)
    return {
        "median_ratio": statistics.median(values),
        "q1": quartiles[0],
        "q3": quartiles[2],
        "plain_median_ms": 1e3 * statistics.median(plain),
        "lgm_median_ms": 1e3 * statistics.median(modulated),
    }


def measure(name: str, batch_size: int, repeats: int, warmup: int) -> dict:
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(batch_size, 1, 28, 28, generator=generator)
    labels = torch.randint(0, 10, (batch_size,), generator=generator)
    sides = {flag: make_side(name, flag, seed=0) for flag in (False, True)}
    for _ in range(warmup):
        for model, optimizer, _ in sides.values():
            train_step(model, optimizer, images, labels)

    steps = {False: [], True: []}
    optimizer_steps = {False: [], True: []}
    for repeat in range(repeats):
        order = (False, True) if repeat % 2 == 0 else (True, False)
        for flag in order:
            model, optimizer, _ = sides[flag]
            steps[flag].append(timed(lambda: train_step(model, optimizer, images, labels)))
        for flag in order:
            model, optimizer, _ = sides[flag]
            # The gradients of the last training step are still in place.
            optimizer_steps[flag].append(timed(optimizer.step))

    model, _, modulator = sides[True]
    parameter_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    buffers = modulator.state_dict()["updates"] or []
    extra_bytes = sum(t.numel() * t.element_size() for t in buffers)
    return {
        "model": name,
        "parameters": sum(p.numel() for p in model.parameters()),
        "layers": len(modulator.layer_names),
        "training_step": ratios(steps[True], steps[False]),
        "optimizer_step": ratios(optimizer_steps[True], optimizer_steps[False]),
        "parameter_bytes": parameter_bytes,
        "extra_bytes": extra_bytes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="cnn,vit", help="comma-separated model names")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=30, help="interleaved timings per side")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps per side first")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    results = [measure(name, args.batch_size, args.repeats, args.warmup) for name in args.models.split(",")]
    for result in results:
        training, step = result["training_step"], result["optimizer_step"]
        print(
            f"{result['model']}: {result['parameters']:,} parameters in {result['layers']} layers\n"
            f"  training step  plain {training['plain_median_ms']:.2f} ms, LGM {training['lgm_median_ms']:.2f} ms, "
            f"ratio {training['median_ratio']:.3f} (IQR {training['q1']:.3f}-{training['q3']:.3f}), target <= 1.03\n"
            f"  optimizer step plain {step['plain_median_ms']:.3f} ms, LGM {step['lgm_median_ms']:.3f} ms, "
            f"ratio {step['median_ratio']:.2f} (IQR {step['q1']:.2f}-{step['q3']:.2f}), target <= 2\n"
            f"  extra memory {result['extra_bytes']:,} bytes = "
            f"{result['extra_bytes'] / result['parameter_bytes']:.2f} x the parameters, target <= 1"
        )
    if args.json:
        meta = {
            "gradmod": gradmod.__version__,
            "torch": torch.__version__,
            "machine": platform.machine(),
            "processor": platform.processor(),
            "threads": args.threads,
            "batch_size": args.batch_size,
            "repeats": args.repeats,
        }
        with open(args.json, "w") as handle:
            json.dump({"meta": meta, "results": results}, handle, indent=2)


if __name__ == "__main__":
    main()
