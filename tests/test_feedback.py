import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from gradmod import LayerwiseGradientModulator
from gradmod.modulation import Hypergradient
from gradmod.training._fields import ConfigError
from gradmod.training.feedback import (
    FeedbackOptions,
    LossSpikeBackoff,
    StallRelaxation,
    build_controllers,
    is_spike,
    is_stalled,
)
from gradmod.training.freezing import FreezingOptions, LayerFreezing, freeze_candidates


class FakeTrainer:
    """The part of the Trainer that controllers use: model, modulator, events."""

    def __init__(self, policy="hypergradient"):
        torch.manual_seed(0)
        self.model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 2))
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.5, momentum=0.9)
        self.modulator = LayerwiseGradientModulator(self.model, policy=policy).attach(self.optimizer)
        self.events = []

    def log_event(self, kind, step, **values):
        self.events.append({"kind": kind, "step": step, **values})

    def train(self, steps):
        generator = torch.Generator().manual_seed(0)
        for _ in range(steps):
            inputs = torch.randn(16, 4, generator=generator)
            self.optimizer.zero_grad()
            self.model(inputs).pow(2).mean().backward()
            self.optimizer.step()


def test_is_spike_by_hand():
    assert is_spike(3.0, 1.0, 2.0)
    assert not is_spike(1.9, 1.0, 2.0)
    assert not is_spike(5.0, None, 2.0)
    assert is_spike(float("nan"), 1.0, 2.0)


def test_is_stalled_counts_and_resets():
    assert is_stalled(0.80, 0.85, 2, 3, 0.001) == (False, 0.85, 0)
    assert is_stalled(0.80, 0.8005, 1, 3, 0.001) == (False, 0.80, 2)
    assert is_stalled(0.80, 0.79, 2, 3, 0.001) == (True, 0.80, 0)


def test_spike_backs_off_positive_feedback_layers():
    trainer = FakeTrainer(policy=Hypergradient(beta=0.1))
    trainer.train(10)
    positive = [name for name, h in trainer.modulator.feedback().items() if h > 0]
    before = trainer.modulator.gains()
    controller = LossSpikeBackoff(trainer, FeedbackOptions(spike_warmup=3, spike_cooldown=5))

    for step, loss in enumerate([1.0, 1.0, 1.0, 1.0, 5.0, 5.0], start=1):
        controller.on_step_end(trainer, step, loss)

    assert [e["kind"] for e in trainer.events] == ["loss_spike_backoff"]  # the second spike is in cooldown
    event = trainer.events[0]
    assert event["step"] == 5
    assert event["layers"] == positive
    assert event["running_mean"] == pytest.approx(1.0)
    after = trainer.modulator.gains()
    for name in trainer.modulator.layer_names:
        expected = max(before[name] * 0.5, 0.1) if name in positive else before[name]
        assert after[name] == pytest.approx(expected, rel=1e-5)


def test_stall_relaxes_modulator():
    trainer = FakeTrainer(policy=Hypergradient(beta=0.1))
    trainer.train(10)
    log_gain = trainer.modulator._policy_state["log_gain"].clone()
    controller = StallRelaxation(trainer, FeedbackOptions(patience=2, relax_rate=0.5))

    for step, accuracy in enumerate([0.5, 0.6, 0.6, 0.59], start=1):
        controller.on_eval_end(trainer, step, accuracy)

    assert [e["kind"] for e in trainer.events] == ["stall_relax"]
    assert trainer.events[0]["step"] == 4
    torch.testing.assert_close(trainer.modulator._policy_state["log_gain"], log_gain * 0.5)


def test_freeze_candidates_prefix_and_budget():
    options = FreezingOptions(enabled=True, window=2, gain_threshold=0.5, ratio_threshold=1e-3, max_fraction=0.5)
    gains = torch.tensor([0.1, 0.1, 0.9, 0.1, 0.1, 0.1])
    ratios = torch.full((6,), 1e-5)
    frozen = torch.zeros(6, dtype=torch.bool)

    streak, chosen = freeze_candidates(gains, ratios, torch.zeros(6, dtype=torch.long), frozen, options)
    assert streak.tolist() == [1, 1, 0, 1, 1, 1]
    assert not chosen.any()

    streak, chosen = freeze_candidates(gains, ratios, streak, frozen, options)
    assert chosen.tolist() == [True, True, False, False, False, False]  # layer 2 breaks the prefix


def test_freeze_candidates_never_last_layer():
    options = FreezingOptions(enabled=True, window=1, max_fraction=1.0)
    low = torch.full((3,), 1e-9)
    _, chosen = freeze_candidates(low, low, torch.zeros(3, dtype=torch.long), torch.zeros(3, dtype=torch.bool), options)

    assert chosen.tolist() == [True, True, False]


def test_layer_freezing_freezes_and_resumes():
    trainer = FakeTrainer()
    trainer.train(2)
    options = FreezingOptions(enabled=True, check_every=1, window=1, gain_threshold=10.0, ratio_threshold=10.0)
    controller = LayerFreezing(trainer, options)

    controller.on_step_end(trainer, 1, 1.0)

    assert controller.frozen_layers() == ["0"]  # max_fraction 0.5 of 3 layers is 1 layer
    assert not trainer.model[0].weight.requires_grad
    assert trainer.events[0]["kind"] == "freeze"
    resumed = FakeTrainer()
    LayerFreezing(resumed, options).load_state_dict(controller.state_dict())
    assert not resumed.model[0].weight.requires_grad
    assert resumed.model[2].weight.requires_grad


def test_build_controllers_defaults_and_errors():
    config = SimpleNamespace(feedback={}, freezing={})
    kinds = [type(c).__name__ for c in build_controllers(config, FakeTrainer())]
    assert kinds == ["LossSpikeBackoff", "StallRelaxation"]

    off = SimpleNamespace(modulator=None)
    assert build_controllers(config, off) == []
    with pytest.raises(ConfigError, match="freezing.enabled = true needs modulation"):
        build_controllers(SimpleNamespace(feedback={}, freezing={"enabled": True}), off)
    with pytest.raises(ConfigError, match="unknown key 'feedback.spike_factr'.*did you mean 'spike_factor'"):
        build_controllers(SimpleNamespace(feedback={"spike_factr": 3.0}, freezing={}), off)
    with pytest.raises(ConfigError, match="feedback.spike_factor must be > 1.0, got 0.5"):
        build_controllers(SimpleNamespace(feedback={"spike_factor": 0.5}, freezing={}), off)
    with pytest.raises(ConfigError, match="freezing.window: expected an integer"):
        build_controllers(SimpleNamespace(feedback={}, freezing={"window": "3"}), off)
    assert math.isclose(FeedbackOptions.from_dict({"relax_rate": 1}).relax_rate, 1.0)
