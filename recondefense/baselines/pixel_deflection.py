"""Pixel deflection with wavelet denoising (Prakash et al., CVPR 2018)."""

from __future__ import annotations

import warnings

import numpy as np
import torch

from ._random import RandomizedDefense

__all__ = ["PixelDeflection", "wavelet_denoise"]

# Full-range ITU-R BT.601 RGB -> YCbCr rows. skimage's rgb2ycbcr rows are positive multiples of these
# (219/255, 224/255, 224/255) plus offsets, which the per-channel min-max renormalization cancels.
_RGB_TO_YCBCR = torch.tensor(
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], dtype=torch.float64
)


def _bayes_shrink(channels: np.ndarray, sigma: float, wavelet: str) -> np.ndarray:
    """BayesShrink soft thresholding of each ``(H, W)`` slice of ``(M, H, W)`` float64 (skimage's rule)."""
    import pywt  # imported on use: ``import recondefense`` (training, inference) does not need PyWavelets

    height, width = channels.shape[-2:]
    levels = max(pywt.dwtn_max_level((height, width), wavelet) - 3, 1)  # skimage skips the 3 coarsest
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "level too high" on images a few pixels wide
        coeffs = pywt.wavedecn(channels, wavelet, level=levels, axes=(-2, -1))
        variance = sigma * sigma
        eps = np.finfo(np.float64).eps
        for detail in coeffs[1:]:
            for key, band in detail.items():
                band_var = np.mean(band * band, axis=(-2, -1), keepdims=True)
                threshold = variance / np.sqrt(np.maximum(band_var - variance, eps))
                detail[key] = pywt.threshold(band, threshold, mode="soft")
        return pywt.waverecn(coeffs, wavelet, axes=(-2, -1))[..., :height, :width]


def wavelet_denoise(images: torch.Tensor, sigma: float = 0.04, wavelet: str = "db1") -> torch.Tensor:
    """BayesShrink soft wavelet denoising as pixel deflection's ``denoise_wavelet`` call (PyWavelets).

    RGB images go to YCbCr; each channel of each image is min-max renormalized to [0, 1], denoised
    with noise level ``sigma`` (not rescaled per channel, as the scikit-image of the original), and
    mapped back. Other channel counts are denoised per channel as they are. Runs on the CPU in
    float64 (PyWavelets), batched over images and channels.

    Shape: ``(N, C, H, W)`` -> same, dtype and device kept. Values: [0, 1] -> about [0, 1] (unclipped).
    """
    n, c, h, w = images.shape
    x = images.detach().to("cpu", torch.float64)
    ycbcr = c == 3
    if ycbcr:
        x = torch.einsum("ij,njhw->nihw", _RGB_TO_YCBCR, x)
        lo = x.amin(dim=(-2, -1), keepdim=True)
        scale = x.amax(dim=(-2, -1), keepdim=True) - lo
        flat = scale == 0  # constant channel: nothing to denoise (old skimage divided by zero here)
        x = (x - lo) / torch.where(flat, 1.0, scale)
    out = torch.from_numpy(_bayes_shrink(x.reshape(n * c, h, w).numpy(), sigma, wavelet)).reshape(n, c, h, w)
    if ycbcr:
        out = torch.where(flat, x, out) * scale + lo
        out = torch.einsum("ij,njhw->nihw", torch.linalg.inv(_RGB_TO_YCBCR), out)
    return out.to(images.device, images.dtype)


