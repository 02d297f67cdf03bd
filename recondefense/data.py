"""Datasets: Fashion-MNIST over the Debian files, custom ImageFolder data, and the fixed splits.

Splits follow the paper's logic (45,000 / 2,500 / 2,500 of ImageNet-val, by sorted order) scaled to
Fashion-MNIST: the defense and the classifiers train on the first 55,000 of the 60,000 training
images and pick hyper-parameters on the last 5,000 (``"val"``); the 10,000 test images are read only
by evaluation (``"test"``).
"""

from __future__ import annotations

import gzip
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, Subset

__all__ = ["FASHION_MNIST_DEBIAN_DIR", "fashion_mnist", "SkippingImageFolder", "collate_skipping", "load_dataset"]

logger = logging.getLogger(__name__)

#: Where ``apt-get install dataset-fashion-mnist`` puts the four IDX files.
FASHION_MNIST_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
FASHION_MNIST_TRAIN_SIZE = 55_000


def _cache_dir() -> Path:
    return Path(os.environ.get("RECONDEFENSE_CACHE", Path.home() / ".cache" / "recondefense"))


class _TensorImages(Dataset):
    """``(image, label)`` pairs from uint8 tensors: images ``(C, H, W)`` float in [0, 1]."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index].float().div(255), int(self.labels[index])


def fashion_mnist(split: str, source: str | Path | None = None) -> Dataset:
    """Fashion-MNIST read by ``torchvision.datasets.FashionMNIST`` from the Debian files.

    Args:
        split: ``"train"`` (55,000), ``"val"`` (5,000, the last of the training file), ``"train-full"``
            (60,000) or ``"test"`` (10,000).
        source: folder holding the four ``*-ubyte.gz`` files (default: the Debian package's).

    Returns:
        A dataset of ``(image (1, 28, 28) float in [0, 1], label int)``.
    """
    from torchvision.datasets import FashionMNIST

    if split not in ("train", "val", "train-full", "test"):
        raise ValueError(f"unknown Fashion-MNIST split {split!r}: expected train, val, train-full or test")
    source = Path(source) if source is not None else FASHION_MNIST_DEBIAN_DIR
    missing = [f for f in FASHION_MNIST_FILES if not (source / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"Fashion-MNIST files {missing} not found in {source}: install them with "
            "`sudo apt-get install dataset-fashion-mnist` (or pass the folder holding them)"
        )
    root = _cache_dir()
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in FASHION_MNIST_FILES:  # torchvision reads the decompressed IDX files
        target = raw / name.removesuffix(".gz")
        if not target.exists():
            tmp = target.with_suffix(".tmp")
            with gzip.open(source / name, "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
            tmp.replace(target)
    base = FashionMNIST(str(root), train=split != "test", download=False)
    data = _TensorImages(base.data.unsqueeze(1), base.targets)
    if split == "train":
        return Subset(data, range(FASHION_MNIST_TRAIN_SIZE))
    if split == "val":
        return Subset(data, range(FASHION_MNIST_TRAIN_SIZE, len(data)))
    return data


class SkippingImageFolder(Dataset):
    """A torchvision ``ImageFolder`` whose undecodable images yield None (skipped, warned, counted).

    Use with :func:`collate_skipping`. Images are returned as ``(C, H, W)`` float in [0, 1] after
    ``transform`` (which receives a PIL image).
    """

    def __init__(self, root: str | Path, transform: Callable[[Any], torch.Tensor] | None = None) -> None:
        from torchvision.datasets import ImageFolder
        from torchvision.transforms import v2

        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"data folder {root} does not exist")
        try:
            self.folder = ImageFolder(str(root), loader=lambda path: path)
        except FileNotFoundError as err:
            raise ValueError(f"data folder {root} holds no images in class sub-folders ({err})") from err
        self.transform = transform or v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])
        self.classes = self.folder.classes

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int] | None:
        from PIL import Image

        path, label = self.folder.samples[index]
        try:
            with Image.open(path) as image:
                image = image.convert("RGB")
        except Exception as err:  # PIL raises many types for broken files
            logger.warning("skipping %s: cannot decode (%s)", path, err)
            return None
        return self.transform(image), label


def collate_skipping(batch: list[tuple[torch.Tensor, int] | None]) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Stack ``(image, label)`` samples, dropping None; returns ``(images, labels, n_skipped)``."""
    kept = [b for b in batch if b is not None]
    skipped = len(batch) - len(kept)
    if not kept:
        return torch.empty(0), torch.empty(0, dtype=torch.long), skipped
    images = torch.stack([b[0] for b in kept])
    labels = torch.as_tensor([b[1] for b in kept], dtype=torch.long)
    return images, labels, skipped


def load_dataset(spec: str, split: str, *, image_size: int | None = None) -> Dataset:
    """Dataset by spec: ``"fashionmnist"`` or an ImageFolder path (``"imagefolder:PATH"`` or ``PATH``).

    For an ImageFolder, ``split`` picks the sub-folder ``PATH/<split>`` when it exists (else ``PATH``
    itself), and ``image_size`` resizes and center-crops to a square.
    """
    if spec == "fashionmnist":
        return fashion_mnist(split)
    path = Path(spec.removeprefix("imagefolder:"))
    if (path / split).is_dir():
        path = path / split
    transform = None
    if image_size is not None:
        from torchvision.transforms import v2

        transform = v2.Compose(
            [
                v2.ToImage(),
                v2.Resize(image_size),
                v2.CenterCrop(image_size),
                v2.ToDtype(torch.float32, scale=True),
            ]
        )
    return SkippingImageFolder(path, transform)
