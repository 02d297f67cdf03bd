"""Baseline input-transformation defenses of the paper's Table 2, with the transform contract.

Every defense is a :class:`~recondefense.transform.PixelDefense`: ``(C, H, W)`` or ``(N, C, H, W)``
in [0, 1] -> same shape in [0, 1], with ``differentiable``/``randomized`` flags and a ``surrogate``
for BPDA. Randomized ones take ``seed=`` or ``generator=`` for reproducible evaluation.
"""

from __future__ import annotations

from .bit_depth import BitDepth
from .feature_distillation import FeatureDistillation
from .jpeg import JPEG
from .pixel_deflection import PixelDeflection
from .random_resize_pad import RandomResizePad
from .stl import STL

__all__ = ["BitDepth", "FeatureDistillation", "JPEG", "PixelDeflection", "RandomResizePad", "STL"]
