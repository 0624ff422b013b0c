"""Download Fashion-MNIST for machines without Debian's ``dataset-fashion-mnist``.

Nothing in gradmod calls this by default and no test calls it: loading only
reads local files. Each of the four gzipped files is fetched from the first
mirror that works and written under a temporary name. The IDX reader then
validates it, including the standard counts of 60000 training and 10000 test
images, and only a valid file is renamed into place.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from gradmod.data.errors import FASHION_MNIST_FILES, DataError
from gradmod.data.idx import read_idx_images, read_idx_labels
from gradmod.data.locate import user_cache_dir

__all__ = ["MIRRORS", "download_fashion_mnist"]

logger = logging.getLogger(__name__)

# Base URLs of the published files, tried in order. The first is the
# dataset's GitHub repository, the second the S3 site its README links to.
MIRRORS = (
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
)

_EXPECTED_COUNTS = {
    "train-images-idx3-ubyte": 60000,
    "train-labels-idx1-ubyte": 60000,
    "t10k-images-idx3-ubyte": 10000,
    "t10k-labels-idx1-ubyte": 10000,
}


def download_fashion_mnist(dest: str | Path | None = None, timeout: float = 60.0) -> Path:
    """Download the four gzipped files into ``dest`` and return that folder.

    ``dest`` defaults to the user cache folder that ``load_fashion_mnist``
    searches. Files already present and valid are kept. Raises DataError when
    every mirror fails for a file or a downloaded file is invalid.

    NOTE: this needs network access, so the test suite never runs it.
    """
    if timeout <= 0:
        raise ValueError(f"timeout must be positive (seconds), got {timeout}")
    folder = Path(dest).expanduser() if dest is not None else user_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    for name in FASHION_MNIST_FILES:
        target = folder / f"{name}.gz"
        if target.is_file():
            try:
                _validate(target, name)
                logger.info("keeping valid %s", target)
                continue
            except DataError as error:
                logger.warning("replacing invalid %s: %s", target, error.problem)
        _download_one(name, target, timeout)
    return folder


def _download_one(name: str, target: Path, timeout: float) -> None:
    """Fetch ``name``.gz from the first mirror that works, validate it and move it to ``target``."""
    failures = []
    for base in MIRRORS:
        url = f"{base}{name}.gz"
        handle, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{name}.", suffix=".part")
        tmp_path = Path(tmp_name)
        try:
            logger.info("downloading %s", url)
            with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
                shutil.copyfileobj(response, out)
            _validate(tmp_path, name)
            tmp_path.replace(target)
            return
        except (urllib.error.URLError, OSError, DataError) as error:
            logger.warning("download of %s failed: %s", url, error)
            failures.append(f"{url} ({error})")
        finally:
            tmp_path.unlink(missing_ok=True)
    raise DataError("download failed from every mirror: " + "; ".join(failures), target)


def _validate(path: Path, name: str) -> None:
    """Raise DataError unless ``path`` is a valid IDX file with the standard count."""
    reader = read_idx_images if "images" in name else read_idx_labels
    count = len(reader(path))
    expected = _EXPECTED_COUNTS[name]
    if count != expected:
        raise DataError(f"wrong item count: expected {expected}, found {count}", path)
