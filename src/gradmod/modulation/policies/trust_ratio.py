"""Layer-wise trust-ratio gains, for comparison (LARS and LAMB style).

    r_l = ||w_l|| / ||d_l||
    s_l = clip(r_l / geomean_k(r_k), min_gain, max_gain)     (normalize=True)
    s_l = clip(coefficient * r_l, min_gain, max_gain)        (normalize=False)

where d_l is what the gain multiplies: the gradient in ``apply="gradient"``
mode (LARS: You, Gitman and Ginsburg, "Large Batch Training of Convolutional
Networks", 2017) or the optimizer's update in ``apply="update"`` mode (with
Adam this is LAMB's trust ratio: You et al., "Large Batch Optimization for
Deep Learning: Training BERT in 76 minutes", ICLR 2020).

Departure: with ``normalize=True`` (the default) the ratios are divided by
their geometric mean over the layers, so the policy redistributes step size
between layers and leaves the overall scale to the tuned learning rate. Layers
whose weight or direction norm is 0 get gain 1.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gradmod.modulation.policies._base import GainPolicy, check_gain_range, check_positive
from gradmod.modulation.signals import Signals

__all__ = ["TrustRatio", "trust_ratio_gains"]


def trust_ratio_gains(
    weight_norm: Tensor,
    direction_norm: Tensor,
    active: Tensor,
    coefficient: float,
    normalize: bool,
    min_gain: float,
    max_gain: float,
) -> Tensor:
    """Return the trust-ratio gain of each layer (1 where the ratio is undefined)."""
    defined = active & (weight_norm > 0) & (direction_norm > 0)
    tiny = torch.finfo(weight_norm.dtype).tiny
    log_ratio = torch.where(defined, weight_norm.clamp_min(tiny).log() - direction_norm.clamp_min(tiny).log(), 0.0)
    if normalize:
        count = defined.sum().clamp_min(1)
        log_ratio = torch.where(defined, log_ratio - log_ratio.sum() / count, 0.0)
        gains = log_ratio.exp()
    else:
        gains = torch.where(defined, coefficient * log_ratio.exp(), 1.0)
    return gains.clamp(min_gain, max_gain)


class TrustRatio(GainPolicy):
    """Scale each layer by its weight-to-direction norm ratio (see the module docstring)."""

    name = "trust_ratio"
    needs = frozenset({"weight_norm"})

    def __init__(
        self,
        coefficient: float = 1e-3,
        normalize: bool = True,
        min_gain: float = 0.01,
        max_gain: float = 100.0,
    ):
        self.coefficient = check_positive("coefficient", coefficient)
        if not isinstance(normalize, bool):
            raise ValueError(f"normalize must be True or False, got {normalize!r}")
        self.normalize = normalize
        self.min_gain, self.max_gain = check_gain_range(min_gain, max_gain)

    def compute_gains(self, state: dict[str, Tensor], signals: Signals) -> Tensor:
        return trust_ratio_gains(
            signals.weight_norm,
            signals.direction_norm,
            signals.active,
            self.coefficient,
            self.normalize,
            self.min_gain,
            self.max_gain,
        )

    def config(self) -> dict[str, Any]:
        return {
            "coefficient": self.coefficient,
            "normalize": self.normalize,
            "min_gain": self.min_gain,
            "max_gain": self.max_gain,
        }
