"""Find the folder that contains the four Fashion-MNIST files.

Search order:

1. the ``path`` argument (``--data`` on the command line). When given, it is
   the only place looked at, so a wrong path fails instead of silently
   falling back to another copy.
2. ``$GRADMOD_DATA``, when set and not empty.
3. the user cache, ``$XDG_CACHE_HOME/gradmod/fashion-mnist``, which defaults
   to ``~/.cache/gradmod/fashion-mnist`` (a relative ``$XDG_CACHE_HOME`` is
   ignored, as the XDG Base Directory Specification requires).
4. ``/usr/share/datasets/fashion-mnist``, where Debian's
   ``dataset-fashion-mnist`` package installs the files.

The first folder that contains all four files wins. A file may be stored
plain or gzipped (``name`` or ``name.gz``); when both exist the plain one is
used because it loads faster. A folder with only some of the files is skipped
with a warning. When no folder qualifies, ``DataError`` lists every place
looked at and what was missing there.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from gradmod.data.errors import FASHION_MNIST_FILES, DataError

__all__ = ["DataLocation", "SYSTEM_DATA_DIR", "candidate_dirs", "find_fashion_mnist", "user_cache_dir"]

logger = logging.getLogger(__name__)

SYSTEM_DATA_DIR = Path("/usr/share/datasets/fashion-mnist")


@dataclass(frozen=True)
class DataLocation:
    """The folder chosen, where it came from, and the path of each standard file.

    ``files`` maps each name of ``FASHION_MNIST_FILES`` (without ``.gz``) to the
    file that was found for it.
    """

    folder: Path
    origin: str
    files: dict[str, Path]


def user_cache_dir() -> Path:
    """Return the per-user cache folder for Fashion-MNIST."""
    cache_home = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(cache_home) if os.path.isabs(cache_home) else Path.home() / ".cache"
    return base / "gradmod" / "fashion-mnist"


def candidate_dirs(path: str | Path | None = None) -> list[tuple[str, Path]]:
    """Return the (origin, folder) pairs to search, in order."""
    if path is not None:
        return [("path argument", Path(path).expanduser())]
    candidates = []
    env_dir = os.environ.get("GRADMOD_DATA", "")
    if env_dir:
        candidates.append(("$GRADMOD_DATA", Path(env_dir).expanduser()))
    candidates.append(("user cache", user_cache_dir()))
    candidates.append(("system data", SYSTEM_DATA_DIR))
    return candidates


def find_fashion_mnist(path: str | Path | None = None) -> DataLocation:
    """Return the first folder in the search order that contains all four files.

    Raises DataError listing every folder looked at when none qualifies.
    """
    reports = []
    for origin, folder in candidate_dirs(path):
        files, problem = _scan_folder(folder)
        if problem is None:
            logger.info("using Fashion-MNIST from %s (%s)", folder, origin)
            return DataLocation(folder=folder, origin=origin, files=files)
        if files:
            logger.warning("skipping %s (%s): %s", folder, origin, problem)
        reports.append(f"{origin} {folder}: {problem}")
    if path is not None:
        raise DataError(f"Fashion-MNIST not found: {reports[0]}", path)
    raise DataError("Fashion-MNIST not found. Looked in: " + "; ".join(reports))


def _scan_folder(folder: Path) -> tuple[dict[str, Path], str | None]:
    """Return the files found in ``folder`` and a problem, or None when all four are there."""
    if not folder.exists():
        return {}, "folder does not exist"
    if not folder.is_dir():
        return {}, "not a folder"
    files = {}
    missing = []
    for name in FASHION_MNIST_FILES:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                files[name] = candidate
                break
        else:
            missing.append(f"{name}[.gz]")
    if missing:
        return files, "missing " + ", ".join(missing)
    return files, None
