import csv
import importlib.util
import json
import sys
import time

import pytest
import torch

import gradmod.training.trainer as trainer_module
from gradmod.training import ConfigError, Trainer, TrainResult
from gradmod.training.schedule import warmup_cosine_factor
from test_trainer_support import one_thread, tiny_config, tiny_dataset  # noqa: F401 (fixture)

LOSS_DROP = 0.5  # the last steps' mean loss must fall below this fraction of the first steps'


@pytest.fixture(scope="module")
def dataset():
    return tiny_dataset()


class Recorder:
    """A controller that records the hooks the Trainer calls and logs one event."""

    def __init__(self):
        self.steps = []
        self.evaluations = []

    def on_step_end(self, trainer, step, loss):
        self.steps.append((step, loss))
        if step == 3:
            trainer.log_event("recorded", step, loss=torch.tensor(loss), layers=["a", "b"])

    def on_eval_end(self, trainer, step, val_accuracy):
        self.evaluations.append((step, val_accuracy))


def train_records(result):
    return [record for record in result.history if record["kind"] == "train"]


def test_fit_lowers_loss_and_learns(dataset):
    result = Trainer(tiny_config(epochs=3), dataset).fit()
    losses = result.losses()
    assert isinstance(result, TrainResult)
    assert len(losses) == result.steps == 3 * 256 // 32
    assert sum(losses[-4:]) / 4 < LOSS_DROP * sum(losses[:4]) / 4
    assert result.final_val_accuracy > 0.5  # chance is 0.1
    assert result.test_accuracy > 0.5
    assert result.epochs == 3.0
    assert not result.stopped_early
    assert not result.diverged


def test_same_seed_gives_same_initial_weights_across_arms(dataset):
    sgd = Trainer(tiny_config(), dataset)
    lgm = Trainer(tiny_config(**{"optimizer.name": "adamw", "optimizer.lr": 1e-3, "modulation.policy": "hypergradient"}), dataset)
    other_seed = Trainer(tiny_config(seed=1), dataset)
    for name, value in sgd.model.state_dict().items():
        assert torch.equal(lgm.model.state_dict()[name], value), name
    assert not torch.equal(other_seed.model.state_dict()["features.0.weight"], sgd.model.state_dict()["features.0.weight"])


def test_same_seed_gives_same_run(dataset):
    config = tiny_config(**{"data.augment": True, "model.options": {"width": 4, "hidden": 16, "dropout": 0.2}})
    first = Trainer(config, dataset).fit(max_steps=6)
    torch.manual_seed(999)  # global state must not matter
    second = Trainer(config, dataset).fit(max_steps=6)
    assert first.losses() == second.losses()


def test_records_have_documented_fields(dataset):
    result = Trainer(tiny_config(**{"run.eval_every": 4}), dataset).fit()
    records = train_records(result)
    assert set(records[0]) == {"kind", "step", "epoch", "loss", "accuracy", "lr", "images_per_second", "train_seconds"}
    assert [r["step"] for r in records] == list(range(1, 17))
    # The recorded lr is the one the step used: step 1 of a 2-step warmup runs at half the peak.
    assert records[0]["lr"] == pytest.approx(0.05 * 0.5)
    assert records[9]["lr"] == pytest.approx(0.05 * warmup_cosine_factor(9, 2, 16))
    assert all(r["images_per_second"] > 0 for r in records)
    assert all(0 <= r["accuracy"] <= 1 for r in records)
    seconds = [r["train_seconds"] for r in records]
    assert seconds == sorted(seconds)

    evaluations = result.evaluations()
    assert [r["step"] for r in evaluations] == [4, 8, 12, 16]  # 8 is also an epoch end: evaluated once
    assert result.final_val_accuracy == evaluations[-1]["val_accuracy"]
    assert result.history[-1]["kind"] == "test"
    assert result.history[-1]["test_accuracy"] == result.test_accuracy


def test_log_every_thins_training_records(dataset):
    result = Trainer(tiny_config(**{"run.log_every": 5}), dataset).fit()
    assert [r["step"] for r in train_records(result)] == [5, 10, 15, 16]


def test_gains_logged_under_namespaced_keys(dataset):
    config = tiny_config(**{"modulation.policy": "hypergradient", "run.gains_every": 4})
    trainer = Trainer(config, dataset)
    result = trainer.fit()
    layer = trainer.modulator.layer_names[0]
    with_gains = [r["step"] for r in train_records(result) if f"lgm/gain/{layer}" in r]
    assert with_gains == [4, 8, 12, 16]
    assert [entry["step"] for entry in result.gains_history] == [4, 8, 12, 16]
    assert set(result.gains_history[-1]["gains"]) == set(trainer.modulator.layer_names)
    assert result.gains_history[-1]["gains"] == trainer.modulator.gains()
    assert train_records(result)[-1]["lgm/skipped_steps"] == 0


