import copy
import importlib.util
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gradmod.training.muon import MuonWithAdamW, split_muon_parameters
from gradmod.training.optimizers import OPTIMIZERS, MissingExtraError, build_optimizer, decay_groups
from gradmod.training.schedule import WarmupCosineSchedule

HAS_PYTORCH_OPTIMIZER = importlib.util.find_spec("pytorch_optimizer") is not None
# Settings that make each optimizer fit the fixed batch below within STEPS.
SETTINGS = {
    "sgd": {"lr": 0.05},
    "adamw": {"lr": 0.01},
    "muon": {"lr": 0.01},
    "lamb": {"lr": 0.01},
    "lars": {"lr": 0.3, "trust_coefficient": 0.02},
}
DEFAULT_SETTINGS = {"lr": 0.01}
STEPS = 40
LOSS_RATIO = 0.7  # final loss must be below this fraction of the initial loss


class Mixed(nn.Module):
    """A small model with every kind of parameter: conv, embedding, hidden matrix, norm, head."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.embed = nn.Embedding(5, 16)
        self.hidden = nn.Linear(16, 16)
        self.norm = nn.LayerNorm(16)
        self.head = nn.Linear(16, 3)

    def forward(self, images, tokens):
        features = F.avg_pool2d(self.conv(images), 2).flatten(1)  # [B, 4, 2, 2] -> [B, 16]
        hidden = torch.relu(self.norm(self.hidden(features + self.embed(tokens))))
        return self.head(hidden)


def fixed_batch():
    generator = torch.Generator().manual_seed(7)
    images = torch.randn(32, 1, 6, 6, generator=generator)
    tokens = torch.randint(0, 5, (32,), generator=generator)
    labels = torch.randint(0, 3, (32,), generator=generator)
    return images, tokens, labels


def train(model, optimizer, steps):
    images, tokens, labels = fixed_batch()
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(model(images, tokens), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def needs_extra(name):
    if OPTIMIZERS[name].extra is not None and not HAS_PYTORCH_OPTIMIZER:
        pytest.skip(f"{name} needs pytorch-optimizer")


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_lowers_loss(name):
    needs_extra(name)
    torch.manual_seed(0)
    model = Mixed()
    optimizer = build_optimizer(model, name, weight_decay=1e-4, **SETTINGS.get(name, DEFAULT_SETTINGS))
    losses = train(model, optimizer, STEPS)
    assert losses[-1] < LOSS_RATIO * losses[0]


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_state_dict_round_trip_continues_identically(name):
    needs_extra(name)
    settings = SETTINGS.get(name, DEFAULT_SETTINGS)
    torch.manual_seed(0)
    model = Mixed()
    optimizer = build_optimizer(model, name, weight_decay=1e-4, **settings)
    train(model, optimizer, 5)
    model_state = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer_state = copy.deepcopy(optimizer.state_dict())  # state tensors change in place
    reference = train(model, optimizer, 5)

    torch.manual_seed(1)  # a different initialisation, overwritten by the load
    restored = Mixed()
    restored.load_state_dict(model_state)
    restored_optimizer = build_optimizer(restored, name, weight_decay=1e-4, **settings)
    restored_optimizer.load_state_dict(optimizer_state)
    assert train(restored, restored_optimizer, 5) == reference
    for key, value in model.state_dict().items():
        assert torch.equal(restored.state_dict()[key], value), key


def test_decay_groups_exclude_biases_and_norms():
    model = Mixed()
    decay, no_decay = decay_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1
    assert no_decay["weight_decay"] == 0.0
    assert {id(p) for p in decay["params"]} == {
        id(model.conv.weight), id(model.embed.weight), id(model.hidden.weight), id(model.head.weight)
    }
    assert {id(p) for p in no_decay["params"]} == {
        id(model.conv.bias), id(model.hidden.bias), id(model.norm.weight), id(model.norm.bias), id(model.head.bias)
    }


def test_decay_groups_skip_frozen_parameters():
    model = Mixed()
    model.conv.weight.requires_grad_(False)
    params = [p for group in decay_groups(model, 0.1) for p in group["params"]]
    assert all(p is not model.conv.weight for p in params)


def test_muon_takes_only_hidden_matrices():
    model = Mixed()
    matrices, rest = split_muon_parameters(model)
    assert [id(p) for p in matrices] == [id(model.hidden.weight)]
    assert len(rest) == len(list(model.parameters())) - 1


def test_muon_combined_is_one_optimizer():
    model = Mixed()
    optimizer = build_optimizer(model, "muon", lr=0.02, weight_decay=0.01)
    assert isinstance(optimizer, MuonWithAdamW)
    assert isinstance(optimizer.muon, torch.optim.Muon)
    assert optimizer.param_groups[0]["params"] == [model.hidden.weight]
    assert sum(len(group["params"]) for group in optimizer.param_groups) == len(list(model.parameters()))

    schedule = WarmupCosineSchedule(optimizer, warmup_steps=2, total_steps=10)
    assert all(group["lr"] == pytest.approx(0.01) for group in optimizer.param_groups)
    train(model, optimizer, 1)
    schedule.step()
    assert all(group["lr"] == pytest.approx(0.02) for group in optimizer.param_groups)
    assert model.hidden.weight in optimizer.muon.state
    assert model.head.weight in optimizer.adamw.state


def test_muon_rejects_model_without_hidden_matrix():
    with pytest.raises(ValueError, match="found no hidden 2-D weight matrix in Linear"):
        build_optimizer(nn.Linear(4, 2), "muon", lr=0.01)


def test_unknown_optimizer_names_nearest():
    with pytest.raises(ValueError, match=r"unknown optimizer 'adam'.*did you mean 'adamw'\?"):
        build_optimizer(Mixed(), "adam", lr=0.1)


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"lr": 0.0}, "lr must be > 0, got 0.0"),
        ({"lr": 0.1, "weight_decay": -1.0}, "weight_decay must be >= 0, got -1.0"),
        ({"lr": 0.1, "momentum": 1.0}, r"momentum must be in \[0, 1\), got 1.0"),
        ({"lr": 0.1, "betas": (0.9, 1.0)}, "betas must be two numbers"),
        ({"lr": 0.1, "bogus": 1}, r"invalid options \['bogus'\] for optimizer 'sgd'"),
    ],
)
def test_build_optimizer_rejects_invalid_values(arguments, message):
    with pytest.raises(ValueError, match=message):
        build_optimizer(Mixed(), "sgd", **arguments)


@pytest.mark.parametrize("name", ["lamb", "lars"])
def test_anchor_without_package_names_extra(name, monkeypatch):
    monkeypatch.setitem(sys.modules, "pytorch_optimizer", None)  # makes the import fail
    with pytest.raises(MissingExtraError, match=r"pip install 'gradmod\[anchors\]'"):
        build_optimizer(Mixed(), name, lr=0.1)
