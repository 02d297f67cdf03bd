"""ImageNet-C's four validation corruptions: ``speckle_noise``, ``gaussian_blur``, ``spatter``, ``saturate``.

Hendrycks & Dietterich keep these apart from the 15 benchmark corruptions so that choices can be tuned on them
without touching the benchmark (their ``imagenet_c`` package, corruptions 15-18). Here they serve the same end:
choosing among defenses for corruptions nobody trained on, while the held-out benchmark corruptions stay unseen.
They are *not* in :data:`~recondefense.corruptions.CORRUPTIONS` (which drives the 15-corruption benchmark and
rel. mCE) but in :data:`~recondefense.corruptions.VALIDATION_CORRUPTIONS`; :func:`~recondefense.corruptions.corrupt`
takes either name.

- ``speckle_noise``, ``gaussian_blur`` and ``saturate`` are faithful ports (same formula and constants;
  ``gaussian_blur``'s sigma scales with the image as the benchmark's pixel constants do).
- ``spatter``: the mud of severities 4-5 is a faithful port. The water of severities 1-3 follows the reference's
  steps (blurred Gaussian liquid layer, OpenCV's Canny at 50 / 150, distance to the nearest edge truncated at
  20 px, 3 x 3 box blurs, histogram equalisation, an emboss filter, pale turquoise added where the liquid is) with
  two approximations, not checked against OpenCV: the distance is the exact Euclidean one (OpenCV's ``DIST_L2``
  with a 5 x 5 mask is a chamfer estimate) and Canny's non-maximum suppression and hysteresis are ours.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ._ops import gaussian_blur, luma, normal, pad

#: Per-severity constants (severity 1..5) of the reference package's validation corruptions.
VALIDATION_CONSTANTS: dict[str, tuple] = {
    "speckle_noise": (0.15, 0.2, 0.35, 0.45, 0.6),  # std of the multiplicative noise
    "gaussian_blur": (1, 2, 3, 4, 6),  # sigma (px)
    "spatter": (  # liquid mean, std, blur sigma (px), threshold, strength (water) / mask sigma (mud), mud?
        (0.65, 0.3, 4, 0.69, 0.6, 0),
        (0.65, 0.3, 3, 0.68, 0.6, 0),
        (0.65, 0.3, 2, 0.68, 0.5, 0),
        (0.65, 0.3, 1, 0.65, 1.5, 1),
        (0.67, 0.4, 1, 0.65, 1.5, 1),
    ),
    "saturate": ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)),  # HSV saturation times a, plus b
}

_WATER = (175 / 255, 238 / 255, 238 / 255)  # pale turquoise (RGB)
_MUD = (63 / 255, 42 / 255, 20 / 255)  # brown (RGB)


def _speckle_noise(x, severity, gen, s):
    c = VALIDATION_CONSTANTS["speckle_noise"][severity - 1]
    return (x + x * normal(x.shape, 0.0, c, gen, x.device, x.dtype)).clamp(0, 1)


def _gaussian_blur(x, severity, gen, s):
    return gaussian_blur(x, VALIDATION_CONSTANTS["gaussian_blur"][severity - 1] * s, mode="edge")


def _saturate(x, severity, gen, s):
    """HSV saturation ``S -> clip(a S + b)`` at the same hue and value: ``x -> V - (V - x) S' / S``. A grey pixel
    (``S = 0``, hue 0 = red in the reference) becomes ``(V, V (1 - S'), V (1 - S'))``; black stays black."""
    a, b = VALIDATION_CONSTANTS["saturate"][severity - 1]
    rgb = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
    v = rgb.amax(1, keepdim=True)
    delta = v - rgb.amin(1, keepdim=True)
    sat = torch.where(v > 0, delta / v.clamp_min(torch.finfo(x.dtype).tiny), torch.zeros_like(v))
    sat_new = (sat * a + b).clamp(0, 1)
    scaled = v - (v - rgb) * (sat_new / sat.clamp_min(torch.finfo(x.dtype).tiny))
    grey = torch.cat([v, v * (1 - sat_new), v * (1 - sat_new)], 1)
    out = torch.where(delta > 0, scaled, grey).clamp(0, 1)
    return luma(out) if x.shape[1] == 1 else out


def _box3(x: torch.Tensor) -> torch.Tensor:
    """OpenCV's ``blur(x, (3, 3))``: the 3 x 3 mean, reflect-101 borders. ``(N, 1, H, W)`` -> same."""
    return F.avg_pool2d(pad(x, 1, 1, "reflect101"), 3, stride=1)


