"""Learn the STL dictionaries from the natural-photo pool (``python -m recondefense.baselines.stl_dictionary``).

Convolutional dictionary learning as sporco's ``dictlrn.cbpdndl.ConvBPDNDictLearn`` does it (Wohlberg,
IEEE TIP 2016; the method Sun et al. used): the training images are the high-frequency parts of
natural photos (the same Tikhonov split STL applies), and ADMM steps of ConvBPDN (coefficients) and of
CCMOD (filters constrained to a ``k x k`` support and unit norm) alternate.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from ..data import OPENCV_DATA_DIR as PHOTO_DIR
from ..data import OPENCV_PHOTOS
from .stl import tikhonov_split
from .stl_solver import admm, dictionary_spectrum

__all__ = ["PHOTO_DIR", "PHOTOS", "load_training_images", "learn_dictionary", "main"]

logger = logging.getLogger(__name__)

#: The photos the shipped dictionary was learned from (alphabetical, as ``learn`` reads them): OpenCV's
#: natural photos (``data.OPENCV_PHOTOS``) as curated when the dictionary was learned, kept so that a rerun
#: reproduces the shipped file. Held out (never used here): scikit-image, scikit-learn and matplotlib
#: samples, and the foolbox photos.
PHOTOS = tuple(
    sorted((set(OPENCV_PHOTOS) - {"chicky_512.png", "leuvenB.jpg", "rubberwhale1.png"}) | {"left.jpg", "pca_test1.jpg"})
)


def _luma(rgb: torch.Tensor) -> torch.Tensor:
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=rgb.dtype).view(3, 1, 1)
    return (rgb * weights).sum(0, keepdim=True)


def load_training_images(
    photo_dir: str | Path = PHOTO_DIR,
    names: Sequence[str] = PHOTOS,
    *,
    channels: int = 3,
    short_side: int = 256,
    crop: int = 64,
    crops_per_photo: int = 2,
    lowpass_lmbda: float = 5.0,
    lowpass_pad: int = 16,
    seed: int = 0,
) -> torch.Tensor:
    """High-frequency crops of the photo pool: ``(len(names) * crops_per_photo, channels, crop, crop)``.

    Each photo is resized so its short side is ``short_side`` (the scale of an ImageNet image resized
    for a 224-pixel classifier), split by :func:`tikhonov_split` as STL does, and ``crops_per_photo``
    random crops of its high part are kept. ``channels`` 1 uses the luma (ITU-R BT.601).
    """
    from PIL import Image

    gen = torch.Generator().manual_seed(seed)
    crops = []
    for name in names:
        path = Path(photo_dir) / name
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: install the photo pool with apt-get install -y opencv-doc")
        img = Image.open(path).convert("RGB")
        scale = short_side / min(img.size)
        img = img.resize((max(crop, round(img.size[0] * scale)), max(crop, round(img.size[1] * scale))), Image.BICUBIC)
        x = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).view(img.size[1], img.size[0], 3)
        x = x.permute(2, 0, 1).float() / 255
        if channels == 1:
            x = _luma(x)
        _, high = tikhonov_split(x, lowpass_lmbda, lowpass_pad)
        for _ in range(crops_per_photo):
            top = int(torch.randint(0, x.shape[1] - crop + 1, (1,), generator=gen))
            left = int(torch.randint(0, x.shape[2] - crop + 1, (1,), generator=gen))
            crops.append(high[:, top : top + crop, left : left + crop])
    return torch.stack(crops)


def _project(filters: torch.Tensor, size: int) -> torch.Tensor:
    """Crop full-size filters ``(M, C, H, W)`` to their ``size x size`` support and normalize to unit norm."""
    g = filters[..., :size, :size]
    norm = torch.linalg.vector_norm(g.flatten(1), dim=1).view(-1, 1, 1, 1)
    return g / torch.where(norm == 0, torch.ones_like(norm), norm)


def learn_dictionary(
    images: torch.Tensor,
    *,
    num_filters: int = 64,
    size: int = 8,
    lmbda: float = 0.2,
    iterations: int = 150,
    coding_steps: int = 1,
    seed: int = 0,
) -> torch.Tensor:
    """Learn ``num_filters`` unit-norm ``size x size`` filters on high-frequency ``images`` ``(K, C, H, W)``.

    Alternates ``coding_steps`` warm-started ConvBPDN ADMM iterations (:func:`conv_bpdn`, weight
    ``lmbda``) and one CCMOD ADMM iteration (filters in the Fourier domain, penalty ``K`` as sporco's
    default, then projection onto the constraint set), ``iterations`` times. Filters start from random
    image patches and come back sorted by use (summed ``|x_m|``).

    Returns:
        ``(num_filters, C, size, size)`` float32 dictionary.
    """
    images = images.float()
    k, c, h, w = images.shape
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, k, (num_filters,), generator=gen)
    top = torch.randint(0, h - size + 1, (num_filters,), generator=gen)
    left = torch.randint(0, w - size + 1, (num_filters,), generator=gen)
    init = torch.stack([images[i, :, t : t + size, j : j + size] for i, t, j in zip(idx, top, left)])
    init = init + 0.01 * torch.randn(init.shape, generator=gen)
    g = _project(init, size)

    sf = torch.fft.rfft2(images).reshape(k, c, -1)  # (K, C, F)
    sigma = float(k)  # sporco's CCMOD default rho
    full = torch.zeros(num_filters, c, h, w)
    dual = torch.zeros_like(full)
    state = None
    for it in range(iterations):
        state = admm(g, images, lmbda, coding_steps, 0.0, None, 1.8, True, dictionary_spectrum(g, (h, w)), state)
        coef = state[0]
        # CCMOD: per frequency, (X^H X + sigma I) d_c = X^H s_c + sigma (g - h)_c for every channel c.
        xf = torch.fft.rfft2(coef).reshape(k, num_filters, -1).permute(2, 0, 1)  # (F, K, M)
        gram = xf.mH @ xf
        gram.diagonal(dim1=-2, dim2=-1).add_(sigma)
        gpad = torch.zeros_like(full)
        gpad[..., :size, :size] = g
        target = torch.fft.rfft2(gpad - dual).reshape(num_filters, c, -1).permute(2, 0, 1)  # (F, M, C)
        rhs = xf.mH @ sf.permute(2, 0, 1) + sigma * target
        df = torch.linalg.solve(gram, rhs)  # (F, M, C)
        full = torch.fft.irfft2(df.permute(1, 2, 0).reshape(num_filters, c, h, w // 2 + 1), s=(h, w))
        proj = torch.zeros_like(full)
        proj[..., :size, :size] = _project(full + dual, size)
        dual = dual + full - proj
        g = proj[..., :size, :size].contiguous()
        if (it + 1) % 10 == 0 or it == 0:
            recon = torch.fft.irfft2(
                (xf @ torch.fft.rfft2(proj).reshape(num_filters, c, -1).permute(2, 0, 1))
                .permute(1, 2, 0)
                .reshape(k, c, h, w // 2 + 1),
                s=(h, w),
            )
            fit = 0.5 * float(((recon - images) ** 2).sum())
            l1 = float(coef.abs().sum())
            logger.info(
                "iteration %d/%d: objective %.4f (fit %.4f, l1 %.1f), nonzero %.2f%%",
                it + 1,
                iterations,
                fit + lmbda * l1,
                fit,
                l1,
                100 * float((coef != 0).float().mean()),
            )
    usage = coef.abs().sum(dim=(0, 2, 3))
    return g[torch.argsort(usage, descending=True)].contiguous()


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: learn the RGB and grayscale STL dictionaries and save them as safetensors."""
    parser = argparse.ArgumentParser(
        prog="python -m recondefense.baselines.stl_dictionary",
        description="Learn the STL convolutional dictionaries (keys 'rgb' and 'gray') from the opencv-doc photos.",
    )
    parser.add_argument("--out", type=Path, default=Path("weights/stl/dictionary.safetensors"))
    parser.add_argument("--photo-dir", type=Path, default=PHOTO_DIR)
    parser.add_argument("--num-filters", type=int, default=64)
    parser.add_argument("--size", type=int, default=8)
    parser.add_argument("--lmbda", type=float, default=0.2, help="ConvBPDN l1 weight during learning")
    parser.add_argument("--iterations", type=int, default=150)
    parser.add_argument("--coding-steps", type=int, default=1)
    parser.add_argument("--crop", type=int, default=64)
    parser.add_argument("--crops-per-photo", type=int, default=2)
    parser.add_argument("--short-side", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    from safetensors.torch import save_file

    tensors = {}
    for key, channels in (("rgb", 3), ("gray", 1)):
        images = load_training_images(
            args.photo_dir,
            channels=channels,
            short_side=args.short_side,
            crop=args.crop,
            crops_per_photo=args.crops_per_photo,
            seed=args.seed,
        )
        logger.info("learning the %s dictionary on %d crops %s", key, len(images), tuple(images.shape[1:]))
        tensors[key] = learn_dictionary(
            images,
            num_filters=args.num_filters,
            size=args.size,
            lmbda=args.lmbda,
            iterations=args.iterations,
            coding_steps=args.coding_steps,
            seed=args.seed,
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "method": "ConvBPDN + CCMOD ADMM (sporco ConvBPDNDictLearn), torch port",
        "photos": ",".join(PHOTOS),
        "lmbda": str(args.lmbda),
        "iterations": str(args.iterations),
        "coding_steps": str(args.coding_steps),
        "crop": str(args.crop),
        "crops_per_photo": str(args.crops_per_photo),
        "short_side": str(args.short_side),
        "seed": str(args.seed),
        "lowpass": "tikhonov lambda 5, pad 16",
    }
    save_file(tensors, str(args.out), metadata=meta)
    logger.info("saved %s (%s)", args.out, ", ".join(f"{k} {tuple(v.shape)}" for k, v in tensors.items()))


if __name__ == "__main__":
    main()
