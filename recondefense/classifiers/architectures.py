"""The Fashion-MNIST target networks we train and ship, and :class:`Normalized` (pixel-space wrapper)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["FASHION_MNIST_MEAN", "FASHION_MNIST_STD", "Normalized", "SmallCNN", "FashionResNet"]

#: Fashion-MNIST's pixel mean (one channel, pixels in [0, 1]): what the Fashion-MNIST classifiers normalize with.
FASHION_MNIST_MEAN = (0.2860,)
#: Fashion-MNIST's pixel standard deviation (see ``FASHION_MNIST_MEAN``).
FASHION_MNIST_STD = (0.3530,)


class Normalized(nn.Module):
    """``model((x - mean) / std)``: turns a normalized-input classifier into a pixel-space one.

    Shape: ``(N, C, H, W)`` in [0, 1] -> whatever ``model`` returns. The wrapped model is ``.model``.
    """

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).view(-1, 1, 1), persistent=False)
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).view(-1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean.to(x.dtype)) / self.std.to(x.dtype))


class SmallCNN(nn.Module):
    """The Fashion-MNIST target classifier: two conv blocks (32, 64 filters) and a 128-unit head.

    Shape: ``(N, 1, 28, 28)`` normalized -> ``(N, 10)`` logits. 0.47 M parameters (467,818).
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__()

        def block(c_in: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(c_in, c_out, 3, padding=1),
                nn.ReLU(inplace=True),
                nn.Conv2d(c_out, c_out, 3, padding=1),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            )

        self.features = nn.Sequential(block(in_channels, 32), block(32, 64))
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(0.25),
            nn.Linear(64 * 7 * 7, 128),
            nn.ReLU(inplace=True),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class BasicBlock(nn.Module):
    """ResNet's basic block: two 3x3 conv+BN, a projected shortcut when the shape changes.

    Shape: ``(N, c_in, H, W) -> (N, c_out, H/stride, W/stride)``."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = (
            nn.Identity()
            if stride == 1 and c_in == c_out
            else nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.bn1(self.conv1(x)).relu()
        return (self.bn2(self.conv2(h)) + self.shortcut(x)).relu()


class FashionResNet(nn.Module):
    """A second, different architecture (the transfer target of Table 3): a ResNet-8 with BatchNorm.

    Stem conv 16, three basic blocks of 16, 32 (stride 2) and 64 (stride 2) filters, global average
    pooling. Shape: ``(N, 1, 28, 28)`` normalized -> ``(N, 10)`` logits. 0.08 M parameters.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.blocks = nn.Sequential(BasicBlock(16, 16, 1), BasicBlock(16, 32, 2), BasicBlock(32, 64, 2))
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.blocks(self.stem(x)).mean((2, 3)))