def test_no_gain_keys_without_modulation(dataset):
    result = Trainer(tiny_config(), dataset).fit(max_steps=10)
    assert not any(key.startswith("lgm/") for r in result.history for key in r)
    assert result.gains_history == []


def test_target_step_and_seconds_recorded(dataset):
    result = Trainer(tiny_config(target_accuracy=0.3, epochs=3, **{"run.eval_every": 2}), dataset).fit()
    first = next(r for r in result.evaluations() if r["val_accuracy"] >= 0.3)
    assert result.steps_to_target == first["step"]
    assert result.seconds_to_target == first["train_seconds"]
    assert result.seconds_to_target > 0
    events = [e for e in result.events if e["kind"] == "target_reached"]
    assert events == [
        {"kind": "target_reached", "step": first["step"], "val_accuracy": first["val_accuracy"], "train_seconds": first["train_seconds"]}
    ]


def test_unreached_target_stays_none(dataset):
    result = Trainer(tiny_config(target_accuracy=1.0), dataset).fit(max_steps=4)
    assert result.steps_to_target is None
    assert result.seconds_to_target is None


def test_stop_at_target_ends_run(dataset):
    config = tiny_config(target_accuracy=0.3, epochs=3, **{"run.eval_every": 2, "run.stop_at_target": True})
    result = Trainer(config, dataset).fit()
    assert result.steps == result.steps_to_target
    assert result.stopped_early


def test_train_seconds_exclude_evaluation(dataset, monkeypatch):
    pause = 0.2
    evaluate = trainer_module.evaluate

    def slow_evaluate(*args, **kwargs):
        time.sleep(pause)
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "evaluate", slow_evaluate)
    started = time.perf_counter()
    result = Trainer(tiny_config(**{"run.eval_every": 2}), dataset).fit()
    wall = time.perf_counter() - started
    evaluations = len(result.evaluations()) + 1  # plus the test evaluation
    assert evaluations == 9
    assert result.train_seconds < wall - evaluations * pause


def test_max_steps_stops_without_shortening_schedule(dataset):
    trainer = Trainer(tiny_config(), dataset)
    result = trainer.fit(max_steps=5)
    assert result.steps == 5
    assert result.stopped_early
    assert result.test_accuracy is not None
    assert trainer.scheduler.total_steps == 16
    assert train_records(result)[-1]["lr"] == pytest.approx(0.05 * warmup_cosine_factor(4, 2, 16))


def test_config_max_steps_shortens_schedule(dataset):
    trainer = Trainer(tiny_config(max_steps=6), dataset)
    result = trainer.fit()
    assert result.steps == 6
    assert trainer.scheduler.total_steps == 6
    assert not result.stopped_early


def test_time_budget_stops_after_first_step(dataset):
    result = Trainer(tiny_config(), dataset).fit(time_budget=1e-9)
    assert result.steps == 1
    assert result.stopped_early


def test_fit_rejects_invalid_budgets(dataset):
    trainer = Trainer(tiny_config(), dataset)
    with pytest.raises(ValueError, match="max_steps must be an int >= 0, got -1"):
        trainer.fit(max_steps=-1)
    with pytest.raises(ValueError, match="time_budget must be > 0 seconds, got 0"):
        trainer.fit(time_budget=0)


def test_controllers_get_hooks_and_log_events(dataset, tmp_path):
    trainer = Trainer(tiny_config(**{"run.eval_every": 5, "run.out": str(tmp_path)}), dataset)
    recorder = Recorder()
    trainer.controllers.append(recorder)
    result = trainer.fit()
    assert [step for step, _ in recorder.steps] == list(range(1, 17))
    assert [loss for _, loss in recorder.steps] == result.losses()
    assert recorder.evaluations == [(r["step"], r["val_accuracy"]) for r in result.evaluations()]
    assert result.events == [{"kind": "recorded", "step": 3, "loss": recorder.steps[2][1], "layers": ["a", "b"]}]
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == result.events


