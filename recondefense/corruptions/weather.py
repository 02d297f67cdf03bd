"""The weather corruptions: ``snow``, ``frost`` (procedural texture), ``fog``, ``brightness``."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._ops import (
    clipped_zoom,
    gaussian_blur,
    luma,
    motion_blur,
    normal,
    plasma_fractal,
    pow2_at_least,
    randint,
    shift_sum,
    uniform,
)
from .reference import FROST_PHOTO_STATS, REFERENCE_CONSTANTS


def _snow(x, severity, gen, s):
    mean, std, zoom, threshold, radius, sigma, blend = REFERENCE_CONSTANTS["snow"][severity - 1]
    n, _, h, w = x.shape
    layer = normal((n, 1, h, w), mean, std, gen, x.device, x.dtype)
    layer = clipped_zoom(layer, max(1.0, zoom * s))
    layer = torch.where(layer < threshold, torch.zeros_like(layer), layer).clamp(0, 1)
    angles = uniform((n,), -135, -45, gen, torch.device("cpu"), torch.float64)
    layer = motion_blur(layer, radius * s, sigma * s, angles)
    x = blend * x + (1 - blend) * torch.maximum(x, luma(x) * 1.5 + 0.5)
    return (x + layer + torch.flip(layer, dims=(-2, -1))).clamp(0, 1)


def _frost_texture(n: int, h: int, w: int, s: float, gen, device, dtype) -> torch.Tensor:
    """Procedural frost, ``(n, 3, h, w)`` in [0, 1]: plasma-fractal haze plus soft needle crystals (a main
    needle with two shorter side branches at +-60 degrees per seed, random orientation per layer and image),
    standardized per image to the colour statistics of one reference photo (random, as the reference draws
    one of five photos)."""
    mapsize = pow2_at_least(max(h, w, 256 * s))
    haze = plasma_fractal(n, mapsize, 2.0, gen, device)[:, None, :h, :w].to(dtype)
    needles = torch.zeros(n, 1, h, w, dtype=dtype, device=device)
    for length, density, layers in ((14.0, 0.003, 4), (6.0, 0.012, 4)):
        for _ in range(layers):
            seeds = uniform((n, 1, h, w), 0, 1, gen, device, dtype)
            seeds = torch.where(seeds < density, seeds / density, torch.zeros_like(seeds))
            theta = uniform((n, 1), 0, 180, gen, torch.device("cpu"), torch.float64)
            for turn, frac in ((0.0, 1.0), (60.0, 0.5), (-60.0, 0.5)):
                half = max(1, int(round(length * frac * s)))
                t = torch.arange(0 if turn else -half, half + 1, dtype=torch.float64)
                weights = 1 - t.abs() / (half + 1)
                a = torch.deg2rad(theta + turn)
                dxs = torch.round(t * torch.cos(a)).long()
                dys = torch.round(t * torch.sin(a)).long()
                needles = torch.maximum(needles, shift_sum(seeds, dys, dxs, weights, zero_border=True))
    needles = gaussian_blur(needles.clamp(0, 1), 0.6 * s, mode="edge")
    tex = 0.5 * haze + needles
    flat = tex.reshape(n, -1)
    z = (flat - flat.mean(1, keepdim=True)) / flat.std(1, correction=0, keepdim=True).clamp_min(1e-6)
    z = z.reshape(n, 1, h, w)
    stats = torch.tensor(FROST_PHOTO_STATS, dtype=dtype)  # (5, 2, 3)
    pick = stats[randint(0, len(FROST_PHOTO_STATS), (n,), gen, torch.device("cpu"))].to(device)
    return (pick[:, 0, :, None, None] + pick[:, 1, :, None, None] * z).clamp(0, 1)


def _frost(x, severity, gen, s):
    a, b = REFERENCE_CONSTANTS["frost"][severity - 1]
    n, c, h, w = x.shape
    frost = _frost_texture(n, h, w, s, gen, x.device, x.dtype)
    if c == 1:
        frost = luma(frost)
    return (a * x + b * frost).clamp(0, 1)


def _fog(x, severity, gen, s):
    strength, decay = REFERENCE_CONSTANTS["fog"][severity - 1]
    n, _, h, w = x.shape
    mapsize = pow2_at_least(max(h, w, 256 * s))
    plasma = plasma_fractal(n, mapsize, decay, gen, x.device)[:, None, :h, :w].to(x.dtype)
    max_val = x.reshape(n, -1).amax(1).view(n, 1, 1, 1)
    x = x + strength * plasma
    return (x * max_val / (max_val + strength)).clamp(0, 1)


def brighten(x: torch.Tensor, shift: float) -> torch.Tensor:
    """ImageNet-C's brightness model: each pixel's HSV value raised by ``shift`` (at most to 1), hue and saturation
    kept, so RGB scales with the value and a black pixel becomes grey.

    Shape: ``(N, C, H, W)`` in [0, 1] -> same, in [0, 1].
    """
    v = x.amax(1, keepdim=True)  # HSV value
    v_new = (v + shift).clamp(max=1)
    return torch.where(v > 0, x * (v_new / v.clamp_min(torch.finfo(x.dtype).tiny)), v_new).clamp(0, 1)


def _brightness(x, severity, gen, s):
    return brighten(x, REFERENCE_CONSTANTS["brightness"][severity - 1])


#: Name -> ``f(x, severity, generator, s)`` on a float (N, C, H, W) batch in [0, 1]; ``s``: pixel scale (1 at 224 px).
IMPLS: dict[str, Callable] = {
    "snow": _snow,
    "frost": _frost,
    "fog": _fog,
    "brightness": _brightness,
}
