"""Muon for hidden weight matrices combined with AdamW for every other parameter.

Muon ("Muon: An optimizer for hidden layers in neural networks", Jordan et al.,
2024) replaces the momentum update of a 2-D weight matrix by its nearest
semi-orthogonal matrix, computed with a few Newton-Schulz iterations. It is only
defined for matrices, and its authors leave the input and output layers to
AdamW. This module therefore splits a model's parameters in two:

- Muon (``torch.optim.Muon``): 2-D weights of hidden layers, i.e. linear layers
  and attention projections other than the classifier head;
- AdamW: biases, norm parameters, embeddings, positional embeddings, conv
  kernels (4-D) and the classifier head.

The default ``adjust_lr_fn="match_rms_adamw"`` scales Muon's update to the RMS
of an AdamW update ("Muon is Scalable for LLM Training", Liu et al., 2025), so
one learning rate and weight decay serve both halves.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch
from torch import nn

__all__ = ["MuonWithAdamW", "split_muon_parameters"]


def _classifier_head(model: nn.Module) -> nn.Module | None:
    """Return the last ``nn.Linear`` registered in the model, taken to produce the logits."""
    head = None
    for module in model.modules():
        if isinstance(module, nn.Linear):
            head = module
    return head


def split_muon_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """Split trainable parameters into (Muon matrices, AdamW rest), each in model order."""
    head = _classifier_head(model)
    excluded = set()
    for module in model.modules():
        if isinstance(module, nn.Embedding) or module is head:
            excluded.update(id(p) for p in module.parameters(recurse=False))

    matrices, rest = [], []
    for parameter in model.parameters():
        if not parameter.requires_grad:
            continue
        if parameter.ndim == 2 and id(parameter) not in excluded:
            matrices.append(parameter)
        else:
            rest.append(parameter)
    return matrices, rest


class MuonWithAdamW:
    """One optimizer object over two: ``torch.optim.Muon`` and ``torch.optim.AdamW``.

    ``param_groups`` lists Muon's groups first, then AdamW's, so a learning-rate
    schedule and the gradient modulator see one optimizer. Weight decay is
    decoupled in both halves. AdamW applies it only to parameters with two or
    more dimensions (conv kernels, embeddings, the head), not to biases and norms.

    Args:
        model: the model whose trainable parameters are optimized.
        lr: learning rate of both halves (Muon's after its RMS adjustment).
        weight_decay: decoupled weight decay, >= 0.
        momentum: Muon's momentum, in [0, 1).
        nesterov: Nesterov momentum for Muon.
        betas, eps: AdamW's moment coefficients and denominator term.
        adjust_lr_fn: Muon's learning-rate adjustment, ``"match_rms_adamw"`` or ``"original"``.
    """

    def __init__(
        self,
        model: nn.Module,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        momentum: float = 0.95,
        nesterov: bool = True,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        adjust_lr_fn: str = "match_rms_adamw",
    ) -> None:
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        if adjust_lr_fn not in ("match_rms_adamw", "original"):
            raise ValueError(f"adjust_lr_fn must be 'match_rms_adamw' or 'original', got {adjust_lr_fn!r}")
        matrices, rest = split_muon_parameters(model)
        if not matrices:
            raise ValueError(
                f"optimizer 'muon' found no hidden 2-D weight matrix in {type(model).__name__} "
                "(conv kernels, embeddings and the classifier head go to AdamW); use 'adamw' instead"
            )
        self.muon = torch.optim.Muon(
            matrices,
            lr=lr,
            weight_decay=weight_decay,
            momentum=momentum,
            nesterov=nesterov,
            adjust_lr_fn=adjust_lr_fn,
        )
        decay = [p for p in rest if p.ndim >= 2]
        no_decay = [p for p in rest if p.ndim < 2]
        groups = [
            {"params": params, "weight_decay": wd}
            for params, wd in ((decay, weight_decay), (no_decay, 0.0))
            if params
        ]
        self.adamw = torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps) if groups else None

    @property
    def optimizers(self) -> list[torch.optim.Optimizer]:
        return [self.muon] if self.adamw is None else [self.muon, self.adamw]

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return list(itertools.chain.from_iterable(opt.param_groups for opt in self.optimizers))

    @property
    def state(self) -> dict[torch.Tensor, Any]:
        """Per-parameter state of both halves, merged into one read-only copy."""
        merged: dict[torch.Tensor, Any] = {}
        for opt in self.optimizers:
            merged.update(opt.state)
        return merged

    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for opt in self.optimizers:
            opt.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return {"muon": self.muon.state_dict(), "adamw": None if self.adamw is None else self.adamw.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.muon.load_state_dict(state["muon"])
        if self.adamw is not None:
            self.adamw.load_state_dict(state["adamw"])

    def __repr__(self) -> str:
        counts = ", ".join(f"{type(o).__name__}: {sum(len(g['params']) for g in o.param_groups)} tensors" for o in self.optimizers)
        return f"MuonWithAdamW({counts})"