def _canny(image: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Edges of ``(N, 1, H, W)`` 8-bit values (as float) as OpenCV's ``Canny(image, low, high)``: 3 x 3 Sobel
    (replicated borders), L1 magnitude, non-maximum suppression across the gradient (4 directions), hysteresis
    (8-connected). Returns a bool ``(N, 1, H, W)``."""
    p = pad(image, 1, 1, "edge")
    sobel_x = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=image.dtype, device=image.device)
    gx = F.conv2d(p, sobel_x.view(1, 1, 3, 3))
    gy = F.conv2d(p, sobel_x.t().reshape(1, 1, 3, 3))
    mag = gx.abs() + gy.abs()
    m = F.pad(mag, (1, 1, 1, 1))
    h, w = image.shape[-2:]

    def at(dy: int, dx: int) -> torch.Tensor:
        return m[..., 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]

    ax, ay = gx.abs(), gy.abs()
    tan22, tan67 = 0.4142135623730951, 2.414213562373095
    horizontal = ay <= ax * tan22
    vertical = ay > ax * tan67
    same_sign = (gx * gy) > 0
    peak = torch.where(
        horizontal,
        (mag > at(0, -1)) & (mag >= at(0, 1)),
        torch.where(
            vertical,
            (mag > at(-1, 0)) & (mag >= at(1, 0)),
            torch.where(
                same_sign,
                (mag > at(-1, -1)) & (mag >= at(1, 1)),
                (mag > at(-1, 1)) & (mag >= at(1, -1)),
            ),
        ),
    )
    weak = peak & (mag > low)
    edges = weak & (mag > high)
    while True:
        grown = weak & (F.max_pool2d(edges.to(image.dtype), 3, stride=1, padding=1) > 0)
        if torch.equal(grown, edges):
            return edges
        edges = grown


def _edge_distance(edges: torch.Tensor, cap: float) -> torch.Tensor:
    """Euclidean distance of each pixel to the nearest edge pixel, at most ``cap``. ``(N, 1, H, W)`` bool -> float.

    Exact up to ``cap``: a nearest edge within ``cap`` lies within ``cap`` rows and columns, so the two passes of the
    separable squared distance (along rows, then columns) only look that far."""
    reach = int(cap)
    big = float(4 * (reach + 1) ** 2)
    squared = torch.where(edges, 0.0, big)
    for dim in (-1, -2):
        n = squared.shape[dim]
        pads = (reach, reach) if dim == -1 else (0, 0, reach, reach)
        padded = F.pad(squared, pads, value=big)
        best = squared
        for offset in range(-reach, reach + 1):
            shifted = padded.narrow(dim, reach + offset, n)
            best = torch.minimum(best, shifted + offset * offset)
        squared = best
    return squared.sqrt().clamp(max=cap)


def _equalize(values: torch.Tensor) -> torch.Tensor:
    """OpenCV's ``equalizeHist`` of each image of ``(N, 1, H, W)`` integers 0..255 (as float)."""
    n = values.shape[0]
    index = values.reshape(n, -1).long()
    hist = torch.zeros(n, 256, dtype=torch.float64, device=values.device).scatter_add_(
        1, index, torch.ones_like(index, dtype=torch.float64)
    )
    first = (hist > 0).to(torch.uint8).argmax(1, keepdim=True)  # the lowest level present
    at_first = hist.gather(1, first)
    rest = hist.sum(1, keepdim=True) - at_first
    lut = (hist.cumsum(1) - at_first).clamp_min(0) * (255 / rest.clamp_min(1))
    levels = torch.arange(256, device=values.device).expand(n, 256)
    lut = torch.where(levels <= first, 0.0, torch.round(lut).clamp(0, 255))
    lut = torch.where(rest == 0, first.to(lut.dtype), lut)  # one level only: OpenCV keeps it
    return lut.gather(1, index).to(values.dtype).view_as(values)


def _color(rgb: tuple[float, float, float], x: torch.Tensor) -> torch.Tensor:
    """``(1, C, 1, 1)``: the colour for ``x``'s channels (its luminance for grayscale)."""
    color = torch.tensor(rgb, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return color if x.shape[1] == 3 else luma(color)


def _spatter(x, severity, gen, s):
    mean, std, sigma, threshold, strength, mud = VALIDATION_CONSTANTS["spatter"][severity - 1]
    n, _, h, w = x.shape
    liquid = normal((n, 1, h, w), mean, std, gen, x.device, torch.float64)
    liquid = gaussian_blur(liquid, sigma * s, mode="edge")
    liquid = torch.where(liquid < threshold, torch.zeros_like(liquid), liquid)
    if mud:
        mask = gaussian_blur((liquid > threshold).double(), strength * s, mode="edge")
        mask = torch.where(mask < 0.8, torch.zeros_like(mask), mask).to(x.dtype)
        return (x * (1 - mask) + _color(_MUD, x) * mask).clamp(0, 1)
    levels = torch.floor(liquid * 255).clamp(0, 255).float()
    dist = torch.floor(_box3(_edge_distance(_canny(levels, 50, 150), 20 * s)))
    dist = _equalize(dist)
    emboss = torch.tensor([[-2.0, -1, 0], [-1, 1, 1], [0, 1, 2]], device=x.device).view(1, 1, 3, 3)
    dist = F.conv2d(pad(dist, 1, 1, "reflect101"), emboss).clamp(0, 255)
    dist = torch.round(_box3(dist))
    m = levels.double() * dist.double()  # the reference multiplies its 8-bit copy of the liquid layer
    m = (m / m.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12) * strength).to(x.dtype)
    return (x + m * _color(_WATER, x)).clamp(0, 1)


#: Name -> ``f(x, severity, generator, s)`` on a float (N, C, H, W) batch in [0, 1]; ``s``: pixel scale (1 at 224 px).
IMPLS: dict[str, Callable] = {
    "speckle_noise": _speckle_noise,
    "gaussian_blur": _gaussian_blur,
    "spatter": _spatter,
    "saturate": _saturate,
}
