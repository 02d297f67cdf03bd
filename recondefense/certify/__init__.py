"""Certified L2 robustness by randomized smoothing (Cohen, Rosenfeld, Kolter, ICML 2019), with or without a denoiser.

The smoothed classifier ``g(x) = argmax_c P(f(clamp(x + N(0, sigma^2 I), 0, 1)) = c)`` is certified at ``x``
with radius ``sigma * Phi^-1(pA_lower)``: no perturbation of L2 norm below it changes ``g(x)``, whatever the
attacker knows. ``f`` is any classifier taking [0, 1] pixels: a bare classifier, or ``nn.Sequential(denoiser,
classifier)`` (Salman et al., NeurIPS 2020, "denoised smoothing"). Clamping the noisy image to [0, 1] is part of
the base classifier, so the guarantee is unchanged and pixel-space denoisers receive valid input.

    result = certify(classifier, image, sigma=0.25, n0=100, n=100_000, alpha=0.001)
    result.prediction, result.radius  # -1 and 0.0 when it abstains

Modules: :mod:`.smoothing` (one image: the base classifier, noise counts, bound, PREDICT, CERTIFY), :mod:`.dataset`
(CERTIFY over a dataset), :mod:`.report` (tables, curves, rows files), :mod:`.cli` (``recondefense certify``).
"""

from __future__ import annotations

from . import smoothing
from .cli import main
from .dataset import certify_dataset
from .report import certified_accuracy, plot_certified_accuracy, print_table, row_label
from .smoothing import *  # noqa: F403  (one image: smoothing's __all__, which heads this one)
from .smoothing import max_certifiable_radius

__all__ = [
    *smoothing.__all__,
    "max_certifiable_radius",
    "certify_dataset",
    "certified_accuracy",
    "plot_certified_accuracy",
    "row_label",
    "print_table",
    "main",
]