class PixelDeflection(RandomizedDefense):
    """Randomly replace pixels by a neighbour within a window, then soft wavelet denoising.

    One deflection copies one channel-pixel from a random other position of the same channel within
    ``window`` pixels in each direction (a ``(2 * window + 1)^2`` square clipped to the image).
    Then :func:`wavelet_denoise` (BayesShrink, soft, ``sigma``, ``wavelet``, in YCbCr).

    Original parameters (Prakash et al. 2018, iamaaditya/pixel-deflection): 200 deflections,
    window 10, uniform map (no robust activation map), BayesShrink soft denoising with sigma 0.04
    and db1 in YCbCr; ImageNet at 224-299 px. Deviations: (1) deflection is vectorised: the
    ``deflections`` targets of an image are distinct channel-pixels, none copies itself, and all
    sources are read from the undeflected image (the original loop could hit a pixel twice, copy a
    pixel onto itself, or chain copies); so exactly ``deflections`` channel-pixels are overwritten;
    (2) sources may lie in row 0 and column 0 (the original's strict ``> 0`` test excluded them);
    (3) the deflection count is not scaled with the image size; (4) the denoising runs on the CPU
    (PyWavelets), the deflection on the input's device. Randomized and not differentiable: attack
    with BPDA (identity surrogate, as Athalye et al. 2018) and EOT.

    Shape: ``(C, H, W)`` or ``(N, C, H, W)`` -> same. Values: [0, 1] -> [0, 1].

    Args:
        deflections: channel-pixels replaced per image (capped at ``C * H * W``).
        window: largest row/column distance of a deflection's source, >= 1.
        sigma: noise level of the wavelet denoiser (on [0, 1]-renormalized channels).
        wavelet: PyWavelets discrete wavelet name.
        denoise: False skips the denoiser (deflection only).
        seed: seed of a private generator (reproducible evaluation), or None.
        generator: a ``torch.Generator`` to draw from, or None (global RNG when both are None).
    """

    differentiable = False

    def __init__(
        self,
        deflections: int = 200,
        window: int = 10,
        sigma: float = 0.04,
        wavelet: str = "db1",
        denoise: bool = True,
        *,
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(seed=seed, generator=generator)
        if deflections < 0 or window < 1 or sigma <= 0:
            raise ValueError(
                f"expected deflections >= 0, window >= 1 and sigma > 0, got {deflections}, {window}, {sigma}"
            )
        import pywt

        if wavelet not in pywt.wavelist(kind="discrete"):
            raise ValueError(f"unknown discrete wavelet {wavelet!r}: see pywt.wavelist(kind='discrete')")
        self.deflections = int(deflections)
        self.window = int(window)
        self.sigma = float(sigma)
        self.wavelet = wavelet
        self.denoise = bool(denoise)

    def extra_repr(self) -> str:
        return f"deflections={self.deflections}, window={self.window}, sigma={self.sigma}, wavelet={self.wavelet!r}"

    def deflect(self, images: torch.Tensor) -> torch.Tensor:
        """Deflect a floating ``(N, C, H, W)`` batch: exactly ``min(deflections, C*H*W)`` channel-pixels per image change source."""
        n, c, h, w = images.shape
        k = min(self.deflections, c * h * w)
        if k == 0 or h * w == 1:
            return images.clone()
        # Distinct targets per image: the k smallest of C*H*W uniform keys.
        targets = self._rand(n, c * h * w).topk(k, dim=1, largest=False, sorted=False).indices
        channel, pixel = targets // (h * w), targets % (h * w)
        row, col = pixel // w, pixel % w
        r_lo, r_hi = (row - self.window).clamp(min=0), (row + self.window).clamp(max=h - 1)
        c_lo, c_hi = (col - self.window).clamp(min=0), (col + self.window).clamp(max=w - 1)
        win_w = c_hi - c_lo + 1
        others = (r_hi - r_lo + 1) * win_w - 1  # window cells other than the target, >= 1
        pick = (self._rand(n, k) * others).long().minimum(others - 1)
        pick = pick + (pick >= (row - r_lo) * win_w + (col - c_lo)).long()  # skip the target itself
        sources = channel * (h * w) + (r_lo + pick // win_w) * w + (c_lo + pick % win_w)
        flat = images.reshape(n, -1)
        targets, sources = targets.to(images.device), sources.to(images.device)
        return flat.scatter(1, targets, flat.gather(1, sources)).reshape(n, c, h, w)

    def purify(self, images: torch.Tensor) -> torch.Tensor:
        """Deflect then denoise a floating ``(N, C, H, W)`` batch in [0, 1]."""
        deflected = self.deflect(images)
        return wavelet_denoise(deflected, self.sigma, self.wavelet) if self.denoise else deflected
