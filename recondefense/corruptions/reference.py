"""The reference's constants: per-severity parameters of ``make_imagenet_c.py`` and the frost photos' colour
statistics, defined at :data:`REFERENCE_SIZE` px (pixel-valued ones are rescaled at other sizes)."""

from __future__ import annotations

import numpy as np

__all__ = ["FROST_PHOTO_STATS", "REFERENCE_CONSTANTS", "REFERENCE_SIZE"]

#: Image side (px) at which the reference constants are defined.
REFERENCE_SIZE = 224

_ZOOMS = (
    np.arange(1, 1.11, 0.01),
    np.arange(1, 1.16, 0.01),
    np.arange(1, 1.21, 0.02),
    np.arange(1, 1.26, 0.02),
    np.arange(1, 1.31, 0.03),
)

#: Per-severity constants (severity 1..5) of make_imagenet_c.py, by corruption.
REFERENCE_CONSTANTS: dict[str, tuple] = {
    "gaussian_noise": (0.08, 0.12, 0.18, 0.26, 0.38),  # std
    "shot_noise": (60, 25, 12, 5, 3),  # photons per unit intensity
    "impulse_noise": (0.03, 0.06, 0.09, 0.17, 0.27),  # s&p amount
    "defocus_blur": ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)),  # disk radius, alias sigma (px)
    "glass_blur": ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)),  # sigma, max shift, iterations
    "motion_blur": ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15)),  # radius, sigma (px)
    "zoom_blur": tuple(tuple(float(z) for z in zooms) for zooms in _ZOOMS),  # zoom factors
    "snow": (  # mean, std, zoom, threshold, blur radius, blur sigma, image blend
        (0.1, 0.3, 3, 0.5, 10, 4, 0.8),
        (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
        (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
        (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
        (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
    ),
    "frost": ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)),  # image weight, frost weight
    "fog": ((1.5, 2), (2.0, 2), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4)),  # fog weight, wibble decay
    "brightness": (0.1, 0.2, 0.3, 0.4, 0.5),  # added to HSV value
    "contrast": (0.4, 0.3, 0.2, 0.1, 0.05),  # factor around the per-channel mean
    "elastic_transform": (  # alpha, sigma, affine jitter (px; "244" is the reference's own typo for 224)
        (244 * 2, 244 * 0.7, 244 * 0.1),
        (244 * 2, 244 * 0.08, 244 * 0.2),
        (244 * 0.05, 244 * 0.01, 244 * 0.02),
        (244 * 0.07, 244 * 0.01, 244 * 0.02),
        (244 * 0.12, 244 * 0.01, 244 * 0.02),
    ),
    "pixelate": (0.6, 0.5, 0.4, 0.3, 0.25),  # downsampling factor
    "jpeg_compression": (25, 18, 15, 10, 7),  # quality
}

#: Per-channel (RGB) mean and standard deviation in [0, 1] of 224 px crops of the reference's frost photos
#: frost1.png ... frost5.jpg (frost3 duplicates frost2; the reference draws among these five), averaged
#: over 200 random crops each. The procedural frost texture is standardized to one of them per image.
FROST_PHOTO_STATS: tuple[tuple[tuple[float, float, float], tuple[float, float, float]], ...] = (
    ((0.305, 0.581, 0.645), (0.094, 0.056, 0.053)),
    ((0.776, 0.792, 0.829), (0.076, 0.079, 0.082)),
    ((0.775, 0.791, 0.828), (0.077, 0.079, 0.082)),
    ((0.566, 0.625, 0.675), (0.102, 0.102, 0.107)),
    ((0.394, 0.438, 0.485), (0.141, 0.139, 0.136)),
)
