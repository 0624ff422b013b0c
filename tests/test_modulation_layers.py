import pytest
import torch
from torch import nn

from gradmod.modulation import group_layers
from gradmod.modulation.layers import ROOT_LAYER


def make_net():
    return nn.Sequential(
        nn.Conv2d(1, 4, 3),
        nn.BatchNorm2d(4),
        nn.Flatten(),
        nn.Sequential(nn.Linear(4 * 26 * 26, 8), nn.Linear(8, 2)),
    )


def test_default_grouping_by_module():
    layers = group_layers(make_net())

    assert [layer.name for layer in layers] == ["0", "1", "3.0", "3.1"]
    assert layers[0].param_names == ("0.weight", "0.bias")
    assert len(layers[1].params) == 2


def test_frozen_parameters_left_out():
    net = make_net()
    net[1].requires_grad_(False)

    names = [layer.name for layer in group_layers(net)]

    assert "1" not in names


def test_named_parameters_input_and_root():
    weight = nn.Parameter(torch.ones(3))
    bias = nn.Parameter(torch.zeros(3))

    layers = group_layers([("scale", weight), ("block.bias", bias)])

    assert [layer.name for layer in layers] == [ROOT_LAYER, "block"]


def test_depth_groups_blocks():
    layers = group_layers(make_net(), depth=1)

    assert [layer.name for layer in layers] == ["0", "1", "3"]
    assert len(layers[2].params) == 4


def test_groups_by_pattern_first_match_wins():
    layers = group_layers(make_net(), groups={"stem": ["0.*", "1.*"], "head": "3.*"})

    assert [layer.name for layer in layers] == ["stem", "head"]
    assert len(layers[0].params) == 4


def test_unmatched_pattern_rejected():
    with pytest.raises(ValueError, match=r"pattern 'features\.\*' matches no trainable parameter"):
        group_layers(make_net(), groups={"stem": "features.*"})


def test_compile_and_ddp_prefixes_stripped():
    net = make_net()
    named = [(f"module._orig_mod.{name}", p) for name, p in net.named_parameters()]

    names = [layer.name for layer in group_layers(named)]

    assert names == ["0", "1", "3.0", "3.1"]


def test_shared_parameter_counted_once():
    shared = nn.Linear(3, 3)
    net = nn.Sequential(shared, nn.ReLU(), shared)

    layers = group_layers(net)

    assert sum(len(layer.params) for layer in layers) == 2


def test_nothing_trainable_rejected():
    net = make_net().requires_grad_(False)

    with pytest.raises(ValueError, match="no trainable parameters"):
        group_layers(net)


def test_bad_items_rejected():
    with pytest.raises(TypeError, match="iterable of \\(name, parameter\\) pairs"):
        group_layers([torch.ones(2)])
    with pytest.raises(ValueError, match="depth must be a positive integer"):
        group_layers(make_net(), depth=0)
