"""Building blocks of the corruptions, on ``(N, C, H, W)`` float tensors: seeded random draws, and ports of the
reference libraries' filters and warps (scipy / OpenCV / ImageMagick border modes, Gaussian blur, bilinear
sampling, ImageMagick's motion blur, the clipped zoom, Pillow's box resampling, the plasma fractal, luminance)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

_LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, as OpenCV's RGB2GRAY in the reference's snow

# ----------------------------------------------------------------------------------------------------------
# Random draws: on the generator's device (the default device of the images when no generator), moved after.


def device_of(generator: torch.Generator | None, device: torch.device) -> torch.device:
    """Where to draw random numbers: the generator's device, else ``device``."""
    return generator.device if generator is not None else device


def uniform(shape, lo: float, hi: float, gen, device, dtype=torch.float32) -> torch.Tensor:
    """Uniform draws in ``[lo, hi)`` from ``gen`` (``None``: the global generator), on ``device``."""
    u = torch.rand(shape, generator=gen, device=device_of(gen, device), dtype=dtype)
    return (lo + (hi - lo) * u).to(device)


def normal(shape, mean: float, std: float, gen, device, dtype=torch.float32) -> torch.Tensor:
    """Normal draws ``N(mean, std**2)`` from ``gen`` (``None``: the global generator), on ``device``."""
    z = torch.randn(shape, generator=gen, device=device_of(gen, device), dtype=dtype)
    return (mean + std * z).to(device)


def randint(lo: int, hi: int, shape, gen, device) -> torch.Tensor:
    """Integers in ``[lo, hi)`` from ``gen`` (``None``: the global generator), on ``device``."""
    return torch.randint(lo, hi, shape, generator=gen, device=device_of(gen, device)).to(device)


# ----------------------------------------------------------------------------------------------------------
# Geometry helpers


def _map_index(idx: torch.Tensor, n: int, mode: str) -> torch.Tensor:
    """Map integer positions (any range) into [0, n) for a border mode.

    ``edge``: clamp (scipy 'nearest', ImageMagick edge); ``reflect101``: d c b | a b c d | c b a (OpenCV
    default, scipy 'mirror'); ``symmetric``: c b a | a b c | c b a (scipy 'reflect').
    """
    if mode == "edge" or n == 1:
        return idx.clamp(0, n - 1)
    if mode == "reflect101":
        period = 2 * n - 2
        m = idx.remainder(period)
        return torch.where(m >= n, period - m, m)
    if mode == "symmetric":
        period = 2 * n
        m = idx.remainder(period)
        return torch.where(m >= n, period - 1 - m, m)
    raise ValueError(f"unknown border mode {mode!r}")


def pad(x: torch.Tensor, ph: int, pw: int, mode: str) -> torch.Tensor:
    """Pad the last two dims of ``x`` by ``ph``/``pw`` on each side, any pad size."""
    h, w = x.shape[-2:]
    rows = _map_index(torch.arange(-ph, h + ph, device=x.device), h, mode)
    cols = _map_index(torch.arange(-pw, w + pw, device=x.device), w, mode)
    return x.index_select(-2, rows).index_select(-1, cols)


def filter_matrix(n: int, weights: torch.Tensor, mode: str) -> torch.Tensor:
    """``(n, n)`` matrix of a centered 1-D correlation with ``weights`` (odd length) and border ``mode``."""
    r = (weights.numel() - 1) // 2
    rows = torch.arange(n).unsqueeze(1).expand(n, 2 * r + 1)
    cols = _map_index(rows + torch.arange(-r, r + 1).unsqueeze(0), n, mode)
    m = torch.zeros(n, n, dtype=torch.float64)
    m.index_put_((rows, cols), weights.to(torch.float64).expand(n, 2 * r + 1), accumulate=True)
    return m


def gaussian_weights(sigma: float, truncate: float) -> torch.Tensor:
    """scipy.ndimage's normalized 1-D Gaussian: radius ``int(truncate * sigma + 0.5)``."""
    r = int(truncate * sigma + 0.5)
    k = torch.arange(-r, r + 1, dtype=torch.float64)
    w = torch.exp(-0.5 * (k / sigma) ** 2) if sigma > 0 else (k == 0).double()
    return w / w.sum()


def separable(x: torch.Tensor, mh: torch.Tensor, mw: torch.Tensor) -> torch.Tensor:
    """Apply ``(H', H)`` and ``(W', W)`` matrices to the last two dims of ``x``."""
    mh = mh.to(device=x.device, dtype=x.dtype)
    mw = mw.to(device=x.device, dtype=x.dtype)
    return torch.matmul(torch.matmul(mh, x), mw.transpose(0, 1))


