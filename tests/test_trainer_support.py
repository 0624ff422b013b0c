"""Tiny, learnable data and configs shared by the Trainer tests.

Other test modules import the helpers from here (``from test_trainer_support
import ...``). Each class draws a bright horizontal bar at its own row over
random noise, so a small CNN learns it in a few dozen steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from gradmod.data import FashionMNIST, Split

TINY_CNN = {"name": "cnn", "options": {"width": 4, "hidden": 16}}
CLASS_NAMES = tuple(f"class {i}" for i in range(10))


@pytest.fixture(autouse=True)
def one_thread():
    """Run each test on one torch thread: the tiny models gain nothing from two."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def bar_split(count: int, seed: int) -> Split:
    """Return ``count`` noisy 28x28 images whose label is the row of a bright bar."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (count,), generator=generator)
    images = torch.randint(0, 100, (count, 1, 28, 28), generator=generator, dtype=torch.uint8)
    rows = 2 * labels + 4
    images[torch.arange(count), 0, rows, :] = 255
    return Split(images, labels)


def tiny_dataset(num_train: int = 256, num_val: int = 64, num_test: int = 64) -> FashionMNIST:
    return FashionMNIST(
        train=bar_split(num_train, seed=1),
        val=bar_split(num_val, seed=2),
        test=bar_split(num_test, seed=3),
        classes=CLASS_NAMES,
        source=Path("generated"),
    )


def tiny_config(**dotted: Any) -> dict[str, Any]:
    """Return a config dict for a 2-epoch run of a tiny CNN; dotted keys override it."""
    config: dict[str, Any] = {
        "epochs": 2,
        "model": {"name": TINY_CNN["name"], "options": dict(TINY_CNN["options"])},
        "data": {"batch_size": 32, "eval_batch_size": 64},
        "optimizer": {"name": "sgd", "lr": 0.05},
        "schedule": {"warmup_steps": 2},
        "run": {"quiet": True},
    }
    for key, value in dotted.items():
        *sections, name = key.split(".")
        target = config
        for section in sections:
            target = target.setdefault(section, {})
        target[name] = value
    return config


def test_bar_split_is_valid_and_labelled():
    split = bar_split(20, seed=0)
    assert split.images.shape == (20, 1, 28, 28)
    assert split.images.dtype == torch.uint8
    rows = split.images[:, 0].float().mean(dim=2).argmax(dim=1)
    assert torch.equal(rows, 2 * split.labels + 4)


def test_tiny_config_applies_dotted_keys():
    config = tiny_config(**{"optimizer.lr": 0.3, "run.out": "x"})
    assert config["optimizer"] == {"name": "sgd", "lr": 0.3}
    assert config["run"] == {"quiet": True, "out": "x"}
