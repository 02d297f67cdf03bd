"""Photos (the ImageNet tier, 224 px RGB): training crops, held-out photos, labelled ImageNet samples.

The defense trains only on random resized crops of the natural photos in Debian ``opencv-doc`` and the
wallpaper packages (:class:`PhotoCrops`, :func:`training_photo_paths`), labelled with the target classifier's
own prediction (:func:`~recondefense.data.labels.label_with_classifier`). Evaluation uses photos never trained on: scikit-image,
scikit-learn and matplotlib sample photos (:func:`heldout_photos`) and the 20 labelled ImageNet photos shipped
by foolbox (:func:`imagenet_samples`). Sources that are not installed are skipped with a warning naming the
package to install.
"""

from __future__ import annotations

import importlib.util
import io
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ._tensors import TensorImages
from .labels import UNLABELLED

__all__ = [
    "HELDOUT_PHOTOS",
    "OPENCV_DATA_DIR",
    "OPENCV_PHOTOS",
    "PHOTO_SIZE",
    "WALLPAPER_PHOTOS",
    "PhotoCrops",
    "fixed_crops",
    "foolbox_data_dir",
    "heldout_photo_paths",
    "heldout_photos",
    "imagenet_sample_files",
    "imagenet_samples",
    "read_image",
    "training_photo_paths",
]

logger = logging.getLogger(__name__)

#: Side of the square photo crops the ImageNet tier trains and evaluates on.
PHOTO_SIZE = 224
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


def read_image(source: str | Path | bytes, mode: str = "RGB") -> torch.Tensor:
    """An image file (a path, or its bytes) as ``(C, H, W)`` uint8 in PIL ``mode`` (``"RGB"``: 3 channels,
    ``"RGBA"``: 4)."""
    from PIL import Image

    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
        array = np.asarray(image.convert(mode))
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
    crops = [crop for path in paths for crop in fixed_crops(read_image(path), size, grid)]
    return TensorImages(torch.stack(crops), torch.full((len(crops),), UNLABELLED))


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
    images = torch.stack([fixed_crops(read_image(path), size)[0] for path, _ in files])
    return TensorImages(images, torch.as_tensor([label for _, label in files]))


class PhotoCrops(Dataset):
    """Random resized crops with random horizontal flips of a few photos, reproducible from a seed.

    Item ``i`` is a pure function of ``(seed, i)``: the photo (uniform), the crop box (torchvision's
    ``RandomResizedCrop`` sampler with ``scale`` and ``ratio``) and the flip are drawn from the global RNG
    re-seeded inside ``fork_rng``, so the caller's RNG is untouched, workers and epochs agree, and any
    ``length`` (millions: an endless stream) costs nothing up front. The photos are decoded once, as uint8.

    Returns ``(image (3, size, size) float in [0, 1], UNLABELLED)``: label it with :func:`label_with_classifier`.
    ``paths``: photo files (or one path); ``length`` >= 0 crops; ``size`` >= 1 pixels; ``scale`` (share of the
    photo's area) and ``ratio`` (aspect): ``(low, high)`` with ``0 < low <= high``.

    Raises:
        ValueError: no photo, or a negative ``seed`` / ``length``, ``size`` below 1, a bad ``scale`` / ``ratio``.
    """

    def __init__(
        self,
        paths: Sequence[str | Path] | str | Path,
        length: int,
        size: int = PHOTO_SIZE,
        seed: int = 0,
        scale: tuple[float, float] = (0.25, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
    ) -> None:
        if isinstance(paths, (str, Path)):  # one photo, not the characters of its path
            paths = [paths]
        if not paths:
            raise ValueError("PhotoCrops needs at least one photo")
        if seed < 0:
            raise ValueError(f"seed must be non-negative, got {seed}")
        if length < 0:
            raise ValueError(f"length must be a non-negative number of crops, got {length}")
        if size < 1:
            raise ValueError(f"size must be a positive number of pixels, got {size}")
        for name, (low, high) in (("scale", scale), ("ratio", ratio)):
            if not 0 < low <= high:
                raise ValueError(f"{name} {(low, high)}: expected (low, high) with 0 < low <= high")
        self.paths = [Path(p) for p in paths]
        self.photos = [read_image(p) for p in self.paths]
        self.length, self.size, self.seed, self.scale, self.ratio = length, size, seed, scale, ratio

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        from torchvision.transforms import RandomResizedCrop
        from torchvision.transforms.v2 import functional as F

        if not -self.length <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} crops")
        index %= self.length  # negative indices count from the end, like a sequence
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(np.random.SeedSequence([self.seed, index]).generate_state(1)[0]))  # CPU RNG: 32 bits
            photo = self.photos[int(torch.randint(len(self.photos), ()))]
            top, left, height, width = RandomResizedCrop.get_params(photo, list(self.scale), list(self.ratio))
            flip = bool(torch.rand(()) < 0.5)
        crop = F.resized_crop(photo, top, left, height, width, [self.size, self.size], antialias=True)
        if flip:
            crop = F.horizontal_flip(crop)
        return crop.float().div(255), UNLABELLED
