"""Feature distillation: DNN-oriented JPEG quantization (Liu et al., CVPR 2019), batched in torch."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..transform import PixelDefense

__all__ = ["FeatureDistillation", "dct_matrix"]


def dct_matrix(
    size: int = 8, *, dtype: torch.dtype = torch.float64, device: torch.device | None = None
) -> torch.Tensor:
    """Orthonormal DCT-II matrix ``D`` (``size x size``): ``coef = D @ block @ D.T``, ``block = D.T @ coef @ D``."""
    k = torch.arange(size, dtype=torch.float64).unsqueeze(1)
    i = torch.arange(size, dtype=torch.float64).unsqueeze(0)
    d = torch.cos(math.pi * (2 * i + 1) * k / (2 * size)) * math.sqrt(2.0 / size)
    d[0] /= math.sqrt(2.0)
    return d.to(dtype=dtype, device=device)


class FeatureDistillation(PixelDefense):
    """Quantize the 8x8 block DCT of each RGB channel with the DNN-oriented table, then invert it.

    Per channel (no YCbCr conversion, no level shift, no chroma subsampling, as the original code):
    ``coef = DCT8x8(255 * x)``; ``coef = round(coef / Q) * Q``; ``x = IDCT8x8(coef) / 255``, clipped.
    ``Q`` is ``table_value`` everywhere except ``low_freq_value`` in the low-frequency
    ``low_freq_size x low_freq_size`` corner.

    Original parameters (Liu et al. 2019, released code): 8x8 blocks, Q = 30 with 25 in the
    low-frequency 4x4, ImageNet 224 px. Deviations: (1) sizes that are not multiples of 8 are padded
    by edge replication to the next multiple and cropped back (as JPEG encoders do); (2) every image
    of a batch is processed (the original loop skips image 0 of each batch, a bug); (3) arithmetic in
    float32 (float64 for float64 input), so ``round`` may differ from numpy's float64 on exact ties.
    Not differentiable (rounding). The BPDA surrogate is the identity: a straight-through rounding
    inside the orthonormal DCT has exactly the identity Jacobian, so nothing better is on offer.

    Shape: ``(C, H, W)`` or ``(N, C, H, W)`` -> same. Values: [0, 1] -> [0, 1].

    Args:
        table_value: quantization step of the high-frequency coefficients.
        low_freq_value: quantization step of the low-frequency corner.
        low_freq_size: side of the low-frequency corner, 0 to 8.
    """

    differentiable = False
    block = 8

    def __init__(self, table_value: float = 30.0, low_freq_value: float = 25.0, low_freq_size: int = 4) -> None:
        super().__init__()
        if table_value <= 0 or low_freq_value <= 0:
            raise ValueError(f"quantization steps must be positive, got {table_value} and {low_freq_value}")
        if not 0 <= low_freq_size <= self.block:
            raise ValueError(f"expected low_freq_size in [0, {self.block}], got {low_freq_size}")
        table = torch.full((self.block, self.block), float(table_value), dtype=torch.float64)
        table[:low_freq_size, :low_freq_size] = float(low_freq_value)
        self.register_buffer("table", table, persistent=False)
        self.register_buffer("dct", dct_matrix(self.block), persistent=False)

    def purify(self, images: torch.Tensor) -> torch.Tensor:
        """Distill a floating ``(N, C, H, W)`` batch in [0, 1] (any size, any channel count)."""
        n, c, h, w = images.shape
        b = self.block
        work = torch.float64 if images.dtype == torch.float64 else torch.float32
        dct, table = self.dct.to(images.device, work), self.table.to(images.device, work)
        x = images.to(work) * 255
        pad_h, pad_w = (-h) % b, (-w) % b
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        hb, wb = x.shape[-2] // b, x.shape[-1] // b
        blocks = x.reshape(n, c, hb, b, wb, b).transpose(3, 4)  # (N, C, Hb, Wb, 8, 8)
        coef = dct @ blocks @ dct.T
        coef = torch.round(coef / table) * table
        out = (dct.T @ coef @ dct).transpose(3, 4).reshape(n, c, hb * b, wb * b)
        return (out[..., :h, :w] / 255).to(images.dtype)
