"""Pipeline feedback: the Trainer feeds training and validation results back into LGM.

Two controllers, each a pure decision function plus a thin stateful wrapper
bound to the Trainer's hooks:

- **Loss-spike back-off** (``spike_backoff``, on by default with modulation):
  when the training loss exceeds ``spike_factor`` times its running mean, the
  gains of the layers whose last feedback was positive (those whose last step
  overshot) are multiplied by ``backoff_factor``. A cooldown keeps one spike
  from triggering several back-offs.
- **Stall relaxation** (``stall_relax``, on by default with modulation): when
  validation accuracy has not improved by ``min_delta`` for ``patience``
  evaluations, the policy moves a fraction ``relax_rate`` toward neutral gains
  and its adaptation rate shrinks by the same fraction.

Both act only through the modulator's public ``back_off`` and ``relax``
methods, and log every decision with ``trainer.log_event``. Layer freezing
lives in ``freezing.py``; :func:`build_controllers` builds all of them from a
``TrainConfig``.
"""

from __future__ import annotations

import math
import typing
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from gradmod.training._fields import ConfigError, check_value, reject_unknown_keys

__all__ = [
    "FeedbackOptions",
    "LossSpikeBackoff",
    "StallRelaxation",
    "build_controllers",
    "is_spike",
    "is_stalled",
]


@dataclass
class FeedbackOptions:
    """Options of the ``feedback`` table of a training config.

    Attributes:
        spike_backoff: back off on loss spikes. Default true.
        spike_factor: a loss above this multiple of its running mean is a spike. Default 2.0.
        spike_mean_decay: decay of the running mean of the loss (an EMA). Default 0.98.
        spike_warmup: steps before spikes are looked for, so the mean can settle. Default 50.
        spike_cooldown: steps after a back-off during which no other is taken. Default 20.
        backoff_factor: gains of overshooting layers are multiplied by this. Default 0.5.
        stall_relax: relax toward neutral when validation stalls. Default true.
        patience: evaluations without improvement that count as a stall. Default 3.
        min_delta: smallest validation accuracy gain (a fraction) that counts. Default 0.001.
        relax_rate: fraction of the way toward neutral per stall. Default 0.5.
    """

    spike_backoff: bool = True
    spike_factor: float = field(default=2.0, metadata={"gt": 1.0})
    spike_mean_decay: float = field(default=0.98, metadata={"gt": 0.0, "lt": 1.0})
    spike_warmup: int = field(default=50, metadata={"min": 0})
    spike_cooldown: int = field(default=20, metadata={"min": 0})
    backoff_factor: float = field(default=0.5, metadata={"gt": 0.0, "max": 1.0})
    stall_relax: bool = True
    patience: int = field(default=3, metadata={"min": 1})
    min_delta: float = field(default=0.001, metadata={"min": 0.0, "max": 1.0})
    relax_rate: float = field(default=0.5, metadata={"min": 0.0, "max": 1.0})

    @classmethod
    def from_dict(cls, options: dict[str, Any], section: str = "feedback") -> "FeedbackOptions":
        return options_from_dict(cls, options, section)


def options_from_dict(cls: type, options: dict[str, Any], section: str) -> Any:
    """Build an options dataclass from a config table, with the config's own checks."""
    if not isinstance(options, dict):
        raise ConfigError(f"{section}: expected a table (dict), got {options!r}")
    known = {f.name: f for f in fields(cls)}
    reject_unknown_keys(options, known, section)
    hints = typing.get_type_hints(cls)
    values = {
        key: check_value(f"{section}.{key}", value, known[key], hints[key]) for key, value in options.items()
    }
    return cls(**values)


def is_spike(loss: float, mean: float | None, factor: float) -> bool:
    """Return True when ``loss`` exceeds ``factor`` times the running ``mean`` (or is not finite)."""
    if not math.isfinite(loss):
        return True
    return mean is not None and loss > factor * mean


def is_stalled(best: float, accuracy: float, waited: int, patience: int, min_delta: float) -> tuple[bool, float, int]:
    """Return (stalled, new best, new count of evaluations without improvement)."""
    if accuracy > best + min_delta:
        return False, accuracy, 0
    waited += 1
    return waited >= patience, best, 0 if waited >= patience else waited


class LossSpikeBackoff:
    """Back off the gains of overshooting layers when the loss spikes."""

    def __init__(self, trainer: Any, options: FeedbackOptions):
        self.trainer = trainer
        self.options = options
        self.mean: float | None = None
        self.seen = 0
        self.cooldown_until = -1

    def on_step_end(self, trainer: Any, step: int, loss: float) -> None:
        options = self.options
        self.seen += 1
        armed = self.seen > options.spike_warmup and step > self.cooldown_until
        if armed and is_spike(loss, self.mean, options.spike_factor):
            layers = trainer.modulator.back_off(options.backoff_factor)
            self.cooldown_until = step + options.spike_cooldown
            trainer.log_event(
                "loss_spike_backoff", step, loss=loss, running_mean=self.mean,
                factor=options.backoff_factor, layers=layers,
            )
            return  # a spike does not enter the running mean
        if math.isfinite(loss):
            decay = options.spike_mean_decay
            self.mean = loss if self.mean is None else decay * self.mean + (1.0 - decay) * loss

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "seen": self.seen, "cooldown_until": self.cooldown_until}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mean = state.get("mean")
        self.seen = int(state.get("seen", 0))
        self.cooldown_until = int(state.get("cooldown_until", -1))


class StallRelaxation:
    """Relax the modulator toward neutral when validation accuracy stalls."""

    def __init__(self, trainer: Any, options: FeedbackOptions):
        self.trainer = trainer
        self.options = options
        self.best = -math.inf
        self.waited = 0

    def on_eval_end(self, trainer: Any, step: int, val_accuracy: float) -> None:
        options = self.options
        stalled, self.best, self.waited = is_stalled(
            self.best, val_accuracy, self.waited, options.patience, options.min_delta
        )
        if stalled and trainer.modulator.relax(options.relax_rate):
            trainer.log_event(
                "stall_relax", step, val_accuracy=val_accuracy, best=self.best,
                rate=options.relax_rate, gains=trainer.modulator.gains(),
            )

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "waited": self.waited}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = float(state.get("best", -math.inf))
        self.waited = int(state.get("waited", 0))


def build_controllers(config: Any, trainer: Any) -> list:
    """Build the controllers that ``config.feedback`` and ``config.freezing`` switch on.

    Without modulation, feedback options must be left at their defaults (they
    have nothing to act on) and freezing must stay off.
    """
    from gradmod.training.freezing import FreezingOptions, LayerFreezing

    feedback = FeedbackOptions.from_dict(dict(config.feedback))
    freezing = FreezingOptions.from_dict(dict(config.freezing))
    if trainer.modulator is None:
        if freezing.enabled:
            raise ConfigError("freezing.enabled = true needs modulation: set modulation.policy, e.g. 'hypergradient'")
        return []
    controllers: list = []
    if feedback.spike_backoff:
        controllers.append(LossSpikeBackoff(trainer, feedback))
    if feedback.stall_relax:
        controllers.append(StallRelaxation(trainer, feedback))
    if freezing.enabled:
        controllers.append(LayerFreezing(trainer, freezing))
    return controllers


def options_summary(config: Any) -> dict[str, Any]:
    """Return the effective feedback and freezing options, defaults filled in, for saved results."""
    from gradmod.training.freezing import FreezingOptions

    return {
        "feedback": asdict(FeedbackOptions.from_dict(dict(config.feedback))),
        "freezing": asdict(FreezingOptions.from_dict(dict(config.freezing), "freezing")),
    }
