"""The noise corruptions: ``gaussian_noise``, ``shot_noise`` (Poisson), ``impulse_noise`` (salt and pepper)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._ops import (
    device_of,
    normal,
    uniform,
)
from .reference import REFERENCE_CONSTANTS


def _gaussian_noise(x, severity, gen, s):
    c = REFERENCE_CONSTANTS["gaussian_noise"][severity - 1]
    return (x + normal(x.shape, 0.0, c, gen, x.device, x.dtype)).clamp(0, 1)


def _shot_noise(x, severity, gen, s):
    c = REFERENCE_CONSTANTS["shot_noise"][severity - 1]
    rates = (x * c).to(device_of(gen, x.device))
    return (torch.poisson(rates, generator=gen).to(x.device) / c).clamp(0, 1)


def _impulse_noise(x, severity, gen, s):
    c = REFERENCE_CONSTANTS["impulse_noise"][severity - 1]
    flipped = uniform(x.shape, 0, 1, gen, x.device) < c
    salted = uniform(x.shape, 0, 1, gen, x.device) < 0.5
    out = torch.where(flipped & salted, torch.ones_like(x), x)
    return torch.where(flipped & ~salted, torch.zeros_like(x), out)


#: Name -> ``f(x, severity, generator, s)`` on a float (N, C, H, W) batch in [0, 1]; ``s``: pixel scale (1 at 224 px).
IMPLS: dict[str, Callable] = {
    "gaussian_noise": _gaussian_noise,
    "shot_noise": _shot_noise,
    "impulse_noise": _impulse_noise,
}
