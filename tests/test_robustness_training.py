"""Tests of the adversarial-training helpers: FGSM-RS / PGD crafting and the catastrophic-overfitting monitor."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gradmod.robustness import AdversarialTraining, CatastrophicOverfittingMonitor, robust_accuracy
from test_robustness_toys import make_cnn, make_mlp, make_patterns, trained_classifier

LINF_TOLERANCE = 1e-6


def linear_model() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 3)).to(torch.float64)


def hand_fgsm_rs_linear(model, images, labels, eps, seed):
    """Wong et al.'s FGSM-RS on a linear model, with the input gradient W^T (softmax - onehot) by hand."""
    layer = model[1]
    generator = torch.Generator().manual_seed(seed)
    noise = (torch.rand(images.shape, generator=generator, dtype=images.dtype) * 2 - 1) * eps
    lower, upper = (images - eps).clamp(min=0), (images + eps).clamp(max=1)
    start = torch.clamp(images + noise, lower, upper)
    probabilities = torch.softmax(start.flatten(1) @ layer.weight.T + layer.bias, dim=1)
    onehot = F.one_hot(labels, 3).to(images.dtype)
    gradient = ((probabilities - onehot) @ layer.weight).view_as(images)
    return torch.clamp(start + 1.25 * eps * gradient.sign(), lower, upper)


# --- AdversarialTraining -------------------------------------------------------


def test_fgsm_rs_matches_hand_computation():
    model = linear_model()
    images = torch.rand(16, 1, 3, 4, dtype=torch.float64)
    labels = torch.randint(0, 3, (16,))
    trainer = AdversarialTraining("fgsm_rs", eps=0.1, generator=torch.Generator().manual_seed(11))
    expected = hand_fgsm_rs_linear(model, images, labels, 0.1, seed=11)
    assert torch.equal(trainer.perturb(model, images, labels), expected)


def test_default_step_sizes_and_steps():
    fgsm_rs = AdversarialTraining("fgsm_rs", eps=0.08)
    madry = AdversarialTraining("pgd", eps=0.08)
    custom = AdversarialTraining("pgd", eps=0.08, steps=4, step_size=0.03)
    assert (fgsm_rs.steps, fgsm_rs.step_size) == (1, pytest.approx(0.1))
    assert (madry.steps, madry.step_size) == (10, pytest.approx(0.02))
    assert (custom.steps, custom.step_size) == (4, 0.03)
    assert "method='pgd'" in repr(custom)


@pytest.mark.parametrize("method", ["fgsm_rs", "pgd"])
def test_perturb_keeps_train_mode_and_grads(method):
    model = make_cnn().train()
    model[1].eval()
    seen = []
    model.register_forward_pre_hook(lambda module, args: seen.append(model.training))
    for parameter in model.parameters():
        parameter.grad = torch.full_like(parameter, 2.0)
    images, labels = torch.rand(8, 1, 28, 28), torch.randint(0, 10, (8,))
    adversarial = AdversarialTraining(method, eps=0.1, steps=None if method == "fgsm_rs" else 3).perturb(
        model, images, labels
    )
    assert seen and all(seen)
    assert model.training and not model[1].training
    assert all(torch.equal(p.grad, torch.full_like(p, 2.0)) for p in model.parameters())
    assert float((adversarial - images).abs().max()) <= 0.1 + LINF_TOLERANCE
    assert float(adversarial.min()) >= 0.0
    assert float(adversarial.max()) <= 1.0
    assert not adversarial.requires_grad


def test_pgd_training_l2_bound():
    model = make_mlp()
    images, labels = torch.rand(8, 1, 28, 28), torch.randint(0, 10, (8,))
    adversarial = AdversarialTraining("pgd", eps=1.0, steps=3, norm="l2").perturb(model, images, labels)
    assert float((adversarial - images).flatten(1).norm(dim=1).max()) <= 1.0 * (1 + 1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "free", "eps": 0.1}, r"method must be one of \('fgsm_rs', 'pgd'\), got 'free'"),
        ({"method": "fgsm_rs", "eps": 0.1, "steps": 3}, "steps must be 1 or None for method 'fgsm_rs'"),
        ({"method": "fgsm_rs", "eps": 0.1, "norm": "l2"}, "defined for norm 'linf' only"),
        ({"method": "pgd", "eps": -0.1}, r"eps must be a finite number >= 0.*-0\.1"),
        ({"method": "pgd", "eps": 0.1, "steps": 0}, "steps must be an integer >= 1, got 0"),
        ({"method": "pgd", "eps": 0.1, "norm": "l3"}, "norm must be one of"),
    ],
)
def test_adversarial_training_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AdversarialTraining(**kwargs)


