"""Per-layer hypergradient gains: the LGM default.

Each layer keeps a log-gain a_l, updated once per optimizer step from the
feedback h_l = cos(g_l(t), u_l(t-1)):

    a_l <- clip((1 - decay) * a_l - beta * h_l, log(min_gain), log(max_gain))
    s_l  = exp(a_l)

This is hypergradient descent on each layer's step size (Baydin et al.,
"Online Learning Rate Adaptation with Hypergradient Descent", ICLR 2018), in the
multiplicative, sign-driven form of delta-bar-delta (Jacobs, "Increased Rates of
Convergence Through Learning Rate Adaptation", 1988). It departs from both in
two ways. The feedback is a cosine rather than a raw inner product, so
``beta`` is dimensionless and one value suits every layer and model. And the
gain multiplies whatever the modulator scales (the applied update by default),
so the rule works on top of any optimizer.

With Adam-type optimizers in ``apply="gradient"`` mode, a slowly varying
gradient gain is largely cancelled by the second-moment normalisation; in the
default ``apply="update"`` mode the gain scales the step itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from gradmod.modulation.policies._base import GainPolicy, check_gain_range, check_positive
from gradmod.modulation.signals import Signals

__all__ = ["Hypergradient", "hypergradient_step"]


def hypergradient_step(
    log_gain: Tensor,
    feedback: Tensor,
    active: Tensor,
    beta: float | Tensor,
    log_min: float,
    log_max: float,
    decay: float = 0.0,
) -> Tensor:
    """Return the next log-gains; layers that are not ``active`` keep theirs."""
    updated = (log_gain * (1.0 - decay) - beta * feedback).clamp(log_min, log_max)
    return torch.where(active, updated, log_gain)


class Hypergradient(GainPolicy):
    """Adapt each layer's gain from the cosine feedback (see the module docstring).

    Args:
        beta: log-gain change per step at feedback +-1 (dimensionless).
        min_gain, max_gain: bounds of the gain; 1 must lie between them.
        decay: fraction of the log-gain removed each step, pulling gains toward 1.
    """

    name = "hypergradient"
    needs = frozenset({"feedback"})

    def __init__(self, beta: float = 0.02, min_gain: float = 0.1, max_gain: float = 10.0, decay: float = 0.0):
        self.beta = check_positive("beta", beta, allow_zero=True)
        self.min_gain, self.max_gain = check_gain_range(min_gain, max_gain)
        self.decay = check_positive("decay", decay, allow_zero=True)
        if self.decay >= 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay!r}")

    def init_state(self, layer_names: Sequence[str], device: torch.device, dtype: torch.dtype) -> dict[str, Tensor]:
        return {
            "log_gain": torch.zeros(len(layer_names), device=device, dtype=dtype),
            # relax() shrinks beta through this factor, so it is state, not configuration.
            "beta_scale": torch.ones((), device=device, dtype=dtype),
        }

    def compute_gains(self, state: dict[str, Tensor], signals: Signals) -> Tensor:
        state["log_gain"] = hypergradient_step(
            state["log_gain"],
            signals.feedback,
            signals.active,
            self.beta * state["beta_scale"],
            math.log(self.min_gain),
            math.log(self.max_gain),
            self.decay,
        )
        return state["log_gain"].exp()

    def current_gains(self, state: dict[str, Tensor]) -> Tensor:
        return state["log_gain"].exp()

    def back_off(self, state: dict[str, Tensor], layers: Tensor, factor: float) -> bool:
        shifted = (state["log_gain"] + math.log(factor)).clamp(math.log(self.min_gain), math.log(self.max_gain))
        state["log_gain"] = torch.where(layers, shifted, state["log_gain"])
        return True

    def relax(self, state: dict[str, Tensor], rate: float) -> bool:
        state["log_gain"] = state["log_gain"] * (1.0 - rate)
        state["beta_scale"] = state["beta_scale"] * (1.0 - rate)
        return True

    def config(self) -> dict[str, Any]:
        return {"beta": self.beta, "min_gain": self.min_gain, "max_gain": self.max_gain, "decay": self.decay}
