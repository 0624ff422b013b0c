"""Gain policies and the registry that builds them by name."""

from __future__ import annotations

import difflib
import inspect
from typing import Any

from gradmod.modulation.policies._base import GainPolicy
from gradmod.modulation.policies.clip import Clip
from gradmod.modulation.policies.constant import Constant
from gradmod.modulation.policies.hypergradient import Hypergradient
from gradmod.modulation.policies.trust_ratio import TrustRatio

__all__ = ["GainPolicy", "Hypergradient", "TrustRatio", "Clip", "Constant", "POLICIES", "build_policy"]

POLICIES: dict[str, type[GainPolicy]] = {
    cls.name: cls for cls in (Hypergradient, TrustRatio, Clip, Constant)
}


def build_policy(policy: str | GainPolicy = "hypergradient", **options: Any) -> GainPolicy:
    """Return a policy instance from a name (with its options) or an instance as is."""
    if isinstance(policy, GainPolicy):
        if options:
            raise ValueError(f"options {sorted(options)} apply only when the policy is given by name")
        return policy
    if not isinstance(policy, str) or policy not in POLICIES:
        near = difflib.get_close_matches(str(policy), POLICIES, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise ValueError(f"unknown policy {policy!r}, choose one of {sorted(POLICIES)}{hint}")
    accepted = [
        name
        for name, parameter in inspect.signature(POLICIES[policy]).parameters.items()
        if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
    ]
    for option in options:
        if option not in accepted:
            near = difflib.get_close_matches(option, accepted, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ValueError(
                f"invalid option {option!r} for policy {policy!r}{hint} (its options: {', '.join(accepted)})"
            )
    try:
        return POLICIES[policy](**options)
    except TypeError as error:
        raise ValueError(f"invalid options for policy {policy!r}: {error}") from None
