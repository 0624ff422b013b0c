"""IDX reading and validation: valid files load, every corruption raises DataError."""

import gzip
import re
import struct

import numpy as np
import pytest
import torch
from idx_fixtures import encode_images, encode_labels, make_images, write_file

from gradmod.data import FASHION_MNIST_FILES, DataError, read_idx_images, read_idx_labels


@pytest.fixture
def images():
    return make_images(5, np.random.default_rng(0))


@pytest.fixture
def labels():
    return np.array([0, 9, 3, 3, 1], dtype=np.uint8)


@pytest.mark.parametrize("gzipped", [False, True])
def test_images_roundtrip(tmp_path, images, gzipped):
    path = write_file(tmp_path / "images", encode_images(images), gzipped)
    loaded = read_idx_images(path)
    assert loaded.dtype == torch.uint8
    assert loaded.shape == (5, 1, 28, 28)
    assert np.array_equal(loaded[:, 0].numpy(), images)


@pytest.mark.parametrize("gzipped", [False, True])
def test_labels_roundtrip(tmp_path, labels, gzipped):
    path = write_file(tmp_path / "labels", encode_labels(labels), gzipped)
    loaded = read_idx_labels(path)
    assert loaded.dtype == torch.int64
    assert loaded.tolist() == [0, 9, 3, 3, 1]


def test_gzip_detected_by_content(tmp_path, labels):
    path = tmp_path / "labels-without-suffix"
    path.write_bytes(gzip.compress(encode_labels(labels)))
    assert read_idx_labels(path).tolist() == labels.tolist()


def test_error_names_file_and_fix(tmp_path):
    path = tmp_path / "absent-images"
    with pytest.raises(DataError) as caught:
        read_idx_images(path)
    message = str(caught.value)
    assert str(path) in message
    assert "file not found" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "GRADMOD_DATA" in message
    for name in FASHION_MNIST_FILES:
        assert name in message
    assert caught.value.path == path


def test_image_magic_of_label_file(tmp_path, labels):
    path = write_file(tmp_path / "images", encode_labels(labels), gzipped=False)
    with pytest.raises(DataError, match=r"images: invalid magic number: expected 2051 .*found 2049 \(an IDX label file\)"):
        read_idx_images(path)


def test_label_magic_unknown(tmp_path, labels):
    path = write_file(tmp_path / "labels", encode_labels(labels, magic=1234), gzipped=True)
    with pytest.raises(DataError, match=r"labels.gz: invalid magic number: expected 2049 .*found 1234 \(not a known IDX file\)"):
        read_idx_labels(path)


def test_images_truncated(tmp_path, images):
    content = encode_images(images)[:-10]
    path = write_file(tmp_path / "images", content, gzipped=True)
    expected_bytes = 5 * 28 * 28
    with pytest.raises(
        DataError,
        match=rf"images.gz: file truncated: the header promises 5 images, which need {expected_bytes} bytes of data, found {expected_bytes - 10}",
    ):
        read_idx_images(path)


def test_header_truncated(tmp_path):
    path = write_file(tmp_path / "images", struct.pack(">2I", 2051, 5), gzipped=False)
    with pytest.raises(DataError, match="images: file truncated: expected a header of 16 bytes, found 8"):
        read_idx_images(path)


def test_labels_extra_bytes(tmp_path, labels):
    path = write_file(tmp_path / "labels", encode_labels(labels) + b"\x00\x01", gzipped=False)
    with pytest.raises(DataError, match=r"labels: unexpected extra data: .*5 labels.*found 7 \(2 extra\)"):
        read_idx_labels(path)


def test_wrong_image_size(tmp_path):
    images = make_images(3, np.random.default_rng(0), size=32)
    path = write_file(tmp_path / "images", encode_images(images), gzipped=True)
    with pytest.raises(DataError, match="images.gz: invalid image size: expected 28x28 pixels, found 32x32"):
        read_idx_images(path)


def test_label_out_of_range(tmp_path):
    labels = np.array([1, 2, 10, 4, 12], dtype=np.uint8)
    path = write_file(tmp_path / "labels", encode_labels(labels), gzipped=False)
    with pytest.raises(
        DataError,
        match=r"labels: invalid labels: expected values in 0\.\.9, found 2 out of range, the first at index 2 with value 10",
    ):
        read_idx_labels(path)


def test_damaged_gzip(tmp_path, images):
    compressed = gzip.compress(encode_images(images))
    path = tmp_path / "images.gz"
    path.write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(DataError, match=re.escape(f"{path}: invalid gzip data")):
        read_idx_images(path)
