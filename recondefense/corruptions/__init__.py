"""The 15 ImageNet-C common corruptions at severities 1-5, in torch.

Port of Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions and
Perturbations" (ICLR 2019). The per-severity constants are those of their ``make_imagenet_c.py``
(github.com/hendrycks/robustness, ``ImageNet-C/create_c/make_imagenet_c.py``, Apache-2.0); the code
here is our own. :data:`REFERENCE_CONSTANTS` lists them.

Usage::

    x_c = corrupt(images, "fog", 3, generator=torch.Generator().manual_seed(0))
    transform = Corruption("gaussian_noise", 2, seed=0)      # nn.Module, also callable as attack(x, y)

Images are ``(C, H, W)`` or ``(N, C, H, W)`` with ``C`` 1 (grayscale) or 3 (RGB), any ``H`` and ``W``,
float in [0, 1] (``uint8`` in [0, 255] is accepted and returned as ``uint8``); the output has the input's
shape and dtype and lies in [0, 1]. Every random draw comes from the ``torch.Generator`` passed (the
global torch RNG when None), so a generator seeded the same gives the same output; each image of a batch
gets its own draws (noise, angles, textures). Outputs are detached: corruptions are data transforms.

How each corruption relates to the reference (which works on 224 x 224 RGB ``uint8`` images). Checked
at 224 px against the reference code itself (run with OpenCV, Wand/ImageMagick and scikit-image) fed the
same random numbers: identical to float precision for the noises, defocus, zoom, fog, brightness,
contrast and JPEG, and glass (but for rare pixels whose 8-bit truncation falls the other way, <= 0.33/255);
within the reference's own 8-bit rounding (<= 1/255) for pixelate and motion blur;
within 2.3/255 (mean 0.1-0.3/255) for elastic (OpenCV's 1/32-pixel fixed-point warp) and snow (8-bit
intermediate layer). Frost is the one approximation.

- Faithful ports (same formula and constants):

  - ``gaussian_noise``, ``shot_noise`` (Poisson), ``contrast``;
  - ``impulse_noise``: scikit-image's ``s&p``, each value flipped with probability ``amount``, half to 1,
    half to 0;
  - ``defocus_blur``: the reference's aliased disk smoothed by OpenCV's Gaussian, reflect-101 borders
    (its kernels for radius 8 and 10 sum to ~1.01, as in the reference);
  - ``glass_blur``: Gaussian blur, 8-bit truncation, the sequential local pixel moves, Gaussian blur. Two
    reference quirks are kept: ``randint(-d, d)`` never draws ``+d``, and the "swap"
    ``x[h, w], x[h', w'] = x[h', w'], x[h, w]`` acts on numpy views, so it copies the neighbour into
    ``(h, w)`` instead of swapping. The moves are a Python loop over pixels (vectorized over the batch);
    the slowest corruption (about 0.5 s for 64 images at 224 px);
  - ``zoom_blur``: the reference's ``np.arange`` zoom lists and ``clipped_zoom`` (center crop, linear
    ``scipy.ndimage.zoom`` geometry, center trim);
  - ``fog``: the reference's diamond-square ``plasma_fractal``, batched;
  - ``brightness``: add to the HSV value, done as the equivalent RGB rescaling ``x * V' / V``;
  - ``elastic_transform``: random affine (reflect-101 borders), then a Gaussian-smoothed uniform
    displacement field (reflect borders), bilinear sampling;
  - ``pixelate``: Pillow's BOX resampling coefficients, down then up (without Pillow's 8-bit rounding);
  - ``jpeg_compression``: Pillow JPEG encode/decode at the reference qualities 25/18/15/10/7.

- ``motion_blur`` and the streaks of ``snow``: the reference calls ImageMagick's ``MotionBlurImage``
  through Wand. We port its kernel rather than call it: ``2 ceil(radius) + 1`` taps with one-sided
  Gaussian weights ``exp(-i^2 / 2 sigma^2)`` at offsets ``(ceil(i cos a - 0.5), ceil(i sin a - 0.5))``
  along the random angle ``a``, edge-replicated borders.
- ``frost`` (approximation): the reference blends random 224 px crops of frost *photographs* shipped
  with its repository (``frost1.png`` ... ``frost5.jpg``). **Those photos are not used: frost uses a
  procedural texture** (plasma-fractal haze plus soft needle crystals with side branches at random
  orientations), standardized per image to the per-channel mean and standard deviation of 224 px crops
  of one of the five photos (:data:`FROST_PHOTO_STATS`), then mixed with the reference's coefficients
  ``c0 * x + c1 * frost``. Brightness and colour statistics match the reference, the crystal shapes do not.

Differences common to all: no 8-bit rounding of inputs and outputs (the reference reads and writes
``uint8`` images and stores them as JPEG quality 85), except where rounding is the corruption itself
(``jpeg_compression``) or an explicit step of it (``glass_blur``). Grayscale images are handled as the
reference handles an RGB image whose three channels are equal (e.g. ``brightness`` adds to the value,
``snow``'s luminance is the pixel itself, ``frost`` uses the luminance of its colour texture).

Other sizes: the reference works at 224 px. Constants that are ratios (pixelate factor, zoom factors,
noise levels, mixing weights, JPEG quality) are used unchanged at any size. Constants in pixels are
multiplied by a scale ``s`` (keyword ``scale``; default ``min(H, W) / 224``, so 224 px is exactly the
reference): defocus radius and anti-alias sigma, glass-blur sigma and maximal shift (at least 1 px;
the iteration count is kept), motion-blur radius and sigma, snow zoom (at least 1) and streak
radius/sigma, elastic sigma and affine jitter, with elastic alpha rescaled so that the displacement
field's standard deviation is ``s`` times the reference one, frost needle length, and the fog fractal
(map side: smallest power of two >= ``max(H, W, 256 s)``, cropped from the top-left as the reference
crops 224 from 256). On small images this makes the low blur severities mild, and below these sizes
(``min(H, W)`` at the default scale) two blurs leave every image unchanged (no pixel moves by half an
8-bit level; :func:`corrupt` warns once):

- ``defocus_blur`` (disk radius 3, 4, 6, 8, 10 px at 224 px, under one pixel): severity 1 up to 74 px,
  2 up to 55 px, 3 up to 37 px, 4 up to 27 px, 5 up to 22 px. So at 28 x 28 (Fashion-MNIST,
  ``s = 0.125``) severities 1-3 are the identity;
- ``motion_blur`` (Gaussian sigma 3, 5, 8, 12, 15 px at 224 px, under 0.28 px): severity 1 up to 21 px,
  2 up to 12 px, 3 up to 7 px, 4 up to 5 px, 5 up to 4 px.

Pass ``scale=1.0`` to keep the 224 px pixel constants instead. (CIFAR-10-C used separately tuned
constants; this module does not reproduce them.)

ImageNet-C's four validation corruptions (``speckle_noise``, ``gaussian_blur``, ``spatter``, ``saturate``) are in
:data:`VALIDATION_CORRUPTIONS`, apart from the benchmark's 15 (:mod:`.validation` says how faithful each is).

Layout: one module per ImageNet-C family, :mod:`.noise`, :mod:`.blur`, :mod:`.weather` and :mod:`.digital`, and
:mod:`.validation`;
the reference's constants in :mod:`.reference`; the shared filters and random draws in :mod:`._ops`;
:func:`corrupt`, :data:`CORRUPTIONS` and :class:`Corruption` here.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..transform import check_pixels
from . import blur, digital, noise, validation, weather
from .reference import FROST_PHOTO_STATS, REFERENCE_CONSTANTS, REFERENCE_SIZE
from .validation import VALIDATION_CONSTANTS

__all__ = [
    "CORRUPTIONS",
    "Corruption",
    "KNOWN_CORRUPTIONS",
    "corruption_names",
    "FROST_PHOTO_STATS",
    "REFERENCE_CONSTANTS",
    "REFERENCE_SIZE",
    "VALIDATION_CONSTANTS",
    "VALIDATION_CORRUPTIONS",
    "corrupt",
]

#: Name -> implementation: the 15 benchmark corruptions in the paper's order (noise, blur, weather, digital),
#: then the reference's 4 validation corruptions.
_IMPLS: dict[str, Callable] = {**noise.IMPLS, **blur.IMPLS, **weather.IMPLS, **digital.IMPLS, **validation.IMPLS}


def _check_name(name: str) -> str:
    if not isinstance(name, str) or name not in _IMPLS:
        raise ValueError(f"unknown corruption {name!r}; valid names: {', '.join(_IMPLS)}")
    return name


def _check_severity(severity: int | torch.Tensor) -> int:
    integer_dtypes = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)
    if isinstance(severity, torch.Tensor) and severity.ndim == 0 and severity.dtype in integer_dtypes:
        severity = int(severity)  # a 0-d integer tensor, like np.int64
    if isinstance(severity, bool) or not isinstance(severity, numbers.Integral) or not 1 <= severity <= 5:
        raise ValueError(f"severity must be an int in 1..5, got {severity!r}")
    return int(severity)


#: (name, severity, scale) already warned about by :func:`_warn_if_unchanged`.
_WARNED: set[tuple[str, int, float]] = set()


def _warn_if_unchanged(name: str, severity: int, s: float, h: int, w: int) -> None:
    """Warn once per (corruption, severity, scale) when the corruption leaves every image unchanged."""
    if (name, severity, s) in _WARNED or not blur.leaves_unchanged(name, severity, s):
        return
    _WARNED.add((name, severity, s))
    side = next(
        (m for m in range(1, 4 * REFERENCE_SIZE) if not blur.leaves_unchanged(name, severity, m / REFERENCE_SIZE)), None
    )
    warnings.warn(
        f"{name} at severity {severity} leaves {h} x {w} images unchanged: at pixel scale {s:.3g} its kernel moves "
        f"no pixel by half an 8-bit level. At the default scale it takes effect from min(H, W) = {side} px; "
        "pass larger images or a larger scale= (see recondefense.corruptions.corrupt)",
        stacklevel=3,
    )


def _check_scale(scale: float | None) -> float | None:
    if scale is None:
        return None
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive finite number or None, got {scale!r}")
    return float(scale)


def corrupt(
    images: torch.Tensor,
    name: str,
    severity: int,
    *,
    generator: torch.Generator | None = None,
    scale: float | None = None,
) -> torch.Tensor:
    """Apply the ImageNet-C corruption ``name`` at ``severity`` (1..5).

    Any ``H`` and ``W``, but on small images the low blur severities do nothing: ``defocus_blur`` leaves
    images of ``min(H, W)`` up to 74, 55, 37, 27, 22 px unchanged at severity 1, 2, 3, 4, 5 (at 28 px,
    severities 1-3), ``motion_blur`` up to 21, 12, 7, 5, 4 px (at the default ``scale``; see the module
    docs). A ``UserWarning`` says so, once per corruption, severity and scale.

    Args:
        images: ``(C, H, W)`` or ``(N, C, H, W)``, ``C`` in {1, 3}, float in [0, 1] (or ``uint8``).
        name: one of :data:`CORRUPTIONS` or :data:`VALIDATION_CORRUPTIONS`.
        severity: int in 1..5 (a Python or numpy int, or a 0-d integer tensor).
        generator: source of all random draws (global torch RNG when None); same seed, same output.
        scale: multiplier of the reference's pixel-valued constants; default ``min(H, W) / 224``.

    Returns:
        The corrupted images, same shape and dtype as ``images``, in [0, 1] (``uint8``: [0, 255]), detached.

    Raises:
        TypeError: ``images`` not a tensor, or of a dtype other than ``uint8`` or floating point.
        ValueError: unknown ``name`` (the message lists the valid ones), severity not an int in 1..5,
            bad ``scale``, or images that are not 1- or 3-channel ``(C, H, W)``/``(N, C, H, W)`` pixel
            tensors in [0, 1] (or hold NaN/Inf).
    """
    _check_name(name)
    severity = _check_severity(severity)
    scale = _check_scale(scale)
    batch = check_pixels(images)
    if batch.shape[1] not in (1, 3):
        raise ValueError(f"expected 1 (grayscale) or 3 (RGB) channels, got shape {tuple(images.shape)}")
    h, w = batch.shape[-2:]
    s = min(h, w) / REFERENCE_SIZE if scale is None else scale
    _warn_if_unchanged(name, severity, s, h, w)
    work_dtype = torch.float64 if batch.dtype == torch.float64 else torch.float32
    with torch.no_grad():
        x = batch.detach().to(work_dtype).clamp(0, 1)
        out = _IMPLS[name](x, severity, generator, s).clamp(0, 1)
    if images.dtype == torch.uint8:
        out = (out * 255).round().to(torch.uint8)
    else:
        out = out.to(images.dtype)
    return out if images.ndim == 4 else out.squeeze(0)


def _make_public(name: str) -> Callable[..., torch.Tensor]:
    def fn(
        images: torch.Tensor,
        severity: int = 1,
        *,
        generator: torch.Generator | None = None,
        scale: float | None = None,
    ) -> torch.Tensor:
        return corrupt(images, name, severity, generator=generator, scale=scale)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = (
        f"ImageNet-C ``{name}``: ``(C, H, W)``/``(N, C, H, W)`` in [0, 1] -> same shape in [0, 1]. See :func:`corrupt`."
    )
    return fn


#: The 15 benchmark corruptions, name -> ``f(images, severity=1, *, generator=None, scale=None)``, in the paper's
#: order. These drive every corruption table and rel. mCE.
CORRUPTIONS: dict[str, Callable[..., torch.Tensor]] = {
    name: _make_public(name) for name in _IMPLS if name not in validation.IMPLS
}

#: ImageNet-C's 4 validation corruptions (``speckle_noise``, ``gaussian_blur``, ``spatter``, ``saturate``), for
#: tuning choices on corruptions outside the benchmark; same signature as :data:`CORRUPTIONS`.
VALIDATION_CORRUPTIONS: dict[str, Callable[..., torch.Tensor]] = {name: _make_public(name) for name in validation.IMPLS}

#: Every name :func:`corrupt` takes: the 15 benchmark corruptions, then the 4 validation ones. A corruption
#: table seeds its draws by a name's index here, so the benchmark's seeds do not depend on the validation ones.
KNOWN_CORRUPTIONS: tuple[str, ...] = (*CORRUPTIONS, *VALIDATION_CORRUPTIONS)


def corruption_names(text: str, known: Sequence[str] = KNOWN_CORRUPTIONS) -> list[str]:
    """The names of a comma-separated list, e.g. a script's ``--corruptions`` (``""``: none).

    Raises:
        ValueError: a name (an empty one included) not in ``known``.
    """
    names = text.split(",") if text else []
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ValueError(f"unknown {unknown}; expected some of {', '.join(known)}")
    return names


class Corruption(nn.Module):
    """One corruption at one severity as a module: a dataset transform or an attack-like callable.

    ``Corruption(name, severity, seed)(images)`` or ``(images, labels)`` (labels are ignored) returns
    :func:`corrupt` of the images. The module owns a CPU ``torch.Generator`` seeded with ``seed``
    (None: the global torch RNG) that advances from call to call, so a fresh module with the same seed
    replays the same sequence of corruptions; :meth:`reset` rewinds it. (DataLoader workers each get a
    copy of the same state: seed per worker if that matters.)

    Shape: ``(C, H, W)`` or ``(N, C, H, W)`` in [0, 1] -> same shape and dtype in [0, 1].
    """

    def __init__(self, name: str, severity: int, seed: int | None = 0, *, scale: float | None = None) -> None:
        super().__init__()
        self.name = _check_name(name)
        self.severity = _check_severity(severity)
        self.scale = _check_scale(scale)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise ValueError(f"seed must be an int or None, got {seed!r}")
        self.seed = None if seed is None else int(seed)
        self.generator: torch.Generator | None = None
        self.reset()

    def reset(self) -> None:
        """Re-seed the generator, so the next calls repeat the first ones."""
        self.generator = None if self.seed is None else torch.Generator().manual_seed(self.seed)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Corrupt ``images`` (``(C, H, W)`` or ``(N, C, H, W)`` in [0, 1]); ``labels`` are ignored."""
        return corrupt(images, self.name, self.severity, generator=self.generator, scale=self.scale)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, severity={self.severity}, seed={self.seed}, scale={self.scale}"
