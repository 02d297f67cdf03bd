"""Datasets: Fashion-MNIST over the Debian files, custom ImageFolder data, photos, and the fixed splits.

- :mod:`.fashion_mnist`: Fashion-MNIST from the Debian files, with the fixed train / val / test splits;
- :mod:`.photos`: the ImageNet tier's photos (training crops, held-out photos, foolbox's labelled ImageNet
  photos, fixed crops);
- :mod:`.folders`: ImageFolder data and folders of unlabelled images, split per file by :func:`hash_split`;
- :mod:`.objects`: the object photographs (Tux Paint cut-outs composited onto photos, GCompris photos) of the
  ImageNet object tier, split per source image; :mod:`.qt_resources` reads GCompris' Qt resource files;
- :mod:`.labels`: :data:`UNLABELLED`, :func:`label_with_classifier` (a classifier's clean predictions as
  the labels of photo crops or a folder of images) and :func:`label_by_consensus` (several classifiers').

:func:`load_dataset` (here) reads a data-set spec; every public name is importable from ``recondefense.data``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from .fashion_mnist import FASHION_MNIST_DEBIAN_DIR, fashion_mnist
from .fashion_mnist import FASHION_MNIST_FILES as FASHION_MNIST_FILES
from .fashion_mnist import FASHION_MNIST_TRAIN_SIZE as FASHION_MNIST_TRAIN_SIZE
from .folders import FOLDER_VAL_SHARE as FOLDER_VAL_SHARE
from .folders import SkippingImageFolder, UnlabelledFolder, collate_skipping, folder_classes
from .folders import hash_split as hash_split
from .labels import UNLABELLED, Consensus, label_by_consensus, label_with_classifier
from .objects import OBJECT_PACKAGES, ObjectCrops, object_sources, object_test_crops, painting_crops, source_split
from .photos import (
    HELDOUT_PHOTOS,
    OPENCV_DATA_DIR,
    OPENCV_PHOTOS,
    PHOTO_SIZE,
    WALLPAPER_PHOTOS,
    PhotoCrops,
    fixed_crops,
    foolbox_data_dir,
    heldout_photo_paths,
    heldout_photos,
    imagenet_sample_files,
    imagenet_samples,
    training_photo_paths,
)

__all__ = [
    "FASHION_MNIST_DEBIAN_DIR",
    "OPENCV_DATA_DIR",
    "OPENCV_PHOTOS",
    "WALLPAPER_PHOTOS",
    "HELDOUT_PHOTOS",
    "PHOTO_SIZE",
    "UNLABELLED",
    "fashion_mnist",
    "SkippingImageFolder",
    "collate_skipping",
    "PhotoCrops",
    "training_photo_paths",
    "heldout_photo_paths",
    "heldout_photos",
    "foolbox_data_dir",
    "imagenet_sample_files",
    "imagenet_samples",
    "fixed_crops",
    "label_with_classifier",
    "label_by_consensus",
    "Consensus",
    "OBJECT_PACKAGES",
    "ObjectCrops",
    "object_sources",
    "object_test_crops",
    "painting_crops",
    "source_split",
    "load_dataset",
    "classifier_labelled",
    "data_sources",
    "PHOTO_SOURCES",
    "photo_count",
]

logger = logging.getLogger(__name__)

#: Crops per ``load_dataset("photos", ...)`` split (``"photos:N"`` sets the training count).
PHOTO_TRAIN_CROPS = 10_000
PHOTO_VAL_CROPS = 500
#: Crop seeds of the two photo splits: different seeds, so val crops differ from the training crops.
_PHOTO_SEEDS = {"train": 0, "val": 1}


def _photo_split(
    spec: str, split: str, image_size: int, classifier: nn.Module | None, num_workers: int, label_cache: Path | None
) -> Dataset:
    """``load_dataset("photos[:N]", split)``: labelled :class:`PhotoCrops` of the training photos."""
    if split not in _PHOTO_SEEDS:
        raise ValueError(
            f"photos have splits train and val, not {split!r}: evaluate on heldout_photos() or imagenet_samples()"
        )
    if classifier is None:
        raise ValueError("the photos are labelled by the classifier's prediction: pass classifier=")
    train_crops = photo_count(spec)
    length = train_crops if split == "train" else min(PHOTO_VAL_CROPS, train_crops)
    crops = PhotoCrops(training_photo_paths(), length, image_size, seed=_PHOTO_SEEDS[split])
    logger.info("labelling %d %s photo crops with the classifier", length, split)
    return label_with_classifier(crops, classifier, num_workers=num_workers, cache=label_cache)


def _object_split(
    spec: str, split: str, image_size: int, classifier: nn.Module | None, num_workers: int, label_cache: Path | None
) -> Dataset:
    """``load_dataset("objects[:N]", split)``: labelled :class:`ObjectCrops` of the train or val source images."""
    if split not in _PHOTO_SEEDS:
        raise ValueError(f"objects have splits train and val, not {split!r}: evaluate on the imagenet-objects tier")
    if classifier is None:
        raise ValueError("the object images are labelled by the classifier's prediction: pass classifier=")
    train_images = photo_count(spec)
    length = train_images if split == "train" else min(PHOTO_VAL_CROPS, train_images)
    images = ObjectCrops(split, length, image_size, seed=_PHOTO_SEEDS[split])
    logger.info("labelling %d %s object images with the classifier", length, split)
    return label_with_classifier(images, classifier, num_workers=num_workers, cache=label_cache)


#: Where the photographs of the ``photos`` and ``objects`` data come from: Debian package and licence.
PHOTO_SOURCES = {
    "opencv-doc": "OpenCV's sample photographs (Apache-2.0 and BSD-3-Clause)",
    "lomiri-wallpapers-16.04, lomiri-wallpapers-20.04": "Lomiri wallpaper photographs (CC-BY-SA-3.0, CC-BY-4.0, "
    "CC-BY-SA-4.0, per image in the package's copyright file)",
    "mate-backgrounds": "MATE nature photographs (GPL-2+)",
    "plasma-workspace-wallpapers": "KDE Plasma wallpaper photographs (GPL-2+)",
    "tuxpaint-stamps-default": "Tux Paint stamps, photographic cut-outs (GPL-2)",
    "gcompris-qt-data": "GCompris photographs of explore_monuments, categorization and details (CC-BY-SA, CC-BY, "
    "CC0 or public domain, per image in the package's copyright file and each resource folder's README)",
}


def data_sources(spec: str) -> list[str]:
    """The photo sources of a training data spec, ``"<package>: <what, licence>"`` lines for a model card (empty for
    data that is not the package's photographs, e.g. Fashion-MNIST or a user's folder)."""
    if spec == "photos" or spec.startswith("photos:"):
        packages = list(PHOTO_SOURCES)[:4]
    elif spec == "objects" or spec.startswith("objects:"):
        packages = list(PHOTO_SOURCES)  # cut-outs composited onto the background photographs, and GCompris photos
    else:
        return []
    return [f"{package}: {PHOTO_SOURCES[package]}" for package in packages]


def classifier_labelled(spec: str) -> bool:
    """Whether :func:`load_dataset` labels the images of ``spec`` with the classifier's predictions (photos, object
    photographs, folders of unlabelled images) rather than with labels of their own."""
    return spec in ("photos", "objects") or spec.startswith(("photos:", "objects:", "folder:"))


def photo_count(spec: str) -> int:
    """The training image count of a ``"photos[:N]"`` or ``"objects[:N]"`` spec (default :data:`PHOTO_TRAIN_CROPS`).

    Raises:
        ValueError: ``N`` is not a positive integer.
    """
    kind, _, count = spec.partition(":")
    if not count:
        return PHOTO_TRAIN_CROPS
    try:
        crops = int(count)
    except ValueError:
        crops = 0
    if crops < 1:
        raise ValueError(f"--data {spec!r}: expected {kind}:N with N a positive number of training images")
    return crops


def load_dataset(
    spec: str,
    split: str,
    *,
    image_size: int | None = None,
    classifier: nn.Module | None = None,
    num_workers: int = 0,
    label_cache: str | Path | None = None,
) -> Dataset:
    """Dataset by spec: ``"fashionmnist"``, ``"photos"`` / ``"photos:N"``, ``"folder:PATH"`` (unlabelled images,
    any nesting, split by :func:`hash_split`, labelled by ``classifier``) or an ImageFolder path
    (``"imagefolder:PATH"`` or ``PATH``).

    For an ImageFolder, ``split`` picks the sub-folder ``PATH/<split>`` when it exists; ``PATH`` itself when it
    has no ``train`` / ``val`` / ``test`` sub-folder at all. Every split is labelled with the class-to-index map
    of ``PATH/train`` (when it exists), so a ``val`` folder with fewer classes keeps the train labels; like ``"folder:PATH"``, its images are resized and center-cropped to ``image_size`` squares
    (default :data:`PHOTO_SIZE`, 224).

    ``"photos"``: :class:`PhotoCrops` of the training photos at ``image_size`` (default 224), labelled by
    ``classifier`` (required) with :func:`label_with_classifier`; ``"train"`` has ``N`` crops (default
    10,000), ``"val"`` up to 500 other crops (another seed) of the same photos. ``"objects"`` / ``"objects:N"``:
    the same for :class:`ObjectCrops` of the object photographs, ``"val"`` drawn from the val split's sources (no
    source image is shared with ``"train"``). ``num_workers``: DataLoader
    workers reading the images while ``classifier`` labels them. ``label_cache``: a ``.npy`` file that keeps the
    labels of unlabelled images across restarts (:func:`label_with_classifier`'s ``cache``).

    Raises:
        ValueError: ``image_size`` below 1 (or other than 28 for ``"fashionmnist"``), a bad ``"photos:N"``, no
            ``classifier`` for unlabelled images, an empty PATH, a split sub-folder missing while others exist,
            or split classes that the train split lacks.
        FileNotFoundError: a data folder that does not exist (the message lists the valid spec forms).
    """
    if image_size is not None and image_size < 1:
        raise ValueError(f"image_size {image_size}: expected a positive number of pixels")
    size = PHOTO_SIZE if image_size is None else image_size
    label_cache = None if label_cache is None else Path(label_cache)
    if spec == "fashionmnist":
        if image_size is not None and image_size != FASHION_MNIST_SIZE:
            raise ValueError(
                f"image_size {image_size}: Fashion-MNIST images are {FASHION_MNIST_SIZE}x{FASHION_MNIST_SIZE}; "
                f"leave image_size unset (or {FASHION_MNIST_SIZE})"
            )
        return fashion_mnist(split)
    if spec == "photos" or spec.startswith("photos:"):
        return _photo_split(spec, split, size, classifier, num_workers, label_cache)
    if spec == "objects" or spec.startswith("objects:"):
        return _object_split(spec, split, size, classifier, num_workers, label_cache)
    if spec.startswith("folder:"):
        if classifier is None:
            raise ValueError("a folder of unlabelled images is labelled by the classifier: pass classifier=")
        images = UnlabelledFolder(_data_folder(spec, "folder:"), split, size)
        return label_with_classifier(images, classifier, num_workers=num_workers, cache=label_cache)
    root = _data_folder(spec, "imagefolder:")
    path, classes = root, None
    if (root / split).is_dir():
        path = root / split
        if split != "train" and (root / "train").is_dir():
            classes = folder_classes(root / "train")  # one class-to-index map: the train split's
    else:
        present = [s for s in _SPLIT_FOLDERS if (root / s).is_dir()]
        if present:
            raise ValueError(
                f"data folder {root} has split sub-folders {', '.join(present)} but no {split!r}: "
                f"add {root / split} or ask for one of {', '.join(present)}"
            )
    from torchvision.transforms import v2

    transform = v2.Compose([v2.ToImage(), v2.Resize(size), v2.CenterCrop(size), v2.ToDtype(torch.float32, scale=True)])
    return SkippingImageFolder(path, transform, classes=classes)


#: Split sub-folders of an ImageFolder data folder (``PATH/<split>``).
_SPLIT_FOLDERS = ("train", "val", "test")
#: Side of the Fashion-MNIST images.
FASHION_MNIST_SIZE = 28
#: The data-set spec forms, for error messages.
SPEC_FORMS = "fashionmnist, photos[:N], objects[:N], folder:PATH, imagefolder:PATH or PATH"


def _data_folder(spec: str, prefix: str) -> Path:
    """The existing folder PATH of a ``prefix + PATH`` spec (``prefix`` optional in the spec).

    Raises:
        ValueError: an empty PATH (it would read the current directory).
        FileNotFoundError: PATH is not a folder (the message lists the valid spec forms).
    """
    text = spec.removeprefix(prefix)
    if not text.strip():
        raise ValueError(f"data spec {spec!r} has an empty PATH: expected one of {SPEC_FORMS}")
    path = Path(text)
    if not path.is_dir():
        raise FileNotFoundError(f"data folder {path} does not exist (data spec {spec!r}): expected one of {SPEC_FORMS}")
    return path
