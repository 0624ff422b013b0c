"""The interface every gain policy implements."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from gradmod.modulation.signals import Signals

__all__ = ["GainPolicy", "check_positive", "check_gain_range"]


def check_positive(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a float, or raise ValueError naming the argument."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return float(value)


def check_gain_range(min_gain: Any, max_gain: Any) -> tuple[float, float]:
    min_gain = check_positive("min_gain", min_gain)
    max_gain = check_positive("max_gain", max_gain)
    if not min_gain <= 1.0 <= max_gain:
        raise ValueError(
            f"need min_gain <= 1 <= max_gain so that a neutral gain is allowed, "
            f"got min_gain={min_gain}, max_gain={max_gain}"
        )
    return min_gain, max_gain


class GainPolicy:
    """Map per-layer signals to per-layer gains.

    A policy object holds only its configuration; its mutable state lives in
    the dict of tensors that :meth:`init_state` returns, which the modulator
    owns and saves. ``needs`` lists the optional signals the policy reads:
    ``"feedback"`` (the modulator then keeps the last update) and
    ``"weight_norm"``.
    """

    name: ClassVar[str] = ""
    needs: ClassVar[frozenset[str]] = frozenset()

    def init_state(self, layer_names: Sequence[str], device: torch.device, dtype: torch.dtype) -> dict[str, Tensor]:
        return {}

    def compute_gains(self, state: dict[str, Tensor], signals: Signals) -> Tensor:
        raise NotImplementedError

    def back_off(self, state: dict[str, Tensor], layers: Tensor, factor: float) -> bool:
        """Multiply the gains of the ``layers`` (a bool mask) by ``factor``; False if not supported."""
        return False

    def relax(self, state: dict[str, Tensor], rate: float) -> bool:
        """Move the policy a fraction ``rate`` toward neutral gains; False if not supported."""
        return False

    def current_gains(self, state: dict[str, Tensor]) -> Tensor | None:
        """Return the gains the state stands for now, or None when they depend on the next step's signals."""
        return None

    def config(self) -> dict[str, Any]:
        """Return the constructor arguments, for ``repr`` and saved results."""
        return {}

    def __repr__(self) -> str:
        arguments = ", ".join(f"{key}={value!r}" for key, value in self.config().items())
        return f"{type(self).__name__}({arguments})"
