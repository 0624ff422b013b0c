"""Load Fashion-MNIST into memory as train, validation and test splits.

Fashion-MNIST (Xiao, Rasul and Vollgraf, "Fashion-MNIST: a Novel Image Dataset
for Benchmarking Machine Learning Algorithms", 2017) has 60000 training and
10000 test images of 28x28 grey-scale clothing items in ten classes.

The validation split is a held-out part of the training file, so the test set
is only needed for final numbers. Which training images go to validation is a
pure function of ``split_seed`` and the number of training images: a
``torch.Generator`` seeded with ``split_seed`` draws a permutation of the
indices, and its first ``val_size`` entries form the validation split. Both
parts keep the file order of their images (their indices are sorted), so
"the first N images of a split" means the first N in file order among that
split's images.

Images stay uint8 in memory (47 MB for the training file). ``BatchLoader``
converts each batch to float32 in [0, 1].
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from gradmod.data.errors import DataError
from gradmod.data.idx import read_idx_images, read_idx_labels
from gradmod.data.locate import find_fashion_mnist

__all__ = ["CLASSES", "FashionMNIST", "Split", "load_fashion_mnist", "split_train_val"]

logger = logging.getLogger(__name__)

# Class names in label order, as published with the dataset.
CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


@dataclass(frozen=True)
class Split:
    """Images (uint8, [N, 1, 28, 28]) and their labels (int64, [N]) held in memory."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(
                "Split images must be a uint8 tensor of shape [N, C, H, W], got "
                f"dtype {self.images.dtype} and shape {list(self.images.shape)}"
            )
        if self.labels.dtype != torch.int64 or self.labels.dim() != 1:
            raise ValueError(
                "Split labels must be an int64 tensor of shape [N], got "
                f"dtype {self.labels.dtype} and shape {list(self.labels.shape)}"
            )
        if len(self.images) != len(self.labels):
            raise ValueError(
                f"Split has {len(self.images)} images but {len(self.labels)} labels; "
                "they must match"
            )

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class FashionMNIST:
    """The three splits, the class names and the folder the files came from.

    ``val`` is None when the dataset was loaded with ``val_size=0``.
    """

    train: Split
    val: Split | None
    test: Split
    classes: tuple[str, ...]
    source: Path


def split_train_val(num_items: int, val_size: int, split_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the sorted (train, validation) index tensors of a seeded hold-out split.

    The validation indices are the first ``val_size`` entries of
    ``torch.randperm(num_items)`` drawn from a generator seeded with
    ``split_seed``; the training indices are the rest.
    """
    if isinstance(val_size, bool) or not isinstance(val_size, int):
        raise TypeError(f"val_size must be an int, got {val_size!r}")
    if not 0 <= val_size < num_items:
        raise ValueError(
            f"val_size must be in 0..{num_items - 1} (at least one training image "
            f"must remain out of {num_items}), got {val_size}"
        )
    if isinstance(split_seed, bool) or not isinstance(split_seed, int):
        raise TypeError(f"split_seed must be an int, got {split_seed!r}")
    generator = torch.Generator().manual_seed(split_seed)
    permutation = torch.randperm(num_items, generator=generator)
    val_indices = permutation[:val_size].sort().values
    train_indices = permutation[val_size:].sort().values
    return train_indices, val_indices


def load_fashion_mnist(
    path: str | Path | None = None, val_size: int = 5000, split_seed: int = 0
) -> FashionMNIST:
    """Find, validate and load Fashion-MNIST, holding out ``val_size`` training images.

    ``path`` is searched first, then ``$GRADMOD_DATA``, the user cache and
    ``/usr/share/datasets/fashion-mnist`` (see ``gradmod.data.locate``).
    Any count is accepted as long as each image file matches its label file,
    so tests can use small files. The real set has 60000 training and 10000
    test images.
    Raises DataError for missing or invalid files, and ValueError or TypeError
    for an invalid ``val_size`` or ``split_seed``.
    """
    location = find_fashion_mnist(path)
    files = location.files
    train = _read_pair(files["train-images-idx3-ubyte"], files["train-labels-idx1-ubyte"])
    test = _read_pair(files["t10k-images-idx3-ubyte"], files["t10k-labels-idx1-ubyte"])
    train_indices, val_indices = split_train_val(len(train), val_size, split_seed)
    val = None
    if val_size > 0:
        val = Split(train.images[val_indices], train.labels[val_indices])
    train = Split(train.images[train_indices], train.labels[train_indices])
    logger.info(
        "loaded Fashion-MNIST from %s: %d train, %d validation, %d test images",
        location.folder,
        len(train),
        val_size,
        len(test),
    )
    return FashionMNIST(train=train, val=val, test=test, classes=CLASSES, source=location.folder)


def _read_pair(images_path: Path, labels_path: Path) -> Split:
    """Read an image file and its label file, and check that their counts match."""
    images = read_idx_images(images_path)
    labels = read_idx_labels(labels_path, num_classes=len(CLASSES))
    if len(images) != len(labels):
        raise DataError(
            f"image and label counts differ: {images_path.name} has {len(images)} "
            f"images but {labels_path.name} has {len(labels)} labels",
            images_path,
        )
    if len(images) == 0:
        raise DataError("no images: the header gives a count of 0", images_path)
    return Split(images, labels)
