"""Reference models: tests parametrised over the registry, then per-model overrides."""

import inspect
import math

import pytest
import torch
import torch.nn.functional as F

from gradmod.models import FASHION_MNIST_MEAN, FASHION_MNIST_STD, MODELS, build_model
from gradmod.models.vit import Attention

BATCH = 4
# float32 logits of the same input through two equivalent paths.
LOGITS_ATOL = 1e-5
# float64 attention against the hand-written softmax formula.
ATTENTION_ATOL = 1e-12

registered = pytest.mark.parametrize("name", sorted(MODELS))


def images(batch: int = BATCH) -> torch.Tensor:
    return torch.rand(batch, 1, 28, 28)


@registered
def test_output_shape(name):
    model = build_model(name)
    logits = model(images())
    assert logits.shape == (BATCH, 10)
    assert logits.dtype == torch.float32


@registered
def test_backward_finite_gradients(name):
    model = build_model(name)
    loss = F.cross_entropy(model(images()), torch.arange(BATCH) % 10)
    loss.backward()
    for parameter_name, parameter in model.named_parameters():
        assert parameter.grad is not None, parameter_name
        assert torch.isfinite(parameter.grad).all(), parameter_name


@registered
def test_eval_deterministic(name):
    model = build_model(name).eval()
    x = images()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


@registered
def test_normalisation_inside(name):
    model = build_model(name).eval()
    x = images()
    by_hand = (x - 0.2860) / 0.3530
    with torch.no_grad():
        torch.testing.assert_close(model(x), model.forward_normalized(by_hand), atol=LOGITS_ATOL, rtol=0)
    assert list(model.normalize.parameters()) == []
    assert "normalize.mean" in model.state_dict()
    assert model.normalize.mean.flatten().tolist() == [pytest.approx(FASHION_MNIST_MEAN)]
    assert model.normalize.std.flatten().tolist() == [pytest.approx(FASHION_MNIST_STD)]


@registered
def test_defaults_recorded(name):
    spec = MODELS[name]
    model = build_model(name)
    assert model.hparams == dict(spec.defaults)
    assert spec.summary
    signature = inspect.signature(spec.builder)
    for key, value in spec.defaults.items():
        assert signature.parameters[key].default == value


@registered
def test_explicit_defaults_same_model(name):
    torch.manual_seed(0)
    implicit = build_model(name)
    torch.manual_seed(0)
    explicit = build_model(name, **MODELS[name].defaults)
    assert explicit.hparams == implicit.hparams
    for (key, a), (_, b) in zip(implicit.state_dict().items(), explicit.state_dict().items()):
        assert torch.equal(a, b), key


@registered
def test_no_parameters_on_root(name):
    # Every parameter belongs to a named submodule, so layer names read well.
    model = build_model(name)
    assert list(model.parameters(recurse=False)) == []


@registered
def test_num_classes_override(name):
    model = build_model(name, num_classes=3)
    assert model(images()).shape == (BATCH, 3)
    assert model.hparams["num_classes"] == 3


@registered
def test_wrong_input_shape(name):
    model = build_model(name)
    with pytest.raises(ValueError, match=r"expects images of shape \[B, 1, 28, 28\], got \[4, 28, 28\]"):
        model(torch.rand(4, 28, 28))


@registered
def test_unknown_override(name):
    with pytest.raises(ValueError, match=rf"unknown override 'colour' for model '{name}'; valid keys: .*num_classes"):
        build_model(name, colour="red")


def test_unknown_name_suggests_nearest():
    with pytest.raises(ValueError, match=r"unknown model 'vitt'; valid choices: cnn, resnet, vit\. Did you mean 'vit'\?"):
        build_model("vitt")
    with pytest.raises(ValueError, match=r"unknown model 'mlp'; valid choices: cnn, resnet, vit\.$"):
        build_model("mlp")


def test_registry_frozen():
    with pytest.raises(TypeError):
        MODELS["other"] = MODELS["cnn"]
    with pytest.raises(TypeError):
        MODELS["cnn"].defaults["width"] = 64


