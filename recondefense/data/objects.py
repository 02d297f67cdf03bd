"""Object photographs (the ImageNet object tier): Tux Paint cut-outs composited onto photos, and GCompris photos.

Sources (every accepted file is listed in :mod:`.stamp_sources` and :mod:`.gcompris_sources`):

- :data:`~.stamp_sources.TUXPAINT_STAMPS`: photographic cut-outs with alpha (animals, fruit, tools, vehicles, ...),
  composited at a random scale, position and flip onto a random crop of a background photograph;
- :data:`~.gcompris_sources.GCOMPRIS_PHOTOS`: photographs of monuments, fish, tools and household objects, cropped.

Every source image (stamp, GCompris photo, background photo) belongs to one split, ``"train"``, ``"val"`` or
``"test"``, fixed by a hash of its name (:func:`source_split`: 70 / 10 / 20 %), so no test image is a crop or a
composite of a training image. :class:`ObjectCrops` streams training or validation images; :func:`object_test_crops`
makes the fixed test crops of the ``imagenet-objects`` tier, which :func:`~.labels.label_by_consensus` labels.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ._tensors import TensorImages
from .folders import hash_fraction
from .gcompris_sources import GCOMPRIS_PAINTINGS, GCOMPRIS_PHOTOS, GCOMPRIS_RCC_DIR
from .labels import UNLABELLED
from .photos import OPENCV_DATA_DIR, OPENCV_PHOTOS, PHOTO_SIZE, WALLPAPER_PHOTOS, fixed_crops, read_image
from .stamp_sources import TUXPAINT_STAMPS, TUXPAINT_STAMPS_DIR

__all__ = [
    "BACKGROUND_MAX_SIDE",
    "MAX_SIDE",
    "OBJECT_PACKAGES",
    "OBJECT_SPLITS",
    "ObjectCrops",
    "ObjectSources",
    "background_sources",
    "downscale",
    "object_sources",
    "object_test_crops",
    "painting_crops",
    "source_split",
]

logger = logging.getLogger(__name__)

#: The Debian packages the object sources come from.
OBJECT_PACKAGES = ("tuxpaint-stamps-default", "gcompris-qt-data")
#: Share of source images per split (by hash of the name; see :func:`source_split`).
OBJECT_SPLITS = {"train": 0.7, "val": 0.1, "test": 0.2}
#: Decoded stamps and GCompris photos are downscaled once so their long (stamps) or short side is at most this.
MAX_SIDE = 448
#: Decoded background photographs are downscaled once so their short side is at most this (their random crops are
#: then shrunk to 224 px).
BACKGROUND_MAX_SIDE = 2 * MAX_SIDE
#: Test crops per test GCompris photo (its centred square and a 2 x 2 grid) and composites per test stamp.
TEST_CROPS_PER_PHOTO = 5
TEST_COMPOSITES_PER_STAMP = 10


def source_split(name: str) -> str:
    """The split of a source image, ``"train"``, ``"val"`` or ``"test"``: a fixed function of its name.

    ``name`` is the stamp's path relative to the stamps folder, the GCompris entry (``"<activity>.rcc:<path>"``) or
    the background photo's file name; :func:`~.folders.hash_fraction` of ``"recondefense-objects/" + name`` picks it.
    """
    share = hash_fraction(f"recondefense-objects/{name}")
    if share < OBJECT_SPLITS["test"]:
        return "test"
    if share < OBJECT_SPLITS["test"] + OBJECT_SPLITS["val"]:
        return "val"
    return "train"


def downscale(image: torch.Tensor, side: int, by_long_side: bool = False) -> torch.Tensor:
    """``(C, H, W)`` uint8, shrunk (antialiased) so its short (or long) side is at most ``side``."""
    from torchvision.transforms.v2 import functional as F

    height, width = image.shape[-2:]
    reference = max(height, width) if by_long_side else min(height, width)
    if reference <= side:
        return image
    scale = side / reference
    return F.resize(image, [max(1, round(height * scale)), max(1, round(width * scale))], antialias=True)


def _read_gcompris(entries: tuple[str, ...], folder: Path) -> dict[str, torch.Tensor]:
    """The installed GCompris entries (``"<activity>.rcc:<path>"``) as RGB uint8, downscaled."""
    from .qt_resources import read_qt_resource

    images, resources = {}, {}
    for entry in entries:
        rcc, _, inner = entry.partition(":")
        if rcc not in resources:
            path = folder / rcc
            resources[rcc] = read_qt_resource(path) if path.is_file() else None
        if resources[rcc] is not None:
            images[entry] = downscale(read_image(resources[rcc].read(inner), "RGB"), MAX_SIDE)
    return images


def background_sources() -> list[tuple[str, Path]]:
    """The background photographs (the scenery photos of :mod:`.photos`) that are installed: ``(name, path)``."""
    sources = [(name, OPENCV_DATA_DIR / name) for name in OPENCV_PHOTOS]
    sources += [(Path(path).parent.parent.parent.name if "wallpapers" in path else Path(path).name, Path(path))
                for _, path in WALLPAPER_PHOTOS]  # fmt: skip
    return [(name, path) for name, path in sources if path.is_file()]


@dataclass
class ObjectSources:
    """The decoded source images of one split: stamps (RGBA), photos and backgrounds (RGB), uint8 ``(C, H, W)``."""

    split: str
    stamps: dict[str, torch.Tensor]
    photos: dict[str, torch.Tensor]
    backgrounds: dict[str, torch.Tensor]

    def __len__(self) -> int:
        return len(self.stamps) + len(self.photos)


def object_sources(
    split: str, stamps_dir: str | Path = TUXPAINT_STAMPS_DIR, rcc_dir: str | Path = GCOMPRIS_RCC_DIR
) -> ObjectSources:
    """Decode the installed source images of ``split`` (``"train"``, ``"val"``, ``"test"``; a few seconds).

    Raises:
        ValueError: an unknown split. FileNotFoundError: no stamp and no GCompris photo installed, or no background
            photo of the split (the message names the Debian packages).
    """
    if split not in OBJECT_SPLITS:
        raise ValueError(f"unknown split {split!r}: expected one of {sorted(OBJECT_SPLITS)}")
    stamps_dir, rcc_dir = Path(stamps_dir), Path(rcc_dir)
    stamps = {
        name: downscale(read_image(stamps_dir / name, "RGBA"), MAX_SIDE, by_long_side=True)
        for name in TUXPAINT_STAMPS
        if source_split(name) == split and (stamps_dir / name).is_file()
    }
    photos = _read_gcompris(tuple(e for e in GCOMPRIS_PHOTOS if source_split(e) == split), rcc_dir)
    backgrounds = {
        name: downscale(read_image(path, "RGB"), BACKGROUND_MAX_SIDE)
        for name, path in background_sources()
        if source_split(name) == split
    }
    if not stamps and not photos:
        raise FileNotFoundError(
            "no object photographs installed: `sudo apt-get install " + " ".join(OBJECT_PACKAGES) + "`"
        )
    if stamps and not backgrounds:
        raise FileNotFoundError(
            f"no background photo of the {split} split installed: `sudo apt-get install opencv-doc "
            + " ".join(sorted({p for p, _ in WALLPAPER_PHOTOS}))
            + "`"
        )
    missing = len([n for n in TUXPAINT_STAMPS if source_split(n) == split]) - len(stamps)
    if missing:
        logger.warning("%d %s stamps missing: `sudo apt-get install tuxpaint-stamps-default`", missing, split)
    return ObjectSources(split, stamps, photos, backgrounds)


def _composite(
    background: torch.Tensor, stamp: torch.Tensor, size: int, generator: torch.Generator, scale: tuple[float, float]
) -> torch.Tensor:
    """A random crop of ``background`` (RGB uint8) with ``stamp`` (RGBA uint8) pasted at a random scale (long side
    a share ``scale`` of ``size``), position and flip, alpha-blended in premultiplied form: ``(3, size, size)`` float."""
    from torchvision.transforms import RandomResizedCrop
    from torchvision.transforms.v2 import functional as F

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(2**31 - 1, (), generator=generator)))
        top, left, height, width = RandomResizedCrop.get_params(background, [0.1, 1.0], [3 / 4, 4 / 3])
    canvas = F.resized_crop(background, top, left, height, width, [size, size], antialias=True).float() / 255
    low, high = scale
    long_side = size * (low + (high - low) * float(torch.rand((), generator=generator)))
    stamp_h, stamp_w = stamp.shape[-2:]
    factor = long_side / max(stamp_h, stamp_w)
    new_h, new_w = max(1, min(size, round(stamp_h * factor))), max(1, min(size, round(stamp_w * factor)))
    rgba = stamp.float() / 255
    premultiplied = torch.cat([rgba[:3] * rgba[3:], rgba[3:]])
    premultiplied = F.resize(premultiplied, [new_h, new_w], antialias=True).clamp(0, 1)
    if bool(torch.rand((), generator=generator) < 0.5):
        premultiplied = premultiplied.flip(-1)
    y = int(torch.randint(size - new_h + 1, (), generator=generator))
    x = int(torch.randint(size - new_w + 1, (), generator=generator))
    region = canvas[:, y : y + new_h, x : x + new_w]
    alpha = premultiplied[3:]
    canvas[:, y : y + new_h, x : x + new_w] = premultiplied[:3] + (1 - alpha) * region
    return canvas.clamp(0, 1)


def _photo_crop(photo: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """A random resized crop (area 35-100 %, aspect 3/4-4/3) of an RGB uint8 photo with a random flip, float."""
    from torchvision.transforms import RandomResizedCrop
    from torchvision.transforms.v2 import functional as F

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(2**31 - 1, (), generator=generator)))
        top, left, height, width = RandomResizedCrop.get_params(photo, [0.35, 1.0], [3 / 4, 4 / 3])
    crop = F.resized_crop(photo, top, left, height, width, [size, size], antialias=True)
    if bool(torch.rand((), generator=generator) < 0.5):
        crop = crop.flip(-1)
    return crop.float() / 255


class ObjectCrops(Dataset):
    """An endless, reproducible stream of object-centric images from one split's sources.

    Item ``i`` is a pure function of ``(seed, i)`` (a private generator, the caller's RNG untouched): with
    probability ``photo_share`` a random crop of a GCompris photo, otherwise a Tux Paint cut-out composited onto a
    random crop of a background photo (long side 35-95 % of ``size``). ``length`` (any size) costs nothing up front.

    Returns ``(image (3, size, size) float in [0, 1], UNLABELLED)``: label it with the classifier's prediction.

    Raises:
        ValueError: negative ``seed`` / ``length``, ``size`` below 1, ``photo_share`` outside [0, 1].
    """

    def __init__(
        self,
        split: str = "train",
        length: int = 10_000,
        size: int = PHOTO_SIZE,
        seed: int = 0,
        photo_share: float = 0.4,
        sources: ObjectSources | None = None,
    ) -> None:
        if seed < 0 or length < 0:
            raise ValueError(f"seed and length must be non-negative, got {seed} and {length}")
        if size < 1:
            raise ValueError(f"size must be a positive number of pixels, got {size}")
        if not 0 <= photo_share <= 1:
            raise ValueError(f"photo_share must be in [0, 1], got {photo_share}")
        self.sources = sources if sources is not None else object_sources(split)
        self.stamps = list(self.sources.stamps.values())
        self.photos = list(self.sources.photos.values())
        self.backgrounds = list(self.sources.backgrounds.values())
        if not self.stamps:
            photo_share = 1.0
        elif not self.photos:
            photo_share = 0.0
        self.length, self.size, self.seed, self.photo_share = length, size, seed, photo_share

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if not -self.length <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} images")
        index %= self.length
        generator = torch.Generator().manual_seed(int(np.random.SeedSequence([self.seed, index]).generate_state(1)[0]))
        if float(torch.rand((), generator=generator)) < self.photo_share:
            photo = self.photos[int(torch.randint(len(self.photos), (), generator=generator))]
            return _photo_crop(photo, self.size, generator), UNLABELLED
        stamp = self.stamps[int(torch.randint(len(self.stamps), (), generator=generator))]
        background = self.backgrounds[int(torch.randint(len(self.backgrounds), (), generator=generator))]
        return _composite(background, stamp, self.size, generator, (0.35, 0.95)), UNLABELLED


def object_test_crops(size: int = PHOTO_SIZE, seed: int = 0, sources: ObjectSources | None = None) -> Dataset:
    """The fixed test crops of the ``imagenet-objects`` tier, from the test split's sources only.

    Per GCompris test photo its centred square and the four corner squares of a 2 x 2 grid (:func:`fixed_crops`);
    per Tux Paint test stamp :data:`TEST_COMPOSITES_PER_STAMP` composites onto test background photos (scale,
    position, flip and background seeded by the stamp's name). Unlabelled: label them with
    :func:`~.labels.label_by_consensus` (three ImageNet classifiers agree on about half).

    Returns:
        A dataset of ``(image (3, size, size) float in [0, 1], UNLABELLED)``, sources in name order.
    """
    sources = sources if sources is not None else object_sources("test")
    crops = []
    for name in sorted(sources.photos):
        photo = sources.photos[name]
        crops += [c.float() / 255 for c in fixed_crops(photo, size, 1) + fixed_crops(photo, size, 2)]
    backgrounds = [sources.backgrounds[n] for n in sorted(sources.backgrounds)]
    for name in sorted(sources.stamps):
        digest = int.from_bytes(hashlib.sha256(f"{seed}/{name}".encode()).digest()[:8], "big")
        generator = torch.Generator().manual_seed(digest % 2**63)
        for _ in range(TEST_COMPOSITES_PER_STAMP):
            background = backgrounds[int(torch.randint(len(backgrounds), (), generator=generator))]
            crops.append(_composite(background, sources.stamps[name], size, generator, (0.45, 0.9)))
    images = (torch.stack(crops) * 255).round().to(torch.uint8)  # 8-bit, as a saved image would hold
    return TensorImages(images, torch.full((len(crops),), UNLABELLED))


def painting_crops(size: int = PHOTO_SIZE, rcc_dir: str | Path = GCOMPRIS_RCC_DIR) -> Dataset:
    """Fixed crops (centre and 2 x 2 grid) of the GCompris Van Gogh paintings: clean images the gate must not open on.

    Returns:
        ``(image (3, size, size) float in [0, 1], UNLABELLED)`` items, 5 per painting; empty if not installed.
    """
    paintings = _read_gcompris(GCOMPRIS_PAINTINGS, Path(rcc_dir))
    crops = [
        c for name in sorted(paintings) for c in fixed_crops(paintings[name], size, 1)
        + fixed_crops(paintings[name], size, 2)
    ]  # fmt: skip
    images = torch.stack(crops) if crops else torch.zeros(0, 3, size, size, dtype=torch.uint8)
    return TensorImages(images, torch.full((len(crops),), UNLABELLED))
