"""Deterministic, resumable, shardable mini-batches from an in-memory split.

``BatchLoader`` yields ``(images, labels)``: float32 [B, 1, 28, 28] in [0, 1]
and int64 [B]. A batch is gathered from the uint8 tensors with one index
tensor, so there is no per-image Python work.

Epoch plan. Everything random in epoch e comes from one ``torch.Generator``
seeded with ``epoch_seed(seed, e)``, drawn in this order:

1. the permutation ``torch.randperm(n)`` of the n images used (identity when
   ``shuffle=False``, in which case nothing is drawn);
2. when ``augment=True``, each position's crop offsets and flip decision
   (see ``gradmod.data.augment``), drawn for all n positions at once.

The plan is thus a pure function of (seed, epoch, n, shuffle, augment). A run
resumed at (epoch, batch index) with ``set_epoch(epoch)`` and
``iter_from(batch_index)`` gets exactly the batches the uninterrupted run
would have got. The epoch does not advance on its own: call ``set_epoch``
before each epoch, as with ``torch.utils.data.DistributedSampler``.

Sharding. With ``world_size`` W, the epoch order is cut to its first
``n - n % W`` positions, so up to W - 1 images are left out of each epoch
(different ones each epoch when shuffling). Rank r takes positions
r, r + W, r + 2W, ... Every rank gets the same number of images and
batches, which DDP needs, and the shards of one epoch are disjoint. Because
the augmentation is drawn per position before sharding, an image's
augmentation in an epoch does not depend on W.

Subset. ``subset=N`` keeps only the first N images of the split in the
split's own order (file order for splits from ``load_fashion_mnist``), before
shuffling and sharding.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import torch

from gradmod.data.augment import draw_augmentation, horizontal_flip, random_crop
from gradmod.data.fashion_mnist import Split

__all__ = ["BatchLoader", "epoch_seed"]

Batch = tuple[torch.Tensor, torch.Tensor]


def epoch_seed(seed: int, epoch: int) -> int:
    """Return the generator seed for ``epoch``: 63 bits of BLAKE2b over "seed:epoch".

    Hashing keeps the seeds of nearby (seed, epoch) pairs unrelated, unlike
    ``seed + epoch``, which gives seed 0 epoch 1 the same order as seed 1 epoch 0.
    """
    digest = hashlib.blake2b(f"{seed}:{epoch}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & (2**63 - 1)


class BatchLoader:
    """Iterate mini-batches of a ``Split`` in a seeded, resumable order.

    Args:
        split: the images and labels to serve.
        batch_size: images per batch (the last batch may be smaller unless
            ``drop_last``).
        shuffle: draw a new permutation each epoch; otherwise keep the split's order.
        seed: base seed of every epoch's generator.
        augment: random crop with padding 2 and horizontal flip with p = 0.5.
        drop_last: skip the last batch of an epoch when it is smaller than ``batch_size``.
        rank, world_size: this process's shard, for data-parallel training.
        subset: keep only the first ``subset`` images of the split.
    """

    CROP_PADDING = 2
    FLIP_PROBABILITY = 0.5

    def __init__(
        self,
        split: Split,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        augment: bool = False,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
        subset: int | None = None,
    ) -> None:
        if not isinstance(split, Split):
            raise TypeError(f"split must be a gradmod.data.Split, got {type(split).__name__}")
        _check_int("batch_size", batch_size, minimum=1)
        _check_int("seed", seed, minimum=None)
        _check_int("world_size", world_size, minimum=1)
        _check_int("rank", rank, minimum=0)
        if rank >= world_size:
            raise ValueError(f"rank must be in 0..{world_size - 1} for world_size={world_size}, got {rank}")
        if subset is not None:
            _check_int("subset", subset, minimum=1)
            if subset > len(split):
                raise ValueError(f"subset must be at most the split size {len(split)}, got {subset}")
        for name, flag in (("shuffle", shuffle), ("augment", augment), ("drop_last", drop_last)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be True or False, got {flag!r}")

        self.split = split
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.augment = augment
        self.drop_last = drop_last
        self.rank = rank
        self.world_size = world_size
        self.subset = subset
        self.epoch = 0

        num_used = subset if subset is not None else len(split)
        self._num_used = num_used
        self.num_items = num_used // world_size  # images served to this rank per epoch
        if len(self) == 0:
            raise ValueError(
                f"this loader would yield no batches: rank {rank} of {world_size} gets "
                f"{self.num_items} of {num_used} images, fewer than batch_size={batch_size} "
                f"with drop_last={drop_last}; use a smaller batch_size or world_size"
            )

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order the next iteration follows."""
        _check_int("epoch", epoch, minimum=0)
        self.epoch = epoch

    def __len__(self) -> int:
        """Return the number of batches per epoch on this rank."""
        if self.drop_last:
            return self.num_items // self.batch_size
        return -(-self.num_items // self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        return self.iter_from(0)

    def iter_from(self, batch_index: int) -> Iterator[Batch]:
        """Iterate the current epoch's batches from ``batch_index`` (0-based) on.

        The plan is fixed when this is called, so a later ``set_epoch`` does not
        change an iteration already started.
        """
        _check_int("batch_index", batch_index, minimum=0)
        if batch_index > len(self):
            raise ValueError(f"batch_index must be in 0..{len(self)} (batches per epoch), got {batch_index}")
        indices, augmentation = self._plan(self.epoch)
        return self._batches(indices, augmentation, batch_index)

    def indices(self, epoch: int | None = None) -> torch.Tensor:
        """Return the split indices this rank serves in ``epoch`` (default: the current one), in order.

        Includes the tail that ``drop_last`` skips.
        """
        if epoch is not None:
            _check_int("epoch", epoch, minimum=0)
        return self._plan(self.epoch if epoch is None else epoch)[0]

    def _plan(self, epoch: int) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
        """Return this rank's indices and, when augmenting, their (offsets_y, offsets_x, flip)."""
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
        n = self._num_used
        order = torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n)
        augmentation = None
        if self.augment:
            augmentation = draw_augmentation(n, self.CROP_PADDING, self.FLIP_PROBABILITY, generator)
        positions = torch.arange(self.rank, n - n % self.world_size, self.world_size)
        if augmentation is not None:
            augmentation = tuple(values[positions] for values in augmentation)
        return order[positions], augmentation

    def _batches(
        self, indices: torch.Tensor, augmentation: tuple[torch.Tensor, ...] | None, start_batch: int
    ) -> Iterator[Batch]:
        for batch_index in range(start_batch, len(self)):
            start = batch_index * self.batch_size
            stop = min(start + self.batch_size, len(indices))
            batch_indices = indices[start:stop]
            images = self.split.images[batch_indices]
            if augmentation is not None:
                offsets_y, offsets_x, flip = (values[start:stop] for values in augmentation)
                images = random_crop(images, offsets_y, offsets_x, self.CROP_PADDING)
                images = horizontal_flip(images, flip)
            yield images.to(torch.float32).div_(255.0), self.split.labels[batch_indices]


def _check_int(name: str, value: object, minimum: int | None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
