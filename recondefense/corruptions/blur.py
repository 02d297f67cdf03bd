"""The blur corruptions: ``defocus_blur``, ``glass_blur``, ``motion_blur``, ``zoom_blur``."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ._ops import (
    clipped_zoom,
    filter_matrix,
    gaussian_blur,
    motion_blur,
    motion_kernel,
    pad,
    randint,
    uniform,
)
from .reference import REFERENCE_CONSTANTS


def _disk_kernel(radius: float, alias_blur: float) -> torch.Tensor:
    """The reference's ``disk``: normalized aliased disk on a 17 x 17 grid (wider past radius 8), smoothed
    by OpenCV ``GaussianBlur`` (3 x 3, or 5 x 5 past radius 8, sigma ``alias_blur``, reflect-101)."""
    if radius <= 8:
        half, ksize = 8, 3
    else:
        half, ksize = int(math.ceil(radius)), 5
    coords = torch.arange(-half, half + 1, dtype=torch.float64)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    disk = ((xx**2 + yy**2) <= radius**2).double()
    disk = disk / disk.sum()
    g = torch.arange(ksize, dtype=torch.float64) - (ksize - 1) / 2
    g = torch.exp(-(g**2) / (2 * max(alias_blur, 1e-12) ** 2))
    g = g / g.sum()
    size = disk.shape[0]
    m = filter_matrix(size, g, "reflect101")
    return m @ disk @ m.T


def _defocus_kernel(severity: int, s: float) -> torch.Tensor:
    """The defocus kernel at pixel scale ``s``, all-zero border rows/columns dropped (exact): ``(2r+1, 2r+1)``."""
    radius, alias = REFERENCE_CONSTANTS["defocus_blur"][severity - 1]
    kernel = _disk_kernel(radius * s, alias * s)
    # drop all-zero border rows/columns (exact), so small images need less padding
    mid = (kernel.shape[0] - 1) // 2
    used = torch.nonzero((kernel != 0).any(0)).flatten()
    r = int((used - mid).abs().max())
    return kernel[mid - r : mid + r + 1, mid - r : mid + r + 1]


def _change_bound(kernel: torch.Tensor, center: float) -> float:
    """The most a nonnegative ``kernel`` whose tap on the pixel itself is ``center`` can move a pixel of an image
    in [0, 1]: ``max(sum of the other taps, |1 - center|)``."""
    return max(float(kernel.sum()) - center, abs(1 - center))


#: A blur whose kernel cannot move any pixel by this much (half an 8-bit level) leaves images unchanged.
UNCHANGED = 0.5 / 255


@functools.lru_cache(maxsize=256)
def leaves_unchanged(name: str, severity: int, s: float) -> bool:
    """Whether ``name`` at ``severity`` and pixel scale ``s`` moves no pixel of any image by :data:`UNCHANGED`
    or more: ``defocus_blur`` once its disk radius ``radius * s`` is under one pixel, ``motion_blur`` once its
    Gaussian ``sigma * s`` is under about 0.28 px. False for the other corruptions."""
    if name == "defocus_blur":
        kernel = _defocus_kernel(severity, s)
        mid = (kernel.shape[0] - 1) // 2
        return _change_bound(kernel, float(kernel[mid, mid])) < UNCHANGED
    if name == "motion_blur":
        radius, sigma = REFERENCE_CONSTANTS["motion_blur"][severity - 1]
        kernel = motion_kernel(radius * s, sigma * s)
        return _change_bound(kernel, float(kernel[0])) < UNCHANGED
    return False


def _defocus_blur(x, severity, gen, s):
    kernel = _defocus_kernel(severity, s)
    r = (kernel.shape[0] - 1) // 2
    n, c, h, w = x.shape
    padded = pad(x.reshape(n * c, 1, h, w), r, r, "reflect101")
    out = F.conv2d(padded, kernel.to(device=x.device, dtype=x.dtype)[None, None])
    return out.reshape(n, c, h, w).clamp(0, 1)


def _glass_blur(x, severity, gen, s):
    sigma, delta, iterations = REFERENCE_CONSTANTS["glass_blur"][severity - 1]
    sigma = sigma * s
    delta = max(1, int(round(delta * s)))
    x = torch.floor(gaussian_blur(x, sigma, mode="edge") * 255) / 255  # np.uint8(... * 255)
    n, c, h, w = x.shape
    hs = list(range(h - delta, delta, -1))
    ws = list(range(w - delta, delta, -1))
    steps = len(hs) * len(ws)
    if steps:
        # draws (dx, dy) in [-delta, delta) for every visited position, as the reference's randint(-d, d)
        draws = randint(-delta, delta, (iterations, steps, n, 2), gen, torch.device("cpu")).numpy()
        pos_h = np.repeat(np.asarray(hs), len(ws))
        pos_w = np.tile(np.asarray(ws), len(hs))
        p_all = pos_h * w + pos_w  # (steps,)
        q_all = (pos_h[None, :, None] + draws[..., 1]) * w + (pos_w[None, :, None] + draws[..., 0])
        perm = np.tile(np.arange(h * w)[:, None], (1, n))  # perm[pos, image]: source pixel now at pos
        cols = np.arange(n)
        for it in range(iterations):
            q_it = q_all[it]
            for k in range(steps):
                # the reference's "swap" ``x[h, w], x[h', w'] = x[h', w'], x[h, w]`` acts on numpy views:
                # x[h, w] takes x[h', w'] and x[h', w'] gets its own value back, i.e. a copy, not a swap
                perm[p_all[k]] = perm[q_it[k], cols]
        idx = torch.from_numpy(perm.T.copy()).to(x.device)  # (N, H*W)
        x = x.reshape(n, c, h * w).gather(2, idx[:, None, :].expand(n, c, h * w)).reshape(n, c, h, w)
    return gaussian_blur(x, sigma, mode="edge").clamp(0, 1)


def _motion_blur_corruption(x, severity, gen, s):
    radius, sigma = REFERENCE_CONSTANTS["motion_blur"][severity - 1]
    angles = uniform((x.shape[0],), -45, 45, gen, torch.device("cpu"), torch.float64)
    return motion_blur(x, radius * s, sigma * s, angles).clamp(0, 1)


def _zoom_blur(x, severity, gen, s):
    zooms = REFERENCE_CONSTANTS["zoom_blur"][severity - 1]
    out = torch.zeros_like(x)
    for z in zooms:
        out = out + clipped_zoom(x, z)
    return ((x + out) / (len(zooms) + 1)).clamp(0, 1)


#: Name -> ``f(x, severity, generator, s)`` on a float (N, C, H, W) batch in [0, 1]; ``s``: pixel scale (1 at 224 px).
IMPLS: dict[str, Callable] = {
    "defocus_blur": _defocus_blur,
    "glass_blur": _glass_blur,
    "motion_blur": _motion_blur_corruption,
    "zoom_blur": _zoom_blur,
}
