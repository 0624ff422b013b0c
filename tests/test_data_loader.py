"""BatchLoader: epoch order, resumption, sharding, subsets and augmentation."""

import numpy as np
import pytest
import torch
from idx_fixtures import image_ids, make_images

from gradmod.data import BatchLoader, Split, draw_augmentation, epoch_seed, horizontal_flip, random_crop

# Four standard deviations of the mean of 4000 fair coin flips (0.5 / sqrt(4000) = 0.0079).
FLIP_RATE_TOLERANCE = 0.032


def make_split(count: int) -> Split:
    """A split of ``count`` random images whose first two pixels encode their index."""
    images = torch.from_numpy(make_images(count, np.random.default_rng(0)))[:, None]
    labels = torch.arange(count, dtype=torch.int64) % 10
    return Split(images, labels)


def epoch_ids(loader: BatchLoader) -> list[int]:
    return [i for images, _ in loader for i in image_ids(images)]


def batches_equal(first, second) -> bool:
    return len(first) == len(second) and all(
        torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, second)
    )


def test_batch_types_and_values():
    split = make_split(10)
    images, labels = next(iter(BatchLoader(split, batch_size=4, shuffle=False)))
    assert images.dtype == torch.float32
    assert images.shape == (4, 1, 28, 28)
    assert labels.dtype == torch.int64
    assert torch.equal(images, split.images[:4].float() / 255)
    assert torch.equal(labels, split.labels[:4])


def test_every_item_once_per_epoch():
    loader = BatchLoader(make_split(50), batch_size=8, seed=1)
    for epoch in range(3):
        loader.set_epoch(epoch)
        assert sorted(epoch_ids(loader)) == list(range(50))


def test_labels_follow_images():
    split = make_split(30)
    for images, labels in BatchLoader(split, batch_size=7, seed=2, augment=False):
        assert labels.tolist() == split.labels[image_ids(images)].tolist()


def test_order_depends_on_seed_and_epoch():
    split = make_split(50)
    first = BatchLoader(split, batch_size=8, seed=5)
    second = BatchLoader(split, batch_size=8, seed=5)
    other_seed = BatchLoader(split, batch_size=8, seed=6)
    first.set_epoch(3)
    second.set_epoch(3)
    other_seed.set_epoch(3)
    torch.manual_seed(0)  # the global RNG must not matter
    order = epoch_ids(first)
    assert epoch_ids(second) == order
    assert epoch_ids(other_seed) != order
    first.set_epoch(4)
    assert epoch_ids(first) != order


def test_order_uses_epoch_seed():
    generator = torch.Generator().manual_seed(epoch_seed(11, 2))
    expected = torch.randperm(20, generator=generator)
    loader = BatchLoader(make_split(20), batch_size=20, seed=11)
    loader.set_epoch(2)
    assert torch.equal(loader.indices(), expected)


def test_epoch_seed_distinguishes_pairs():
    assert epoch_seed(0, 1) != epoch_seed(1, 0)
    assert epoch_seed(3, 4) == epoch_seed(3, 4)
    assert 0 <= epoch_seed(-5, 0) < 2**63


def test_no_shuffle_keeps_order():
    loader = BatchLoader(make_split(13), batch_size=5, shuffle=False)
    loader.set_epoch(7)
    assert epoch_ids(loader) == list(range(13))


@pytest.mark.parametrize("augment", [False, True])
def test_resume_mid_epoch(augment):
    loader = BatchLoader(make_split(45), batch_size=6, seed=4, augment=augment)
    loader.set_epoch(2)
    full = list(loader)
    resumed = BatchLoader(make_split(45), batch_size=6, seed=4, augment=augment)
    resumed.set_epoch(2)
    assert batches_equal(list(resumed.iter_from(3)), full[3:])
    assert list(resumed.iter_from(len(resumed))) == []


def test_set_epoch_after_start():
    loader = BatchLoader(make_split(20), batch_size=5, seed=0)
    iterator = iter(loader)
    first = next(iterator)
    loader.set_epoch(1)
    rest = list(iterator)
    loader.set_epoch(0)
    assert batches_equal([first, *rest], list(loader))


def test_len_and_drop_last():
    split = make_split(23)
    assert len(BatchLoader(split, batch_size=5)) == 5
    assert [len(labels) for _, labels in BatchLoader(split, batch_size=5)] == [5, 5, 5, 5, 3]
    dropping = BatchLoader(split, batch_size=5, drop_last=True)
    assert len(dropping) == 4
    assert [len(labels) for _, labels in dropping] == [5, 5, 5, 5]


