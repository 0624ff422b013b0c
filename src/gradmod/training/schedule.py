"""Learning-rate schedule by optimizer step: linear warmup, then cosine decay to a floor.

For step t (the number of optimizer steps already taken), warmup length W, run
length T and floor ratio r, each parameter group's learning rate is its peak
rate ``lr_0`` times

    f(t) = (t + 1) / W                                      for t < W
    f(t) = r + (1 - r) * (1 + cos(pi * p)) / 2,  p = (t - W) / (T - W)   otherwise

with p clamped to [0, 1], so the rate stays at ``r * lr_0`` after step T. The
cosine part is SGDR's annealing ("SGDR: Stochastic Gradient Descent with Warm
Restarts", Loshchilov and Hutter, 2017) without restarts. Warmup starts at
``lr_0 / W`` rather than 0, so the first step already moves the weights.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["warmup_cosine_factor", "WarmupCosineSchedule"]


def warmup_cosine_factor(step: int, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.0) -> float:
    """Return the multiplier f(step) of the peak learning rate (see the module docstring)."""
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    if not 0.0 <= min_lr_ratio <= 1.0:
        raise ValueError(f"min_lr_ratio must be in [0, 1], got {min_lr_ratio}")

    if step < warmup_steps:
        return (step + 1) / warmup_steps
    decay_steps = total_steps - warmup_steps
    if decay_steps <= 0:
        return 1.0
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


class WarmupCosineSchedule:
    """Set every parameter group's ``lr`` to its peak rate times ``warmup_cosine_factor``.

    Works with any object that has ``param_groups`` (a list of dicts with ``lr``),
    which includes combined optimizers that ``torch.optim.lr_scheduler`` rejects.
    The peak rates are the groups' ``lr`` values at construction. The constructor
    sets the rate for step 0, and ``step()``, called after each optimizer step,
    sets the rate for the next one.
    """

    def __init__(self, optimizer: Any, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.0) -> None:
        if not hasattr(optimizer, "param_groups"):
            raise TypeError(f"optimizer must have param_groups, got {type(optimizer).__name__}")
        warmup_cosine_factor(0, warmup_steps, total_steps, min_lr_ratio)  # validates the arguments
        self.optimizer = optimizer
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps
        self.min_lr_ratio = min_lr_ratio
        self.base_lrs = [float(group["lr"]) for group in optimizer.param_groups]
        self.last_step = 0
        self._apply()

    def factor(self) -> float:
        """Return the multiplier for the current step."""
        return warmup_cosine_factor(self.last_step, self.warmup_steps, self.total_steps, self.min_lr_ratio)

    def step(self) -> None:
        """Advance one optimizer step and set the learning rates for it."""
        self.last_step += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        """Return the learning rate of each parameter group, as set for the current step."""
        return [float(group["lr"]) for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        return {
            "last_step": self.last_step,
            "base_lrs": list(self.base_lrs),
            "warmup_steps": self.warmup_steps,
            "total_steps": self.total_steps,
            "min_lr_ratio": self.min_lr_ratio,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the step and peak rates, then set the learning rates for that step."""
        if len(state["base_lrs"]) != len(self.optimizer.param_groups):
            raise ValueError(
                f"schedule state has {len(state['base_lrs'])} peak rates but the optimizer has "
                f"{len(self.optimizer.param_groups)} parameter groups; was it saved for another optimizer?"
            )
        self.last_step = int(state["last_step"])
        self.base_lrs = [float(lr) for lr in state["base_lrs"]]
        self.warmup_steps = int(state.get("warmup_steps", self.warmup_steps))
        self.total_steps = int(state.get("total_steps", self.total_steps))
        self.min_lr_ratio = float(state.get("min_lr_ratio", self.min_lr_ratio))
        self._apply()

    def _apply(self) -> None:
        factor = self.factor()
        for group, base_lr in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base_lr * factor
