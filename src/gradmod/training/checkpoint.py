"""Atomic checkpoint files and the random-number-generator state they carry.

``save_checkpoint`` writes the whole state to a temporary file in the target's
folder, fsyncs it and renames it over the target with ``os.replace``. A reader
therefore sees either the old checkpoint or the new one, never a partial file,
even when the process dies mid-write. ``load_checkpoint`` uses
``torch.load(weights_only=True)``, so a checkpoint holds only tensors and plain
Python values (dicts, lists, tuples, numbers, strings).
"""

from __future__ import annotations

import logging
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "CHECKPOINT_NAME",
    "CHECKPOINT_FORMAT",
    "save_checkpoint",
    "load_checkpoint",
    "capture_rng_state",
    "restore_rng_state",
]

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
# Incremented when a key changes meaning; new keys get defaults on load instead.
CHECKPOINT_FORMAT = 1


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file, fsync, ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(state, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)
    logger.debug("wrote checkpoint %s (step %s)", path, state.get("step"))
    return path


def _fsync_directory(folder: Path) -> None:
    """Persist the rename itself; some platforms cannot open a folder, which is harmless."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint onto the CPU; a folder means its ``checkpoint.pt``."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    version = state.get("format", 0)
    if version > CHECKPOINT_FORMAT:
        raise ValueError(
            f"{path} has checkpoint format {version}, newer than this gradmod reads ({CHECKPOINT_FORMAT}); "
            "upgrade gradmod to resume it"
        )
    return state


def capture_rng_state() -> dict[str, Any]:
    """Return the states of torch (CPU and every initialised CUDA device), NumPy and Python ``random``."""
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
    return {
        "torch": torch.get_rng_state(),
        # Only when CUDA is in use, so that a CPU run does not create a CUDA context.
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else [],
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "python": random.getstate(),
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore the states that ``capture_rng_state`` returned."""
    torch.set_rng_state(state["torch"])
    cuda_states = state.get("cuda") or []
    if cuda_states and torch.cuda.is_available():
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
        else:
            logger.warning(
                "checkpoint has CUDA random states for %d devices but %d are visible; CUDA randomness is not restored",
                len(cuda_states),
                torch.cuda.device_count(),
            )
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["kind"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["position"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
