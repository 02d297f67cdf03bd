"""Natural look-alikes of a perturbation: clean images with high-frequency content that is not an attack.

A perturbation detector (the gate of a gated purifier) that has only seen clean photos and attacked ones learns
"fine-scale energy means attack", and opens on JPEG artifacts, sensor noise or sharpened textures it never saw.
:func:`natural_variants` makes such images from clean ones; ``recondefense train --gate-negatives`` shows them to
the gate as clean (closed).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..baselines import JPEG
from ..blending import binomial_blur
from ..corruptions.weather import brighten

__all__ = ["LOOKALIKES", "NATURAL_VARIANTS", "lookalike_kinds", "natural_variants", "unsharp"]

#: The kinds of variant, drawn uniformly per image: a JPEG round trip at quality 30-95, Gaussian sensor noise of
#: standard deviation 0.002-0.012 (a camera's at base ISO; stronger noise is a corruption, not a clean photo), and an
#: unsharp mask of strength 0.5-1.5.
NATURAL_VARIANTS = ("jpeg", "noise", "sharpen")
#: Every kind :func:`natural_variants` can make (``recondefense train --gate-negative-kinds``): the above, and
#: ``"brightness"``, ImageNet-C's brightness model with the HSV value raised by 0.1-0.5 (its severities 1-5), a
#: corruption no route undoes, on which the gate should stay shut as on a clean photo.
LOOKALIKES = (*NATURAL_VARIANTS, "brightness")


def unsharp(images: torch.Tensor, amount: float) -> torch.Tensor:
    """``x + amount * (x - blur(x))`` with a 3 x 3 binomial blur (an unsharp mask), not clamped.

    Shape: ``(N, C, H, W)`` in [0, 1] -> same, values may leave [0, 1].
    """
    return images + amount * (images - binomial_blur(images))


def lookalike_kinds(kinds: str | Sequence[str]) -> tuple[str, ...]:
    """``kinds`` (a comma-separated string such as ``"jpeg,noise"``, or a sequence) as a tuple of checked kinds.

    Raises:
        ValueError: no kinds, a kind named twice, or one not in :data:`LOOKALIKES`.
    """
    parts = tuple(kinds.split(",")) if isinstance(kinds, str) else tuple(kinds)
    if not parts or not set(parts) <= set(LOOKALIKES) or len(set(parts)) != len(parts):
        raise ValueError(f"look-alike kinds {','.join(parts)!r}: expected some of {','.join(LOOKALIKES)}, each once")
    return parts


def natural_variants(
    images: torch.Tensor, generator: torch.Generator | None = None, kinds: Sequence[str] = NATURAL_VARIANTS
) -> torch.Tensor:
    """One natural variant per image (a kind of ``kinds``, some of :data:`LOOKALIKES`; kind and strength drawn
    from ``generator``).

    Shape: ``(N, C, H, W)`` float in [0, 1] -> same, in [0, 1], detached.

    Raises:
        ValueError: ``kinds`` fails :func:`lookalike_kinds`.
    """
    kinds = lookalike_kinds(kinds)
    images = images.detach()
    out = []
    for image in images:
        kind = kinds[int(torch.randint(len(kinds), (), generator=generator))]
        strength = float(torch.rand((), generator=generator))
        if kind == "jpeg":
            out.append(JPEG(quality=30 + round(65 * strength)).purify(image[None])[0])
        elif kind == "noise":
            noise = torch.randn(image.shape, generator=generator).to(image.device, image.dtype)
            out.append(image + (0.002 + 0.01 * strength) * noise)
        elif kind == "sharpen":
            out.append(unsharp(image[None], 0.5 + strength)[0])
        else:
            out.append(brighten(image[None], 0.1 + 0.4 * strength)[0])
    return torch.stack(out).clamp(0, 1)
