"""Layer-wise adaptive clipping, for comparison.

    s_l = min(1, clipping * max(||w_l||, eps) / ||d_l||)

Adaptive gradient clipping (AGC) from Brock, De, Smith and Simonyan,
"High-Performance Large-Scale Image Recognition Without Normalization" (ICML
2021). Departures: the ratio is taken per layer rather than per output unit,
and d_l is what the gain multiplies, so in ``apply="update"`` mode the policy
clips the optimizer's update relative to the weights instead of the gradient.
Use ``apply="gradient"`` for AGC as published.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gradmod.modulation.policies._base import GainPolicy, check_positive
from gradmod.modulation.signals import Signals

__all__ = ["Clip", "clip_gains"]


def clip_gains(weight_norm: Tensor, direction_norm: Tensor, clipping: float, eps: float) -> Tensor:
    """Return min(1, clipping * max(||w||, eps) / ||d||) per layer; 1 where ||d|| is 0."""
    limit = clipping * weight_norm.clamp_min(eps)
    ratio = limit / direction_norm.clamp_min(torch.finfo(direction_norm.dtype).tiny)
    return torch.where(direction_norm > 0, ratio.clamp_max(1.0), 1.0)


class Clip(GainPolicy):
    """Clip each layer's gradient (or update) norm to a fraction of its weight norm.

    Args:
        clipping: the largest allowed ratio ||d_l|| / ||w_l|| (AGC's lambda).
        eps: floor of the weight norm, so zero-initialised layers can still move.
    """

    name = "clip"
    needs = frozenset({"weight_norm"})

    def __init__(self, clipping: float = 0.01, eps: float = 1e-3):
        self.clipping = check_positive("clipping", clipping)
        self.eps = check_positive("eps", eps)

    def compute_gains(self, state: dict[str, Tensor], signals: Signals) -> Tensor:
        return clip_gains(signals.weight_norm, signals.direction_norm, self.clipping, self.eps)

    def config(self) -> dict[str, Any]:
        return {"clipping": self.clipping, "eps": self.eps}
