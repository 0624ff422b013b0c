"""Base class of the reference models: input check and built-in normalisation.

Every model takes images of shape [B, 1, 28, 28] with values in [0, 1] and
returns logits of shape [B, num_classes]. ``forward`` checks the shape,
applies ``self.normalize`` (Fashion-MNIST mean and std, see
``gradmod.models.normalize``) and calls ``forward_normalized``, which
subclasses implement on normalised input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from gradmod.models.normalize import FASHION_MNIST_MEAN, FASHION_MNIST_STD, Normalize

__all__ = ["ImageClassifier"]


class ImageClassifier(nn.Module):
    """An image classifier with normalisation inside and its hyperparameters recorded.

    ``hparams`` contains the constructor arguments the model was built with, so
    a checkpoint or a report can record the exact architecture.
    """

    input_shape = (1, 28, 28)

    def __init__(self, hparams: Mapping[str, Any]) -> None:
        super().__init__()
        self.hparams = dict(hparams)
        self.normalize = Normalize(FASHION_MNIST_MEAN, FASHION_MNIST_STD)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits [B, num_classes] for images ``x`` [B, 1, 28, 28] in [0, 1]."""
        if x.dim() != 4 or tuple(x.shape[1:]) != self.input_shape:
            expected = ", ".join(str(size) for size in self.input_shape)
            raise ValueError(
                f"{type(self).__name__} expects images of shape [B, {expected}], got {list(x.shape)}"
            )
        return self.forward_normalized(self.normalize(x))

    def forward_normalized(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits for images that are already normalised."""
        raise NotImplementedError
