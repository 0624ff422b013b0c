import random

import numpy as np
import pytest
import torch

from gradmod.training import Trainer
from gradmod.training.checkpoint import (
    CHECKPOINT_FORMAT,
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from test_trainer_support import one_thread, tiny_config, tiny_dataset  # noqa: F401 (fixture)


def test_save_and_load_round_trip(tmp_path):
    state = {"format": CHECKPOINT_FORMAT, "step": 3, "weights": torch.arange(4.0), "names": ["a"], "pair": (1, 2.5)}
    path = save_checkpoint(state, tmp_path / "checkpoint.pt")
    loaded = load_checkpoint(path)
    assert loaded["step"] == 3
    assert torch.equal(loaded["weights"], torch.arange(4.0))
    assert loaded["names"] == ["a"]
    assert loaded["pair"] == (1, 2.5)
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_load_accepts_run_folder(tmp_path):
    save_checkpoint({"step": 1}, tmp_path / "checkpoint.pt")
    assert load_checkpoint(tmp_path)["step"] == 1


def test_load_missing_checkpoint_names_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"checkpoint not found: {tmp_path / 'checkpoint.pt'}"):
        load_checkpoint(tmp_path)


def test_failed_save_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint({"step": 1}, path)

    def write_half_then_fail(obj, file):
        file.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", write_half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"step": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temporary file left


def test_newer_format_is_rejected(tmp_path):
    save_checkpoint({"format": CHECKPOINT_FORMAT + 1}, tmp_path / "checkpoint.pt")
    with pytest.raises(ValueError, match="newer than this gradmod reads"):
        load_checkpoint(tmp_path)


def draw_from_every_generator():
    return torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)], np.random.randn()


def test_rng_state_round_trip(tmp_path):
    np.random.randn()  # leaves a cached Gaussian, part of NumPy's state
    save_checkpoint({"rng": capture_rng_state()}, tmp_path / "rng.pt")
    expected = draw_from_every_generator()
    draw_from_every_generator()
    restore_rng_state(load_checkpoint(tmp_path / "rng.pt")["rng"])
    assert draw_from_every_generator() == expected


def test_trainer_checkpoint_contents(tmp_path):
    config = tiny_config(**{"run.out": str(tmp_path), "modulation.policy": "hypergradient"})
    trainer = Trainer(config, tiny_dataset())
    trainer.fit(max_steps=5)
    state = load_checkpoint(tmp_path)
    assert state["format"] == CHECKPOINT_FORMAT
    assert (state["step"], state["epoch"], state["batch_index"]) == (5, 0, 5)
    for key in ("model", "optimizer", "scheduler", "modulator", "controllers", "rng", "config", "history"):
        assert key in state, key
    assert state["scheduler"]["last_step"] == 5
    assert state["modulator"]["step_count"] == 5
    assert [entry["type"] for entry in state["controllers"]] == [type(c).__name__ for c in trainer.controllers]
    assert torch.equal(state["model"]["features.0.weight"], trainer.model.state_dict()["features.0.weight"])


def test_epoch_boundary_position(tmp_path):
    trainer = Trainer(tiny_config(**{"run.out": str(tmp_path)}), tiny_dataset())
    trainer.fit(max_steps=8)  # exactly one epoch of 8 batches
    state = load_checkpoint(tmp_path)
    assert (state["epoch"], state["batch_index"]) == (1, 0)


def test_old_checkpoint_without_new_keys_resumes(tmp_path):
    dataset = tiny_dataset()
    Trainer(tiny_config(**{"run.out": str(tmp_path)}), dataset).fit(max_steps=4)
    state = load_checkpoint(tmp_path)
    for key in ("events", "gains_history", "last_validation", "steps_to_target", "diverged", "train_seconds"):
        del state[key]
    save_checkpoint(state, tmp_path / "checkpoint.pt")
    resumed = Trainer.resume(tmp_path, dataset).fit()
    assert resumed.steps == 16
    assert resumed.events == []
