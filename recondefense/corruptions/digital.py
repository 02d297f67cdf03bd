"""The digital corruptions: ``contrast``, ``elastic_transform``, ``pixelate``, ``jpeg_compression``."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

from ._ops import (
    bilinear,
    gaussian_blur,
    gaussian_weights,
    pil_box_matrix,
    separable,
    uniform,
)
from .reference import REFERENCE_CONSTANTS


def _contrast(x, severity, gen, s):
    c = REFERENCE_CONSTANTS["contrast"][severity - 1]
    means = x.mean(dim=(2, 3), keepdim=True)
    return ((x - means) * c + means).clamp(0, 1)


def _elastic_transform(x, severity, gen, s):
    alpha, sigma, jitter = REFERENCE_CONSTANTS["elastic_transform"][severity - 1]
    n, c, h, w = x.shape
    sigma_s = sigma * s
    jitter_s = jitter * s
    # alpha multiplies smoothed unit noise whose std depends on sigma in pixels: rescale so the
    # displacement std is s times the reference one (the discrete 2-D kernel's L2 norm is |k1|^2)
    norm_ref = float((gaussian_weights(sigma, 3.0) ** 2).sum())
    norm_s = float((gaussian_weights(sigma_s, 3.0) ** 2).sum())
    alpha_s = alpha * s * norm_ref / norm_s
    dev = x.device
    # random affine: three points around the center, each coordinate jittered by U(-jitter, jitter)
    cx, cy = float(w // 2), float(h // 2)
    sq = float(min(h, w) // 3)
    pts1 = torch.tensor([[cx + sq, cy + sq], [cx + sq, cy - sq], [cx - sq, cy - sq]], dtype=torch.float64)
    pts2 = pts1 + uniform((n, 3, 2), -jitter_s, jitter_s, gen, torch.device("cpu"), torch.float64)
    # warpAffine maps pts1 -> pts2; the output samples the input at the inverse map (pts2 -> pts1)
    ones = torch.ones(n, 3, 1, dtype=torch.float64)
    inv = torch.linalg.solve(torch.cat([pts2, ones], 2), pts1.expand(n, 3, 2))  # (n, 3, 2)
    gy, gx = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    grid = torch.stack([gx.flatten(), gy.flatten(), torch.ones(h * w, dtype=torch.float64)], 1)  # (HW, 3)
    src = torch.matmul(grid, inv)  # (n, HW, 2) as (x, y)
    xs = src[..., 0].reshape(n, h, w).to(dev)
    ys = src[..., 1].reshape(n, h, w).to(dev)
    x = bilinear(x, ys.to(x.dtype), xs.to(x.dtype), "reflect101")
    # elastic displacement: smoothed uniform noise (skimage gaussian, mode 'reflect', truncate 3) * alpha
    fields = uniform((n, 2, h, w), -1, 1, gen, dev, torch.float64)
    fields = gaussian_blur(fields, sigma_s, mode="symmetric", truncate=3.0) * alpha_s
    gy = gy.to(dev).unsqueeze(0)
    gx = gx.to(dev).unsqueeze(0)
    ys = (gy + fields[:, 1]).to(x.dtype)
    xs = (gx + fields[:, 0]).to(x.dtype)
    return bilinear(x, ys, xs, "symmetric").clamp(0, 1)


def _pixelate(x, severity, gen, s):
    c = REFERENCE_CONSTANTS["pixelate"][severity - 1]
    h, w = x.shape[-2:]
    sh, sw = max(1, int(h * c)), max(1, int(w * c))
    mh = pil_box_matrix(sh, h) @ pil_box_matrix(h, sh)
    mw = pil_box_matrix(sw, w) @ pil_box_matrix(w, sw)
    return separable(x, mh, mw).clamp(0, 1)


def _jpeg_compression(x, severity, gen, s):
    quality = REFERENCE_CONSTANTS["jpeg_compression"][severity - 1]
    n, c, h, w = x.shape
    pixels = (x.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    out = np.empty_like(pixels)
    for i in range(n):
        img = Image.fromarray(pixels[i, 0]) if c == 1 else Image.fromarray(pixels[i].transpose(1, 2, 0))
        buffer = io.BytesIO()
        img.save(buffer, "JPEG", quality=quality)
        buffer.seek(0)
        decoded = np.asarray(Image.open(buffer).convert("L" if c == 1 else "RGB"))
        out[i] = decoded[None] if c == 1 else decoded.transpose(2, 0, 1)
    return torch.from_numpy(out).to(device=x.device, dtype=x.dtype) / 255


#: Name -> ``f(x, severity, generator, s)`` on a float (N, C, H, W) batch in [0, 1]; ``s``: pixel scale (1 at 224 px).
IMPLS: dict[str, Callable] = {
    "contrast": _contrast,
    "elastic_transform": _elastic_transform,
    "pixelate": _pixelate,
    "jpeg_compression": _jpeg_compression,
}
