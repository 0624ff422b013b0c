"""Tiny models and synthetic data shared by the robustness tests (this module contains no tests).

The data are ten classes of smooth random 28x28 patterns plus pixel noise, so
a small network learns them in well under a second and gradient attacks can
still move images across class boundaries. Everything is built with its own
seeds inside ``torch.random.fork_rng``, so results do not depend on test order.
"""

from __future__ import annotations

import copy
import functools

import torch
import torch.nn.functional as F
from torch import nn

NUM_CLASSES = 10
IMAGE_SHAPE = (1, 28, 28)
TRAIN_IMAGES = 2000
EVAL_IMAGES = 200

torch.set_num_threads(min(2, torch.get_num_threads()))


def make_patterns(num_images: int, seed: int, noise: float = 0.2) -> tuple[torch.Tensor, torch.Tensor]:
    """Return float32 images [N, 1, 28, 28] in [0, 1] and their int64 labels."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(NUM_CLASSES, 1, 7, 7, generator=torch.Generator().manual_seed(99))
    templates = 0.2 + 0.6 * F.interpolate(coarse, size=IMAGE_SHAPE[1:], mode="bilinear", align_corners=False)
    labels = torch.randint(0, NUM_CLASSES, (num_images,), generator=generator)
    pixel_noise = noise * torch.randn(num_images, *IMAGE_SHAPE, generator=generator)
    images = (templates[labels] + pixel_noise).clamp(0.0, 1.0)
    return images, labels


def make_mlp(hidden: int = 32) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, hidden), nn.ReLU(), nn.Linear(hidden, NUM_CLASSES))


def make_cnn() -> nn.Module:
    """A small CNN with batch norm and dropout, whose mode matters."""
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(4),
        nn.Flatten(),
        nn.Dropout(0.5),
        nn.Linear(4 * 7 * 7, NUM_CLASSES),
    )


def train(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, steps: int = 200) -> nn.Module:
    """Fit ``model`` with Adam on mini-batches of 100, then put it in eval mode and clear its gradients."""
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(1)
    model.train()
    for _ in range(steps):
        index = torch.randint(0, images.shape[0], (100,), generator=generator)
        optimizer.zero_grad()
        F.cross_entropy(model(images[index]), labels[index]).backward()
        optimizer.step()
    model.zero_grad(set_to_none=True)
    return model.eval()


@functools.lru_cache(maxsize=None)
def _trained(kind: str) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        images, labels = make_patterns(TRAIN_IMAGES, seed=1)
        model = make_mlp() if kind == "mlp" else make_cnn()
        train(model, images, labels)
        eval_images, eval_labels = make_patterns(EVAL_IMAGES, seed=2)
    return model, eval_images, eval_labels


def trained_classifier(kind: str = "mlp") -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """Return a fresh copy of a trained "mlp" or "cnn", and 200 held-out images with labels."""
    model, images, labels = _trained(kind)
    return copy.deepcopy(model), images.clone(), labels.clone()
