"""Data-parallel training on 2 CPU processes (gloo), against 1 process and against itself.

The spawned runs are shared through module-scoped fixtures, because starting
a process and importing torch costs seconds on a busy machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

import gradmod.training.trainer as trainer_module
from gradmod.cli import main
from gradmod.distributed import (
    ProcessPlace,
    TrainableDataParallel,
    choose_backend,
    detect_torchrun,
    leave_process_group,
    local_device,
)
from gradmod.training import ConfigError, Trainer
from idx_fixtures import write_fashion_mnist
from test_distributed_support import (
    distributed_config,
    failing_worker,
    free_port,
    run_ranks,
    train_outcome,
    train_worker,
)
from test_trainer_support import tiny_dataset

STEPS = 6
# Thresholds far from the gains and update ratios of the first steps, so that
# layers freeze early (at the same step in every run) and DDP must follow.
EARLY_FREEZING = {"enabled": True, "check_every": 2, "window": 1, "gain_threshold": 5.0, "ratio_threshold": 1.0}
# Gradients summed by the all-reduce round differently from one big batch's mean.
EQUIVALENCE_TOLERANCE = 1e-5


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def two_rank_run(tmp_path_factory):
    """Two ranks trained for STEPS steps from scratch, freezing layers on the way."""
    folder = tmp_path_factory.mktemp("two-rank")
    return run_ranks(train_worker, 2, (distributed_config(freezing=EARLY_FREEZING), STEPS), folder)


def _values(outcomes):
    for rank, outcome in enumerate(outcomes):
        assert outcome["exitcode"] == 0, f"rank {rank}: {outcome.get('traceback', outcome)}"
    return [outcome["value"] for outcome in outcomes]


def _max_weight_difference(first, second):
    return max((first[name] - second[name]).abs().max().item() for name in first)


# ---------------------------------------------------------------- environment
def test_detect_torchrun_without_variables_is_single():
    assert detect_torchrun({}) == ProcessPlace(rank=0, world_size=1, local_rank=0)


def test_detect_torchrun_reads_variables():
    place = detect_torchrun({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert place == ProcessPlace(rank=3, world_size=4, local_rank=1)
    assert place.is_distributed
    assert not place.is_main


def test_detect_torchrun_rejects_rank_outside_world():
    with pytest.raises(ValueError, match=r"RANK must be in 0\.\.1 for WORLD_SIZE=2, got 2"):
        detect_torchrun({"RANK": "2", "WORLD_SIZE": "2"})


def test_detect_torchrun_rejects_non_integer():
    with pytest.raises(ValueError, match=r"WORLD_SIZE must be an integer, got 'two'"):
        detect_torchrun({"RANK": "0", "WORLD_SIZE": "two"})


def test_choose_backend_auto_on_cpu_is_gloo():
    assert choose_backend("auto", torch.device("cpu")) == "gloo"
    assert choose_backend("gloo", torch.device("cpu")) == "gloo"


def test_choose_backend_rejects_nccl_on_cpu():
    with pytest.raises(ValueError, match=r"backend 'nccl' needs a CUDA device, got device 'cpu'"):
        choose_backend("nccl", torch.device("cpu"))


def test_choose_backend_rejects_unknown_name():
    with pytest.raises(ValueError, match=r"backend must be one of auto, gloo, nccl, got 'mpi'"):
        choose_backend("mpi", torch.device("cpu"))


def test_local_device_gives_each_rank_its_gpu():
    place = ProcessPlace(rank=3, world_size=4, local_rank=1)
    assert local_device("cuda", place) == torch.device("cuda", 1)
    assert local_device("cuda:0", place) == torch.device("cuda", 0)
    assert local_device("cpu", place) == torch.device("cpu")
    assert local_device("cuda", ProcessPlace()) == torch.device("cuda")


def test_trainer_rejects_batch_not_divisible_by_world(monkeypatch):
    monkeypatch.setattr(trainer_module, "join_process_group", lambda *args: ProcessPlace(rank=0, world_size=3))
    with pytest.raises(ConfigError, match=r"data.batch_size = 32 is the global batch and must be divisible by the 3"):
        Trainer(distributed_config(), tiny_dataset())


def test_config_rejects_unknown_backend():
    with pytest.raises(ConfigError, match=r"distributed.backend"):
        Trainer(distributed_config(**{"distributed.backend": "mpi"}), tiny_dataset())


# ------------------------------------------------------------------ training
def test_ranks_agree_on_weights_and_gains(two_rank_run):
    first, second = _values(two_rank_run)
    assert first["step"] == second["step"] == STEPS
    for name in first["weights"]:
        assert torch.equal(first["weights"][name], second["weights"][name]), name
    assert first["gains"] == second["gains"]
    assert first["losses"] == second["losses"]
    # The gains moved and layers froze, so the comparison covered both at work.
    assert any(abs(gain - 1.0) > 1e-6 for gain in first["gains"].values())
    assert first["frozen"]
    assert first["frozen"] == second["frozen"]


def test_two_ranks_match_one_process(two_rank_run):
    rank0, _ = _values(two_rank_run)
    trainer = Trainer(distributed_config(freezing=EARLY_FREEZING), tiny_dataset())
    trainer.fit(max_steps=STEPS)
    single = train_outcome(trainer)
    assert rank0["frozen"] == single["frozen"]

    assert _max_weight_difference(rank0["weights"], single["weights"]) < EQUIVALENCE_TOLERANCE
    assert rank0["gains"].keys() == single["gains"].keys()
    for name, gain in single["gains"].items():
        assert rank0["gains"][name] == pytest.approx(gain, abs=EQUIVALENCE_TOLERANCE), name
    assert rank0["losses"] == pytest.approx(single["losses"], abs=EQUIVALENCE_TOLERANCE)
    # Only rank 0 evaluates, on the whole split, as the single process does.
    assert rank0["val_accuracy"] == single["val_accuracy"]


def test_resume_continues_bit_identically(two_rank_run, tmp_path):
    uninterrupted, _ = _values(two_rank_run)
    out = tmp_path / "run"
    config = distributed_config(freezing=EARLY_FREEZING, **{"run.out": str(out)})
    halfway = _values(run_ranks(train_worker, 2, (config, STEPS // 2), tmp_path / "first"))
    assert halfway[0]["step"] == STEPS // 2
    assert (out / "checkpoint.pt").is_file()

    resumed = _values(run_ranks(train_worker, 2, (config, STEPS, str(out)), tmp_path / "second"))
    for outcome in resumed:
        assert outcome["step"] == STEPS
        for name, tensor in uninterrupted["weights"].items():
            assert torch.equal(outcome["weights"][name], tensor), name
        assert outcome["gains"] == uninterrupted["gains"]
        assert outcome["frozen"] == uninterrupted["frozen"]
    assert resumed[0]["losses"] == uninterrupted["losses"]


@pytest.mark.slow  # test_stuck_rank_times_out_the_other covers the harder case by default
def test_crashed_rank_stops_the_other(tmp_path):
    config = distributed_config(**{"distributed.timeout_seconds": 60.0})
    outcomes = run_ranks(failing_worker, 2, (config, 1, 3, 0.0, STEPS), tmp_path, join_timeout=90.0)
    survivor, crashed = outcomes

    assert crashed["exitcode"] not in (0, None)
    assert "simulated failure at step 3" in crashed["error"]
    assert survivor["exitcode"] not in (0, None), "rank 0 hung or finished without its peer"
    # gloo notices the closed connection at once, long before the 60 s timeout.
    assert "Connection closed by peer" in survivor["error"]
    assert survivor["seconds"] - crashed["seconds"] < 30.0


def test_stuck_rank_times_out_the_other(tmp_path):
    timeout, hang = 5.0, 10.0
    config = distributed_config(**{"distributed.timeout_seconds": timeout})
    outcomes = run_ranks(failing_worker, 2, (config, 1, 3, hang, STEPS), tmp_path, join_timeout=90.0)
    survivor, stuck = outcomes

    assert survivor["exitcode"] not in (0, None), "rank 0 hung or finished without its peer"
    assert "Timed out" in survivor["error"]
    # Rank 0 gave up after the timeout, before the stuck rank woke up (hang - timeout later).
    assert stuck["seconds"] - survivor["seconds"] > (hang - timeout) / 2


# --------------------------------------------------------------- DDP wrapper
@pytest.fixture
def single_rank_group(tmp_path):
    """A gloo process group of one rank in this process, destroyed afterwards."""
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1
    )
    yield
    leave_process_group()


def _train_through(wrapper, model, images, labels):
    model.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(wrapper(images), labels).backward()


def test_wrapper_rebuilds_after_freezing(single_rank_group):
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    data_parallel = TrainableDataParallel(model, torch.device("cpu"))
    images, labels = torch.randn(4, 3, 4), torch.tensor([0, 1, 2, 0])
    first = data_parallel.wrapper()
    assert data_parallel.wrapper() is first
    _train_through(first, model, images, labels)

    for parameter in model[1].parameters():
        parameter.requires_grad_(False)
    # Two steps: a stale wrapper fails on the second, waiting for the frozen layer's gradients.
    for _ in range(2):
        _train_through(data_parallel.wrapper(), model, images, labels)
    assert data_parallel.rebuilds == 2
    assert model[1].weight.grad is None
    assert model[3].weight.grad is not None


def test_wrapper_rejects_fully_frozen_model(single_rank_group):
    model = torch.nn.Linear(3, 2).requires_grad_(False)
    with pytest.raises(RuntimeError, match=r"every parameter is frozen"):
        TrainableDataParallel(model, torch.device("cpu")).wrapper()


# ------------------------------------------------------------- command line
def test_cli_rejects_non_positive_timeout(tmp_path, capsys):
    assert main(["train", "--dist-timeout", "0", "--out", str(tmp_path / "run")]) == 2
    assert "distributed.timeout_seconds" in capsys.readouterr().err


def test_cli_under_torchrun_needs_out(monkeypatch, capsys):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["train", "--max-steps", "1"]) == 2
    assert "under torchrun (WORLD_SIZE=2) pass --out DIR" in capsys.readouterr().err


@pytest.mark.slow
def test_torchrun_cli_writes_from_rank_zero(tmp_path):
    data = tmp_path / "data"
    write_fashion_mnist(data, num_train=200, num_test=40)
    config = tmp_path / "tiny.toml"
    config.write_text('[model]\nname = "cnn"\noptions = { width = 4, hidden = 16 }\n[data]\nval_size = 40\n')
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
        "-m", "gradmod", "train", "--config", str(config), "--batch-size", "32", "--max-steps", "4",
        "--threads", "1", "--quiet", "--data", str(data), "--out", str(out), "--dist-timeout", "60",
    ]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    environment.pop("WORLD_SIZE", None)
    completed = subprocess.run(command, capture_output=True, text=True, timeout=240, env=environment)

    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.count("run folder:") == 1
    result = json.loads((out / "result.json").read_text())
    assert result["steps"] == 4
    train_records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [record["step"] for record in train_records if record["kind"] == "train"] == [1, 2, 3, 4]
