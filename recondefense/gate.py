"""The perturbation gate: a small CNN that scores each image from its pixels and their Laplacian high-pass
(:class:`PerturbationGate`), and :func:`veto_brightened`, a second reading of the image with its black point restored
that caps how far it opens. The gated and routed purifiers (:mod:`recondefense.routing`,
:mod:`recondefense.purifiers`) hold one.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .levels import clipped_share, restore_black_point

__all__ = ["VETO_BLACK_POINT", "PerturbationGate", "conv_relu", "steepen_opening", "veto_brightened"]


def conv_relu(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    """A 3 x 3 convolution (padding 1) and a ReLU: ``(N, c_in, H, W)`` -> ``(N, c_out, H / stride, W / stride)``."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), nn.ReLU(inplace=True))


#: The black point above which :func:`veto_brightened` reads an image restored: one grey level (every image that
#: does not already touch black).
VETO_BLACK_POINT = 1 / 255


def veto_brightened(
    gate: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    logits: torch.Tensor,
    veto: float,
    black_point: float = VETO_BLACK_POINT,
    clipped: float = 0.0,
    *,
    always: bool,
    to_floor: bool = False,
) -> torch.Tensor:
    """A gate's expert logits with its opening capped by a second reading, of ``x`` with its black point restored
    (:func:`~recondefense.levels.restore_black_point`, of the images whose black point is at least ``black_point``;
    the others read as they are), and only of the images whose :func:`~recondefense.levels.clipped_share` is at least
    ``clipped`` (0: every image). Brightening lifts the dark pixels of a photo most (HSV value
    ``v -> v + c`` scales them by ``(v + c) / v``), and with them their fine detail, which is what a perturbation
    gate reads; an attack's perturbation survives the restoration. With ``L`` the gate logit (``logsumexp`` of
    ``logits``, sigmoid: the gate value), ``R`` the restored image's and ``f = logit(veto)``, the gate logit becomes
    ``min(L, max(R - f, f))``: an image opens (above 0) only where the restored image reads above ``veto`` too (a
    vetoed image whose ``R`` sits near ``f`` stays near half open), and an image at or below ``veto`` is left as it
    is, so unless ``always`` (training, tracing) the second reading is taken only of the images above it (clean
    traffic: none). With ``to_floor`` the cap is ``max(R, f)`` instead: an image opens no further than its restored
    reading, and a vetoed one keeps a gate of ``veto``. Every expert logit moves by the same amount: the routes
    keep their proportions.

    Shape: ``x`` ``(N, C, H, W)`` in [0, 1], ``logits`` ``(N, E)``, ``veto`` in (0, 0.5] -> ``(N, E)``.
    """
    floor = math.log(veto / (1 - veto))
    opening = torch.logsumexp(logits, dim=1)

    def shift(images: torch.Tensor, opened: torch.Tensor) -> torch.Tensor:  # (n, 1): capped logit - gate logit
        restored = torch.logsumexp(gate(restore_black_point(images, black_point)), dim=1)
        cap = (restored if to_floor else restored - floor).clamp_min(floor)
        return (torch.minimum(opened, cap) - opened).unsqueeze(1)

    if always:
        moved = shift(x, opening)
        return logits + (moved * (clipped_share(x) >= clipped).unsqueeze(1) if clipped > 0 else moved)
    index = (opening > floor).nonzero().flatten()
    if clipped > 0 and len(index):  # the clipped share of the opened images only (clean traffic: none)
        index = index[clipped_share(x[index]) >= clipped]
    if not len(index):
        return logits
    return logits.index_add(0, index, shift(x[index], opening[index]).expand(-1, logits.shape[1]))


def steepen_opening(logits: torch.Tensor, at: float, steepness: float) -> torch.Tensor:
    """A gate's expert logits with a second, steeper opening above the gate logit ``at``: the gate logit ``L``
    (``logsumexp`` of ``logits``) becomes ``max(L, steepness (L - at))``, every expert logit moved by the same
    amount (the routes keep their proportions). The gate is half open at ``at`` and opens ``steepness`` times
    faster beyond it; an image whose ``L`` is at most ``steepness at / (steepness - 1)`` keeps its logits exactly,
    so the images far below ``at`` (clean traffic) get what they got.

    Shape: ``logits`` ``(N, E)``, ``at`` a logit, ``steepness`` > 1 -> ``(N, E)``.
    """
    opening = torch.logsumexp(logits, dim=1, keepdim=True)
    return logits + (torch.maximum(opening, steepness * (opening - at)) - opening)


class PerturbationGate(nn.Sequential):
    """A perturbation detector: the image and its Laplacian high-pass (x30) -> a full-resolution level of ``width``
    channels and ``depth`` stride-2 levels (channels doubled per level) -> global average pooling -> ``outputs``
    logits. A perturbation of a few grey levels is invisible next to image content, but not in the fine-scale
    residual (as steganalysis filters do). The last layer starts at weight 0 and bias ``bias`` (-4: sigmoid 0.018,
    nearly closed on every image).

    Shape: ``(N, C, H, W)`` in [0, 1] -> ``(N, outputs)``.
    """

    def __init__(self, in_channels: int, width: int, depth: int, outputs: int = 1, bias: float = -4.0) -> None:
        levels = [width * 2**i for i in range(depth + 1)]
        layers: list[nn.Module] = [conv_relu(2 * in_channels, levels[0])]
        layers += [conv_relu(levels[i], levels[i + 1], stride=2) for i in range(depth)]
        super().__init__(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(levels[-1], outputs))
        laplacian = torch.tensor([[0.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 0.0]])
        self.register_buffer("highpass", laplacian.expand(in_channels, 1, 3, 3).clone(), persistent=False)
        nn.init.zeros_(self[-1].weight)
        nn.init.constant_(self[-1].bias, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), self.highpass, groups=x.shape[1])
        return super().forward(torch.cat([x, 30 * residual], dim=1))

    @torch.no_grad()
    def recalibrate(self, open_at: float, sharpness: float = 1.0) -> None:
        """Move where the gate opens: every logit ``l`` becomes ``sharpness * (l - open_at)`` (an edit of the
        last layer's weight and bias, so the weights folder keeps its architecture). ``open_at`` is the old logit
        that now gives sigmoid 0.5; ``sharpness > 1`` makes the opening steeper around it. A trained gate's
        features are zero on most clean images (its logit sits at the bias, -4) and grow with high-frequency
        energy, so a threshold just above the clean logits catches the weakly detected attacks.

        Raises:
            ValueError: ``sharpness`` not a positive finite number, or ``open_at`` not finite.
        """
        if not (math.isfinite(open_at) and math.isfinite(sharpness) and sharpness > 0):
            raise ValueError(f"open_at {open_at}, sharpness {sharpness}: expected finite numbers, sharpness > 0")
        last = self[-1]
        last.weight.mul_(sharpness)
        last.bias.sub_(open_at).mul_(sharpness)
