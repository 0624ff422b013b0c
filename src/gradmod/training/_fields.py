"""Checks for config dataclass fields: type coercion, ranges and nearest names.

A field declares its constraints in ``dataclasses.field(metadata=...)``:
``min``/``max`` (inclusive), ``gt``/``lt`` (exclusive) and ``choices``. The type
comes from the annotation: ``int``, ``float``, ``bool``, ``str``, ``X | None``,
``tuple[float, float]`` and ``dict[str, Any]`` are supported.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Iterable
from typing import Any

__all__ = ["ConfigError", "check_value", "check_choice", "reject_unknown_keys"]


class ConfigError(ValueError):
    """An invalid training configuration: the message names the key, the value and the fix."""


def nearest_hint(name: str, valid: Iterable[str]) -> str:
    """Return "; did you mean 'x'?" for the closest valid name, or an empty string."""
    near = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
    return f"; did you mean {near[0]!r}?" if near else ""


def reject_unknown_keys(data: dict[str, Any], valid: Iterable[str], where: str) -> None:
    """Raise ConfigError for the first key of ``data`` that is not in ``valid``."""
    valid = list(valid)
    for key in data:
        if key not in valid:
            location = f"{where}.{key}" if where else str(key)
            raise ConfigError(
                f"unknown key {location!r}{nearest_hint(str(key), valid)} "
                f"(valid keys{' in [' + where + ']' if where else ''}: {', '.join(valid)})"
            )


def check_choice(key: str, value: str, choices: Iterable[str]) -> None:
    """Raise ConfigError unless ``value`` is one of ``choices``, naming the nearest."""
    choices = list(choices)
    if value not in choices:
        raise ConfigError(
            f"{key} = {value!r} is not valid{nearest_hint(str(value), choices)} (choose one of {', '.join(choices)})"
        )


def _type_name(annotation: Any) -> str:
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    if annotation in names:
        return names[annotation]
    origin = typing.get_origin(annotation)
    if origin is tuple:
        return f"a list of {len(typing.get_args(annotation))} numbers"
    if origin is dict:
        return "a table (dict)"
    return str(annotation)


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        arms = [arm for arm in typing.get_args(annotation) if arm is not type(None)]
        if value is None:
            return None
        return _coerce(key, value, arms[0])

    def wrong() -> ConfigError:
        return ConfigError(f"{key}: expected {_type_name(annotation)}, got {value!r} ({type(value).__name__})")

    if annotation is bool:
        if not isinstance(value, bool):
            raise wrong()
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong()
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong()
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise wrong()
        return value
    if origin is tuple:
        arms = typing.get_args(annotation)
        if not isinstance(value, (list, tuple)) or len(value) != len(arms):
            raise wrong()
        return tuple(_coerce(f"{key}[{i}]", item, arm) for i, (item, arm) in enumerate(zip(value, arms)))
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise wrong()
        return dict(value)
    raise TypeError(f"unsupported config field type {annotation!r} for {key}")


def _check_range(key: str, value: Any, metadata: typing.Mapping[str, Any]) -> None:
    if value is None:
        return
    values = value if isinstance(value, tuple) else (value,)
    for item in values:
        if "min" in metadata and item < metadata["min"]:
            raise ConfigError(f"{key} must be >= {metadata['min']}, got {value!r}")
        if "max" in metadata and item > metadata["max"]:
            raise ConfigError(f"{key} must be <= {metadata['max']}, got {value!r}")
        if "gt" in metadata and not item > metadata["gt"]:
            raise ConfigError(f"{key} must be > {metadata['gt']}, got {value!r}")
        if "lt" in metadata and not item < metadata["lt"]:
            raise ConfigError(f"{key} must be < {metadata['lt']}, got {value!r}")
    if "choices" in metadata:
        check_choice(key, value, metadata["choices"])


def check_value(key: str, value: Any, field: dataclasses.Field, annotation: Any) -> Any:
    """Return ``value`` converted to the field's type, or raise ConfigError naming ``key``."""
    converted = _coerce(key, value, annotation)
    _check_range(key, converted, field.metadata)
    return converted