@pytest.mark.parametrize("count", [30, 31, 32])
def test_shards_disjoint_and_covering(count):
    world_size = 3
    loaders = [
        BatchLoader(make_split(count), batch_size=4, seed=9, rank=rank, world_size=world_size)
        for rank in range(world_size)
    ]
    shards = [epoch_ids(loader) for loader in loaders]
    used = count - count % world_size
    assert all(len(shard) == used // world_size for shard in shards)
    assert len({len(loader) for loader in loaders}) == 1  # every rank runs the same number of steps
    union = [i for shard in shards for i in shard]
    assert len(set(union)) == used  # disjoint
    if count % world_size == 0:
        assert sorted(union) == list(range(count))  # covering


def test_shards_interleave_global_order():
    single = BatchLoader(make_split(24), batch_size=24, seed=3)
    shards = [BatchLoader(make_split(24), batch_size=12, seed=3, rank=r, world_size=2) for r in range(2)]
    order = single.indices()
    assert torch.equal(shards[0].indices(), order[0::2])
    assert torch.equal(shards[1].indices(), order[1::2])


def test_augmentation_independent_of_world_size():
    split = make_split(24)
    single = BatchLoader(split, batch_size=24, seed=3, augment=True)
    shard = BatchLoader(split, batch_size=12, seed=3, augment=True, rank=1, world_size=2)
    (all_images, _), = list(single)
    (shard_images, _), = list(shard)
    assert torch.equal(shard_images, all_images[1::2])


def test_subset_takes_first_items():
    loader = BatchLoader(make_split(40), batch_size=4, seed=0, subset=10)
    assert len(loader) == 3
    assert sorted(epoch_ids(loader)) == list(range(10))


def test_augmentation_shape_range_determinism():
    split = make_split(32)
    first = list(BatchLoader(split, batch_size=16, seed=8, augment=True))
    second = list(BatchLoader(split, batch_size=16, seed=8, augment=True))
    plain = list(BatchLoader(split, batch_size=16, seed=8, augment=False))
    assert batches_equal(first, second)
    for (images, labels), (plain_images, plain_labels) in zip(first, plain):
        assert images.shape == (16, 1, 28, 28)
        assert images.dtype == torch.float32
        assert images.min() >= 0.0
        assert images.max() <= 1.0
        assert torch.equal(labels, plain_labels)  # same permutation with and without augmentation
    assert not torch.equal(first[0][0], plain[0][0])


def test_random_crop_by_hand():
    image = torch.arange(1, 10, dtype=torch.float32).reshape(1, 1, 3, 3)
    images = image.repeat(3, 1, 1, 1)
    offsets_y = torch.tensor([1, 0, 2])
    offsets_x = torch.tensor([1, 0, 1])
    cropped = random_crop(images, offsets_y, offsets_x, padding=1)
    assert torch.equal(cropped[0], image[0])  # offsets equal to the padding: unchanged
    assert cropped[1, 0].tolist() == [[0, 0, 0], [0, 1, 2], [0, 4, 5]]
    assert cropped[2, 0].tolist() == [[4, 5, 6], [7, 8, 9], [0, 0, 0]]


def test_horizontal_flip_by_hand():
    images = torch.arange(12).reshape(2, 1, 2, 3)
    flipped = horizontal_flip(images, torch.tensor([True, False]))
    assert flipped[0, 0].tolist() == [[2, 1, 0], [5, 4, 3]]
    assert torch.equal(flipped[1], images[1])


def test_augmentation_draw_rates():
    # Over 4000 draws, about half the images flip and every crop offset in 0..4 appears.
    generator = torch.Generator().manual_seed(0)
    offsets_y, offsets_x, flip = draw_augmentation(4000, padding=2, flip_probability=0.5, generator=generator)
    assert abs(flip.float().mean().item() - 0.5) < FLIP_RATE_TOLERANCE
    assert sorted(set(offsets_y.tolist())) == [0, 1, 2, 3, 4]
    assert sorted(set(offsets_x.tolist())) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"batch_size": 0}, ValueError, "batch_size must be >= 1, got 0"),
        ({"batch_size": 2.0}, TypeError, "batch_size must be an int, got 2.0"),
        ({"rank": 2, "world_size": 2}, ValueError, r"rank must be in 0\.\.1 for world_size=2, got 2"),
        ({"world_size": 0}, ValueError, "world_size must be >= 1, got 0"),
        ({"subset": 11}, ValueError, "subset must be at most the split size 10, got 11"),
        ({"shuffle": 1}, TypeError, "shuffle must be True or False, got 1"),
        ({"batch_size": 11, "drop_last": True}, ValueError, "would yield no batches"),
    ],
)
def test_invalid_arguments(kwargs, error, pattern):
    arguments = {"batch_size": 4, **kwargs}
    with pytest.raises(error, match=pattern):
        BatchLoader(make_split(10), **arguments)


def test_invalid_resume_point():
    loader = BatchLoader(make_split(10), batch_size=4)
    with pytest.raises(ValueError, match=r"batch_index must be in 0\.\.3 \(batches per epoch\), got 4"):
        loader.iter_from(4)
    with pytest.raises(ValueError, match="epoch must be >= 0, got -1"):
        loader.set_epoch(-1)
