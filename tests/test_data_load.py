"""Finding the data folder, loading the four files and the seeded validation split."""

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from idx_fixtures import encode_labels, image_ids, write_fashion_mnist, write_file

from gradmod.data import CLASSES, DataError, FashionMNIST, Split, load_fashion_mnist, split_train_val
from gradmod.data import locate

REAL_DATA = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture
def places(tmp_path, monkeypatch):
    """Point $GRADMOD_DATA, the user cache and the system folder at empty folders under tmp_path."""
    folders = {
        "env": tmp_path / "env",
        "cache": tmp_path / "xdg" / "gradmod" / "fashion-mnist",
        "system": tmp_path / "system",
    }
    monkeypatch.setenv("GRADMOD_DATA", str(folders["env"]))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(locate, "SYSTEM_DATA_DIR", folders["system"])
    return folders


@pytest.mark.parametrize("gzipped", [False, True])
def test_load_valid_files(places, tmp_path, gzipped):
    data = write_fashion_mnist(tmp_path / "data", num_train=60, num_test=20, gzipped=gzipped)
    dataset = load_fashion_mnist(tmp_path / "data", val_size=10)
    assert isinstance(dataset, FashionMNIST)
    assert dataset.classes == CLASSES
    assert len(dataset.classes) == 10
    assert dataset.source == tmp_path / "data"
    assert len(dataset.train) == 50
    assert len(dataset.val) == 10
    assert dataset.train.images.shape == (50, 1, 28, 28)
    assert dataset.train.images.dtype == torch.uint8
    assert dataset.train.labels.dtype == torch.int64
    assert np.array_equal(dataset.test.images[:, 0].numpy(), data.test_images)
    assert dataset.test.labels.tolist() == data.test_labels.tolist()


def test_split_keeps_image_label_pairs(places, tmp_path):
    data = write_fashion_mnist(tmp_path / "data", num_train=40)
    dataset = load_fashion_mnist(tmp_path / "data", val_size=8)
    for split in (dataset.train, dataset.val):
        ids = image_ids(split.images)
        assert split.labels.tolist() == data.train_labels[ids].tolist()
        assert np.array_equal(split.images[:, 0].numpy(), data.train_images[ids])


def test_count_mismatch(places, tmp_path):
    write_fashion_mnist(tmp_path / "data", num_train=30)
    labels_path = tmp_path / "data" / "train-labels-idx1-ubyte.gz"
    labels_path.unlink()
    write_file(labels_path.with_suffix(""), encode_labels(np.zeros(29, dtype=np.uint8)), gzipped=True)
    with pytest.raises(
        DataError,
        match=r"train-images-idx3-ubyte.gz: image and label counts differ: "
        r"train-images-idx3-ubyte.gz has 30 images but train-labels-idx1-ubyte.gz has 29 labels",
    ):
        load_fashion_mnist(tmp_path / "data")


def test_explicit_path_beats_env(places, tmp_path):
    write_fashion_mnist(tmp_path / "explicit", num_train=31)
    write_fashion_mnist(places["env"], num_train=32)
    write_fashion_mnist(places["cache"], num_train=33)
    dataset = load_fashion_mnist(tmp_path / "explicit", val_size=1)
    assert dataset.source == tmp_path / "explicit"
    assert len(dataset.train) == 30


def test_env_beats_cache(places):
    write_fashion_mnist(places["env"], num_train=32)
    write_fashion_mnist(places["cache"], num_train=33)
    write_fashion_mnist(places["system"], num_train=34)
    dataset = load_fashion_mnist(val_size=1)
    assert dataset.source == places["env"]
    assert len(dataset.train) == 31


def test_cache_beats_system(places):
    write_fashion_mnist(places["cache"], num_train=33)
    write_fashion_mnist(places["system"], num_train=34)
    dataset = load_fashion_mnist(val_size=1)
    assert dataset.source == places["cache"]
    assert len(dataset.train) == 32


def test_system_folder_last(places):
    write_fashion_mnist(places["system"], num_train=34)
    dataset = load_fashion_mnist(val_size=1)
    assert dataset.source == places["system"]


def test_cache_default_without_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert locate.user_cache_dir() == tmp_path / ".cache" / "gradmod" / "fashion-mnist"


def test_partial_folder_skipped(places, caplog):
    write_fashion_mnist(places["env"], num_train=32)
    (places["env"] / "t10k-labels-idx1-ubyte.gz").unlink()
    write_fashion_mnist(places["cache"], num_train=33)
    with caplog.at_level(logging.WARNING, logger="gradmod.data.locate"):
        dataset = load_fashion_mnist(val_size=1)
    assert dataset.source == places["cache"]
    assert "missing t10k-labels-idx1-ubyte[.gz]" in caplog.text


