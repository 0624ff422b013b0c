"""Run a function on W CPU processes joined by a gloo process group, as torchrun would.

Other test modules import ``run_ranks`` and the workers from here. Each rank
is a fresh process (the "spawn" start method) that sets torchrun's variables
(RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR=127.0.0.1, MASTER_PORT), runs one
torch thread, builds its own tiny dataset and returns its outcome through a
file, so that the test process can compare the ranks.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import torch

from gradmod.distributed import leave_process_group
from gradmod.training import Trainer
from test_trainer_support import tiny_config, tiny_dataset

# A ViT without BatchNorm and without dropout, so that W ranks with batch B / W
# compute the gradient of one process with batch B.
TINY_VIT = {"name": "vit", "options": {"patch_size": 7, "dim": 16, "depth": 1, "heads": 2, "mlp_ratio": 2.0}}


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def distributed_config(**dotted: Any) -> dict[str, Any]:
    """Return ``tiny_config`` for the tiny ViT with LGM on, one thread and no augmentation."""
    overrides = {
        "model.name": TINY_VIT["name"],
        "model.options": dict(TINY_VIT["options"]),
        "data.augment": False,
        "optimizer.name": "sgd",
        "optimizer.lr": 0.05,
        "modulation.policy": "hypergradient",
        "modulation.options": {"beta": 0.05},
        "threads": 1,
        "run.eval_every": 2,
        "distributed.timeout_seconds": 60.0,
    }
    overrides.update(dotted)
    return tiny_config(**overrides)


def _bootstrap(rank: int, world_size: int, port: int, worker: Callable, args: tuple, folder: str) -> None:
    os.environ.update(
        {
            "RANK": str(rank),
            "WORLD_SIZE": str(world_size),
            "LOCAL_RANK": str(rank),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
    )
    torch.set_num_threads(1)
    outcome_path = Path(folder) / f"rank{rank}.pt"
    try:
        outcome = {"value": worker(rank, *args)}
    except BaseException as error:  # noqa: BLE001 - reported to the test process, then re-raised
        torch.save({"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}, outcome_path)
        raise
    finally:
        leave_process_group()
    torch.save(outcome, outcome_path)


def run_ranks(
    worker: Callable, world_size: int, args: tuple, folder: Path, join_timeout: float = 120.0
) -> list[dict[str, Any]]:
    """Run ``worker(rank, *args)`` on ``world_size`` processes; return each rank's outcome.

    An outcome is ``{"value": ...}`` or ``{"error": message, "traceback": text}``,
    plus ``exitcode`` and ``seconds`` (from the start until the process ended).
    A process still alive after ``join_timeout`` seconds is killed and has exitcode None.
    """
    folder.mkdir(parents=True, exist_ok=True)
    context = multiprocessing.get_context("spawn")
    port = free_port()
    start = time.monotonic()
    processes = [
        context.Process(target=_bootstrap, args=(rank, world_size, port, worker, args, str(folder)))
        for rank in range(world_size)
    ]
    for process in processes:
        process.start()
    outcomes = []
    for rank, process in enumerate(processes):
        process.join(max(0.0, join_timeout - (time.monotonic() - start)))
        seconds = time.monotonic() - start
        exitcode = process.exitcode
        if process.is_alive():
            process.kill()
            process.join()
            exitcode = None
        path = folder / f"rank{rank}.pt"
        outcome = torch.load(path, weights_only=False) if path.exists() else {}
        outcome.update({"exitcode": exitcode, "seconds": seconds})
        outcomes.append(outcome)
    return outcomes


def train_outcome(trainer: Trainer) -> dict[str, Any]:
    """Return what the tests compare: weights, gains, step, losses, last validation and frozen parameters."""
    return {
        "step": trainer.step,
        "weights": {name: tensor.detach().clone() for name, tensor in trainer.model.state_dict().items()},
        "gains": trainer.modulator.gains() if trainer.modulator is not None else {},
        "losses": [record["loss"] for record in trainer.metrics.history if record["kind"] == "train"],
        "val_accuracy": trainer.last_validation["val_accuracy"],
        "frozen": [name for name, parameter in trainer.model.named_parameters() if not parameter.requires_grad],
    }


def train_worker(rank: int, config: dict[str, Any], steps: int, resume: str | None = None) -> dict[str, Any]:
    """Train to ``steps`` optimizer steps, from scratch or from the run folder ``resume``."""
    dataset = tiny_dataset()
    if resume is None:
        trainer = Trainer(config, dataset)
    else:
        trainer = Trainer.resume(resume, dataset)
    trainer.fit(max_steps=steps)
    return train_outcome(trainer)


class FailAtStep:
    """A pipeline controller that simulates a failing rank at one step.

    With ``hang_seconds`` 0 it raises at once (the process dies and its sockets
    close); otherwise it first sleeps that long, like a rank that is stuck.
    """

    def __init__(self, step: int, hang_seconds: float = 0.0) -> None:
        self.step = step
        self.hang_seconds = hang_seconds

    def on_step_end(self, trainer: Trainer, step: int, loss: float) -> None:
        if step == self.step:
            time.sleep(self.hang_seconds)
            raise RuntimeError(f"simulated failure at step {step}")


def failing_worker(
    rank: int, config: dict[str, Any], failing_rank: int, fail_step: int, hang_seconds: float, steps: int
) -> int:
    """Train like ``train_worker``, but rank ``failing_rank`` fails at ``fail_step`` (see ``FailAtStep``)."""
    trainer = Trainer(config, tiny_dataset())
    if rank == failing_rank:
        trainer.controllers.append(FailAtStep(fail_step, hang_seconds))
    trainer.fit(max_steps=steps)
    return trainer.step
