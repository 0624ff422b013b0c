"""Optimizers by name: a registry of frozen descriptions and ``build_optimizer``.

Every optimizer here applies weight decay only to parameters with two or more
dimensions (weight matrices, conv kernels, embeddings) and never to biases and
norm parameters, the usual practice for CNNs and transformers.

=======  ===================================================  ==================
name     update                                               needs
=======  ===================================================  ==================
sgd      SGD with momentum (default 0.9), optional Nesterov   torch
adamw    AdamW ("Decoupled Weight Decay Regularization")      torch
muon     Muon on hidden matrices, AdamW on the rest           torch >= 2.9
lamb     LAMB ("Large Batch Optimization for Deep Learning")  pytorch-optimizer
lars     LARS ("Large Batch Training of Convolutional         pytorch-optimizer
         Networks")
=======  ===================================================  ==================
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from gradmod.training.muon import MuonWithAdamW

__all__ = ["OptimizerSpec", "OPTIMIZERS", "build_optimizer", "decay_groups", "MissingExtraError"]

ANCHORS_EXTRA = "pip install 'gradmod[anchors]'"


class MissingExtraError(ImportError):
    """An optimizer needs an optional package that is not installed."""


@dataclass(frozen=True)
class OptimizerSpec:
    """Description of one optimizer in the registry.

    Attributes:
        name: registry key.
        summary: one line for help text.
        build: ``build(model, lr, weight_decay, momentum, nesterov, betas, eps, **options)``.
        extra: the pip command that installs a missing dependency, or None.
    """

    name: str
    summary: str
    build: Callable[..., Any]
    extra: str | None = None


def decay_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Return parameter groups: >= 2-D tensors with ``weight_decay``, the rest with 0."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError(f"{type(model).__name__} has no trainable parameters")
    decay = [p for p in trainable if p.ndim >= 2]
    no_decay = [p for p in trainable if p.ndim < 2]
    return [
        {"params": params, "weight_decay": wd}
        for params, wd in ((decay, weight_decay), (no_decay, 0.0))
        if params
    ]


def _build_sgd(model, lr, weight_decay, momentum, nesterov, betas, eps, **options):
    return torch.optim.SGD(decay_groups(model, weight_decay), lr=lr, momentum=momentum, nesterov=nesterov, **options)


def _build_adamw(model, lr, weight_decay, momentum, nesterov, betas, eps, **options):
    return torch.optim.AdamW(decay_groups(model, weight_decay), lr=lr, betas=betas, eps=eps, **options)


def _build_muon(model, lr, weight_decay, momentum, nesterov, betas, eps, **options):
    # NOTE: ``momentum`` is SGD's (0.9 by default) and does not reach Muon, whose
    # own momentum defaults to 0.95; set options.muon_momentum to change it.
    muon_momentum = options.pop("muon_momentum", 0.95)
    return MuonWithAdamW(
        model, lr=lr, weight_decay=weight_decay, momentum=muon_momentum, betas=betas, eps=eps, **options
    )


def _import_anchor(class_name: str):
    try:
        import pytorch_optimizer
    except ImportError:
        raise MissingExtraError(
            f"optimizer {class_name.lower()!r} needs the pytorch-optimizer package, which is not "
            f"installed; install it with: {ANCHORS_EXTRA}"
        ) from None
    return getattr(pytorch_optimizer, class_name)


def _build_lamb(model, lr, weight_decay, momentum, nesterov, betas, eps, **options):
    lamb = _import_anchor("Lamb")
    return lamb(decay_groups(model, weight_decay), lr=lr, betas=betas, eps=eps, **options)


def _build_lars(model, lr, weight_decay, momentum, nesterov, betas, eps, **options):
    lars = _import_anchor("LARS")
    return lars(decay_groups(model, weight_decay), lr=lr, momentum=momentum, nesterov=nesterov, **options)


OPTIMIZERS: dict[str, OptimizerSpec] = {
    spec.name: spec
    for spec in (
        OptimizerSpec("sgd", "SGD with momentum and optional Nesterov momentum", _build_sgd),
        OptimizerSpec("adamw", "AdamW, decoupled weight decay", _build_adamw),
        OptimizerSpec("muon", "Muon on hidden weight matrices, AdamW on the rest", _build_muon),
        OptimizerSpec("lamb", "LAMB from pytorch-optimizer", _build_lamb, extra=ANCHORS_EXTRA),
        OptimizerSpec("lars", "LARS from pytorch-optimizer", _build_lars, extra=ANCHORS_EXTRA),
    )
}


def build_optimizer(
    model: nn.Module,
    name: str,
    *,
    lr: float,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    nesterov: bool = False,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    **options: Any,
) -> Any:
    """Build the optimizer ``name`` over the model's trainable parameters.

    ``momentum`` and ``nesterov`` apply to sgd and lars, ``betas`` and ``eps`` to
    adamw, lamb and muon's AdamW half. ``options`` go to the optimizer's
    constructor as keyword arguments (for muon: ``muon_momentum`` and
    ``adjust_lr_fn``).

    Raises:
        ValueError: unknown name (with the nearest valid one) or invalid value.
        MissingExtraError: lamb or lars without pytorch-optimizer installed.
    """
    if name not in OPTIMIZERS:
        near = difflib.get_close_matches(str(name), OPTIMIZERS, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise ValueError(f"unknown optimizer {name!r}, choose one of {sorted(OPTIMIZERS)}{hint}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    if not all(0.0 <= beta < 1.0 for beta in betas) or len(betas) != 2:
        raise ValueError(f"betas must be two numbers in [0, 1), got {betas}")
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")

    spec = OPTIMIZERS[name]
    try:
        return spec.build(
            model,
            lr=lr,
            weight_decay=weight_decay,
            momentum=momentum,
            nesterov=nesterov,
            betas=tuple(betas),
            eps=eps,
            **options,
        )
    except TypeError as error:
        raise ValueError(f"invalid options {sorted(options)} for optimizer {name!r}: {error}") from None
