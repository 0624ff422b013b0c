"""Fixed gains set by the user, for example layer-wise learning-rate decay.

A single float gives every layer that gain; a mapping from layer name to gain
sets those layers and leaves the others at ``default``.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from gradmod.modulation.policies._base import GainPolicy, check_positive
from gradmod.modulation.signals import Signals

__all__ = ["Constant"]


class Constant(GainPolicy):
    """Constant per-layer gains.

    Args:
        gains: one gain for every layer, or ``{layer_name: gain}``.
        default: the gain of layers the mapping does not name.
    """

    name = "constant"

    def __init__(self, gains: float | Mapping[str, float] = 1.0, default: float = 1.0):
        if isinstance(gains, Mapping):
            self.gains = {str(k): check_positive(f"gains[{k!r}]", v) for k, v in gains.items()}
        else:
            self.gains = check_positive("gains", gains)
        self.default = check_positive("default", default)

    def init_state(self, layer_names: Sequence[str], device: torch.device, dtype: torch.dtype) -> dict[str, Tensor]:
        if isinstance(self.gains, float):
            values = [self.gains] * len(layer_names)
        else:
            unknown = [name for name in self.gains if name not in layer_names]
            if unknown:
                near = difflib.get_close_matches(unknown[0], layer_names, n=1)
                hint = f"; did you mean {near[0]!r}?" if near else f"; layers are {list(layer_names)}"
                raise ValueError(f"Constant gains name an unknown layer {unknown[0]!r}{hint}")
            values = [self.gains.get(name, self.default) for name in layer_names]
        return {"gain": torch.tensor(values, device=device, dtype=dtype)}

    def compute_gains(self, state: dict[str, Tensor], signals: Signals) -> Tensor:
        return state["gain"]

    def config(self) -> dict[str, Any]:
        return {"gains": self.gains, "default": self.default}
