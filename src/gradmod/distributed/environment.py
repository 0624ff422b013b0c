"""Where this process sits in a torchrun job: rank, world size, local rank, device and backend.

torchrun (``torch.distributed.run``) starts one process per worker and passes
each one its place through environment variables: ``RANK`` (0..W-1 over all
nodes), ``WORLD_SIZE`` (W) and ``LOCAL_RANK`` (0..workers per node - 1), with
``MASTER_ADDR`` and ``MASTER_PORT`` for the rendezvous. A process without
``WORLD_SIZE``, or with ``WORLD_SIZE=1``, is a single-process run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["BACKENDS", "ProcessPlace", "detect_torchrun", "choose_backend", "local_device"]

# "auto": nccl for CUDA devices, gloo for the CPU.
BACKENDS = ("auto", "gloo", "nccl")


@dataclass(frozen=True)
class ProcessPlace:
    """This process's place in a data-parallel job.

    Attributes:
        rank: global rank, 0..world_size - 1; rank 0 writes files.
        world_size: number of processes (W); 1 for a single-process run.
        local_rank: rank among the processes on this node; selects the GPU.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that writes metrics, progress and checkpoints."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def detect_torchrun(environ: Mapping[str, str] | None = None) -> ProcessPlace:
    """Read RANK, WORLD_SIZE and LOCAL_RANK; return rank 0 of 1 when WORLD_SIZE is unset.

    Raises:
        ValueError: a variable that is not an integer, or a rank outside 0..WORLD_SIZE - 1.
    """
    environ = os.environ if environ is None else environ
    if "WORLD_SIZE" not in environ:
        return ProcessPlace()
    world_size = _read_int(environ, "WORLD_SIZE", default=None)
    rank = _read_int(environ, "RANK", default=0)
    local_rank = _read_int(environ, "LOCAL_RANK", default=rank)
    if world_size < 1:
        raise ValueError(f"WORLD_SIZE must be >= 1, got {world_size}; start the job with torchrun")
    if not 0 <= rank < world_size:
        raise ValueError(f"RANK must be in 0..{world_size - 1} for WORLD_SIZE={world_size}, got {rank}")
    if local_rank < 0:
        raise ValueError(f"LOCAL_RANK must be >= 0, got {local_rank}")
    return ProcessPlace(rank=rank, world_size=world_size, local_rank=local_rank)


def _read_int(environ: Mapping[str, str], name: str, default: int | None) -> int:
    text = environ.get(name)
    if text is None:
        if default is None:
            raise ValueError(f"environment variable {name} is missing; start the job with torchrun")
        return default
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {text!r}") from None


def choose_backend(requested: str, device: torch.device) -> str:
    """Return the process-group backend: ``requested``, or for "auto" nccl on CUDA and gloo otherwise.

    Raises:
        ValueError: an unknown name, or nccl for a non-CUDA device or without NCCL.
    """
    if requested not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {requested!r}")
    if requested == "auto":
        return "nccl" if device.type == "cuda" and dist.is_nccl_available() else "gloo"
    if requested == "nccl":
        if device.type != "cuda":
            raise ValueError(f"backend 'nccl' needs a CUDA device, got device {str(device)!r}; use 'gloo' or 'auto'")
        if not dist.is_nccl_available():
            raise ValueError("backend 'nccl' is not available in this torch build; use 'gloo' or 'auto'")
    return requested


def local_device(device: str | torch.device, place: ProcessPlace) -> torch.device:
    """Give each process of a multi-GPU job its own GPU: a bare "cuda" becomes ``cuda:LOCAL_RANK``.

    A device with an explicit index, or a CPU device, is returned unchanged.
    """
    device = torch.device(device)
    if device.type == "cuda" and device.index is None and place.is_distributed:
        return torch.device("cuda", place.local_rank)
    return device