def test_plain_file_preferred(places, tmp_path):
    write_fashion_mnist(tmp_path / "data", num_train=30, gzipped=True)
    write_fashion_mnist(tmp_path / "data", num_train=40, gzipped=False)
    dataset = load_fashion_mnist(tmp_path / "data", val_size=0)
    assert len(dataset.train) == 40


def test_explicit_path_no_fallback(places, tmp_path):
    write_fashion_mnist(places["env"], num_train=32)
    missing = tmp_path / "typo"
    with pytest.raises(DataError, match=rf"{missing}: Fashion-MNIST not found: path argument {missing}: folder does not exist"):
        load_fashion_mnist(missing)


def test_nothing_found_lists_places(places):
    places["cache"].mkdir(parents=True)
    with pytest.raises(DataError) as caught:
        load_fashion_mnist()
    message = str(caught.value)
    assert f"$GRADMOD_DATA {places['env']}: folder does not exist" in message
    assert f"user cache {places['cache']}: missing train-images-idx3-ubyte[.gz]" in message
    assert f"system data {places['system']}: folder does not exist" in message
    assert "apt-get install dataset-fashion-mnist" in message


def test_split_sizes_and_disjoint(places, tmp_path):
    write_fashion_mnist(tmp_path / "data", num_train=100)
    dataset = load_fashion_mnist(tmp_path / "data", val_size=25, split_seed=3)
    train_ids = image_ids(dataset.train.images)
    val_ids = image_ids(dataset.val.images)
    assert len(train_ids) == 75
    assert len(val_ids) == 25
    assert not set(train_ids) & set(val_ids)
    assert sorted(train_ids + val_ids) == list(range(100))
    assert train_ids == sorted(train_ids)  # each split keeps file order
    assert val_ids == sorted(val_ids)


def test_split_deterministic(places, tmp_path):
    write_fashion_mnist(tmp_path / "data", num_train=100)
    first = load_fashion_mnist(tmp_path / "data", val_size=25, split_seed=3)
    torch.manual_seed(999)  # the global RNG must not matter
    second = load_fashion_mnist(tmp_path / "data", val_size=25, split_seed=3)
    other = load_fashion_mnist(tmp_path / "data", val_size=25, split_seed=4)
    assert torch.equal(first.val.images, second.val.images)
    assert torch.equal(first.train.labels, second.train.labels)
    assert image_ids(first.val.images) != image_ids(other.val.images)


def test_split_matches_randperm():
    generator = torch.Generator().manual_seed(7)
    expected_val = torch.randperm(20, generator=generator)[:5].sort().values
    train, val = split_train_val(20, 5, split_seed=7)
    assert torch.equal(val, expected_val)
    assert sorted(train.tolist() + val.tolist()) == list(range(20))


def test_val_size_zero(places, tmp_path):
    write_fashion_mnist(tmp_path / "data", num_train=30)
    dataset = load_fashion_mnist(tmp_path / "data", val_size=0)
    assert dataset.val is None
    assert image_ids(dataset.train.images) == list(range(30))


@pytest.mark.parametrize(
    ("val_size", "error", "pattern"),
    [
        (-1, ValueError, r"val_size must be in 0\.\.29 .*got -1"),
        (30, ValueError, r"val_size must be in 0\.\.29 \(at least one training image must remain out of 30\), got 30"),
        (2.5, TypeError, "val_size must be an int, got 2.5"),
        (True, TypeError, "val_size must be an int, got True"),
    ],
)
def test_invalid_val_size(places, tmp_path, val_size, error, pattern):
    write_fashion_mnist(tmp_path / "data", num_train=30)
    with pytest.raises(error, match=pattern):
        load_fashion_mnist(tmp_path / "data", val_size=val_size)


def test_split_validates_tensors():
    with pytest.raises(ValueError, match="Split images must be a uint8 tensor"):
        Split(torch.zeros(2, 1, 28, 28), torch.zeros(2, dtype=torch.int64))
    with pytest.raises(ValueError, match="Split has 2 images but 3 labels"):
        Split(torch.zeros(2, 1, 28, 28, dtype=torch.uint8), torch.zeros(3, dtype=torch.int64))


@pytest.mark.slow
def test_real_fashion_mnist():
    if not REAL_DATA.is_dir():
        pytest.skip(f"Fashion-MNIST is not installed in {REAL_DATA}")
    dataset = load_fashion_mnist(REAL_DATA)
    assert (len(dataset.train), len(dataset.val), len(dataset.test)) == (55000, 5000, 10000)
    counts = torch.bincount(torch.cat([dataset.train.labels, dataset.val.labels]), minlength=10)
    assert counts.tolist() == [6000] * 10
    assert torch.bincount(dataset.test.labels, minlength=10).tolist() == [1000] * 10
    mean = torch.cat([dataset.train.images, dataset.val.images]).double().mean() / 255
    assert abs(mean.item() - 0.2860) < 1e-3
