"""Images in folders on disk: class sub-folders (:class:`SkippingImageFolder`), or any nesting without labels
split per file by a seeded hash (:class:`UnlabelledFolder`, :func:`hash_split`). Undecodable files yield None,
dropped by :func:`collate_skipping`."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from ._tensors import stack_images
from .labels import UNLABELLED
from .photos import PHOTO_SIZE

__all__ = [
    "FOLDER_VAL_SHARE",
    "SkippingImageFolder",
    "UnlabelledFolder",
    "collate_skipping",
    "folder_classes",
    "hash_fraction",
    "hash_split",
]

logger = logging.getLogger(__name__)


def folder_classes(root: str | Path) -> list[str]:
    """The sorted class sub-folder names of an ImageFolder ``root`` (label ``i`` is ``classes[i]``)."""
    from torchvision.datasets.folder import find_classes

    return find_classes(str(root))[0]


class SkippingImageFolder(Dataset):
    """A torchvision ``ImageFolder`` whose undecodable images yield None (skipped, warned, counted).

    Use with :func:`collate_skipping`. Images are returned as ``(C, H, W)`` float in [0, 1] after
    ``transform`` (which receives a PIL image). ``classes``: the label space (label ``i`` is ``classes[i]``,
    e.g. the train split's :func:`folder_classes` for a val split); default: ``root``'s own class sub-folders.

    Raises:
        FileNotFoundError: ``root`` does not exist.
        ValueError: no images in class sub-folders, or a class sub-folder not in ``classes``.
    """

    def __init__(
        self,
        root: str | Path,
        transform: Callable[[Any], torch.Tensor] | None = None,
        classes: Sequence[str] | None = None,
    ) -> None:
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
        self.classes = list(self.folder.classes)
        if classes is not None and list(classes) != self.classes:
            unknown = sorted(set(self.classes) - set(classes))
            if unknown:
                raise ValueError(
                    f"data folder {root} has classes {unknown} that the train split lacks ({list(classes)}): "
                    "give every split the same class sub-folders"
                )
            index = {name: i for i, name in enumerate(classes)}
            self.folder.samples = [(path, index[self.classes[label]]) for path, label in self.folder.samples]
            self.folder.targets = [label for _, label in self.folder.samples]
            self.classes = list(classes)

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


#: Share of a ``folder:PATH`` data set that goes to validation (chosen per file by a seeded hash of its path).
FOLDER_VAL_SHARE = 0.1


def hash_fraction(key: str) -> float:
    """A fixed number in [0, 1) for ``key``: the first 8 bytes of its sha256. What the per-file splits share (a file's
    split never changes when other files are added or removed)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64


def hash_split(relative_path: str, seed: int = 0, val_share: float = FOLDER_VAL_SHARE) -> str:
    """``"val"`` or ``"train"`` for a file, from a seeded sha256 of its path relative to the data folder
    (:func:`hash_fraction` of ``"<seed>:<path>"``)."""
    return "val" if hash_fraction(f"{seed}:{relative_path}") < val_share else "train"


def _walk_files(root: Path) -> list[Path]:
    """Every file under ``root``, following symlinked folders (each real folder read once: no loops) and symlinked
    files; dangling links are skipped."""
    files, seen = [], set()
    for folder, subfolders, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:  # a link back to a folder already read
            subfolders[:] = []
            continue
        seen.add(real)
        subfolders.sort()  # deterministic: which of two paths to one folder is read does not depend on the OS
        files += [Path(folder, name) for name in names if os.path.isfile(os.path.join(folder, name))]
    return files


class UnlabelledFolder(Dataset):
    """Every image under ``root`` (any nesting, no class folders needed), one split of them (:func:`hash_split`).

    Items are ``(image (3, size, size) float in [0, 1], UNLABELLED)``, resized and center-cropped to ``size``
    (default :data:`PHOTO_SIZE`); symlinked files and folders are followed (each folder read once).
    undecodable files yield None (skipped, warned, counted). Label them with :func:`label_with_classifier`.
    """

    def __init__(self, root: str | Path, split: str, size: int | None = None, seed: int = 0) -> None:
        from torchvision.datasets.folder import IMG_EXTENSIONS
        from torchvision.transforms import v2

        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"data folder {root} does not exist")
        if split not in ("train", "val"):
            raise ValueError(f"a folder has splits train and val, not {split!r}")
        size = PHOTO_SIZE if size is None else size
        if size < 1:
            raise ValueError(f"size {size}: expected a positive number of pixels (None: {PHOTO_SIZE})")
        files = sorted(p for p in _walk_files(root) if p.suffix.lower() in IMG_EXTENSIONS)
        if not files:
            raise ValueError(f"data folder {root} holds no images ({', '.join(IMG_EXTENSIONS)})")
        self.paths = [p for p in files if hash_split(p.relative_to(root).as_posix(), seed) == split]
        self.transform = v2.Compose(
            [
                v2.ToImage(),
                v2.Resize(size),
                v2.CenterCrop(size),
                v2.ToDtype(torch.float32, scale=True),
            ]
        )

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int] | None:
        from PIL import Image

        try:
            with Image.open(self.paths[index]) as image:
                image = image.convert("RGB")
        except Exception as err:  # PIL raises many types for broken files
            logger.warning("skipping %s: cannot decode (%s)", self.paths[index], err)
            return None
        return self.transform(image), UNLABELLED


def collate_skipping(batch: list[tuple[torch.Tensor, int] | None]) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Stack ``(image, label)`` samples, dropping None; returns ``(images, labels, n_skipped)``.

    Raises:
        ValueError: images of different sizes.
    """
    kept = [b for b in batch if b is not None]
    skipped = len(batch) - len(kept)
    if not kept:
        return torch.empty(0), torch.empty(0, dtype=torch.long), skipped
    images = stack_images([b[0] for b in kept])
    labels = torch.as_tensor([b[1] for b in kept], dtype=torch.long)
    return images, labels, skipped
