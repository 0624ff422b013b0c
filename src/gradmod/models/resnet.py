"""A small residual network for 28x28 images.

He, Zhang, Ren and Sun, "Deep Residual Learning for Image Recognition"
(2016), CIFAR variant: a 3x3 stem convolution, three stages of basic blocks
with widths w, 2w, 4w (16, 32, 64 by default) at 28x28, 14x14 and 7x7,
global average pooling and a linear head. Each stage after the first starts
with a stride-2 block. The shortcut is the identity, or a 1x1 convolution
with BatchNorm where the shape changes (the paper's projection shortcut,
option B; its CIFAR networks pad with zeros instead).
``depth`` blocks per stage give 6 * depth + 2 weighted layers (ResNet-20 is
depth 3). The default depth 2 (ResNet-14, 175k parameters) trains at about
730 images/s on 2 CPU threads at batch 128, depth 1 at about 1350
(measured like the CNN's figure in ``gradmod.models.cnn``).

Module paths: ``stem.0`` (conv), ``stages.1.0.conv1``, ``stages.1.0.shortcut.0``,
``head``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gradmod.models._checks import check_positive_int
from gradmod.models.base import ImageClassifier

__all__ = ["BasicBlock", "ResNet"]


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with a residual connection: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet(ImageClassifier):
    """Stem, three stages of ``depth`` basic blocks, global average pooling, linear head.

    Args:
        width: channels of the first stage; the others have 2 * width and 4 * width.
        depth: basic blocks per stage.
        num_classes: number of output logits.
    """

    def __init__(self, *, width: int = 16, depth: int = 2, num_classes: int = 10) -> None:
        check_positive_int("width", width)
        check_positive_int("depth", depth)
        check_positive_int("num_classes", num_classes)
        super().__init__({"width": width, "depth": depth, "num_classes": num_classes})

        self.stem = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        stages = []
        in_channels = width
        for stage_index in range(3):
            out_channels = width * 2**stage_index
            first_stride = 1 if stage_index == 0 else 2
            blocks = [BasicBlock(in_channels, out_channels, first_stride)]
            blocks += [BasicBlock(out_channels, out_channels, 1) for _ in range(depth - 1)]
            stages.append(nn.Sequential(*blocks))
            in_channels = out_channels
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(in_channels, num_classes)

        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward_normalized(self, x: torch.Tensor) -> torch.Tensor:
        features = self.stages(self.stem(x))  # [B, 4w, 7, 7]
        return self.head(features.mean(dim=(2, 3)))
