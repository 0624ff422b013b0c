"""The LayerwiseGradientModulator: per-layer gains around any optimizer's step.

Usage in an existing training loop::

    mod = LayerwiseGradientModulator(model)     # policy="hypergradient"
    mod.attach(optimizer)                       # optimizer.step() is now modulated
    ...
    mod.gains()                                 # {"features.0": 1.07, ...}

Each step, in ``apply="update"`` mode (the default)::

    w_l <- w_l(before) + s_l * (w_l(after) - w_l(before))

so the gain scales the layer's applied update whatever the optimizer does:
it acts the same under SGD, AdamW and Muon, and a constant gain s equals
multiplying the learning rate by s. In ``apply="gradient"`` mode the gain scales
the gradient before the step instead (g_l <- s_l g_l); Adam-type optimizers
divide a slowly varying gradient gain back out through their second moment, so
there the gain mostly changes the weighting inside the moments, not the step.

The modulator wraps ``optimizer.step`` and does its work there. So it runs
after AMP's ``GradScaler.unscale_`` (and not on the steps GradScaler skips),
after gradient accumulation and after DDP's all-reduce, and nothing of it runs
in the backward pass.
"""

from __future__ import annotations

import logging
import types
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from gradmod.modulation.layers import Layer, group_layers
from gradmod.modulation.policies import GainPolicy, build_policy
from gradmod.modulation.signals import Signals, feedback_cosine, layer_norms, per_tensor

__all__ = ["LayerwiseGradientModulator"]

logger = logging.getLogger(__name__)

APPLY_MODES = ("update", "gradient")
_STATE_VERSION = 1


