"""Write small, valid Fashion-MNIST-style IDX files for the data tests.

Each generated image carries its own index in its first two pixels
(pixel[0, 0] = index % 256, pixel[0, 1] = index // 256), so a test can tell
which images a split or a batch contains.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IMAGE_MAGIC = 2051
LABEL_MAGIC = 2049


@dataclass
class SyntheticSet:
    """The arrays written to a folder by ``write_fashion_mnist``."""

    folder: Path
    train_images: np.ndarray  # uint8 [N, 28, 28]
    train_labels: np.ndarray  # uint8 [N]
    test_images: np.ndarray
    test_labels: np.ndarray


def encode_images(images: np.ndarray, magic: int = IMAGE_MAGIC) -> bytes:
    """Encode uint8 images [N, H, W] as an IDX image file."""
    count, rows, cols = images.shape
    return struct.pack(">4I", magic, count, rows, cols) + images.astype(np.uint8).tobytes()


def encode_labels(labels: np.ndarray, magic: int = LABEL_MAGIC) -> bytes:
    """Encode uint8 labels [N] as an IDX label file."""
    return struct.pack(">2I", magic, len(labels)) + labels.astype(np.uint8).tobytes()


def write_file(path: Path, content: bytes, gzipped: bool) -> Path:
    """Write ``content`` to ``path`` (plus ``.gz`` when gzipped) and return the file's path."""
    if gzipped:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(content))
    else:
        path.write_bytes(content)
    return path


def make_images(count: int, rng: np.random.Generator, size: int = 28) -> np.ndarray:
    """Return random uint8 images [count, size, size] whose first two pixels encode the index."""
    images = rng.integers(0, 256, size=(count, size, size), dtype=np.uint8)
    indices = np.arange(count)
    images[:, 0, 0] = indices % 256
    images[:, 0, 1] = indices // 256
    return images


def image_ids(images) -> list[int]:
    """Recover the indices encoded by ``make_images`` from uint8 or [0, 1] float images [N, 1, H, W]."""
    array = np.asarray(images)
    if array.dtype != np.uint8:
        array = np.rint(array * 255).astype(np.int64)
    return (array[:, 0, 0, 0].astype(np.int64) + 256 * array[:, 0, 0, 1].astype(np.int64)).tolist()


def write_fashion_mnist(
    folder: Path, num_train: int = 60, num_test: int = 20, gzipped: bool = True, seed: int = 0
) -> SyntheticSet:
    """Write the four standard files with random content into ``folder`` and return the arrays."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    data = SyntheticSet(
        folder=folder,
        train_images=make_images(num_train, rng),
        train_labels=rng.integers(0, 10, size=num_train, dtype=np.uint8),
        test_images=make_images(num_test, rng),
        test_labels=rng.integers(0, 10, size=num_test, dtype=np.uint8),
    )
    write_file(folder / "train-images-idx3-ubyte", encode_images(data.train_images), gzipped)
    write_file(folder / "train-labels-idx1-ubyte", encode_labels(data.train_labels), gzipped)
    write_file(folder / "t10k-images-idx3-ubyte", encode_images(data.test_images), gzipped)
    write_file(folder / "t10k-labels-idx1-ubyte", encode_labels(data.test_labels), gzipped)
    return data
