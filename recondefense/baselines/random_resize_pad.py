"""Random resizing and padding (Xie et al., ICLR 2018), scaled to the input size."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._random import RandomizedDefense

__all__ = ["RandomResizePad"]

#: Xie et al.: 299 px images resized to rnd in [299, 331) and zero-padded to 331.
_XIE_RATIO = 331 / 299


class RandomResizePad(RandomizedDefense):
    """Nearest-neighbour resize to a random size, zero-pad at a random offset, resize back.

    For an ``H x W`` input: ``pad_h = round(H * max_ratio)``; ``rnd_h`` uniform in ``[H, pad_h)``;
    ``rnd_w = round(rnd_h * W / H)`` (same aspect ratio); nearest resize to ``rnd_h x rnd_w``; zero
    padding to ``pad_h x pad_w`` with top/left offsets uniform in ``[0, pad - rnd]``; bilinear
    (antialiased) resize back to ``H x W``, the size the classifier takes. At 224 px: rnd in
    [224, 248), padded to 248.

    Original parameters (Xie et al. 2018): 299 px input, rnd in [299, 331) (the released code:
    [310, 331)), padded to 331 and fed to Inception at 331 px; ``max_ratio = 331/299``. Deviations:
    (1) the ratios are scaled to the input size (any ``H``, ``W``); (2) the padded image is resized
    back to the input size instead of the classifier taking 331 px; (3) every image of a batch
    draws its own size and offsets (the released code drew one per batch). Randomized (attack with
    EOT, as Athalye et al. 2018) and differentiable almost everywhere (exact gradients exist).

    Shape: ``(C, H, W)`` or ``(N, C, H, W)`` -> same. Values: [0, 1] -> [0, 1].

    Args:
        max_ratio: padded size over input size (``331 / 299``).
        seed: seed of a private generator (reproducible evaluation), or None.
        generator: a ``torch.Generator`` to draw from, or None (global RNG when both are None).
    """

    differentiable = True

    def __init__(
        self, max_ratio: float = _XIE_RATIO, *, seed: int | None = None, generator: torch.Generator | None = None
    ) -> None:
        super().__init__(seed=seed, generator=generator)
        if max_ratio < 1:
            raise ValueError(f"expected max_ratio >= 1 (padding enlarges the image), got {max_ratio}")
        self.max_ratio = float(max_ratio)

    def extra_repr(self) -> str:
        return f"max_ratio={self.max_ratio:.4f}"

    def padded_size(self, height: int, width: int) -> tuple[int, int]:
        """Size of the zero-padded canvas for an ``height x width`` input (248 x 248 at 224 px)."""
        return max(round(height * self.max_ratio), height), max(round(width * self.max_ratio), width)

    def sample(self, n: int, height: int, width: int) -> torch.Tensor:
        """Draw ``(n, 4)`` int64 parameters ``(rnd_h, rnd_w, top, left)`` for ``height x width`` images."""
        pad_h, pad_w = self.padded_size(height, width)
        u = self._rand(n, 3).cpu()
        rnd_h = height + (u[:, 0] * max(pad_h - height, 1)).long().clamp(max=max(pad_h - height - 1, 0))
        rnd_w = (rnd_h.double() * width / height).round().long().clamp(width, pad_w)
        top = (u[:, 1] * (pad_h - rnd_h + 1)).long().clamp(max=pad_h - rnd_h)
        left = (u[:, 2] * (pad_w - rnd_w + 1)).long().clamp(max=pad_w - rnd_w)
        return torch.stack([rnd_h, rnd_w, top, left], dim=1)

    def resize_pad(self, images: torch.Tensor, rnd_h: int, rnd_w: int, top: int, left: int) -> torch.Tensor:
        """Nearest resize of ``(B, C, H, W)`` to ``rnd_h x rnd_w``, zero-padded at ``(top, left)`` to :meth:`padded_size`."""
        pad_h, pad_w = self.padded_size(*images.shape[-2:])
        resized = F.interpolate(images, size=(rnd_h, rnd_w), mode="nearest")
        return F.pad(resized, (left, pad_w - rnd_w - left, top, pad_h - rnd_h - top))

    def purify(self, images: torch.Tensor) -> torch.Tensor:
        """Randomly resize, pad and resize back a floating ``(N, C, H, W)`` batch in [0, 1]."""
        n, _, h, w = images.shape
        x = images if images.dtype in (torch.float32, torch.float64) else images.float()
        params = self.sample(n, h, w).tolist()
        out = [
            F.interpolate(
                self.resize_pad(x[i : i + 1], *p), size=(h, w), mode="bilinear", align_corners=False, antialias=True
            )
            for i, p in enumerate(params)
        ]
        return torch.cat(out).to(images.dtype)
