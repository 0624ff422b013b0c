"""Tests of gradmod's FGSM and PGD: exact values, threat-model bounds, mode and gradient hygiene."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gradmod.robustness import default_step_size, fgsm, pgd
from gradmod.robustness._balls import L2Ball
from test_robustness_toys import make_cnn, make_mlp, trained_classifier

# Float32 rounding slack of |x_adv - x| against eps.
LINF_TOLERANCE = 1e-6
# Relative slack of the L2 norm after rescaling by eps / ||d|| in float32.
L2_RELATIVE_TOLERANCE = 1e-5


def linear_model(dtype: torch.dtype = torch.float64) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 3)).to(dtype)


def hand_fgsm_linear(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, eps: float, sign: float) -> torch.Tensor:
    """x + sign * eps * sign(W^T (softmax(Wx + b) - onehot(y))), clipped to [0, 1]."""
    layer = model[1]
    flat = images.flatten(1)
    probabilities = torch.softmax(flat @ layer.weight.T + layer.bias, dim=1)
    onehot = F.one_hot(labels, probabilities.shape[1]).to(probabilities.dtype)
    gradient = (probabilities - onehot) @ layer.weight
    return (flat + sign * eps * gradient.sign()).clamp(0.0, 1.0).view_as(images)


def random_batch(batch: int = 8, shape=(1, 28, 28), classes: int = 10):
    return torch.rand(batch, *shape), torch.randint(0, classes, (batch,))


class ModeRecorder:
    """Forward pre-hook that stores the ``training`` flag of every submodule at each call."""

    def __init__(self, model: nn.Module) -> None:
        self.seen: list[list[bool]] = []
        model.register_forward_pre_hook(lambda module, args: self.seen.append([m.training for m in model.modules()]))


# --- exact values ----------------------------------------------------------


def test_fgsm_linear_matches_hand_gradient():
    model = linear_model()
    images = torch.rand(16, 1, 3, 4, dtype=torch.float64)
    labels = torch.randint(0, 3, (16,))
    expected = hand_fgsm_linear(model, images, labels, eps=0.1, sign=1.0)
    assert torch.equal(fgsm(model, images, labels, 0.1), expected)


def test_fgsm_targeted_linear_matches_hand_gradient():
    model = linear_model()
    images = torch.rand(16, 1, 3, 4, dtype=torch.float64)
    targets = torch.randint(0, 3, (16,))
    expected = hand_fgsm_linear(model, images, targets, eps=0.05, sign=-1.0)
    assert torch.equal(fgsm(model, images, targets, 0.05, targeted=True), expected)


def test_fgsm_l2_step_has_length_eps():
    model = linear_model()
    images = torch.full((4, 1, 3, 4), 0.5, dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 0])
    adversarial = fgsm(model, images, labels, 0.2, norm="l2")
    norms = (adversarial - images).flatten(1).norm(dim=1)
    torch.testing.assert_close(norms, torch.full((4,), 0.2, dtype=torch.float64))


def test_pgd_default_step_size_is_madry():
    model = make_mlp()
    images, labels = random_batch()
    default = pgd(model, images, labels, eps=0.1, steps=8, generator=torch.Generator().manual_seed(3))
    explicit = pgd(model, images, labels, eps=0.1, steps=8, step_size=2.5 * 0.1 / 8, generator=torch.Generator().manual_seed(3))
    assert default_step_size(0.1, 8) == pytest.approx(0.03125)
    assert torch.equal(default, explicit)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_pgd_eps_zero_returns_input(norm):
    model = make_mlp()
    images, labels = random_batch()
    adversarial = pgd(model, images, labels, eps=0.0, steps=5, step_size=0.05, norm=norm)
    assert torch.equal(adversarial, images)


def test_pgd_generator_reproduces_random_start():
    model = make_mlp()
    images, labels = random_batch()
    first = pgd(model, images, labels, eps=0.1, steps=2, generator=torch.Generator().manual_seed(5))
    second = pgd(model, images, labels, eps=0.1, steps=2, generator=torch.Generator().manual_seed(5))
    other = pgd(model, images, labels, eps=0.1, steps=2, generator=torch.Generator().manual_seed(6))
    assert torch.equal(first, second)
    assert not torch.equal(first, other)


def test_pgd_batch_size_matches_one_batch():
    model = make_mlp()
    images, labels = random_batch(10)
    whole = pgd(model, images, labels, eps=0.1, steps=3, random_start=False)
    split = pgd(model, images, labels, eps=0.1, steps=3, random_start=False, batch_size=3)
    torch.testing.assert_close(split, whole, rtol=0, atol=1e-6)


def test_l2_random_start_uniform_in_ball():
    # In 2 dimensions a uniform point lies inside radius eps / sqrt(2) with probability 1/2;
    # points on the sphere would never do so.
    center = torch.full((20000, 1, 2, 1), 0.5)
    points = L2Ball(center, 0.1).random_point(torch.Generator().manual_seed(0))
    radius = (points - center).flatten(1).norm(dim=1)
    inner_share = float((radius < 0.1 / math.sqrt(2)).float().mean())
    assert float(radius.max()) <= 0.1 * (1 + L2_RELATIVE_TOLERANCE)
    assert inner_share == pytest.approx(0.5, abs=0.02)


# --- threat-model bounds ---------------------------------------------------


@pytest.mark.parametrize("attack", ["fgsm", "pgd"])
def test_linf_perturbation_within_eps_and_range(attack):
    model = make_mlp()
    images, labels = random_batch(32)
    if attack == "fgsm":
        adversarial = fgsm(model, images, labels, 0.1)
    else:
        adversarial = pgd(model, images, labels, eps=0.1, steps=10, step_size=0.05)
    assert float((adversarial - images).abs().max()) <= 0.1 + LINF_TOLERANCE
    assert float(adversarial.min()) >= 0.0
    assert float(adversarial.max()) <= 1.0


@pytest.mark.parametrize("attack", ["fgsm", "pgd"])
def test_l2_perturbation_within_eps_and_range(attack):
    model = make_mlp()
    images, labels = random_batch(32)
    if attack == "fgsm":
        adversarial = fgsm(model, images, labels, 1.5, norm="l2")
    else:
        adversarial = pgd(model, images, labels, eps=1.5, steps=10, step_size=0.5, norm="l2")
    norms = (adversarial - images).flatten(1).norm(dim=1)
    assert float(norms.max()) <= 1.5 * (1 + L2_RELATIVE_TOLERANCE)
    assert float(adversarial.min()) >= 0.0
    assert float(adversarial.max()) <= 1.0


# --- attack strength on a trained model --------------------------------------


def _accuracy(model, images, labels):
    with torch.no_grad():
        return float((model(images).argmax(1) == labels).float().mean())


def test_pgd_large_eps_accuracy_near_zero():
    model, images, labels = trained_classifier()
    assert _accuracy(model, images, labels) == 1.0
    adversarial = pgd(model, images, labels, eps=0.5, steps=20)
    assert _accuracy(model, adversarial, labels) <= 0.01


def test_pgd_not_weaker_than_fgsm():
    model, images, labels = trained_classifier()
    pgd_accuracy = _accuracy(model, pgd(model, images, labels, eps=0.08, steps=20), labels)
    fgsm_accuracy = _accuracy(model, fgsm(model, images, labels, 0.08), labels)
    assert pgd_accuracy <= fgsm_accuracy
    assert fgsm_accuracy - pgd_accuracy >= 0.1


def test_targeted_pgd_raises_target_probability():
    model, images, labels = trained_classifier()
    targets = (labels + 1) % 10
    adversarial = pgd(model, images, targets, eps=0.1, steps=20, targeted=True)
    with torch.no_grad():
        before = torch.softmax(model(images), 1).gather(1, targets[:, None]).squeeze(1)
        after = torch.softmax(model(adversarial), 1).gather(1, targets[:, None]).squeeze(1)
    assert bool((after > before).all())
    assert float((model(adversarial).argmax(1) == targets).float().mean()) >= 0.5


# --- model mode and parameter gradients --------------------------------------


@pytest.mark.parametrize("train", [True, False])
def test_attack_runs_in_eval_and_restores_mode(train):
    model = make_cnn().train(train)
    recorder = ModeRecorder(model)
    images, labels = random_batch(4)
    pgd(model, images, labels, eps=0.1, steps=2)
    assert len(recorder.seen) == 2
    assert all(not any(flags) for flags in recorder.seen)
    assert all(module.training == train for module in model.modules())


def test_attack_restores_mixed_submodule_modes():
    model = make_cnn().train()
    model[1].eval()  # batch norm frozen while the rest trains
    images, labels = random_batch(4)
    fgsm(model, images, labels, 0.1)
    assert model.training
    assert not model[1].training
    assert model[5].training


def test_attack_restores_mode_after_error():
    model = make_cnn().train()
    images, _ = random_batch(4)
    with pytest.raises(ValueError, match="below the model's 10 classes"):
        pgd(model, images, torch.tensor([0, 1, 2, 10]), eps=0.1)
    assert all(module.training for module in model.modules())


def test_attack_leaves_none_grads_none():
    model = make_cnn()
    images, labels = random_batch(4)
    pgd(model, images, labels, eps=0.1, steps=3)
    assert all(parameter.grad is None for parameter in model.parameters())


def test_attack_leaves_existing_grads_identical():
    model = make_cnn()
    for parameter in model.parameters():
        parameter.grad = torch.randn_like(parameter)
    saved = [parameter.grad.clone() for parameter in model.parameters()]
    images, labels = random_batch(4)
    pgd(model, images, labels, eps=0.1, steps=3)
    fgsm(model, images, labels, 0.1)
    for parameter, grad in zip(model.parameters(), saved):
        assert torch.equal(parameter.grad, grad)


def test_attack_works_under_no_grad():
    model = make_mlp()
    images, labels = random_batch()
    with torch.no_grad():
        adversarial = fgsm(model, images, labels, 0.1)
    assert float((adversarial - images).abs().max()) == pytest.approx(0.1, abs=LINF_TOLERANCE)


def test_attack_rejects_inference_mode():
    model = make_mlp()
    images, labels = random_batch()
    with torch.inference_mode(), pytest.raises(RuntimeError, match="inference_mode"):
        fgsm(model, images, labels, 0.1)


# --- input conventions -------------------------------------------------------


def test_uint8_images_are_scaled_by_255():
    model = make_mlp()
    pixels = torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8)
    labels = torch.randint(0, 10, (6,))
    from_uint8 = fgsm(model, pixels, labels, 0.1)
    from_float = fgsm(model, pixels.float() / 255.0, labels, 0.1)
    assert from_uint8.dtype == torch.float32
    assert torch.equal(from_uint8, from_float)


def test_batch_of_one():
    model = make_cnn()
    images, labels = random_batch(1)
    adversarial = pgd(model, images, labels, eps=0.1, steps=3)
    assert adversarial.shape == (1, 1, 28, 28)
    assert float((adversarial - images).abs().max()) <= 0.1 + LINF_TOLERANCE


class TupleOutput(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, images):
        logits = self.inner(images)
        return logits, logits.detach() * 0


class LogitsAttribute(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, images):
        return type("Output", (), {"logits": self.inner(images)})()


@pytest.mark.parametrize("wrapper", [TupleOutput, LogitsAttribute])
def test_tuple_or_logits_output_uses_logits(wrapper):
    model = make_mlp()
    images, labels = random_batch()
    assert torch.equal(fgsm(wrapper(model), images, labels, 0.1), fgsm(model, images, labels, 0.1))


def test_labels_as_numpy_array():
    model = make_mlp()
    images, labels = random_batch()
    assert torch.equal(fgsm(model, images, labels.numpy(), 0.1), fgsm(model, images, labels, 0.1))


# --- argument validation -----------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"eps": -0.1}, ValueError, r"eps must be a finite number >= 0.*-0\.1"),
        ({"eps": float("nan")}, ValueError, r"eps must be a finite number >= 0.*nan"),
        ({"norm": "l1"}, ValueError, r"norm must be one of \('linf', 'l2'\), got 'l1'"),
        ({"steps": 0}, ValueError, r"steps must be an integer >= 1, got 0"),
        ({"steps": 2.5}, ValueError, r"steps must be an integer >= 1, got 2\.5"),
        ({"step_size": -1.0}, ValueError, r"step_size must be a finite number >= 0 or None.*-1\.0"),
        ({"batch_size": 0}, ValueError, r"batch_size must be an integer >= 1 or None.*0"),
    ],
)
def test_pgd_rejects_bad_arguments(kwargs, error, message):
    model = make_mlp()
    images, labels = random_batch()
    with pytest.raises(error, match=message):
        pgd(model, images, labels, **kwargs)


def test_fgsm_rejects_negative_eps():
    model = make_mlp()
    images, labels = random_batch()
    with pytest.raises(ValueError, match=r"eps must be a finite number >= 0.*-0\.5"):
        fgsm(model, images, labels, -0.5)


@pytest.mark.parametrize(
    ("images", "labels", "error", "message"),
    [
        (torch.rand(4, 1, 28, 28) * 2, torch.zeros(4, dtype=torch.long), ValueError, r"images must lie in \[0, 1\]"),
        (torch.full((4, 1, 28, 28), math.nan), torch.zeros(4, dtype=torch.long), ValueError, r"images must lie in"),
        (torch.ones(4, 1, 28, 28, dtype=torch.int32), torch.zeros(4, dtype=torch.long), TypeError, r"int32"),
        (np.zeros((4, 1, 28, 28), dtype=np.float32), torch.zeros(4, dtype=torch.long), TypeError, r"torch.Tensor"),
        (torch.rand(4), torch.zeros(4, dtype=torch.long), ValueError, r"batch dimension"),
        (torch.rand(4, 1, 28, 28), torch.zeros(3, dtype=torch.long), ValueError, r"labels must have shape \[4\]"),
        (torch.rand(4, 1, 28, 28), torch.zeros(4), TypeError, r"labels must be integer class indices"),
        (torch.rand(4, 1, 28, 28), torch.tensor([0, -1, 0, 0]), ValueError, r"labels must be class indices >= 0, got -1"),
    ],
)
def test_attack_rejects_bad_inputs(images, labels, error, message):
    with pytest.raises(error, match=message):
        fgsm(make_mlp(), images, labels, 0.1)


def test_attack_rejects_non_tensor_output():
    class DictOutput(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(784, 10)

        def forward(self, images):
            return {"scores": self.linear(images.flatten(1))}

    images, labels = random_batch()
    with pytest.raises(TypeError, match="it returned dict"):
        fgsm(DictOutput(), images, labels, 0.1)
