"""Fashion-MNIST: find, validate and load the IDX files, and serve mini-batches.

Typical use::

    from gradmod.data import BatchLoader, load_fashion_mnist

    data = load_fashion_mnist()  # or load_fashion_mnist("/path/to/folder")
    loader = BatchLoader(data.train, batch_size=128, seed=0, augment=True)
    for epoch in range(3):
        loader.set_epoch(epoch)
        for images, labels in loader:  # float32 [B, 1, 28, 28] in [0, 1], int64 [B]
            ...

Modules: ``errors`` (``DataError``), ``idx`` (the file format), ``locate``
(search order), ``fashion_mnist`` (splits), ``loader`` (``BatchLoader``),
``augment`` (batched crop and flip), ``download`` (optional download).
"""

from gradmod.data.augment import draw_augmentation, horizontal_flip, random_crop
from gradmod.data.download import download_fashion_mnist
from gradmod.data.errors import FASHION_MNIST_FILES, DataError
from gradmod.data.fashion_mnist import CLASSES, FashionMNIST, Split, load_fashion_mnist, split_train_val
from gradmod.data.idx import read_idx_images, read_idx_labels
from gradmod.data.loader import BatchLoader, epoch_seed
from gradmod.data.locate import DataLocation, find_fashion_mnist, user_cache_dir

__all__ = [
    "CLASSES",
    "FASHION_MNIST_FILES",
    "BatchLoader",
    "DataError",
    "DataLocation",
    "FashionMNIST",
    "Split",
    "download_fashion_mnist",
    "draw_augmentation",
    "epoch_seed",
    "find_fashion_mnist",
    "horizontal_flip",
    "load_fashion_mnist",
    "random_crop",
    "read_idx_images",
    "read_idx_labels",
    "split_train_val",
    "user_cache_dir",
]
