"""Fog, read by a small network and removed with no weights: the routed purifier's step for fogged photographs.

ImageNet-C's fog adds a smooth grey cloud and scales the image down under it. The dark-channel prior of He, Sun
and Tang ("Single image haze removal using dark channel prior", CVPR 2009) undoes that with no weights
(:func:`dehaze`), but it darkens clean photos on bright backgrounds, and no cheap measure of an image (sharpness,
black point) tells fogged photos from clean ones (design notes). :class:`FogDetector`, a three-layer CNN on the
image at a quarter of its size, does; :func:`fog_share` turns its reading into how much of the dehaze each image
gets. :class:`~recondefense.purifiers.RoutedPurifier` applies it before its gate when its config has a
``fog_range``; ``scripts/train_fog_detector.py`` trains the detector. The same network, trained on ImageNet-C's
brightness (``--corruption brightness``), is the routed purifier's brightness detector (``brightness_range``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .levels import gaussian_blur

__all__ = ["DEHAZE_PATCH", "DEHAZE_SIGMA", "DETECTOR_POOL", "FogDetector", "dehaze", "fog_share"]

#: The dark channel's window, in pixels of a 224 px image.
DEHAZE_PATCH = 15
#: The Gaussian smoothing of the haze map, in pixels.
DEHAZE_SIGMA = 8.0
#: The most haze removed at a pixel (the division by ``1 - haze`` stays finite).
HAZE_CAP = 0.95
#: The average pooling each routed step's detector reads the image at (no tensor holds it, so the training script
#: and the purifier take it from here): fog and brightness are smooth, snowflakes are a few pixels wide.
DETECTOR_POOL = {"fog": 4, "brightness": 4, "snow": 1}


def dehaze(images: torch.Tensor, patch: int = DEHAZE_PATCH, sigma: float = DEHAZE_SIGMA) -> torch.Tensor:
    """The dark-channel dehaze: the haze ``t`` read as the minimum over the channels and a ``patch`` window,
    smoothed by a Gaussian of ``sigma`` pixels and capped at 0.95, removed as ``(x - t) / (1 - t)``.

    Shape: ``(N, C, H, W)`` in [0, 1] -> same, in [0, 1].
    """
    darkest = images.amin(1, keepdim=True)
    pad = patch // 2
    haze = -F.max_pool2d(-F.pad(darkest, (pad, pad, pad, pad), mode="replicate"), patch, stride=1)
    haze = gaussian_blur(haze, sigma).clamp(max=HAZE_CAP)
    return ((images - haze) / (1 - haze)).clamp(0, 1)


class FogDetector(nn.Module):
    """How foggy (or, trained on brightness or snow, how brightened or snowy) an image looks: three strided 3 x 3
    convolutions (``width``, ``2 width``, ``2 width`` channels) on the image average-pooled by ``pool``, their mean
    and maximum over the image, one linear logit.

    Shape: ``(N, C, H, W)`` in [0, 1], ``H`` and ``W`` at least ``pool`` -> ``(N,)`` logits (above 0: fog).
    """

    def __init__(self, in_channels: int = 3, width: int = 16, pool: int = 4) -> None:
        super().__init__()
        self.pool = int(pool)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, 2, 1),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, 2, 1),
            nn.ReLU(),
            nn.Conv2d(2 * width, 2 * width, 3, 2, 1),
            nn.ReLU(),
        )
        self.head = nn.Linear(4 * width, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        pooled = F.avg_pool2d(images, self.pool) if self.pool > 1 else images
        features = self.features(pooled * 2 - 1)
        return self.head(torch.cat([features.mean((2, 3)), features.amax((2, 3))], dim=1)).squeeze(1)


def fog_share(detector: nn.Module, images: torch.Tensor, fog_range: tuple[float, float]) -> torch.Tensor:
    """How much of :func:`dehaze` each image gets: 0 where the detector's probability of fog is at most
    ``fog_range[0]``, rising linearly to 1 at ``fog_range[1]`` and above.

    Shape: ``(N, C, H, W)`` in [0, 1] -> ``(N,)`` in [0, 1].
    """
    low, high = fog_range
    return ((torch.sigmoid(detector(images)) - low) / (high - low)).clamp(0, 1)
