"""Layerwise gradient modulation: layer grouping, signals, gain policies, the modulator."""

from gradmod.modulation.layers import Layer, group_layers
from gradmod.modulation.modulator import LayerwiseGradientModulator
from gradmod.modulation.policies import (
    POLICIES,
    Clip,
    Constant,
    GainPolicy,
    Hypergradient,
    TrustRatio,
    build_policy,
)

__all__ = [
    "LayerwiseGradientModulator",
    "GainPolicy",
    "Hypergradient",
    "TrustRatio",
    "Clip",
    "Constant",
    "POLICIES",
    "build_policy",
    "Layer",
    "group_layers",
]