def test_cnn_overrides():
    model = build_model("cnn", width=8, hidden=32, dropout=0.25)
    modules = dict(model.named_modules())
    assert modules["features.0"].out_channels == 8
    assert modules["features.10"].out_channels == 16
    assert modules["head.1"].out_features == 32
    assert modules["head.3"].p == 0.25
    no_hidden = build_model("cnn", hidden=0)
    linear_layers = [m for m in no_hidden.head if isinstance(m, torch.nn.Linear)]
    assert [layer.in_features for layer in linear_layers] == [2 * 16 * 7 * 7]


def test_resnet_overrides():
    model = build_model("resnet", width=8, depth=3)
    assert model.stem[0].out_channels == 8
    assert [len(stage) for stage in model.stages] == [3, 3, 3]
    assert model.head.in_features == 32
    assert isinstance(model.stages[0][0].shortcut, torch.nn.Identity)
    assert model.stages[1][0].shortcut[0].stride == (2, 2)


def test_vit_overrides():
    model = build_model("vit", patch_size=7, dim=32, depth=2, heads=2, mlp_ratio=4, pool="cls")
    modules = dict(model.named_modules())
    assert model.patch_embed.kernel_size == (7, 7)
    assert model.pos_embed.weight.shape == (1, 16 + 1, 32)  # 16 patches and the class token
    assert model.cls_token.weight.shape == (1, 1, 32)
    assert len(model.blocks) == 2
    assert modules["blocks.1.attn"].heads == 2
    assert modules["blocks.1.mlp.fc1"].out_features == 128
    assert model(images()).shape == (BATCH, 10)
    assert "blocks.3.attn.qkv" in dict(build_model("vit").named_modules())


def test_vit_mean_pool_has_no_class_token():
    model = build_model("vit", pool="mean")
    assert model.cls_token is None
    assert model.pos_embed.weight.shape[1] == 49


@pytest.mark.parametrize(
    ("name", "overrides", "error", "pattern"),
    [
        ("vit", {"patch_size": 5}, ValueError, r"patch_size must divide the image size 28 \(one of 1, 2, 4, 7, 14, 28\), got 5"),
        ("vit", {"heads": 5}, ValueError, r"heads must divide dim=64 \(one of 1, 2, 4, 8, 16, 32, 64\), got 5"),
        ("vit", {"pool": "max"}, ValueError, "pool must be one of 'cls', 'mean', got 'max'"),
        ("vit", {"mlp_ratio": 0}, ValueError, "mlp_ratio must be a positive number, got 0"),
        ("vit", {"dropout": 1.0}, ValueError, r"dropout must be in \[0, 1\), got 1.0"),
        ("cnn", {"width": 0}, ValueError, "width must be a positive int, got 0"),
        ("cnn", {"hidden": -1}, ValueError, r"hidden must be an int >= 0 \(0 for no hidden layer\), got -1"),
        ("cnn", {"dropout": "high"}, TypeError, r"dropout must be a number in \[0, 1\), got 'high'"),
        ("resnet", {"depth": 0}, ValueError, "depth must be a positive int, got 0"),
        ("resnet", {"width": 2.5}, TypeError, "width must be a positive int, got 2.5"),
    ],
)
def test_invalid_override_values(name, overrides, error, pattern):
    with pytest.raises(error, match=pattern):
        build_model(name, **overrides)


def test_attention_matches_formula():
    attention = Attention(dim=8, heads=2, dropout=0.0).double().eval()
    x = torch.randn(3, 5, 8, dtype=torch.float64)
    q, k, v = attention.qkv(x).split(8, dim=-1)
    heads = [slice(0, 4), slice(4, 8)]
    outputs = []
    for head in heads:
        scores = q[..., head] @ k[..., head].transpose(1, 2) / math.sqrt(4)
        outputs.append(torch.softmax(scores, dim=-1) @ v[..., head])
    expected = attention.proj(torch.cat(outputs, dim=-1))
    torch.testing.assert_close(attention(x), expected, atol=ATTENTION_ATOL, rtol=0)