class LayerwiseGradientModulator:
    """Multiply each layer's update (or gradient) by a gain that a policy adapts.

    Args:
        model: an ``nn.Module`` or an iterable of ``(name, parameter)`` pairs.
        policy: a policy name (``"hypergradient"``, ``"trust_ratio"``, ``"clip"``,
            ``"constant"``) with its documented defaults, or a policy instance.
        apply: ``"update"`` scales the applied update after the optimizer's
            step; ``"gradient"`` scales the gradient before it.
        groups: regroup parameters by name patterns, ``{group: [patterns]}``.
        depth: group by the first ``depth`` components of the module path.
        track_updates: keep the last update (one copy of the parameters) even
            when neither the mode nor the policy needs it, for example for
            :meth:`update_ratio_tensor`. ``None`` keeps it only when needed.
        check_finite: skip the whole step when a gradient contains NaN or inf.
            This costs one host-device synchronisation per step.
    """

    def __init__(
        self,
        model: nn.Module | Iterable[tuple[str, nn.Parameter]],
        policy: str | GainPolicy = "hypergradient",
        apply: str = "update",
        *,
        groups: Mapping[str, str | Sequence[str]] | None = None,
        depth: int | None = None,
        track_updates: bool | None = None,
        check_finite: bool = True,
    ):
        if apply not in APPLY_MODES:
            raise ValueError(f"apply must be one of {APPLY_MODES}, got {apply!r}")
        self.policy = build_policy(policy)
        self.apply = apply
        self.check_finite = bool(check_finite)
        self.layers: list[Layer] = group_layers(model, groups, depth)
        self.layer_names = [layer.name for layer in self.layers]

        self._params = [p for layer in self.layers for p in layer.params]
        devices = {p.device for p in self._params}
        if len(devices) > 1:
            raise ValueError(f"all parameters must be on one device, found {sorted(map(str, devices))}")
        self.device = devices.pop()
        is_double = any(p.dtype == torch.float64 for p in self._params)
        self._stat_dtype = torch.float64 if is_double else torch.float32
        layer_of = [i for i, layer in enumerate(self.layers) for _ in layer.params]
        self._index = torch.tensor(layer_of, dtype=torch.long, device=self.device)

        self._needs_feedback = "feedback" in self.policy.needs
        self._needs_weight_norm = "weight_norm" in self.policy.needs
        self._track = apply == "update" or self._needs_feedback or bool(track_updates)
        self._updates = [torch.zeros_like(p) for p in self._params] if self._track else None

        n = len(self.layers)
        zeros = torch.zeros(n, dtype=self._stat_dtype, device=self.device)
        self._policy_state = self.policy.init_state(self.layer_names, self.device, self._stat_dtype)
        self._gains = torch.ones_like(zeros)
        self._feedback = zeros.clone()
        self._update_norm = zeros.clone()  # norm of the stored update direction
        self._applied_norm = zeros.clone()  # norm of the last applied update
        self._has_update = False
        self.step_count = 0
        self.skipped_steps = 0

        self._optimizer = None
        self._original_step = None
        self._subset_cache: dict[tuple[int, ...], Tensor] = {}
        self._feedback_grads: list[Tensor | None] | None = None

    # ----------------------------------------------------------------- attach
    def attach(self, optimizer: Any) -> "LayerwiseGradientModulator":
        """Wrap ``optimizer.step`` so every step is modulated; returns self."""
        if self._optimizer is not None:
            raise RuntimeError("this modulator is already attached; call detach() first")
        if not callable(getattr(optimizer, "step", None)):
            raise TypeError(f"optimizer must have a step() method, got {type(optimizer).__name__}")
        if isinstance(optimizer, torch.optim.LBFGS):
            raise TypeError("LBFGS evaluates its closure many times per step and cannot be modulated")
        tracked = {id(p) for p in self._params}
        groups = getattr(optimizer, "param_groups", None)
        if groups is not None:
            optimized = {id(p) for group in groups for p in group["params"]}
            if not tracked & optimized:
                raise ValueError("the optimizer updates none of the modulated parameters")

        modulator = self

        def modulated_step(opt, *args, **kwargs):
            return modulator._step(*args, **kwargs)

        self._original_step = optimizer.step
        if getattr(self._original_step, "_wrapped_by_lr_sched", False):
            # The scheduler's own wrapper still runs inside ours, so keep its mark.
            modulated_step._wrapped_by_lr_sched = True
        self._modulated_function = modulated_step
        # A bound method, because LR schedulers re-bind step.__func__ to the optimizer.
        optimizer.step = types.MethodType(modulated_step, optimizer)
        self._optimizer = optimizer
        return self

    def detach(self) -> None:
        """Restore the optimizer's own step; the gains stay as they are."""
        optimizer = self._optimizer
        if optimizer is None:
            return
        current = getattr(optimizer.step, "__func__", None)
        if current is self._modulated_function:
            if "step" in vars(optimizer) and getattr(self._original_step, "__func__", None) is getattr(
                type(optimizer), "step", None
            ):
                del optimizer.step
            else:
                optimizer.step = self._original_step
            self._optimizer = None
            self._original_step = None
        else:
            # Something (an LR scheduler) wrapped step after us: pass through from now on.
            self._optimizer = None

    # ------------------------------------------------------------------- step
    def _step(self, *args, **kwargs):
        if self._optimizer is None:  # detached while still wrapped by someone else
            return self._original_step(*args, **kwargs)
        closure = kwargs.pop("closure", None)
        if args:
            closure, args = args[0], args[1:]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()  # evaluated once, before the gradients are read
        with torch.no_grad():
            prepared = self._before_step()
        if prepared is False:
            return loss
        result = self._original_step(*args, **kwargs)
        if prepared is not None:
            with torch.no_grad():
                self._after_step(*prepared)
        return loss if closure is not None else result

    def _active(self) -> tuple[list[Tensor], list[Tensor], list[Tensor] | None, Tensor, tuple[int, ...] | None]:
        """Return the parameters with a gradient, their gradients, update buffers, layer index and positions."""
        grads = [p.grad for p in self._params]
        if all(g is not None for g in grads):
            return self._params, grads, self._updates, self._index, None
        keep = tuple(i for i, g in enumerate(grads) if g is not None)
        index = self._subset_cache.get(keep)
        if index is None:
            index = self._index[list(keep)] if keep else self._index[:0]
            self._subset_cache = {keep: index}  # the active set rarely changes
        params = [self._params[i] for i in keep]
        updates = [self._updates[i] for i in keep] if self._updates is not None else None
        return params, [grads[i] for i in keep], updates, index, keep

    def _feedback_source(self, external, grads: list[Tensor], grad_norm: Tensor, index: Tensor, keep):
        """Return the gradients the feedback is measured on and their layer norms.

        They are the step's own gradients, or those given to :meth:`set_feedback_gradients`
        (a missing one counts as zero).
        """
        if external is None:
            return grads, grad_norm
        if keep is not None:
            external = [external[i] for i in keep]
        source = [torch.zeros_like(g) if e is None else e for g, e in zip(grads, external)]
        return source, layer_norms(source, index, len(self.layers), self._stat_dtype)

    def _before_step(self):
        params, grads, updates, index, keep = self._active()
        external, self._feedback_grads = self._feedback_grads, None
        if not params:
            return None
        if any(g.is_sparse for g in grads):
            raise TypeError("sparse gradients are not supported by the modulator")
        n = len(self.layers)
        grad_norm = layer_norms(grads, index, n, self._stat_dtype)
        if self.check_finite and not bool(torch.isfinite(grad_norm).all()):
            self._skip()
            return False

        active = torch.zeros(n, dtype=torch.bool, device=self.device).index_fill_(0, index, True)
        feedback = torch.zeros_like(grad_norm)
        if self._needs_feedback and self._has_update:
            previous_norm = torch.where(active, self._update_norm, 0.0)
            source, source_norm = self._feedback_source(external, grads, grad_norm, index, keep)
            # The buffer contains -u(t-1), so cos(g, buffer) is -h.
            feedback = -feedback_cosine(source, updates, source_norm, previous_norm, index)
        weight_norm = layer_norms(params, index, n, self._stat_dtype) if self._needs_weight_norm else None
        signals = Signals(grad_norm, grad_norm, feedback, active, weight_norm)

        if self.apply == "gradient":
            self._gains = self.policy.compute_gains(self._policy_state, signals)
            torch._foreach_mul_(grads, per_tensor(self._gains, index, grads))
        if updates is not None:
            torch._foreach_copy_(updates, params)
        return params, updates, index, signals

    def _after_step(self, params: list[Tensor], updates: list[Tensor] | None, index: Tensor, signals: Signals) -> None:
        n = len(self.layers)
        if updates is not None:
            torch._foreach_sub_(updates, params)  # buffer = w_before - w_after
            raw_norm = layer_norms(updates, index, n, self._stat_dtype)
        else:
            raw_norm = torch.zeros_like(signals.grad_norm)
        if self.apply == "update":
            signals.direction_norm = raw_norm
            self._gains = self.policy.compute_gains(self._policy_state, signals)
            # w = w_after + (s - 1)(w_after - w_before) = w_after + (1 - s) * buffer
            torch._foreach_addcmul_(params, updates, per_tensor(1.0 - self._gains, index, params))
            self._applied_norm = torch.where(signals.active, self._gains * raw_norm, 0.0)
        else:
            self._applied_norm = torch.where(signals.active, raw_norm, 0.0)
        self._update_norm = torch.where(signals.active, raw_norm, 0.0)
        self._feedback = signals.feedback
        self._has_update = updates is not None
        self.step_count += 1

    def _skip(self) -> None:
        self.skipped_steps += 1
        count = self.skipped_steps
        if count & (count - 1) == 0:  # warn at 1, 2, 4, 8, ... skips
            logger.warning(
                "skipped optimizer step %d: a gradient contains NaN or inf; weights, optimizer state "
                "and gains are unchanged (skipped steps so far: %d)",
                self.step_count + count,
                count,
            )

    # --------------------------------------------------------------- readouts
    def parameters(self) -> list[nn.Parameter]:
        """Return the modulated parameters, layer by layer: the order of :meth:`set_feedback_gradients`."""
        return list(self._params)

    def set_feedback_gradients(self, grads: Sequence[Tensor | None]) -> None:
        """Measure the next step's feedback on ``grads`` instead of the parameters' ``.grad``.

        For example the gradient of the clean loss while the step descends an
        adversarial loss. ``grads`` contains one tensor or None (counted as zero) per
        parameter of :meth:`parameters`. Only the next optimizer step uses them, and
        its gains still scale that step's own gradient or update.
        """
        grads = list(grads)
        if len(grads) != len(self._params):
            raise ValueError(
                f"set_feedback_gradients needs one gradient per modulated parameter ({len(self._params)}, "
                f"in the order of modulator.parameters()), got {len(grads)}"
            )
        for position, (grad, param) in enumerate(zip(grads, self._params)):
            if grad is not None and (grad.shape != param.shape or grad.device != param.device):
                raise ValueError(
                    f"feedback gradient {position} has shape {tuple(grad.shape)} on {grad.device}, but its "
                    f"parameter has shape {tuple(param.shape)} on {param.device}"
                )
        self._feedback_grads = grads

    def gains(self) -> dict[str, float]:
        """Return the gain applied at the last step, by layer name (1 before the first step)."""
        return dict(zip(self.layer_names, self._gains.tolist()))

    def feedback(self) -> dict[str, float]:
        """Return the last feedback cos(g(t), u(t-1)) by layer name (0 where undefined)."""
        return dict(zip(self.layer_names, self._feedback.tolist()))

    def gain_tensor(self) -> Tensor:
        """Return the last gains as a tensor in ``layer_names`` order, without synchronising."""
        return self._gains.detach().clone()

    def feedback_tensor(self) -> Tensor:
        """Return the last feedback as a tensor in ``layer_names`` order, without synchronising."""
        return self._feedback.detach().clone()

    def update_ratio_tensor(self) -> Tensor:
        """Return ||u_l|| / ||w_l|| of the last applied update per layer (0 where ||w_l|| is 0)."""
        with torch.no_grad():
            weight_norm = layer_norms(self._params, self._index, len(self.layers), self._stat_dtype)
        return torch.where(weight_norm > 0, self._applied_norm / weight_norm.clamp_min(1e-30), 0.0)

    # -------------------------------------------------------- pipeline feedback
    def back_off(self, factor: float = 0.5, layers: Sequence[str] | None = None) -> list[str]:
        """Multiply by ``factor`` the gains of ``layers`` (default: those whose last feedback was > 0).

        Returns the layers changed; empty when the policy has no adaptive gains.
        """
        if not 0.0 < factor <= 1.0:
            raise ValueError(f"factor must be in (0, 1], got {factor!r}")
        if layers is None:
            mask = self._feedback > 0
        else:
            unknown = [name for name in layers if name not in self.layer_names]
            if unknown:
                raise ValueError(f"unknown layer {unknown[0]!r}; layers are {self.layer_names}")
            mask = torch.tensor([name in layers for name in self.layer_names], device=self.device)
        if not self.policy.back_off(self._policy_state, mask, factor):
            return []
        self._refresh_gains()
        return [name for name, hit in zip(self.layer_names, mask.tolist()) if hit]

    def relax(self, rate: float = 0.5) -> bool:
        """Move the policy a fraction ``rate`` toward neutral (gains and step size of adaptation).

        Returns False when the policy has nothing to relax.
        """
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be in [0, 1], got {rate!r}")
        relaxed = self.policy.relax(self._policy_state, rate)
        if relaxed:
            self._refresh_gains()
        return relaxed

    def _refresh_gains(self) -> None:
        current = self.policy.current_gains(self._policy_state)
        if current is not None:
            self._gains = current

    # ------------------------------------------------------------- checkpoint
    def state_dict(self) -> dict[str, Any]:
        """Return everything needed to continue bit for bit: policy state, last update, counters."""
        return {
            "version": _STATE_VERSION,
            "layer_names": list(self.layer_names),
            "policy": self.policy.name,
            "apply": self.apply,
            "policy_state": {k: v.clone() for k, v in self._policy_state.items()},
            "gains": self._gains.clone(),
            "feedback": self._feedback.clone(),
            "update_norm": self._update_norm.clone(),
            "applied_norm": self._applied_norm.clone(),
            "has_update": self._has_update,
            "updates": [u.clone() for u in self._updates] if self._updates is not None else None,
            "step_count": self.step_count,
            "skipped_steps": self.skipped_steps,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict`; layers and policy must match this modulator."""
        if list(state.get("layer_names", [])) != self.layer_names:
            raise ValueError(
                "the saved modulator has other layers: saved "
                f"{list(state.get('layer_names', []))}, this one {self.layer_names}"
            )
        if state.get("policy") != self.policy.name:
            raise ValueError(f"the saved modulator used policy {state.get('policy')!r}, this one {self.policy.name!r}")
        if state.get("apply", self.apply) != self.apply:
            raise ValueError(f"the saved modulator used apply={state.get('apply')!r}, this one {self.apply!r}")

        def load(value: Tensor) -> Tensor:
            return value.detach().to(device=self.device, dtype=self._stat_dtype).clone()

        fresh = self.policy.init_state(self.layer_names, self.device, self._stat_dtype)
        saved = state.get("policy_state", {})
        self._policy_state = {k: load(saved[k]) if k in saved else v for k, v in fresh.items()}
        self._gains = load(state["gains"])
        self._feedback = load(state.get("feedback", torch.zeros_like(self._gains)))
        self._update_norm = load(state.get("update_norm", torch.zeros_like(self._gains)))
        self._applied_norm = load(state.get("applied_norm", torch.zeros_like(self._gains)))
        saved_updates = state.get("updates")
        self._has_update = bool(state.get("has_update", False)) and saved_updates is not None
        if self._updates is not None:
            if saved_updates is not None:
                for buffer, value in zip(self._updates, saved_updates, strict=True):
                    buffer.copy_(value)
            else:
                for buffer in self._updates:
                    buffer.zero_()
        self.step_count = int(state.get("step_count", 0))
        self.skipped_steps = int(state.get("skipped_steps", 0))

    def __repr__(self) -> str:
        return (
            f"LayerwiseGradientModulator(policy={self.policy!r}, apply={self.apply!r}, "
            f"layers={len(self.layers)}, step={self.step_count})"
        )
