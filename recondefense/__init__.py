"""recondefense: reconstructive adversarial purification in front of any image classifier.

Implements Patrick et al., "Reconstructive Training for Real-World Robustness in Image
Classification" (WACV 2022 workshops).
"""

from __future__ import annotations

from . import shipped as shipped  # registers the shipped weights
from .autoencoder import ReconAutoencoder
from .defended import Defended
from .defense import IMAGENET_MEAN, IMAGENET_STD, ReconstructiveDefense
from .transform import PixelDefense
from .weights import get_weights, list_weights

#: The package version (PEP 440).
__version__ = "0.1.0"

__all__ = [
    "Defended",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "PixelDefense",
    "ReconAutoencoder",
    "ReconstructiveDefense",
    "__version__",
    "get_weights",
    "list_weights",
]
