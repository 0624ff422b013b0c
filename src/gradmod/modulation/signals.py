"""Per-layer signals computed with multi-tensor (``torch._foreach_*``) operations.

Every function takes flat lists of tensors plus ``index``, a 1-D long tensor
that gives the layer of each tensor, and returns one value per layer. None of
them synchronises with the device or loops over tensors in Python.

The feedback of layer l at step t is the cosine

    h_l = cos(g_l(t), u_l(t-1)),

where g_l is the layer's gradient and u_l(t-1) its last applied update. The
inner product <g_l(t), u_l(t-1)> is the derivative of the current loss with
respect to the log of layer l's last step size (Baydin et al., "Online Learning
Rate Adaptation with Hypergradient Descent", 2018): positive means the last
step along that layer overshot, negative means it can go further.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["Signals", "layer_norms", "per_tensor", "feedback_cosine"]


@dataclass
class Signals:
    """Per-layer inputs to a gain policy, each a tensor with one value per layer.

    ``direction_norm`` is the norm of what the gain multiplies: the gradient in
    ``apply="gradient"`` mode, the raw optimizer update in ``apply="update"``
    mode. ``feedback`` is 0 where it is undefined (first step, zero norms).
    ``active`` is False for layers with no gradient this step.
    """

    grad_norm: Tensor
    direction_norm: Tensor
    feedback: Tensor
    active: Tensor
    weight_norm: Tensor | None = None


def _stack(values: tuple[Tensor, ...] | list[Tensor], dtype: torch.dtype) -> Tensor:
    if all(v.dtype == dtype for v in values):
        return torch.stack(values)
    return torch.stack([v.to(dtype) for v in values])  # mixed precision models only


def layer_norms(tensors: list[Tensor], index: Tensor, n_layers: int, dtype: torch.dtype) -> Tensor:
    """Return the L2 norm of each layer: sqrt of the sum of its tensors' squared norms."""
    norms = _stack(torch._foreach_norm(tensors), dtype)
    squares = torch.zeros(n_layers, dtype=dtype, device=norms.device)
    squares.index_add_(0, index, norms * norms)
    return squares.sqrt()


def per_tensor(layer_values: Tensor, index: Tensor, like: list[Tensor]) -> list[Tensor]:
    """Spread one value per layer to a list of 0-d tensors, one per tensor in ``like``."""
    values = layer_values.index_select(0, index)
    if all(t.dtype == values.dtype for t in like):
        return list(values.unbind())
    return [v.to(t.dtype) for v, t in zip(values.unbind(), like)]  # mixed precision models only


def feedback_cosine(
    grads: list[Tensor],
    previous: list[Tensor],
    grad_norm: Tensor,
    previous_norm: Tensor,
    index: Tensor,
) -> Tensor:
    """Return cos(g_l, p_l) per layer; 0 where either norm is 0. Overwrites ``previous``.

    The inner product comes from one fused pass: with c_l = ||p_l|| / ||g_l||,
    ||p_l + c_l g_l||^2 = 2 ||p_l||^2 (1 + cos), so scaling g_l to the norm of
    p_l keeps both terms of one size and the cosine accurate to a few ulps.
    """
    defined = (grad_norm > 0) & (previous_norm > 0)
    scale = torch.where(defined, previous_norm / grad_norm.clamp_min(torch.finfo(grad_norm.dtype).tiny), 0.0)
    torch._foreach_addcmul_(previous, grads, per_tensor(scale, index, previous))
    summed = layer_norms(previous, index, grad_norm.numel(), grad_norm.dtype)
    reference = previous_norm.clamp_min(torch.finfo(previous_norm.dtype).tiny)
    cosine = (summed / reference).square() * 0.5 - 1.0
    return torch.where(defined, cosine.clamp(-1.0, 1.0), 0.0)