def test_fgsm_rs_fine_tuning_raises_pgd_accuracy():
    # Adversarial fine-tuning of the standard toy model: from scratch, training
    # at this eps stalls at chance on the toy data.
    standard, images, labels = trained_classifier()
    robust, _, _ = trained_classifier()
    train_images, train_labels = make_patterns(2000, seed=1)
    crafter = AdversarialTraining("fgsm_rs", eps=0.08, generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam(robust.parameters(), lr=1e-3)
    batches = torch.Generator().manual_seed(1)
    for _ in range(100):
        index = torch.randint(0, 2000, (100,), generator=batches)
        adversarial = crafter.perturb(robust, train_images[index], train_labels[index])
        optimizer.zero_grad()
        F.cross_entropy(robust(adversarial), train_labels[index]).backward()
        optimizer.step()
    standard_accuracy = robust_accuracy(standard, images, labels, [0.08])[0.08]
    fine_tuned_accuracy = robust_accuracy(robust, images, labels, [0.08])[0.08]
    assert fine_tuned_accuracy >= standard_accuracy + 0.2


# --- CatastrophicOverfittingMonitor ----------------------------------------------


class ScriptedMonitor(CatastrophicOverfittingMonitor):
    """Monitor whose measurements come from a list, to test the collapse rule alone."""

    def __init__(self, accuracies, **kwargs):
        super().__init__(torch.rand(4, 1, 28, 28), torch.zeros(4, dtype=torch.long), eps=0.1, **kwargs)
        self.accuracies = list(accuracies)

    def measure(self, model):
        return self.accuracies.pop(0)


def test_monitor_flags_drop_from_best(caplog):
    monitor = ScriptedMonitor([0.30, 0.45, 0.40, 0.20])
    with caplog.at_level(logging.WARNING, logger="gradmod.robustness.overfitting_monitor"):
        results = [monitor.check(None, epoch) for epoch in range(4)]
    assert [result.collapsed for result in results] == [False, False, False, True]
    assert results[-1].best_epoch == 1
    assert results[-1].best_accuracy == 0.45
    assert "keep the checkpoint from epoch 1" in caplog.text


def test_monitor_flags_floor_after_reaching_it():
    monitor = ScriptedMonitor([0.05, 0.20, 0.12], floor=0.15)
    results = [monitor.check(None, epoch) for epoch in range(3)]
    assert [result.collapsed for result in results] == [False, False, True]
    assert "floor 0.1500" in results[-1].reason


def test_monitor_state_dict_round_trip():
    monitor = ScriptedMonitor([0.30, 0.45])
    monitor.check(None, 0)
    monitor.check(None, 1)
    resumed = ScriptedMonitor([0.20])
    resumed.load_state_dict(monitor.state_dict())
    assert resumed.best_epoch == 1
    assert resumed.history == [(0, 0.30), (1, 0.45)]
    assert resumed.check(None, 2).collapsed


def test_monitor_measures_seeded_pgd_accuracy():
    model, images, labels = trained_classifier()
    model.train()
    monitor = CatastrophicOverfittingMonitor(images, labels, eps=0.08, steps=10, seed=4)
    expected = robust_accuracy(model, images, labels, [0.08], steps=10, seed=4)[0.08]
    result = monitor.check(model, epoch=0)
    assert result.accuracy == pytest.approx(expected)
    assert monitor.check(model, epoch=1).accuracy == result.accuracy
    assert model.training


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_drop": 0.0}, r"max_drop must be in \(0, 1\]"),
        ({"floor": 1.5}, r"floor must be in \[0, 1\] or None, got 1\.5"),
        ({"eps": -1.0}, "eps must be a finite number >= 0"),
        ({"steps": 0}, "steps must be an integer >= 1, got 0"),
    ],
)
def test_monitor_rejects_bad_arguments(kwargs, message):
    settings = {"eps": 0.1, **kwargs}
    with pytest.raises(ValueError, match=message):
        CatastrophicOverfittingMonitor(torch.rand(4, 1, 28, 28), torch.zeros(4, dtype=torch.long), **settings)
