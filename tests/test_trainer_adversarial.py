"""The Trainer around adversarial training: keeping the most robust weights, clean-loss feedback."""

import pytest
import torch

from gradmod.cli import main
from gradmod.training import Trainer
from gradmod.training.adversarial import BEST_NAME, clean_feedback_gradients
from gradmod.training.checkpoint import load_checkpoint
from gradmod.training.evaluation import evaluate
from test_attack_cli import data_folder  # noqa: F401 (fixture)
from test_robustness_training import ScriptedMonitor
from test_trainer_support import one_thread, tiny_config, tiny_dataset  # noqa: F401

ADVERSARIAL = {"adversarial.method": "fgsm_rs", "adversarial.eps": 0.1, "adversarial.monitor_images": 16}


@pytest.fixture(scope="module")
def dataset():
    return tiny_dataset()


def collapsing_trainer(dataset, folder, **changes):
    """A 3-epoch fgsm_rs run whose monitor reads 0.50, 0.60, then 0.10: a collapse after epoch 3."""
    trainer = Trainer(tiny_config(epochs=3, **ADVERSARIAL, **{"run.out": str(folder)}, **changes), dataset)
    trainer.overfitting_monitor = ScriptedMonitor([0.50, 0.60, 0.10])
    return trainer


def test_collapse_restores_best_weights(dataset, tmp_path):
    trainer = collapsing_trainer(dataset, tmp_path)
    result = trainer.fit()

    assert result.restored_epoch == 2
    best = load_checkpoint(tmp_path / BEST_NAME)
    assert (best["epoch"], best["step"], best["pgd_accuracy"]) == (2, 2 * trainer.steps_per_epoch, 0.60)
    last = load_checkpoint(tmp_path / "checkpoint.pt")["model"]
    model = trainer.model.state_dict()
    assert any(not torch.equal(last[name], model[name]) for name in model)  # not the last step's weights
    for name, value in model.items():
        assert torch.equal(value, best["model"][name])
    # The final numbers are those of the restored weights.
    assert result.test_accuracy == evaluate(trainer.model, dataset.test, 64, trainer.device).accuracy
    kinds = [event["kind"] for event in result.events]
    assert kinds.index("catastrophic_overfitting") < kinds.index("restored_best_robust")


def test_restore_best_off_keeps_last(dataset, tmp_path, data_folder):
    trainer = collapsing_trainer(dataset, tmp_path, **{"adversarial.restore_best": False})
    result = trainer.fit()
    assert result.restored_epoch is None
    last = load_checkpoint(tmp_path / "checkpoint.pt")["model"]
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(value, last[name])
    # best.pt is still written, and gradmod attack can read it.
    arguments = ["--checkpoint", str(tmp_path / BEST_NAME), "--data", str(data_folder), "--no-art"]
    assert main(["attack", *arguments, "--eps", "0.1", "--steps", "2", "--images", "16"]) == 0
    assert (tmp_path / "robustness.json").exists()


def test_resumed_run_restores_same_weights(dataset, tmp_path):
    whole = collapsing_trainer(dataset, tmp_path / "whole")
    whole.fit()

    first = collapsing_trainer(dataset, tmp_path / "parts")
    first.fit(max_steps=2 * first.steps_per_epoch + 1)  # past the best epoch, before the collapse
    assert first.restored_epoch is None  # a run stopped sooner keeps its weights
    resumed = Trainer.resume(tmp_path / "parts", dataset)
    monitor = ScriptedMonitor([0.10])  # the measurement still to come
    monitor.load_state_dict(resumed.overfitting_monitor.state_dict())
    resumed.overfitting_monitor = monitor
    result = resumed.fit()
    assert result.restored_epoch == 2
    for name, value in whole.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name])


def test_clean_gradients_leave_state_alone(dataset):
    trainer = Trainer(tiny_config(**ADVERSARIAL, **{"modulation.policy": "hypergradient"}), dataset)
    model, modulator = trainer.model, trainer.modulator
    images = dataset.train.images[:8].float() / 255
    labels = dataset.train.labels[:8]
    buffers = [buffer.clone() for buffer in model.buffers()]
    model.train()
    grads = clean_feedback_gradients(model, modulator, images, labels)

    assert all(p.grad is None for p in model.parameters())
    for before, after in zip(buffers, model.buffers()):
        assert torch.equal(before, after)
    model.zero_grad()
    torch.nn.functional.cross_entropy(model(images), labels).backward()
    for grad, param in zip(grads, modulator.parameters()):
        torch.testing.assert_close(grad, param.grad)


def test_feedback_loss_changes_gains(dataset):
    def fit(feedback_loss):
        changes = {"modulation.policy": "hypergradient", "modulation.feedback_loss": feedback_loss}
        trainer = Trainer(tiny_config(epochs=1, **ADVERSARIAL, **changes), dataset)
        seen = []
        original = trainer.modulator.set_feedback_gradients
        trainer.modulator.set_feedback_gradients = lambda grads: (seen.append(1), original(grads))
        trainer.fit()
        return trainer.modulator.gain_tensor(), len(seen), trainer.steps_per_epoch

    adversarial_gains, adversarial_calls, _ = fit("adversarial")
    clean_gains, clean_calls, steps = fit("clean")
    assert adversarial_calls == 0
    assert clean_calls == steps
    assert not torch.equal(adversarial_gains, clean_gains)

