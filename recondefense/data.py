"""Datasets: Fashion-MNIST over the Debian files, custom ImageFolder data, photos, and the fixed splits.

Splits follow the paper's logic (45,000 / 2,500 / 2,500 of ImageNet-val, by sorted order) scaled to
Fashion-MNIST: the defense and the classifiers train on the first 55,000 of the 60,000 training
images and pick hyper-parameters on the last 5,000 (``"val"``); the 10,000 test images are read only
by evaluation (``"test"``).

Photos (the ImageNet tier, 224 px RGB): the defense trains only on random resized crops of the natural
photos in Debian ``opencv-doc`` and ``gnome-backgrounds`` (:class:`PhotoCrops`, :func:`training_photo_paths`),
labelled with the target classifier's own prediction (:func:`label_with_classifier`). Evaluation uses
photos never trained on: scikit-image, scikit-learn and matplotlib sample photos (:func:`heldout_photos`)
and the 20 labelled ImageNet photos shipped by foolbox (:func:`imagenet_samples`). Sources that are
not installed are skipped with a warning naming the package to install.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

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
    "load_dataset",
]

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
            tmp = target.with_suffix(f".{os.getpid()}.tmp")  # per-process: parallel first runs do not collide
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


#: Share of a ``folder:PATH`` data set that goes to validation (chosen per file by a seeded hash of its path).
FOLDER_VAL_SHARE = 0.1


def hash_split(relative_path: str, seed: int = 0, val_share: float = FOLDER_VAL_SHARE) -> str:
    """``"val"`` or ``"train"`` for a file, from a seeded sha256 of its path relative to the data folder:
    the split of a file never changes when files are added or removed."""
    digest = hashlib.sha256(f"{seed}:{relative_path}".encode()).digest()
    return "val" if int.from_bytes(digest[:8], "big") / 2**64 < val_share else "train"


class UnlabelledFolder(Dataset):
    """Every image under ``root`` (any nesting, no class folders needed), one split of them (:func:`hash_split`).

    Items are ``(image (3, size, size) float in [0, 1], UNLABELLED)``, resized and center-cropped to ``size``
    (default :data:`PHOTO_SIZE`);
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
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMG_EXTENSIONS)
        if not files:
            raise ValueError(f"data folder {root} holds no images ({', '.join(IMG_EXTENSIONS)})")
        self.paths = [p for p in files if hash_split(p.relative_to(root).as_posix(), seed) == split]
        self.transform = v2.Compose(
            [
                v2.ToImage(),
                v2.Resize(size or PHOTO_SIZE),
                v2.CenterCrop(size or PHOTO_SIZE),
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
    """Stack ``(image, label)`` samples, dropping None; returns ``(images, labels, n_skipped)``."""
    kept = [b for b in batch if b is not None]
    skipped = len(batch) - len(kept)
    if not kept:
        return torch.empty(0), torch.empty(0, dtype=torch.long), skipped
    images = torch.stack([b[0] for b in kept])
    labels = torch.as_tensor([b[1] for b in kept], dtype=torch.long)
    return images, labels, skipped


# ----------------------------------------------------------------------------------- photos (ImageNet tier)
#: Side of the square photo crops the ImageNet tier trains and evaluates on.
PHOTO_SIZE = 224
#: Label of an image no classifier has labelled yet (see :func:`label_with_classifier`).
UNLABELLED = -1
#: Where ``apt-get install opencv-doc`` puts OpenCV's sample images.
OPENCV_DATA_DIR = Path("/usr/share/doc/opencv-doc/examples/data")
#: The natural colour photos among them, checked by eye. Left out: drawings, logos, renders (Blender_Suzanne,
#: ml, smarties), text and sudoku photos, charts, grayscale images, a painting (starry_night), graffiti,
#: an edited (ela_modified) and a synthetically blurred photo, and the second view of near-identical pairs.
OPENCV_PHOTOS = (
    "aero1.jpg",
    "aero3.jpg",
    "aloeL.jpg",
    "apple.jpg",
    "baboon.jpg",
    "board.jpg",
    "building.jpg",
    "butterfly.jpg",
    "chicky_512.png",
    "ela_original.jpg",
    "fruits.jpg",
    "home.jpg",
    "leuvenA.jpg",
    "leuvenB.jpg",
    "messi5.jpg",
    "orange.jpg",
    "rubberwhale1.png",
    "squirrel_cls.jpg",
    "stuff.jpg",
)
#: Photographs among the Debian wallpaper packages, ``(package, path)``, checked by eye on 2026-11-25 (one
#: resolution per plasma wallpaper). Left out: lomiri-wallpapers (2 gradient artworks); lomiri-wallpapers-16.04:
#: analogpattern (abstract texture), umang (gradient art); lomiri-wallpapers-20.04: Fossa (render), Infinite-Sea
#: (composite), Painting-Colors (vector); ukui-wallpapers: all 12 (vector, flat, 3D renders); mate-backgrounds:
#: abstract/* and desktop/* (paintings, logos, gradients); sway-backgrounds: all 8 (one logo); plasma: 19 of 30
#: (renders, vector and painted art).
WALLPAPER_PHOTOS: tuple[tuple[str, str], ...] = (
    ("lomiri-wallpapers-16.04", "/usr/share/backgrounds/Bridge_by_Sander_Klootwijk.jpg"),
    ("lomiri-wallpapers-16.04", "/usr/share/backgrounds/Dragonfly_by_Bolly.jpg"),
    ("lomiri-wallpapers-16.04", "/usr/share/backgrounds/Picture_0B_by_freespace.jpg"),
    ("lomiri-wallpapers-16.04", "/usr/share/backgrounds/Picture_1A_by_freespace.jpg"),
    ("lomiri-wallpapers-16.04", "/usr/share/backgrounds/Wine_by_Jakkub_Mede.jpg"),
    ("lomiri-wallpapers-16.04", "/usr/share/backgrounds/aitzgorri_by_Aitzol_Berasategi.jpg"),
    ("lomiri-wallpapers-16.04", "/usr/share/backgrounds/free_by_Peter_Nerlich.jpg"),
    ("lomiri-wallpapers-16.04", "/usr/share/backgrounds/friends_by_Aitzol_Berasategi.jpg"),
    ("lomiri-wallpapers-16.04", "/usr/share/backgrounds/greentock_by_Peter_Nerlich.jpg"),
    ("lomiri-wallpapers-16.04", "/usr/share/backgrounds/life_by_Aitzol_Berasategi.jpg"),
    ("lomiri-wallpapers-16.04", "/usr/share/backgrounds/picosdeeuropa_by_Aitzol_Berasategi.jpg"),
    ("lomiri-wallpapers-16.04", "/usr/share/backgrounds/seeding_by_Clements_Engelhardt.jpg"),
    ("lomiri-wallpapers-16.04", "/usr/share/backgrounds/sunset_by_Aitzol_Berasategi.jpg"),
    ("lomiri-wallpapers-20.04", "/usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg"),
    *(
        ("mate-backgrounds", f"/usr/share/backgrounds/mate/nature/{name}.jpg")
        for name in (
            "Aqua",
            "Blinds",
            "Dune",
            "FreshFlower",
            "Garden",
            "GreenMeadow",
            "LadyBird",
            "RainDrops",
            "Storm",
            "TwoWings",
            "Wood",
            "YellowFlower",
        )
    ),
    *(
        ("plasma-workspace-wallpapers", f"/usr/share/wallpapers/{name}/contents/images/2560x1600.jpg")
        for name in (
            "BytheWater",
            "ColdRipple",
            "ColorfulCups",
            "DarkestHour",
            "EveningGlow",
            "FallenLeaf",
            "Grey",
            "Kite",
            "OneStandsOut",
            "Path",
            "summer_1am",
        )
    ),
)
#: Held-out photos, never trained on: ``(import name, path inside the package, pip package)``.
HELDOUT_PHOTOS = (
    ("skimage", "data/astronaut.png", "scikit-image"),
    ("skimage", "data/chelsea.png", "scikit-image"),
    ("skimage", "data/coffee.png", "scikit-image"),
    ("skimage", "data/rocket.jpg", "scikit-image"),
    ("skimage", "data/motorcycle_left.png", "scikit-image"),
    ("sklearn", "datasets/images/china.jpg", "scikit-learn"),
    ("sklearn", "datasets/images/flower.jpg", "scikit-learn"),
    ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "matplotlib"),
)


def _package_dir(name: str) -> Path | None:
    """Folder of an installed package, found without importing it (None when it is not installed)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def _read_photo(path: str | Path) -> torch.Tensor:
    """A photo file as ``(3, H, W)`` uint8 RGB."""
    from PIL import Image

    with Image.open(path) as image:
        array = np.asarray(image.convert("RGB"))
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def training_photo_paths() -> list[Path]:
    """The training photos that are installed: :data:`OPENCV_PHOTOS`, then :data:`WALLPAPER_PHOTOS`.

    Raises:
        FileNotFoundError: none is installed (the message says which Debian packages to install).
    """
    sources = [(OPENCV_DATA_DIR / name, "opencv-doc") for name in OPENCV_PHOTOS]
    sources += [(Path(path), package) for package, path in WALLPAPER_PHOTOS]
    paths = [path for path, _ in sources if path.is_file()]
    missing = sorted({package for path, package in sources if not path.is_file()})
    if missing:
        logger.warning(
            "%d of %d training photos missing: `sudo apt-get install %s`",
            len(sources) - len(paths),
            len(sources),
            " ".join(missing),
        )
    if not paths:
        raise FileNotFoundError(
            "no training photos installed: `sudo apt-get install " + " ".join(sorted({p for _, p in sources})) + "`"
        )
    return paths


def heldout_photo_paths() -> list[Path]:
    """The held-out photos (:data:`HELDOUT_PHOTOS`) that are installed; missing packages are skipped with a warning."""
    paths, missing = [], set()
    for module, relative, package in HELDOUT_PHOTOS:
        folder = _package_dir(module)
        if folder is not None and (folder / relative).is_file():
            paths.append(folder / relative)
        else:
            missing.add(package)
    if missing:
        logger.warning(
            "skipping held-out photos of %s (not installed): `pip install %s`",
            ", ".join(sorted(missing)),
            " ".join(sorted(missing)),
        )
    return paths


def fixed_crops(image: torch.Tensor, size: int = PHOTO_SIZE, grid: int = 1) -> list[torch.Tensor]:
    """Deterministic square crops of one photo, resized to ``size``.

    ``grid=1``: the largest centred square. ``grid=g > 1``: ``g x g`` squares of side ``2 / (g + 1)`` of the
    short side, evenly spaced from corner to corner (neighbours overlap by half).
    Shape: ``(C, H, W)`` -> ``g * g`` tensors ``(C, size, size)`` of the same dtype.
    """
    from torchvision.transforms.v2 import functional as F

    if grid < 1:
        raise ValueError(f"grid must be at least 1, got {grid}")
    height, width = image.shape[-2:]
    side = min(height, width) if grid == 1 else round(min(height, width) * 2 / (grid + 1))

    def offsets(extent: int) -> list[int]:
        if grid == 1:
            return [(extent - side) // 2]
        return [round(i * (extent - side) / (grid - 1)) for i in range(grid)]

    return [
        F.resized_crop(image, top, left, side, side, [size, size], antialias=True)
        for top in offsets(height)
        for left in offsets(width)
    ]


def heldout_photos(size: int = PHOTO_SIZE, grid: int = 1) -> Dataset:
    """Fixed crops (:func:`fixed_crops`) of the installed held-out photos, never trained on.

    Returns:
        A dataset of ``(image (3, size, size) float in [0, 1], UNLABELLED)``, ``grid ** 2`` crops per photo;
        label it with :func:`label_with_classifier` to measure agreement with a classifier's clean prediction.

    Raises:
        FileNotFoundError: none of the held-out photo packages is installed.
    """
    paths = heldout_photo_paths()
    if not paths:
        raise FileNotFoundError("no held-out photos: `pip install scikit-image scikit-learn matplotlib`")
    crops = [crop for path in paths for crop in fixed_crops(_read_photo(path), size, grid)]
    return _TensorImages(torch.stack(crops), torch.full((len(crops),), UNLABELLED))


def foolbox_data_dir() -> Path | None:
    """foolbox's ``data`` folder (20 labelled sample photos per dataset), located without importing foolbox."""
    folder = _package_dir("foolbox")
    return folder / "data" if folder is not None and (folder / "data").is_dir() else None


def imagenet_sample_files() -> list[tuple[Path, int]]:
    """The 20 labelled ImageNet photos foolbox ships, ``(path, ImageNet-1k label)`` sorted by index. Test only.

    Raises:
        FileNotFoundError: foolbox is not installed.
    """
    folder = foolbox_data_dir()
    if folder is None:
        raise FileNotFoundError("the labelled ImageNet photos come with foolbox: `pip install recondefense[imagenet]`")
    # imagenet_<index>_<label>.jpg
    return [(path, int(path.stem.split("_")[2])) for path in sorted(folder.glob("imagenet_*_*.jpg"))]


def imagenet_samples(size: int = PHOTO_SIZE) -> Dataset:
    """The 20 labelled ImageNet photos of foolbox (512 px squares) resized to ``size``. Test only, never train on them.

    Returns:
        A dataset of ``(image (3, size, size) float in [0, 1], ImageNet-1k label int)``.
    """
    files = imagenet_sample_files()
    images = torch.stack([fixed_crops(_read_photo(path), size)[0] for path, _ in files])
    return _TensorImages(images, torch.as_tensor([label for _, label in files]))


class PhotoCrops(Dataset):
    """Random resized crops with random horizontal flips of a few photos, reproducible from a seed.

    Item ``i`` is a pure function of ``(seed, i)``: the photo (uniform), the crop box (torchvision's
    ``RandomResizedCrop`` sampler with ``scale`` and ``ratio``) and the flip are drawn from the global RNG
    re-seeded inside ``fork_rng``, so the caller's RNG is untouched, workers and epochs agree, and any
    ``length`` (millions: an endless stream) costs nothing up front. The photos are decoded once, as uint8.

    Returns ``(image (3, size, size) float in [0, 1], UNLABELLED)``: label it with :func:`label_with_classifier`.
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        length: int,
        size: int = PHOTO_SIZE,
        seed: int = 0,
        scale: tuple[float, float] = (0.25, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
    ) -> None:
        if not paths:
            raise ValueError("PhotoCrops needs at least one photo")
        if seed < 0:
            raise ValueError(f"seed must be non-negative, got {seed}")
        self.paths = [Path(p) for p in paths]
        self.photos = [_read_photo(p) for p in self.paths]
        self.length, self.size, self.seed, self.scale, self.ratio = length, size, seed, scale, ratio

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        from torchvision.transforms import RandomResizedCrop
        from torchvision.transforms.v2 import functional as F

        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} crops")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(np.random.SeedSequence([self.seed, index]).generate_state(1)[0]))  # CPU RNG: 32 bits
            photo = self.photos[int(torch.randint(len(self.photos), ()))]
            top, left, height, width = RandomResizedCrop.get_params(photo, list(self.scale), list(self.ratio))
            flip = bool(torch.rand(()) < 0.5)
        crop = F.resized_crop(photo, top, left, height, width, [self.size, self.size], antialias=True)
        if flip:
            crop = F.horizontal_flip(crop)
        return crop.float().div(255), UNLABELLED


class _Relabelled(Dataset):
    """``dataset`` with its labels replaced by stored ones (None items stay None)."""

    #: the labels are a classifier's predictions (training with several classifiers relabels per classifier)
    labelled_by_classifier = True

    def __init__(self, dataset: Dataset, predicted: torch.Tensor) -> None:
        self.dataset = dataset
        self.predicted = predicted  # not named `labels`: the label space is the classifier's, whatever it predicted

    def __len__(self) -> int:
        return len(self.predicted)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int] | None:
        item = self.dataset[index]
        return None if item is None else (item[0], int(self.predicted[index]))


class _ItemsAt:
    """DataLoader collate of indices into ``[(index, dataset[index]), ...]`` (a class: spawned workers pickle it)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __call__(self, indices: list[int]) -> list[tuple[int, Any]]:
        return [(i, self.dataset[i]) for i in indices]


@torch.no_grad()
def label_with_classifier(
    dataset: Dataset, classifier: nn.Module, *, batch_size: int = 64, num_workers: int = 0
) -> Dataset:
    """``dataset`` labelled with ``classifier``'s top-1 prediction on each clean image (what the defense preserves).

    Runs the classifier once over ``dataset`` in batches of ``batch_size`` on the classifier's device (images
    read by ``num_workers`` DataLoader workers) and stores only the labels; images are read from ``dataset``
    again on access (:class:`PhotoCrops` regenerates them). ``classifier`` takes ``(N, C, H, W)`` in [0, 1]
    (a :func:`~recondefense.classifiers.load_classifier` model). Undecodable (None) items stay None.

    Returns:
        A dataset of ``(image, predicted label int)``, same length and order as ``dataset``.
    """
    device = next(classifier.parameters(), torch.empty(0)).device
    predicted = torch.full((len(dataset),), UNLABELLED, dtype=torch.long)
    loader = DataLoader(
        range(len(dataset)),
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=_ItemsAt(dataset),
    )
    for items in loader:
        kept = [(i, item[0]) for i, item in items if item is not None]
        if kept:
            images = torch.stack([image for _, image in kept]).to(device)
            predicted[[i for i, _ in kept]] = classifier(images).argmax(1).cpu()
    return _Relabelled(dataset, predicted)


#: Crops per ``load_dataset("photos", ...)`` split (``"photos:N"`` sets the training count).
PHOTO_TRAIN_CROPS = 10_000
PHOTO_VAL_CROPS = 500
#: Crop seeds of the two photo splits: different seeds, so val crops differ from the training crops.
_PHOTO_SEEDS = {"train": 0, "val": 1}


def _photo_split(
    spec: str, split: str, image_size: int | None, classifier: nn.Module | None, num_workers: int
) -> Dataset:
    """``load_dataset("photos[:N]", split)``: labelled :class:`PhotoCrops` of the training photos."""
    if split not in _PHOTO_SEEDS:
        raise ValueError(
            f"photos have splits train and val, not {split!r}: evaluate on heldout_photos() or imagenet_samples()"
        )
    if classifier is None:
        raise ValueError("the photos are labelled by the classifier's prediction: pass classifier=")
    _, _, count = spec.partition(":")
    train_crops = int(count) if count else PHOTO_TRAIN_CROPS
    length = train_crops if split == "train" else min(PHOTO_VAL_CROPS, train_crops)
    crops = PhotoCrops(training_photo_paths(), length, image_size or PHOTO_SIZE, seed=_PHOTO_SEEDS[split])
    logger.info("labelling %d %s photo crops with the classifier", length, split)
    return label_with_classifier(crops, classifier, num_workers=num_workers)


def load_dataset(
    spec: str,
    split: str,
    *,
    image_size: int | None = None,
    classifier: nn.Module | None = None,
    num_workers: int = 0,
) -> Dataset:
    """Dataset by spec: ``"fashionmnist"``, ``"photos"`` / ``"photos:N"``, ``"folder:PATH"`` (unlabelled images,
    any nesting, split by :func:`hash_split`, labelled by ``classifier``) or an ImageFolder path
    (``"imagefolder:PATH"`` or ``PATH``).

    For an ImageFolder, ``split`` picks the sub-folder ``PATH/<split>`` when it exists (else ``PATH``
    itself), and ``image_size`` resizes and center-crops to a square.

    ``"photos"``: :class:`PhotoCrops` of the training photos at ``image_size`` (default 224), labelled by
    ``classifier`` (required) with :func:`label_with_classifier`; ``"train"`` has ``N`` crops (default
    10,000), ``"val"`` up to 500 other crops (another seed) of the same photos. ``num_workers``: DataLoader
    workers reading the images while ``classifier`` labels them.
    """
    if spec == "fashionmnist":
        return fashion_mnist(split)
    if spec == "photos" or spec.startswith("photos:"):
        return _photo_split(spec, split, image_size, classifier, num_workers)
    if spec.startswith("folder:"):
        if classifier is None:
            raise ValueError("a folder of unlabelled images is labelled by the classifier: pass classifier=")
        images = UnlabelledFolder(spec.removeprefix("folder:"), split, image_size or PHOTO_SIZE)
        return label_with_classifier(images, classifier, num_workers=num_workers)
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
