"""A resumed run must follow the uninterrupted run bit for bit on CPU."""

import json
import os
import signal

import pytest
import torch

from gradmod.training import Trainer, TrainingInterrupted
from gradmod.training.interrupt import StopOnSignal
from test_trainer_support import one_thread, tiny_config, tiny_dataset  # noqa: F401 (fixture)

TOTAL_STEPS = 16  # 2 epochs of 256 images in batches of 32


@pytest.fixture(scope="module")
def dataset():
    return tiny_dataset()


def noisy_config(policy, out=None, **dotted):
    """Dropout, augmentation and periodic evaluation on: everything that draws random numbers or reacts."""
    config = tiny_config(
        **{
            "model.options": {"width": 4, "hidden": 16, "dropout": 0.3},
            "data.augment": True,
            "modulation.policy": policy,
            "run.eval_every": 3,
            "run.gains_every": 2,
            "target_accuracy": 0.3,
            **dotted,
        }
    )
    if policy != "off":
        # Hair-trigger feedback, so that the stall controller acts (and carries state) within 16 steps.
        config["feedback"] = {"spike_warmup": 2, "spike_factor": 1.02, "spike_cooldown": 1, "patience": 1}
    if out is not None:
        config["run"]["out"] = str(out)
    return config


def without_times(records):
    """Drop wall-clock fields, which differ between any two runs."""
    return [{k: v for k, v in r.items() if k not in ("train_seconds", "images_per_second")} for r in records]


def assert_same_run(resumed_trainer, resumed, reference_trainer, reference):
    assert resumed.losses() == reference.losses()
    assert len(resumed.losses()) == TOTAL_STEPS
    for name, value in reference_trainer.model.state_dict().items():
        assert torch.equal(resumed_trainer.model.state_dict()[name], value), name
    assert without_times(resumed.history) == without_times(reference.history)
    assert resumed.steps_to_target == reference.steps_to_target
    assert [{k: v for k, v in e.items() if k != "train_seconds"} for e in resumed.events] == [
        {k: v for k, v in e.items() if k != "train_seconds"} for e in reference.events
    ]
    assert resumed.gains_history == reference.gains_history
    if reference_trainer.modulator is not None:
        assert "stall_relax" in {e["kind"] for e in reference.events}
    if reference_trainer.modulator is not None:
        assert torch.equal(resumed_trainer.modulator.gain_tensor(), reference_trainer.modulator.gain_tensor())


@pytest.fixture(scope="module", params=["off", "hypergradient"])
def reference(request, dataset):
    """The uninterrupted run, per modulation setting.

    It runs before the function-scoped ``one_thread`` fixture, so it sets one
    thread itself: CPU reductions round differently with another thread count.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        trainer = Trainer(noisy_config(request.param), dataset)
        result = trainer.fit()
    finally:
        torch.set_num_threads(previous)
    return request.param, trainer, result


def test_resume_after_max_steps_is_bit_exact(reference, dataset, tmp_path):
    policy, reference_trainer, reference_result = reference
    first = Trainer(noisy_config(policy, out=tmp_path), dataset)
    first.fit(max_steps=7)  # mid-epoch, between evaluations
    assert first.step == 7

    resumed_trainer = Trainer.resume(tmp_path, dataset)
    assert (resumed_trainer.epoch, resumed_trainer.batch_index) == (0, 7)
    resumed = resumed_trainer.fit()
    assert_same_run(resumed_trainer, resumed, reference_trainer, reference_result)


def test_resume_from_periodic_checkpoint_after_crash(reference, dataset, tmp_path):
    policy, reference_trainer, reference_result = reference

    class Crash:
        def on_step_end(self, trainer, step, loss):
            if step == 11:
                raise RuntimeError("simulated crash")

    crashed = Trainer(noisy_config(policy, out=tmp_path, **{"run.checkpoint_every": 4}), dataset)
    crashed.controllers.append(Crash())
    with pytest.raises(RuntimeError, match="simulated crash"):
        crashed.fit()

    resumed_trainer = Trainer.resume(tmp_path, dataset)
    assert resumed_trainer.step == 8
    resumed = resumed_trainer.fit()
    assert_same_run(resumed_trainer, resumed, reference_trainer, reference_result)
    # The records the crashed run wrote after its checkpoint are replaced, not repeated.
    steps = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["kind"] == "train"]
    assert steps == list(range(1, TOTAL_STEPS + 1))


def test_sigterm_checkpoints_then_resumes_exactly(reference, dataset, tmp_path):
    policy, reference_trainer, reference_result = reference

    class SendSigterm:
        def on_step_end(self, trainer, step, loss):
            if step == 6:
                os.kill(os.getpid(), signal.SIGTERM)

    previous_handler = signal.getsignal(signal.SIGTERM)
    trainer = Trainer(noisy_config(policy, out=tmp_path), dataset)
    trainer.controllers.append(SendSigterm())
    with pytest.raises(TrainingInterrupted) as stopped:
        trainer.fit()
    assert signal.getsignal(signal.SIGTERM) is previous_handler
    assert stopped.value.step == 6
    assert stopped.value.exit_code == 143
    assert stopped.value.checkpoint == tmp_path / "checkpoint.pt"
    assert f"resume with: gradmod train --resume {tmp_path}" in str(stopped.value)
    assert not (tmp_path / "result.json").exists()

    resumed_trainer = Trainer.resume(tmp_path, dataset)
    assert resumed_trainer.step == 6
    assert_same_run(resumed_trainer, resumed_trainer.fit(), reference_trainer, reference_result)


def test_interrupt_without_folder_reports_no_checkpoint(dataset):
    class SendSigint:
        def on_step_end(self, trainer, step, loss):
            if step == 2:
                os.kill(os.getpid(), signal.SIGINT)

    trainer = Trainer(tiny_config(), dataset)
    trainer.controllers.append(SendSigint())
    with pytest.raises(TrainingInterrupted, match="no checkpoint was written") as stopped:
        trainer.fit()
    assert stopped.value.exit_code == 130
    assert stopped.value.checkpoint is None


def test_second_signal_raises_keyboard_interrupt():
    with StopOnSignal() as stop:
        stop.handle(signal.SIGINT)
        assert stop.requested
        with pytest.raises(KeyboardInterrupt, match="second SIGINT"):
            stop.handle(signal.SIGINT)


def test_resume_of_finished_run_only_evaluates(dataset, tmp_path):
    finished = Trainer(tiny_config(**{"run.out": str(tmp_path)}), dataset).fit()
    again = Trainer.resume(tmp_path, dataset).fit()
    assert again.steps == finished.steps
    assert again.losses() == finished.losses()
    assert again.test_accuracy == finished.test_accuracy


def test_resume_rejects_other_controllers(dataset, tmp_path):
    Trainer(noisy_config("hypergradient", out=tmp_path), dataset).fit(max_steps=3)
    with pytest.raises(ValueError, match="the checkpoint has controllers .* but the config builds"):
        Trainer.resume(tmp_path, dataset, overrides={"feedback": {"spike_backoff": False}})