def gaussian_blur(x: torch.Tensor, sigma: float, *, mode: str, truncate: float = 4.0) -> torch.Tensor:
    """Per-channel Gaussian blur of the last two dims as ``scipy.ndimage.gaussian_filter`` (skimage)."""
    w = gaussian_weights(sigma, truncate)
    if w.numel() == 1:
        return x
    h, wd = x.shape[-2:]
    return separable(x, filter_matrix(h, w, mode), filter_matrix(wd, w, mode))


def bilinear(x: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor, mode: str) -> torch.Tensor:
    """Sample ``x`` (N, C, H, W) at float positions ``ys``, ``xs`` (N, H', W'), neighbours mapped by ``mode``."""
    n, c, h, w = x.shape
    y0 = torch.floor(ys)
    x0 = torch.floor(xs)
    wy = (ys - y0).to(x.dtype).unsqueeze(1)
    wx = (xs - x0).to(x.dtype).unsqueeze(1)
    y0 = y0.long()
    x0 = x0.long()
    flat = x.reshape(n, c, h * w)

    def at(yi: torch.Tensor, xi: torch.Tensor) -> torch.Tensor:
        idx = _map_index(yi, h, mode) * w + _map_index(xi, w, mode)
        return flat.gather(2, idx.reshape(n, 1, -1).expand(n, c, -1)).reshape(n, c, *ys.shape[1:])

    top = at(y0, x0) * (1 - wx) + at(y0, x0 + 1) * wx
    bottom = at(y0 + 1, x0) * (1 - wx) + at(y0 + 1, x0 + 1) * wx
    return top * (1 - wy) + bottom * wy


def shift_sum(
    x: torch.Tensor, dys: torch.Tensor, dxs: torch.Tensor, weights: torch.Tensor, *, zero_border: bool = False
) -> torch.Tensor:
    """``sum_i weights[i] * x[y + dys[:, i], x + dxs[:, i]]`` with per-image integer offsets ``(N, K)``.

    Borders replicate the edge (ImageMagick's default virtual pixels) or, with ``zero_border``, read 0.
    """
    n, c, h, w = x.shape
    dys = dys.cpu()
    dxs = dxs.cpu()
    py = int(dys.abs().max()) if dys.numel() else 0
    px = int(dxs.abs().max()) if dxs.numel() else 0
    if zero_border:
        padded = F.pad(x, (px, px, py, py))
    else:
        padded = pad(x, py, px, "edge")
    out = torch.zeros_like(x)
    ws = [float(v) for v in weights]
    rows = (dys + py).tolist()
    cols = (dxs + px).tolist()
    for b in range(n):
        acc = out[b]
        src = padded[b]
        for wgt, r, q in zip(ws, rows[b], cols[b]):
            acc.add_(src[:, r : r + h, q : q + w], alpha=wgt)
    return out


def motion_kernel(radius: float, sigma: float) -> torch.Tensor:
    """ImageMagick's one-sided motion-blur weights: ``(2 ceil(radius) + 1,)`` float64, tap 0 (the pixel) first."""
    width = int(2 * math.ceil(radius) + 1) if radius > 1e-12 else 3
    sigma = max(sigma, 1e-12)
    i = torch.arange(width, dtype=torch.float64)
    kernel = torch.exp(-(i**2) / (2 * sigma**2))
    return kernel / kernel.sum()


def motion_blur(x: torch.Tensor, radius: float, sigma: float, angles: torch.Tensor) -> torch.Tensor:
    """ImageMagick ``MotionBlurImage(radius, sigma, angle)`` on ``(N, C, H, W)`` with angles ``(N,)`` in degrees."""
    kernel = motion_kernel(radius, sigma)
    i = torch.arange(kernel.numel(), dtype=torch.float64)
    a = torch.deg2rad(angles.to(torch.float64).cpu()).unsqueeze(1)
    dxs = torch.ceil(i * torch.cos(a) - 0.5).long().to(x.device)
    dys = torch.ceil(i * torch.sin(a) - 0.5).long().to(x.device)
    return shift_sum(x, dys, dxs, kernel)


