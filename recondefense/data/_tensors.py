"""In-memory images: the ``(image, label)`` dataset over stored ``uint8`` tensors that Fashion-MNIST and the
fixed photo crops share."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset


class _TensorImages(Dataset):
    """``(image, label)`` pairs from uint8 tensors: images ``(C, H, W)`` float in [0, 1]."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index].float().div(255), int(self.labels[index])