def test_metrics_files_written(dataset, tmp_path):
    config = tiny_config(**{"run.out": str(tmp_path), "run.csv": True, "run.tensorboard": True, "modulation.policy": "hypergradient"})
    result = Trainer(config, dataset).fit()
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert records == result.history
    with (tmp_path / "metrics.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == len(result.history)
    assert rows[0]["kind"] == "train"
    assert float(rows[0]["loss"]) == result.history[0]["loss"]
    assert rows[-1]["kind"] == "test"
    assert any((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["test_accuracy"] == result.test_accuracy
    assert saved["history"] == result.history
    assert json.loads((tmp_path / "config.json").read_text()) == result.config
    assert (tmp_path / "checkpoint.pt").is_file()


def test_no_files_without_run_folder(dataset, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Trainer(tiny_config(), dataset).fit(max_steps=2)
    assert list(tmp_path.iterdir()) == []


def test_existing_checkpoint_needs_resume_or_overwrite(dataset, tmp_path):
    Trainer(tiny_config(**{"run.out": str(tmp_path)}), dataset).fit(max_steps=2)
    with pytest.raises(ConfigError, match="already contains a checkpoint; resume it"):
        Trainer(tiny_config(**{"run.out": str(tmp_path)}), dataset).fit(max_steps=2)
    result = Trainer(tiny_config(**{"run.out": str(tmp_path), "run.overwrite": True}), dataset).fit(max_steps=2)
    assert result.steps == 2


def test_train_subset_sets_epoch_length(dataset):
    trainer = Trainer(tiny_config(**{"data.train_subset": 64}), dataset)
    assert trainer.steps_per_epoch == 2
    assert trainer.total_steps == 4


@pytest.mark.parametrize(
    "dotted, message",
    [
        ({"data.train_subset": 1000}, "data.train_subset = 1000 exceeds the 256 training images"),
        ({"data.batch_size": 512}, "data.batch_size = 512 is larger than the 256 training images"),
        ({"model.options": {"widht": 4}}, "model: unknown override 'widht'"),
        ({"modulation.options": {"beta": 0.1}}, "modulation.options = .* but modulation.policy is 'off'"),
        ({"modulation.policy": "hypergradient", "modulation.options": {"bogus": 1}}, "modulation: invalid option 'bogus' for policy 'hypergradient'"),
        ({"optimizer.options": {"bogus": 1}}, "optimizer: invalid options"),
    ],
)
def test_invalid_settings_rejected_before_training(dataset, dotted, message):
    with pytest.raises(ConfigError, match=message):
        Trainer(tiny_config(**dotted), dataset)


def test_missing_extras_rejected_before_training(dataset, monkeypatch):
    monkeypatch.setitem(sys.modules, "pytorch_optimizer", None)  # makes the import fail
    with pytest.raises(ConfigError, match=r"optimizer: optimizer 'lamb' needs the pytorch-optimizer package"):
        Trainer(tiny_config(**{"optimizer.name": "lamb"}), dataset)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    with pytest.raises(ConfigError, match=r"run.tensorboard = true needs the tensorboard package"):
        Trainer(tiny_config(**{"run.tensorboard": True}), dataset)


def test_divergence_stops_training(dataset):
    result = Trainer(tiny_config(**{"optimizer.lr": 1e12, "schedule.warmup_steps": 0}), dataset).fit()
    assert result.diverged
    assert result.stopped_early
    assert result.steps < 16
    assert [e["kind"] for e in result.events] == ["diverged"]


def test_muon_trains_through_trainer(dataset):
    result = Trainer(tiny_config(**{"optimizer.name": "muon", "optimizer.lr": 0.01}), dataset).fit()
    assert sum(result.losses()[-4:]) < sum(result.losses()[:4])


def test_adversarial_training_records_pgd_accuracy(dataset):
    config = tiny_config(epochs=1, **{"adversarial.method": "fgsm_rs", "adversarial.eps": 0.1, "adversarial.monitor_images": 16})
    trainer = Trainer(config, dataset)
    result = trainer.fit()
    assert trainer.adversarial.method == "fgsm_rs"
    epoch_end = result.evaluations()[-1]
    assert 0.0 <= epoch_end["pgd_accuracy"] <= 1.0
    assert trainer.overfitting_monitor.history == [(1, epoch_end["pgd_accuracy"])]


def test_warmup_longer_than_run_warned(dataset, caplog):
    with caplog.at_level("WARNING", logger="gradmod.training.trainer"):
        Trainer(tiny_config(epochs=1, **{"schedule.warmup_steps": 100}), dataset)
    assert "schedule.warmup_steps = 100 covers all of this run's 8 steps" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="gradmod.training.trainer"):
        Trainer(tiny_config(epochs=1), dataset)
    assert "warmup_steps" not in caplog.text
