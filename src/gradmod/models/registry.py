"""Build the reference models by name.

``MODELS`` maps each name to a frozen ``ModelSpec``: the builder (a model
class), its default hyperparameters, read from the builder's keyword
arguments so they cannot drift apart, and a one-line summary.
``build_model(name, **overrides)`` rejects an unknown name (suggesting the
nearest with ``difflib``) or an unknown override key, listing the valid
choices; the model's constructor validates the values.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from torch import nn

from gradmod.models.cnn import ConvNet
from gradmod.models.resnet import ResNet
from gradmod.models.vit import VisionTransformer

__all__ = ["MODELS", "ModelSpec", "build_model"]


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its builder, default hyperparameters and a one-line summary."""

    name: str
    builder: Callable[..., nn.Module]
    defaults: Mapping[str, Any]
    summary: str


def _spec(name: str, builder: type[nn.Module], summary: str) -> ModelSpec:
    """Describe ``builder`` with the defaults of its keyword-only arguments."""
    defaults = {
        parameter.name: parameter.default
        for parameter in inspect.signature(builder).parameters.values()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    }
    return ModelSpec(name=name, builder=builder, defaults=MappingProxyType(defaults), summary=summary)


MODELS: Mapping[str, ModelSpec] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            _spec("cnn", ConvNet, "four conv-BN-ReLU layers in two pooled stages and an MLP head"),
            _spec("resnet", ResNet, "CIFAR-style ResNet: three stages of basic blocks, global average pooling"),
            _spec("vit", VisionTransformer, "Vision Transformer on 4x4 patches with pre-norm blocks"),
        )
    }
)


def build_model(name: str, **overrides: Any) -> nn.Module:
    """Build the registered model ``name`` with its defaults updated by ``overrides``."""
    spec = MODELS.get(name)
    if spec is None:
        choices = ", ".join(sorted(MODELS))
        nearest = difflib.get_close_matches(str(name), list(MODELS), n=1)
        hint = f" Did you mean {nearest[0]!r}?" if nearest else ""
        raise ValueError(f"unknown model {name!r}; valid choices: {choices}.{hint}")
    unknown = sorted(set(overrides) - set(spec.defaults))
    if unknown:
        listed = ", ".join(repr(key) for key in unknown)
        valid = ", ".join(spec.defaults)
        raise ValueError(f"unknown override {listed} for model {name!r}; valid keys: {valid}")
    return spec.builder(**{**spec.defaults, **overrides})
