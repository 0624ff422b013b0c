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

The one-step feedback is greedy: under minibatch noise it tends to be
positive on average and shrinks every gain (short-horizon bias, Wu, Ren, Liao
and Grosse, ICLR 2018). Two families of options address this.

``feedback`` chooses what drives the log-gain, with m_l an exponential moving
average of h_l (coefficient ``smoothing``):

- ``"centred"`` (the default): h_l minus its mean over the layers with a
  gradient this step, so only the redistribution of step size between layers
  is learnt and the gains keep a geometric mean of 1.
- ``"raw"``: h_l itself, so the gains can also rise or fall together.
- ``"ema"``: m_l, which averages the noise over about 1 / (1 - smoothing) steps.
- ``"relative"``: h_l - m_l(t-1), the feedback against its own running mean,
  which cancels a persistent bias of each layer's feedback.

``normalise`` constrains the log-gains after each update:

- ``"free"``: only the bounds ``min_gain`` and ``max_gain``.
- ``"geomean"``: subtract their mean, so the geometric mean of the gains stays 1.
- ``"ratio"``: keep the largest gain at most ``max_ratio`` times the smallest, by
  clamping each log-gain to within log(max_ratio) / 2 of their mean.

Means run over the layers with a gradient this step; the others keep their gains.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from gradmod.modulation.policies._base import GainPolicy, check_gain_range, check_positive
from gradmod.modulation.signals import Signals

__all__ = ["Hypergradient", "hypergradient_step", "FEEDBACK_MODES", "NORMALISATIONS"]

logger = logging.getLogger(__name__)

FEEDBACK_MODES = ("raw", "centred", "ema", "relative")
NORMALISATIONS = ("free", "geomean", "ratio")


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


def active_mean(values: Tensor, active: Tensor) -> Tensor:
    """Return the mean of ``values`` over the ``active`` entries (0 when none is)."""
    count = active.sum().clamp_min(1)
    return torch.where(active, values, 0.0).sum() / count


class Hypergradient(GainPolicy):
    """Adapt each layer's gain from the cosine feedback (see the module docstring).

    Args:
        beta: log-gain change per step at feedback +-1 (dimensionless).
        min_gain, max_gain: bounds of the gain; 1 must lie between them.
        decay: fraction of the log-gain removed each step, pulling gains toward 1.
        feedback: "centred" (default), "raw", "ema" or "relative". The default is
            the setting the LGM study chose (benchmarks/RESULTS.md).
        smoothing: coefficient of the feedback's moving average, in [0, 1);
            used by "ema" and "relative". Default 0.9.
        normalise: "free" (default), "geomean" or "ratio".
        max_ratio: largest ratio between two layers' gains under "ratio"; > 1. Default 4.
    """

    name = "hypergradient"
    needs = frozenset({"feedback"})

    def __init__(
        self,
        beta: float = 0.02,
        min_gain: float = 0.1,
        max_gain: float = 10.0,
        decay: float = 0.0,
        feedback: str = "centred",
        smoothing: float = 0.9,
        normalise: str = "free",
        max_ratio: float = 4.0,
    ):
        self.beta = check_positive("beta", beta, allow_zero=True)
        self.min_gain, self.max_gain = check_gain_range(min_gain, max_gain)
        self.decay = check_positive("decay", decay, allow_zero=True)
        if self.decay >= 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay!r}")
        self.feedback = _choice("feedback", feedback, FEEDBACK_MODES)
        self.smoothing = check_positive("smoothing", smoothing, allow_zero=True)
        if self.smoothing >= 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing!r}")
        self.normalise = _choice("normalise", normalise, NORMALISATIONS)
        self.max_ratio = check_positive("max_ratio", max_ratio)
        if self.max_ratio <= 1.0:
            raise ValueError(f"max_ratio must be > 1 (a gain may differ from the others by this factor), got {max_ratio!r}")

    def init_state(self, layer_names: Sequence[str], device: torch.device, dtype: torch.dtype) -> dict[str, Tensor]:
        if len(layer_names) == 1 and (self.feedback == "centred" or self.normalise == "geomean"):
            # Both remove the mean over layers, which is all there is with one layer.
            logger.warning(
                "hypergradient with feedback=%r and normalise=%r keeps the gain of a single layer (%s) at 1; "
                "use feedback='raw' with normalise='free', or split the model into more layers (groups=, depth=)",
                self.feedback, self.normalise, layer_names[0],
            )
        return {
            "log_gain": torch.zeros(len(layer_names), device=device, dtype=dtype),
            # relax() shrinks beta through this factor, so it is state, not configuration.
            "beta_scale": torch.ones((), device=device, dtype=dtype),
            "feedback_mean": torch.zeros(len(layer_names), device=device, dtype=dtype),
        }

    def _drive(self, state: dict[str, Tensor], feedback: Tensor, active: Tensor) -> Tensor:
        """Return what moves the log-gains this step, updating the feedback's moving average."""
        if self.feedback == "raw":
            return feedback
        if self.feedback == "centred":
            return torch.where(active, feedback - active_mean(feedback, active), 0.0)
        previous = state["feedback_mean"]
        mean = self.smoothing * previous + (1.0 - self.smoothing) * feedback
        state["feedback_mean"] = torch.where(active, mean, previous)
        if self.feedback == "ema":
            return state["feedback_mean"]
        return feedback - previous  # "relative"

    def _normalised(self, log_gain: Tensor, active: Tensor) -> Tensor:
        if self.normalise == "free":
            return log_gain
        centre = active_mean(log_gain, active)
        if self.normalise == "geomean":
            shifted = log_gain - centre
        else:
            bound = 0.5 * math.log(self.max_ratio)
            shifted = torch.minimum(torch.maximum(log_gain, centre - bound), centre + bound)
        shifted = shifted.clamp(math.log(self.min_gain), math.log(self.max_gain))
        return torch.where(active, shifted, log_gain)

    def compute_gains(self, state: dict[str, Tensor], signals: Signals) -> Tensor:
        drive = self._drive(state, signals.feedback, signals.active)
        log_gain = hypergradient_step(
            state["log_gain"],
            drive,
            signals.active,
            self.beta * state["beta_scale"],
            math.log(self.min_gain),
            math.log(self.max_gain),
            self.decay,
        )
        state["log_gain"] = self._normalised(log_gain, signals.active)
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
        return {
            "beta": self.beta,
            "min_gain": self.min_gain,
            "max_gain": self.max_gain,
            "decay": self.decay,
            "feedback": self.feedback,
            "smoothing": self.smoothing,
            "normalise": self.normalise,
            "max_ratio": self.max_ratio,
        }


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value
