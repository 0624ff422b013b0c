"""Layer grouping: which parameters share one gain.

By default a layer is a module that directly owns trainable parameters, named
by its module path as ``named_modules()`` gives it (``features.0``, ``head``).
A Conv2d's weight and bias form one layer; each norm layer and each embedding
is a layer of its own. Two options regroup:

- ``groups``: a mapping from a group name to one or more ``fnmatch`` patterns
  over parameter names (``{"stem": ["features.0.*", "features.1.*"]}``). The
  first group whose pattern matches takes the parameter.
- ``depth``: cut each module path after ``depth`` components, so that
  ``blocks.3.attn.qkv`` and ``blocks.3.mlp.fc1`` both join ``blocks.3``.

Parameters with ``requires_grad=False`` when the grouping is built are left
out. Wrapper prefixes that ``torch.compile`` (``_orig_mod.``) and
DistributedDataParallel (``module.``) add are removed from the names.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["Layer", "group_layers", "ROOT_LAYER"]

# Name of the layer holding parameters that the root module owns directly.
ROOT_LAYER = "(root)"
_WRAPPER_PREFIXES = ("_orig_mod.", "module.")


@dataclass(frozen=True)
class Layer:
    """One group of parameters that share a gain."""

    name: str
    param_names: tuple[str, ...]
    params: tuple[nn.Parameter, ...]


def _strip_wrappers(name: str) -> str:
    stripped = True
    while stripped:
        stripped = False
        for prefix in _WRAPPER_PREFIXES:
            if name.startswith(prefix):
                name = name[len(prefix):]
                stripped = True
    return name


def _module_path(param_name: str, depth: int | None) -> str:
    path = param_name.rpartition(".")[0]
    if depth is not None and path:
        path = ".".join(path.split(".")[:depth])
    return path or ROOT_LAYER


def _named_trainable(source) -> list[tuple[str, nn.Parameter]]:
    if isinstance(source, nn.Module):
        named = list(source.named_parameters())
    else:
        named = list(source)
        for item in named:
            if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], torch.Tensor)):
                raise TypeError(
                    "model must be an nn.Module or an iterable of (name, parameter) pairs, "
                    f"got an item {item!r}; pass model.named_parameters()"
                )
    seen: set[int] = set()
    result = []
    for name, param in named:
        if not param.requires_grad or id(param) in seen:
            continue
        seen.add(id(param))
        result.append((_strip_wrappers(name), param))
    return result


def _normalise_groups(groups: Mapping[str, str | Sequence[str]] | None) -> list[tuple[str, list[str]]]:
    if groups is None:
        return []
    if not isinstance(groups, Mapping):
        raise TypeError(f"groups must map a group name to fnmatch patterns, got {type(groups).__name__}")
    normalised = []
    for group, patterns in groups.items():
        if isinstance(patterns, str):
            patterns = [patterns]
        patterns = list(patterns)
        if not patterns or not all(isinstance(p, str) for p in patterns):
            raise ValueError(f"groups[{group!r}] must be a pattern or a list of patterns, got {patterns!r}")
        normalised.append((str(group), patterns))
    return normalised


def group_layers(
    source: nn.Module | Iterable[tuple[str, nn.Parameter]],
    groups: Mapping[str, str | Sequence[str]] | None = None,
    depth: int | None = None,
) -> list[Layer]:
    """Group the trainable parameters of ``source`` into layers, in parameter order.

    Raises ValueError when nothing is trainable or a ``groups`` pattern matches
    no parameter (usually a typo).
    """
    if depth is not None and (not isinstance(depth, int) or depth < 1):
        raise ValueError(f"depth must be a positive integer or None, got {depth!r}")
    named = _named_trainable(source)
    if not named:
        raise ValueError("no trainable parameters found: every parameter has requires_grad=False")

    pattern_groups = _normalise_groups(groups)
    used_patterns: set[tuple[str, str]] = set()
    members: dict[str, list[tuple[str, nn.Parameter]]] = {}
    for name, param in named:
        layer = None
        for group, patterns in pattern_groups:
            hit = next((p for p in patterns if fnmatch.fnmatchcase(name, p)), None)
            if hit is not None:
                used_patterns.add((group, hit))
                layer = group
                break
        if layer is None:
            layer = _module_path(name, depth)
        members.setdefault(layer, []).append((name, param))

    unused = [(g, p) for g, patterns in pattern_groups for p in patterns if (g, p) not in used_patterns]
    if unused:
        group, pattern = unused[0]
        raise ValueError(
            f"groups[{group!r}] pattern {pattern!r} matches no trainable parameter; "
            f"parameter names look like {named[0][0]!r}"
        )
    return [
        Layer(name, tuple(n for n, _ in items), tuple(p for _, p in items))
        for name, items in members.items()
    ]
