"""Arms of the comparison: what changes between the runs of one workload and seed.

Every arm starts from the workload's own training configuration and changes
only what names the method, so that per seed all arms share initial weights,
data order, schedule and evaluation. An arm that changes the optimizer leaves
learning rate and weight decay unset, so the recipe's defaults for that
optimizer apply (``gradmod.training.recipes``); no arm gets a tuned learning
rate that the others do not (``--lr-scale`` applies the same multiples to all).

Variants are arms too: ``ARM:KEY=VALUE:KEY=VALUE`` is ARM with options of its
gain policy changed (``lgm:feedback=raw:normalise=ratio``) or, for a KEY
with a dot, any config key (``baseline:schedule.min_lr_ratio=1``).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from gradmod.training._fields import nearest_hint

__all__ = ["Arm", "ARMS", "DEFAULT_ARMS", "resolve_arms", "arm_variant"]

# Reset when an arm changes the optimizer, so that the recipe picks values for it.
_OPTIMIZER_DEFAULTS = {"optimizer.lr": None, "optimizer.weight_decay": None, "optimizer.nesterov": None}


@dataclass(frozen=True)
class Arm:
    """One method under comparison.

    Attributes:
        name: the arm's name in reports and on the command line.
        summary: one line for the report.
        changes: dotted config keys and values applied on top of the workload.
        requires: a module that must be importable, or None.
        extra: the pip extra that provides ``requires``.
    """

    name: str
    summary: str
    changes: dict[str, Any] = field(default_factory=dict)
    requires: str | None = None
    extra: str | None = None

    def available(self) -> bool:
        return self.requires is None or importlib.util.find_spec(self.requires) is not None


ARMS: dict[str, Arm] = {
    arm.name: arm
    for arm in (
        Arm("baseline", "the workload's optimizer and schedule as they are"),
        Arm(
            "lgm",
            "baseline + LayerwiseGradientModulator with default settings (hypergradient, centred feedback, apply=update)",
            {"modulation.policy": "hypergradient"},
        ),
        Arm(
            "agc",
            "baseline + layer-wise adaptive gradient clipping (clip policy on gradients, clipping 0.16)",
            # NOTE: 0.16 is our estimate for batch 128 from the trend the AGC paper reports
            # (smaller batches tolerate larger clipping); it is not tuned here.
            {"modulation.policy": "clip", "modulation.apply": "gradient", "modulation.options": {"clipping": 0.16}},
        ),
        Arm("lamb", "LAMB (pytorch-optimizer) in place of the optimizer", {"optimizer.name": "lamb", **_OPTIMIZER_DEFAULTS},
            requires="pytorch_optimizer", extra="anchors"),
        Arm("lars", "LARS (pytorch-optimizer) in place of the optimizer", {"optimizer.name": "lars", **_OPTIMIZER_DEFAULTS},
            requires="pytorch_optimizer", extra="anchors"),
        Arm("muon", "torch.optim.Muon for hidden matrices, AdamW for the rest", {"optimizer.name": "muon", **_OPTIMIZER_DEFAULTS}),
    )
}

DEFAULT_ARMS = ("baseline", "lgm")


def _value(text: str) -> Any:
    """Read an option value: true/false, a number, or else the text itself."""
    if text in ("true", "false"):
        return text == "true"
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number


def arm_variant(name: str) -> Arm:
    """Return the arm ``ARM:KEY=VALUE:...``: ARM with policy options or dotted config keys changed.

    A KEY without a dot is an option of the arm's gain policy (lgm, agc); one with
    a dot is any config key. Raises ValueError for a malformed name, an unknown
    arm or an option the policy rejects, before any run.
    """
    from gradmod.modulation import build_policy

    base_name, *parts = name.split(":")
    base = _known(base_name)
    changes: dict[str, Any] = dict(base.changes)
    options: dict[str, Any] = {}
    settings: dict[str, Any] = {}
    for part in parts:
        key, equals, text = part.partition("=")
        if not (key and equals and text):
            raise ValueError(f"arm {name!r}: {part!r} is not KEY=VALUE (example: lgm:feedback=raw:beta=0.05)")
        settings[key] = _value(text)
        if "." in key:
            changes[key] = settings[key]
        else:
            options[key] = settings[key]
    if not settings:
        raise ValueError(f"arm {name!r} changes nothing; name KEY=VALUE settings after ':', as in lgm:feedback=raw")
    if options:
        policy = changes.get("modulation.policy")
        if policy is None:
            raise ValueError(
                f"arm {name!r}: {', '.join(options)} would be gain-policy options, but {base_name!r} has no gain "
                "policy; use dotted config keys (such as optimizer.lr=0.1) or an arm with one (lgm, agc)"
            )
        options = {**changes.get("modulation.options", {}), **options}
        try:
            build_policy(policy, **options)
        except (TypeError, ValueError) as error:
            raise ValueError(f"arm {name!r}: {error}") from None
        changes["modulation.options"] = options
    described = ", ".join(f"{key}={value}" for key, value in settings.items())
    return Arm(name, f"{base_name} with {described}", changes, base.requires, base.extra)


def _known(name: str) -> Arm:
    if name not in ARMS:
        raise ValueError(f"unknown arm {name!r}{nearest_hint(name, ARMS)} (choose from {', '.join(ARMS)})")
    return ARMS[name]


def resolve_arms(names: Iterable[str]) -> list[Arm]:
    """Return the arms by name, baseline first; unknown names raise ValueError with the nearest.

    Names of the form ``ARM:KEY=VALUE:...`` give variants (see ``arm_variant``).
    """
    arms = []
    for name in names:
        arm = arm_variant(name) if ":" in name else _known(name)
        if arm not in arms:
            arms.append(arm)
    if ARMS["baseline"] not in arms:
        arms.insert(0, ARMS["baseline"])  # every comparison is against the baseline
    arms.sort(key=lambda arm: arm.name != "baseline")
    return arms
