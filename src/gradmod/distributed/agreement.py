"""Collectives that keep every rank's view of the run identical.

Each rank trains on its own shard, so its loss, its clock and the signals it
receives differ. These helpers combine them, so that all ranks log the same
numbers and take the same stop decisions at the same step. Without them one
rank could leave the loop while the others wait in the next all-reduce.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

__all__ = ["sum_step_statistics", "agree_on_stop", "broadcast_numbers"]


def sum_step_statistics(loss: float, correct: int, count: int, device: torch.device) -> tuple[float, int, int]:
    """Return the global mean loss, correct predictions and images of one step over all ranks.

    Each rank's mean loss is weighted by its batch size, so the result is the
    mean over the global batch, as a single process with that batch computes it
    (up to float64 rounding of the sum).
    """
    values = torch.tensor([loss * count, float(correct), float(count)], dtype=torch.float64, device=device)
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    loss_sum, correct_sum, count_sum = values.tolist()
    return loss_sum / count_sum, round(correct_sum), round(count_sum)


def agree_on_stop(signum: int | None, out_of_time: bool, device: torch.device) -> tuple[int | None, bool]:
    """Return (signal, out of time) over all ranks: the largest signal number, and whether any rank is out of time."""
    values = torch.tensor([signum or 0, int(out_of_time)], dtype=torch.int64, device=device)
    dist.all_reduce(values, op=dist.ReduceOp.MAX)
    agreed_signum, agreed_out_of_time = values.tolist()
    return (agreed_signum or None), bool(agreed_out_of_time)


def broadcast_numbers(values: list[float] | None, length: int, device: torch.device) -> list[float]:
    """Return rank 0's ``values`` (``length`` float64 numbers) on every rank; other ranks pass None."""
    if dist.get_rank() == 0:
        if values is None or len(values) != length:
            raise ValueError(f"rank 0 must pass {length} values, got {values!r}")
        tensor = torch.tensor(values, dtype=torch.float64, device=device)
    else:
        tensor = torch.empty(length, dtype=torch.float64, device=device)
    dist.broadcast(tensor, src=0)
    return tensor.tolist()