def _clipped_zoom_taps(n: int, zoom: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The reference's ``clipped_zoom`` along one axis as linear-interpolation taps ``(lo, hi, frac)``, each
    ``(n,)``: center crop ``ceil(n / zoom)``, linear ``scipy.ndimage.zoom`` (corner-aligned) to
    ``round(crop * zoom)``, center trim back to ``n``. Output ``i`` is ``(1 - frac) x[lo] + frac x[hi]``."""
    crop = int(math.ceil(n / zoom))
    top = (n - crop) // 2
    out_len = int(round(crop * zoom))
    trim = (out_len - n) // 2
    j = torch.arange(trim, trim + n, dtype=torch.float64)
    pos = j * ((crop - 1) / (out_len - 1)) if out_len > 1 else torch.zeros_like(j)
    pos = pos.clamp(0, crop - 1)
    lo = torch.floor(pos).long().clamp(max=crop - 1)
    hi = (lo + 1).clamp(max=crop - 1)
    return top + lo, top + hi, pos - lo


def clipped_zoom(x: torch.Tensor, zoom: float) -> torch.Tensor:
    """Apply :func:`_clipped_zoom_taps` to the last two dims of ``x``."""
    for dim in (-2, -1):
        lo, hi, frac = (t.to(x.device) for t in _clipped_zoom_taps(x.shape[dim], zoom))
        shape = [1] * x.ndim
        shape[dim] = -1
        frac = frac.to(x.dtype).view(shape)
        x = x.index_select(dim, lo) * (1 - frac) + x.index_select(dim, hi) * frac
    return x


def pil_box_matrix(in_size: int, out_size: int) -> torch.Tensor:
    """``(out, in)`` matrix of Pillow's BOX resampling along one axis (Resample.c ``precompute_coeffs``)."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 0.5 * filterscale
    m = torch.zeros(out_size, in_size, dtype=torch.float64)
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size)
        ws = []
        for x in range(xmin, xmax):
            t = (x - center + 0.5) / filterscale
            ws.append(1.0 if -0.5 < t <= 0.5 else 0.0)
        total = sum(ws)
        for k, wgt in enumerate(ws):
            m[xx, xmin + k] = wgt / total if total != 0 else wgt
    return m


def plasma_fractal(n: int, mapsize: int, wibbledecay: float, gen, device) -> torch.Tensor:
    """Batched port of the reference's diamond-square ``plasma_fractal``: ``(n, mapsize, mapsize)`` in [0, 1]."""
    assert mapsize & (mapsize - 1) == 0
    dev = device_of(gen, device)
    maparray = torch.zeros(n, mapsize, mapsize, dtype=torch.float64, device=dev)
    stepsize = mapsize
    wibble = 100.0

    def wibbledmean(array: torch.Tensor) -> torch.Tensor:
        u = torch.rand(array.shape, generator=gen, device=dev, dtype=torch.float64)
        return array / 4 + wibble * (2 * wibble * u - wibble)

    while stepsize >= 2:
        half = stepsize // 2
        # squares: corner average + wibble at the square centers
        corners = maparray[:, 0:mapsize:stepsize, 0:mapsize:stepsize]
        acc = corners + torch.roll(corners, -1, dims=1)
        acc = acc + torch.roll(acc, -1, dims=2)
        maparray[:, half:mapsize:stepsize, half:mapsize:stepsize] = wibbledmean(acc)
        # diamonds
        dr = maparray[:, half:mapsize:stepsize, half:mapsize:stepsize]
        ul = maparray[:, 0:mapsize:stepsize, 0:mapsize:stepsize]
        lt = dr + torch.roll(dr, 1, dims=1) + ul + torch.roll(ul, -1, dims=2)
        maparray[:, 0:mapsize:stepsize, half:mapsize:stepsize] = wibbledmean(lt)
        tt = dr + torch.roll(dr, 1, dims=2) + ul + torch.roll(ul, -1, dims=1)
        maparray[:, half:mapsize:stepsize, 0:mapsize:stepsize] = wibbledmean(tt)
        stepsize //= 2
        wibble /= wibbledecay
    flat = maparray.reshape(n, -1)
    flat = flat - flat.amin(1, keepdim=True)
    flat = flat / flat.amax(1, keepdim=True).clamp_min(1e-300)
    return flat.reshape(n, mapsize, mapsize).to(device)


def pow2_at_least(v: float) -> int:
    """The smallest power of two ``>= v`` (at least 2)."""
    return 1 << max(1, math.ceil(math.log2(max(v, 2.0))))


def luma(x: torch.Tensor) -> torch.Tensor:
    """``(N, 1, H, W)`` luminance of ``(N, C, H, W)`` (the pixel itself for C = 1)."""
    if x.shape[1] == 1:
        return x
    w = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)
