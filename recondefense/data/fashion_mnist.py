"""Fashion-MNIST over the Debian files, with the fixed splits.

Splits follow the paper's logic (45,000 / 2,500 / 2,500 of ImageNet-val, by sorted order) scaled to
Fashion-MNIST: the defense and the classifiers train on the first 55,000 of the 60,000 training
images and pick hyper-parameters on the last 5,000 (``"val"``); the 10,000 test images are read only
by evaluation (``"test"``).
"""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

from torch.utils.data import Dataset, Subset

from ..files import cache_dir
from ._tensors import TensorImages

__all__ = ["FASHION_MNIST_DEBIAN_DIR", "FASHION_MNIST_FILES", "FASHION_MNIST_TRAIN_SIZE", "fashion_mnist"]

#: Where ``apt-get install dataset-fashion-mnist`` puts the four IDX files.
FASHION_MNIST_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
FASHION_MNIST_TRAIN_SIZE = 55_000


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
    root = cache_dir()
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in FASHION_MNIST_FILES:  # torchvision reads the decompressed IDX files
        target = raw / name.removesuffix(".gz")
        if not target.exists():
            tmp = target.with_suffix(f".{os.getpid()}.tmp")  # per-process: parallel first runs do not collide
            with gzip.open(source / name, "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
            tmp.replace(target)
    base = FashionMNIST(str(root), train=split != "test", download=False)
    data = TensorImages(base.data.unsqueeze(1), base.targets)
    if split == "train":
        return Subset(data, range(FASHION_MNIST_TRAIN_SIZE))
    if split == "val":
        return Subset(data, range(FASHION_MNIST_TRAIN_SIZE, len(data)))
    return data
