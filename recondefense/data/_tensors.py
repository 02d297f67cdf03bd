"""In-memory images: the ``(image, label)`` dataset over stored ``uint8`` tensors that Fashion-MNIST and the
fixed photo crops share, and :func:`stack_images`, the one place batches of images are stacked."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset


class TensorImages(Dataset):
    """``(image, label)`` pairs from uint8 tensors: images ``(C, H, W)`` float in [0, 1]."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index].float().div(255), int(self.labels[index])


def stack_images(images: list[torch.Tensor]) -> torch.Tensor:
    """Stack ``(C, H, W)`` images into an ``(N, C, H, W)`` batch.

    Raises:
        ValueError: images of different shapes (naming two of them and the fix).
    """
    shapes = {tuple(image.shape) for image in images}
    if len(shapes) > 1:
        first, other = sorted(shapes)[:2]
        raise ValueError(
            f"images of different sizes in one batch, {first} and {other}: resize them to one size "
            "(recondefense train: --image-size; Python: e.g. torchvision.transforms.v2.Resize and CenterCrop)"
        )
    return torch.stack(images)
