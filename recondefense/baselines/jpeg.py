"""JPEG compression as a defense (Dziugaite et al. 2016; Guo et al., ICLR 2018)."""

from __future__ import annotations

import warnings

import torch
from torchvision.io import decode_jpeg, encode_jpeg

from ..transform import PixelDefense

__all__ = ["JPEG"]


class JPEG(PixelDefense):
    """Real JPEG round trip with libjpeg (``torchvision.io``): 8-bit quantize, encode, decode.

    Original parameters (Guo et al. 2018; Xu et al. 2018): quality 75, 4:2:0 chroma subsampling
    (libjpeg's default, as PIL's ``Image.save(..., quality=75)``). Deviations: none; images with a
    channel count other than 1 or 3 are compressed one channel at a time as grayscale. The codec
    runs on the CPU (the result is moved back to the input's device): libjpeg is what PIL uses, and
    nvJPEG on CUDA would give slightly different pixels. Not differentiable; the BPDA surrogate is
    the identity (Athalye et al. 2018).

    Shape: ``(C, H, W)`` or ``(N, C, H, W)`` -> same. Values: [0, 1] -> multiples of 1/255 in [0, 1].

    Args:
        quality: JPEG quality, 1 to 100.
    """

    differentiable = False

    def __init__(self, quality: int = 75) -> None:
        super().__init__()
        if not isinstance(quality, int) or not 1 <= quality <= 100:
            raise ValueError(f"expected quality as an int in [1, 100], got {quality!r}")
        self.quality = quality

    def extra_repr(self) -> str:
        return f"quality={self.quality}"

    def purify(self, images: torch.Tensor) -> torch.Tensor:
        """JPEG round trip of a floating ``(N, C, H, W)`` batch in [0, 1]."""
        n, c, h, w = images.shape
        pixels = images.detach().to("cpu", torch.float32).mul(255).round_().clamp_(0, 255).to(torch.uint8)
        if c not in (1, 3):
            pixels = pixels.reshape(n * c, 1, h, w)
        with warnings.catch_warnings():  # torchvision 0.29 flags its codecs as moving to torchcodec
            warnings.filterwarnings("ignore", category=DeprecationWarning, module="torchvision")
            decoded = decode_jpeg(encode_jpeg(list(pixels), quality=self.quality))
        out = torch.stack(decoded).reshape(n, c, h, w)
        return out.to(images.device, images.dtype).div_(255)
