"""Bit-depth reduction, the pixel squeezer of feature squeezing (Xu et al., NDSS 2018)."""

from __future__ import annotations

import torch

from ..transform import PixelDefense

__all__ = ["BitDepth"]


class BitDepth(PixelDefense):
    """Quantize each value to ``bits`` bits: ``round(x * (2**bits - 1)) / (2**bits - 1)``.

    Original parameters (Xu et al. 2018, and the paper's baseline): ``bits=5`` for ImageNet (1 for
    MNIST). Same formula as ART's ``FeatureSqueezing(clip_values=(0, 1), bit_depth=bits)``; rounding
    is half-to-even as ``np.rint``. Deviations: none. Not differentiable (zero gradient almost
    everywhere); the BPDA surrogate is the identity (straight-through estimator).

    Shape: ``(C, H, W)`` or ``(N, C, H, W)`` -> same. Values: [0, 1] -> ``2**bits`` levels in [0, 1].

    Args:
        bits: bits kept per value, 1 to 16.
    """

    differentiable = False

    def __init__(self, bits: int = 5) -> None:
        super().__init__()
        if not isinstance(bits, int) or not 1 <= bits <= 16:
            raise ValueError(f"expected bits as an int in [1, 16], got {bits!r}")
        self.bits = bits

    def extra_repr(self) -> str:
        return f"bits={self.bits}"

    def purify(self, images: torch.Tensor) -> torch.Tensor:
        """Quantize a floating ``(N, C, H, W)`` batch in [0, 1] to ``2**bits`` levels."""
        levels = float(2**self.bits - 1)
        x = images if images.dtype == torch.float64 else images.float()
        return torch.round(x * levels).div_(levels).to(images.dtype)
