"""A DistributedDataParallel wrapper that follows layer freezing.

DDP fixes the set of parameters it all-reduces when it is built, from those
with ``requires_grad=True``. Layer freezing later turns ``requires_grad`` off,
and DDP would then wait forever for gradients that never come.
``TrainableDataParallel`` therefore rebuilds the wrapper whenever the set of
trainable parameters changes. The rebuilt wrapper leaves the frozen
parameters out of its buckets, so their all-reduce is skipped as well.
Freezing decisions come from gains that are identical on every rank, so all
ranks rebuild at the same step, which the rebuild needs (it broadcasts the
weights from rank 0).
"""

from __future__ import annotations

import logging

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

__all__ = ["TrainableDataParallel"]

logger = logging.getLogger(__name__)


class TrainableDataParallel:
    """Hold a ``DistributedDataParallel`` over ``model``'s currently trainable parameters.

    Args:
        model: the plain model; its parameters are shared with the wrapper, so the
            optimizer, the modulator and checkpoints keep using ``model``.
        device: the model's device; a CUDA device becomes DDP's ``device_ids``.
    """

    def __init__(self, model: nn.Module, device: torch.device) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.device = torch.device(device)
        self.rebuilds = 0
        self._wrapper: DistributedDataParallel | None = None
        self._trainable: tuple[bool, ...] | None = None

    def wrapper(self) -> DistributedDataParallel:
        """Return the DDP wrapper for the next training step, rebuilt if ``requires_grad`` changed."""
        trainable = tuple(parameter.requires_grad for parameter in self.model.parameters())
        if self._wrapper is None or trainable != self._trainable:
            if not any(trainable):
                raise RuntimeError("every parameter is frozen, so there is nothing to train or all-reduce")
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            # Drop the old wrapper first: its reducer removes its gradient hooks when destroyed.
            self._wrapper = None
            self._wrapper = DistributedDataParallel(self.model, device_ids=device_ids)
            if self._trainable is not None:
                logger.info(
                    "rebuilt DDP over %d of %d parameters after a change in requires_grad",
                    sum(trainable),
                    len(trainable),
                )
            self._trainable = trainable
            self.rebuilds += 1
        return self._wrapper
