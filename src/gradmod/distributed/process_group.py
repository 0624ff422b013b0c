"""Join and leave the default process group of a torchrun job.

``join_process_group`` calls ``torch.distributed.init_process_group`` with a
timeout, so that a collective that waits for a rank that crashed or hangs
raises an error on the other ranks after ``timeout_seconds`` instead of
blocking forever. ``leave_process_group`` destroys the group; call it once at
the end of the job (the ``gradmod train`` command does).
"""

from __future__ import annotations

import logging
from datetime import timedelta

import torch
import torch.distributed as dist

from gradmod.distributed.environment import ProcessPlace, choose_backend, detect_torchrun

__all__ = ["join_process_group", "leave_process_group", "current_place"]

logger = logging.getLogger(__name__)


def current_place() -> ProcessPlace:
    """Return this process's place in the initialised default group, or rank 0 of 1 without one."""
    if not (dist.is_available() and dist.is_initialized()):
        return ProcessPlace()
    local = detect_torchrun()
    return ProcessPlace(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local.local_rank)


def join_process_group(backend: str, timeout_seconds: float, device: torch.device) -> ProcessPlace:
    """Initialise the default process group when torchrun started this process with WORLD_SIZE > 1.

    An already initialised group (a user's own, or an earlier Trainer's) is used
    as it is. Without torchrun's variables nothing happens and rank 0 of 1 is returned.

    Args:
        backend: "auto", "gloo" or "nccl" (see ``choose_backend``).
        timeout_seconds: how long a collective may wait for the other ranks before it raises.
        device: this process's training device, which decides the "auto" backend.
    """
    if not timeout_seconds > 0:
        raise ValueError(f"timeout_seconds must be > 0, got {timeout_seconds!r}")
    if dist.is_available() and dist.is_initialized():
        return current_place()
    place = detect_torchrun()
    if not place.is_distributed:
        return place
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed support")
    chosen = choose_backend(backend, device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(
        backend=chosen, rank=place.rank, world_size=place.world_size, timeout=timedelta(seconds=timeout_seconds)
    )
    logger.info(
        "joined process group: rank %d of %d (local rank %d), backend %s, timeout %.0f s",
        place.rank,
        place.world_size,
        place.local_rank,
        chosen,
        timeout_seconds,
    )
    return place


def leave_process_group() -> None:
    """Destroy the default process group if there is one."""
    if dist.is_available() and dist.is_initialized():
        rank = dist.get_rank()
        dist.destroy_process_group()
        logger.info("rank %d left the process group", rank)
