"""Image-quality and accuracy statistics: PSNR, SSIM, Wilson confidence intervals.

Images follow the rest of the library: floating-point tensors in [0, 1], shape ``(N, C, H, W)``
(a single ``(C, H, W)`` image counts as a batch of one). ``uint8`` images (0..255) are scaled to
[0, 1] first, so a uint8 image and its float ``/ 255`` copy give the same values. Other integer
dtypes are refused (their range is unknown).
"""

from __future__ import annotations

import math
import numbers
import operator

import torch
import torch.nn.functional as F

__all__ = ["psnr", "ssim", "wilson_interval"]


def _image_pair(name: str, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Check a pair of image batches and return them as float32 ``(N, C, H, W)`` in [0, 1]."""
    for label, t in (("first", a), ("second", b)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name}: the {label} argument must be a torch.Tensor, got {type(t).__name__}")
        if not (t.is_floating_point() or t.dtype == torch.uint8):
            raise ValueError(
                f"{name}: the {label} image has dtype {t.dtype}; pass floats in [0, 1] or uint8 in 0..255 "
                "(e.g. t.float() / 255)"
            )
    if a.shape != b.shape:
        raise ValueError(
            f"{name}: the two images must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)} "
            "(no broadcasting: repeat the target explicitly if you mean to compare one image with a batch)"
        )
    if a.dim() not in (3, 4):
        raise ValueError(
            f"{name}: expected images of shape (N, C, H, W) or a single (C, H, W) image, got shape {tuple(a.shape)}"
        )
    if a.dim() == 3:
        a, b = a.unsqueeze(0), b.unsqueeze(0)
    a = a.float() / 255 if a.dtype == torch.uint8 else a.float()
    b = b.float() / 255 if b.dtype == torch.uint8 else b.float()
    return a, b


def psnr(reconstruction: torch.Tensor, target: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Per-image PSNR in dB for unit peak.

    Args:
        reconstruction, target: images of the same shape ``(N, C, H, W)`` (or one ``(C, H, W)`` image,
            treated as ``N = 1``); floats in [0, 1] or uint8 in 0..255 (scaled by 1/255).
        eps: added to the mean squared error (identical images give ``-10 log10(eps)`` = 100 dB).

    Returns:
        float32 tensor of shape ``(N,)`` (``(1,)`` for a single image).

    Raises:
        ValueError: shapes differ, are not 3-D/4-D, or a dtype is an integer type other than uint8.
    """
    reconstruction, target = _image_pair("psnr", reconstruction, target)
    mse = (reconstruction - target).square().flatten(1).mean(1)
    return -10 * torch.log10(mse + eps)


def _gaussian_window(size: int, sigma: float, channels: int, device: torch.device) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-image SSIM (Wang et al. 2004; Gaussian 11x11, sigma 1.5, K1=0.01, K2=0.03, unit peak).

    Args:
        x, y: images of the same shape ``(N, C, H, W)`` (or one ``(C, H, W)`` image, treated as
            ``N = 1``); floats in [0, 1] or uint8 in 0..255 (scaled by 1/255).
        window: side of the Gaussian window, an odd int >= 1. Images smaller than the window use a
            window of their smaller side (rounded down to odd).
        sigma: standard deviation of the Gaussian window in pixels, > 0.

    Returns:
        float32 tensor of shape ``(N,)`` (``(1,)`` for a single image): the SSIM map averaged over
        channels and valid (unpadded) positions.

    Raises:
        ValueError: shapes differ or are not 3-D/4-D, a dtype is an integer type other than uint8,
            ``window`` is not an odd int >= 1, or ``sigma`` is not a finite number > 0.
    """
    if isinstance(window, bool) or not isinstance(window, numbers.Integral) or window < 1 or window % 2 == 0:
        raise ValueError(f"ssim: window must be an odd int >= 1 (e.g. 11), got {window!r}")
    if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real) or not (0 < sigma < math.inf):
        raise ValueError(f"ssim: sigma must be a finite number > 0 (e.g. 1.5), got {sigma!r}")
    x, y = _image_pair("ssim", x, y)
    size = min(int(window), x.shape[-1], x.shape[-2])
    size -= 1 - size % 2
    channels = x.shape[1]
    w = _gaussian_window(size, sigma, channels, x.device)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, w, groups=channels)

    c1, c2 = 0.01**2, 0.03**2
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.flatten(1).mean(1)


def _count(name: str, value: object) -> int:
    if isinstance(value, bool):
        raise ValueError(f"wilson_interval: {name} must be an int count, got {value!r}")
    try:
        return operator.index(value)  # ints, numpy ints, 0-d integer tensors; not floats
    except TypeError:
        raise ValueError(f"wilson_interval: {name} must be an int count, got {value!r}") from None


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``successes / n`` (95% for the default ``z``).

    Args:
        successes: number of successes, an int with ``0 <= successes <= n``.
        n: number of trials, an int >= 1 (a proportion of zero trials is undefined).
        z: standard-normal quantile of the confidence level, finite and > 0 (1.96: 95%; 2.576: 99%).

    Returns:
        ``(low, high)`` with ``0 <= low <= successes / n <= high <= 1``.

    Raises:
        ValueError: a count is not an int, ``n < 1``, ``successes`` is outside ``[0, n]``, or ``z <= 0``.
    """
    successes, n = _count("successes", successes), _count("n", n)
    if n < 1:
        raise ValueError(f"wilson_interval: n must be at least 1 trial, got n={n} (no interval for zero trials)")
    if not 0 <= successes <= n:
        raise ValueError(f"wilson_interval: successes must be between 0 and n={n}, got {successes}")
    if isinstance(z, bool) or not isinstance(z, numbers.Real) or not (0 < z < math.inf):
        raise ValueError(f"wilson_interval: z must be a finite number > 0 (1.96 for 95%), got {z!r}")
    p = successes / n
    denom = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))
