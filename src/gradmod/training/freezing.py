"""Adaptive layer freezing: stop training layers that LGM has already slowed down.

Every ``check_every`` optimizer steps the controller reads each layer's gain
and its relative update ||u_l|| / ||w_l|| from the modulator. A layer whose
gain is below ``gain_threshold`` and whose relative update is below
``ratio_threshold`` for ``window`` checks in a row becomes a candidate. With
``prefix_only`` (the default) a candidate is frozen only when every layer
before it is frozen or frozen with it. Autograd can then skip the backward
pass through the whole frozen front of the network, which is where the
wall-clock saving comes from. Frozen parameters get ``requires_grad=False`` and
their gradient is dropped, so the optimizer and the modulator skip them.

Layers are ordered as the model lists its parameters, which for sequential
networks is input to output. The last layer (the classifier head) is never
frozen, and at most ``max_fraction`` of the layers are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from gradmod.training.feedback import options_from_dict

__all__ = ["FreezingOptions", "LayerFreezing", "freeze_candidates"]


@dataclass
class FreezingOptions:
    """Options of the ``freezing`` table of a training config.

    Attributes:
        enabled: freeze layers at all. Default false.
        check_every: optimizer steps between checks (each check synchronises once). Default 50.
        window: consecutive checks a layer must meet both thresholds. Default 3.
        gain_threshold: the gain must be below this. Default 0.5.
        ratio_threshold: ||u_l|| / ||w_l|| of the last update must be below this. Default 1e-4.
        max_fraction: largest fraction of the layers that may be frozen. Default 0.5.
        prefix_only: freeze only a front part of the network (saves backward compute). Default true.
    """

    enabled: bool = False
    check_every: int = field(default=50, metadata={"min": 1})
    window: int = field(default=3, metadata={"min": 1})
    gain_threshold: float = field(default=0.5, metadata={"gt": 0.0})
    ratio_threshold: float = field(default=1e-4, metadata={"gt": 0.0})
    max_fraction: float = field(default=0.5, metadata={"min": 0.0, "max": 1.0})
    prefix_only: bool = True

    @classmethod
    def from_dict(cls, options: dict[str, Any], section: str = "freezing") -> "FreezingOptions":
        return options_from_dict(cls, options, section)


def freeze_candidates(
    gains: torch.Tensor,
    ratios: torch.Tensor,
    streak: torch.Tensor,
    frozen: torch.Tensor,
    options: FreezingOptions,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (new streak counts, mask of layers to freeze now).

    ``streak`` counts consecutive checks below both thresholds; ``frozen``
    marks layers frozen before. The last layer is never chosen.
    """
    below = (gains < options.gain_threshold) & (ratios < options.ratio_threshold) & ~frozen
    streak = torch.where(below, streak + 1, torch.zeros_like(streak))
    ready = (streak >= options.window) | frozen
    ready[-1] = False
    if options.prefix_only:
        # cumprod keeps a layer only while every layer before it is ready too.
        ready = torch.cumprod(ready.to(torch.int64), dim=0).bool()
    budget = int(options.max_fraction * len(gains)) - int(frozen.sum())
    chosen = ready & ~frozen
    if budget <= 0:
        chosen = torch.zeros_like(chosen)
    elif int(chosen.sum()) > budget:
        positions = chosen.nonzero().flatten()[:budget]
        chosen = torch.zeros_like(chosen)
        chosen[positions] = True
    return streak, chosen


class LayerFreezing:
    """Freeze layers through the Trainer's step hook (see the module docstring)."""

    def __init__(self, trainer: Any, options: FreezingOptions):
        self.trainer = trainer
        self.options = options
        count = len(trainer.modulator.layer_names)
        self.streak = torch.zeros(count, dtype=torch.long)
        self.frozen = torch.zeros(count, dtype=torch.bool)

    def on_step_end(self, trainer: Any, step: int, loss: float) -> None:
        if step % self.options.check_every != 0:
            return
        modulator = trainer.modulator
        gains = modulator.gain_tensor().cpu()
        ratios = modulator.update_ratio_tensor().cpu()
        self.streak, chosen = freeze_candidates(gains, ratios, self.streak, self.frozen, self.options)
        if not bool(chosen.any()):
            return
        names = [name for name, hit in zip(modulator.layer_names, chosen.tolist()) if hit]
        self._freeze(chosen)
        trainer.log_event(
            "freeze",
            step,
            layers=names,
            gains={name: float(gains[i]) for i, name in enumerate(modulator.layer_names) if chosen[i]},
            update_ratios={name: float(ratios[i]) for i, name in enumerate(modulator.layer_names) if chosen[i]},
            frozen_total=int(self.frozen.sum()),
        )

    def _freeze(self, mask: torch.Tensor) -> None:
        for layer, hit in zip(self.trainer.modulator.layers, mask.tolist()):
            if hit:
                for param in layer.params:
                    param.requires_grad_(False)
                    param.grad = None
        self.frozen |= mask

    def frozen_layers(self) -> list[str]:
        return [name for name, hit in zip(self.trainer.modulator.layer_names, self.frozen.tolist()) if hit]

    def state_dict(self) -> dict[str, Any]:
        return {"streak": self.streak.clone(), "frozen": self.frozen.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.streak = state["streak"].clone()
        frozen = state["frozen"].clone()
        self.frozen = torch.zeros_like(frozen)
        self._freeze(frozen)  # a resumed run must not train what the original run froze
