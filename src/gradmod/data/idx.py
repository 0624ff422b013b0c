"""Read and validate IDX files, the format of MNIST and Fashion-MNIST.

An IDX file is a big-endian header followed by raw array data:

- bytes 0-3: the magic number. Its first two bytes are zero, the third gives the
  element type (0x08 for unsigned bytes) and the fourth the number of
  dimensions. Image files have magic 2051 (0x00000803, three dimensions) and
  label files 2049 (0x00000801, one dimension).
- then one unsigned 32-bit size per dimension: count, rows and columns for
  images, count for labels.
- then the elements in row-major (C) order, one byte each.

Files may be gzipped. A file is decompressed when it starts with the gzip magic
bytes 0x1f 0x8b, whatever its name, which cannot clash with IDX because an IDX
file starts with two zero bytes.

Every problem (missing file, bad gzip stream, wrong magic, wrong image size,
fewer or more bytes than the header promises, labels out of range) raises
``DataError`` naming the file and what was expected and found.
"""

from __future__ import annotations

import gzip
import logging
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from gradmod.data.errors import DataError

__all__ = ["IMAGE_MAGIC", "LABEL_MAGIC", "read_idx_images", "read_idx_labels"]

logger = logging.getLogger(__name__)

IMAGE_MAGIC = 2051
LABEL_MAGIC = 2049

_GZIP_MAGIC = b"\x1f\x8b"
_MAGIC_NAMES = {IMAGE_MAGIC: "an IDX image file", LABEL_MAGIC: "an IDX label file"}


def read_idx_images(path: str | Path, image_size: int = 28) -> torch.Tensor:
    """Read an IDX image file and return a uint8 tensor of shape [N, 1, H, W].

    Raises DataError unless the magic number is 2051, every image is
    ``image_size`` x ``image_size`` pixels and the pixel data has exactly
    N * H * W bytes.
    """
    path = Path(path)
    data = _read_bytes(path)
    count, rows, cols = _parse_header(path, data, IMAGE_MAGIC, num_dims=3)
    if (rows, cols) != (image_size, image_size):
        raise DataError(
            f"invalid image size: expected {image_size}x{image_size} pixels, "
            f"found {rows}x{cols}",
            path,
        )
    header_bytes = 4 + 4 * 3
    _check_length(path, data, header_bytes, count, rows * cols, "images")
    pixels = np.frombuffer(data, dtype=np.uint8, offset=header_bytes)
    images = torch.from_numpy(pixels.reshape(count, 1, rows, cols).copy())
    logger.debug("read %d images of %dx%d from %s", count, rows, cols, path)
    return images


def read_idx_labels(path: str | Path, num_classes: int = 10) -> torch.Tensor:
    """Read an IDX label file and return an int64 tensor of shape [N].

    Raises DataError unless the magic number is 2049, the data has exactly N
    bytes and every label is in 0..num_classes-1.
    """
    path = Path(path)
    data = _read_bytes(path)
    (count,) = _parse_header(path, data, LABEL_MAGIC, num_dims=1)
    header_bytes = 4 + 4
    _check_length(path, data, header_bytes, count, 1, "labels")
    labels = np.frombuffer(data, dtype=np.uint8, offset=header_bytes)
    out_of_range = np.flatnonzero(labels >= num_classes)
    if out_of_range.size:
        first = int(out_of_range[0])
        raise DataError(
            f"invalid labels: expected values in 0..{num_classes - 1}, found "
            f"{out_of_range.size} out of range, the first at index {first} "
            f"with value {int(labels[first])}",
            path,
        )
    logger.debug("read %d labels from %s", count, path)
    return torch.from_numpy(labels.astype(np.int64))


def _read_bytes(path: Path) -> bytes:
    """Return the file's content, decompressed if it is gzipped."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError("file not found", path) from None
    except OSError as error:
        raise DataError(f"file cannot be read ({error.strerror or error})", path) from error
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        # EOFError is what gzip raises for a stream cut short.
        raise DataError(
            f"invalid gzip data, the file is damaged or truncated ({error})", path
        ) from error


def _parse_header(path: Path, data: bytes, magic: int, num_dims: int) -> tuple[int, ...]:
    """Check the magic number and return the dimension sizes from the header."""
    header_bytes = 4 + 4 * num_dims
    # The magic number is checked first, so that a label file passed as an
    # image file is reported as such rather than as a short header.
    if len(data) >= 4:
        (found,) = struct.unpack_from(">I", data, 0)
        if found != magic:
            kind = _MAGIC_NAMES.get(found, "not a known IDX file")
            raise DataError(
                f"invalid magic number: expected {magic} ({_MAGIC_NAMES[magic]}), "
                f"found {found} ({kind})",
                path,
            )
    if len(data) < header_bytes:
        raise DataError(
            f"file truncated: expected a header of {header_bytes} bytes, "
            f"found {len(data)} bytes in all",
            path,
        )
    return struct.unpack_from(f">{num_dims}I", data, 4)


def _check_length(
    path: Path, data: bytes, header_bytes: int, count: int, item_bytes: int, what: str
) -> None:
    """Raise DataError unless the data after the header has count * item_bytes bytes."""
    expected = count * item_bytes
    found = len(data) - header_bytes
    if found < expected:
        raise DataError(
            f"file truncated: the header promises {count} {what}, which need "
            f"{expected} bytes of data, found {found}",
            path,
        )
    if found > expected:
        raise DataError(
            f"unexpected extra data: the header promises {count} {what}, which need "
            f"{expected} bytes of data, found {found} ({found - expected} extra)",
            path,
        )
