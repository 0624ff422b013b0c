"""The one exception raised for missing or invalid dataset files.

Every ``DataError`` message has three parts: the file or folder concerned, what
is wrong with it (expected against found), and how to get a good copy of the
data. Callers can catch this single class for any data problem.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DataError", "FASHION_MNIST_FILES", "HOW_TO_GET_DATA"]

# The four standard Fashion-MNIST file names, without the optional ``.gz``.
FASHION_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

HOW_TO_GET_DATA = (
    "To get Fashion-MNIST, install it with `apt-get install dataset-fashion-mnist` "
    "(files go to /usr/share/datasets/fashion-mnist), or place the four files "
    + ", ".join(FASHION_MNIST_FILES)
    + " (each may be gzipped, with a .gz suffix) in one folder and pass that folder "
    "with --data or $GRADMOD_DATA. "
    "gradmod.data.download_fashion_mnist(folder) downloads them."
)


class DataError(Exception):
    """A dataset file or folder is missing or invalid.

    Attributes:
        path: the file or folder concerned, or None when several are.
        problem: what is wrong, without the advice on getting the data.
    """

    def __init__(self, problem: str, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.problem = problem
        where = f"{self.path}: " if self.path is not None else ""
        super().__init__(f"{where}{problem}. {HOW_TO_GET_DATA}")
