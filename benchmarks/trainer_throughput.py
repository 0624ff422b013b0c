"""Training throughput of the Trainer against a minimal hand-written loop on CPU.

Both sides train the same model (same initial weights), with the same
optimizer settings (the model's recipe), on the same batches of Fashion-MNIST
(``BatchLoader``, same seed and batch size), modulation off. The hand-written
loop does only forward, cross-entropy, zero_grad, backward and step. The
Trainer adds its schedule, per-step records and stop checks.

One segment of ``--steps`` optimizer steps per side and repeat, after one
warm-up segment each. The sides alternate which goes first, so both see the
same machine load. The Trainer is timed from outside ``fit(max_steps=...)``,
so the timing includes its end-of-fit evaluation. That evaluation runs on 64
validation and 64 test images here and costs milliseconds. Prints images
per second (median, min, max) per side and the median of the per-repeat
ratios Trainer / loop.

    python benchmarks/trainer_throughput.py --models cnn,vit --steps 30 --repeats 5 --threads 2

Target: ratio >= 0.95 for cnn and vit.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
import torch.nn.functional as F

import gradmod
from gradmod.data import BatchLoader, FashionMNIST, Split, load_fashion_mnist
from gradmod.models import build_model
from gradmod.training import TrainConfig, Trainer, build_optimizer, resolve_recipe

EVAL_IMAGES = 64  # validation and test images, so the Trainer's end-of-fit evaluation stays negligible


def small_eval_dataset(data: FashionMNIST) -> FashionMNIST:
    def head(split: Split) -> Split:
        return Split(split.images[:EVAL_IMAGES], split.labels[:EVAL_IMAGES])

    return FashionMNIST(train=data.train, val=head(data.val), test=head(data.test), classes=data.classes, source=data.source)


class HandLoop:
    """The minimal loop: a fresh model and optimizer, batches in the Trainer's order."""

    def __init__(self, config: TrainConfig, data: FashionMNIST) -> None:
        torch.manual_seed(config.seed)
        self.model = build_model(config.model.name)
        options = config.optimizer
        self.optimizer = build_optimizer(
            self.model, options.name, lr=options.lr, weight_decay=options.weight_decay,
            momentum=options.momentum, nesterov=options.nesterov, betas=options.betas, eps=options.eps,
        )
        self.loader = BatchLoader(data.train, config.data.batch_size, seed=config.seed, drop_last=True)
        self.epoch = 0
        self.batches = iter(self.loader)

    def next_batch(self):
        try:
            return next(self.batches)
        except StopIteration:
            self.epoch += 1
            self.loader.set_epoch(self.epoch)
            self.batches = iter(self.loader)
            return next(self.batches)

    def run(self, steps: int) -> None:
        self.model.train()
        for _ in range(steps):
            images, labels = self.next_batch()
            loss = F.cross_entropy(self.model(images), labels)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()


def images_per_second(run, steps: int, batch_size: int) -> float:
    started = time.perf_counter()
    run(steps)
    return steps * batch_size / (time.perf_counter() - started)


def measure(model_name: str, data: FashionMNIST, steps: int, repeats: int) -> dict:
    config = resolve_recipe(
        TrainConfig.from_dict({"model": {"name": model_name}, "epochs": 100, "run": {"quiet": True}})
    )
    batch_size = config.data.batch_size
    trainer = Trainer(config, data)
    loop = HandLoop(config, data)

    def run_trainer(count: int) -> None:
        trainer.fit(max_steps=trainer.step + count)

    sides = {"trainer": run_trainer, "loop": loop.run}
    for run in sides.values():  # warm-up
        run(steps)
    rates: dict[str, list[float]] = {"trainer": [], "loop": []}
    for repeat in range(repeats):
        order = ["trainer", "loop"] if repeat % 2 == 0 else ["loop", "trainer"]
        for name in order:
            rates[name].append(images_per_second(sides[name], steps, batch_size))

    ratios = [t / h for t, h in zip(rates["trainer"], rates["loop"])]
    summary = {
        name: {"median": statistics.median(v), "min": min(v), "max": max(v), "all": v} for name, v in rates.items()
    }
    return {
        "model": model_name,
        "optimizer": config.optimizer.name,
        "batch_size": batch_size,
        "images_per_second": summary,
        "ratio_median": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="cnn,vit", help="comma-separated model names (default: cnn,vit)")
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps per timed segment (default: 30)")
    parser.add_argument("--repeats", type=int, default=5, help="timed segments per side (default: 5)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default: 2)")
    parser.add_argument("--data", default=None, help="Fashion-MNIST folder (default: the usual search)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    data = small_eval_dataset(load_fashion_mnist(args.data))
    results = [measure(name, data, args.steps, args.repeats) for name in args.models.split(",")]
    for result in results:
        trainer, loop = result["images_per_second"]["trainer"], result["images_per_second"]["loop"]
        print(
            f"{result['model']:>4} ({result['optimizer']}, batch {result['batch_size']}): "
            f"Trainer {trainer['median']:.0f} img/s [{trainer['min']:.0f}, {trainer['max']:.0f}], "
            f"loop {loop['median']:.0f} img/s [{loop['min']:.0f}, {loop['max']:.0f}], "
            f"ratio {result['ratio_median']:.3f} [{result['ratio_min']:.3f}, {result['ratio_max']:.3f}]"
        )
    record = {
        "benchmark": "trainer_throughput",
        "arguments": vars(args),
        "versions": {"gradmod": gradmod.__version__, "torch": torch.__version__, "python": platform.python_version()},
        "machine": {"processor": platform.processor() or platform.machine(), "threads": torch.get_num_threads()},
        "results": results,
    }
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
