"""Certified L2 robustness by randomized smoothing (Cohen, Rosenfeld, Kolter, ICML 2019), with or without a denoiser.

The smoothed classifier ``g(x) = argmax_c P(f(clamp(x + N(0, sigma^2 I), 0, 1)) = c)`` is certified at ``x``
with radius ``sigma * Phi^-1(pA_lower)``: no perturbation of L2 norm below it changes ``g(x)``, whatever the
attacker knows. ``f`` is any classifier taking [0, 1] pixels: a bare classifier, or ``nn.Sequential(denoiser,
classifier)`` (Salman et al., NeurIPS 2020, "denoised smoothing"). Clamping the noisy image to [0, 1] is part of
the base classifier, so the guarantee is unchanged and pixel-space denoisers receive valid input.

    result = certify(classifier, image, sigma=0.25, n0=100, n=100_000, alpha=0.001)
    result.prediction, result.radius  # -1 and 0.0 when it abstains
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["ABSTAIN", "CertifyResult", "sample_counts", "lower_confidence_bound", "predict", "certify"]

#: Returned as the prediction when the smoothed classifier abstains.
ABSTAIN = -1


@dataclass(frozen=True)
class CertifyResult:
    """One image's certificate: the smoothed prediction (``ABSTAIN`` = -1) and its certified L2 radius
    (0.0 when abstaining), with the lower confidence bound ``p_a_lower`` behind it."""

    prediction: int
    radius: float
    p_a_lower: float


@torch.no_grad()
def sample_counts(
    model: nn.Module,
    image: torch.Tensor,
    sigma: float,
    num: int,
    *,
    batch_size: int = 1000,
    num_classes: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Class counts of ``model`` on ``num`` noisy copies ``clamp(image + sigma * N(0, I), 0, 1)``, in batches.

    Args:
        model: pixel-space classifier, ``(N, C, H, W)`` in [0, 1] -> ``(N, K)`` logits.
        image: ``(C, H, W)`` in [0, 1].
        generator: the noise's random generator (on ``image``'s device), for reproducible certificates.

    Returns:
        ``(K,)`` int64 counts summing to ``num``.
    """
    if image.ndim != 3:
        raise ValueError(f"expected one image of shape (C, H, W), got {tuple(image.shape)}")
    counts: torch.Tensor | None = None
    remaining = num
    while remaining > 0:
        size = min(batch_size, remaining)
        batch = image.unsqueeze(0).expand(size, *image.shape)
        noise = torch.randn(batch.shape, device=image.device, dtype=image.dtype, generator=generator)
        logits = model((batch + sigma * noise).clamp(0, 1))
        classes = num_classes or logits.shape[-1]
        batch_counts = torch.bincount(logits.argmax(1), minlength=classes).cpu()
        counts = batch_counts if counts is None else counts + batch_counts
        remaining -= size
    assert counts is not None
    return counts


def lower_confidence_bound(successes: int, trials: int, alpha: float) -> float:
    """One-sided (1 - alpha) Clopper-Pearson lower bound on a binomial proportion: ``Beta.ppf(alpha, k, n - k + 1)``."""
    from scipy.stats import beta

    if successes <= 0:
        return 0.0
    return float(beta.ppf(alpha, successes, trials - successes + 1))


def predict(
    model: nn.Module,
    image: torch.Tensor,
    sigma: float,
    n: int,
    alpha: float,
    *,
    batch_size: int = 1000,
    generator: torch.Generator | None = None,
) -> int:
    """Cohen et al.'s PREDICT: the top class if a two-sided binomial test against the runner-up rejects a tie at
    level ``alpha``, else ``ABSTAIN``. Wrong with probability at most ``alpha``."""
    from scipy.stats import binomtest

    counts = sample_counts(model, image, sigma, n, batch_size=batch_size, generator=generator)
    top2 = counts.topk(2)
    n_a, n_b = int(top2.values[0]), int(top2.values[1])
    if binomtest(n_a, n_a + n_b, 0.5).pvalue > alpha:
        return ABSTAIN
    return int(top2.indices[0])


def certify(
    model: nn.Module,
    image: torch.Tensor,
    sigma: float,
    *,
    n0: int = 100,
    n: int = 100_000,
    alpha: float = 0.001,
    batch_size: int = 1000,
    generator: torch.Generator | None = None,
) -> CertifyResult:
    """Cohen et al.'s CERTIFY: pick the top class on ``n0`` samples, bound its probability from below on ``n``
    fresh samples (Clopper-Pearson at level ``alpha``), abstain if the bound is <= 1/2, else certify
    ``sigma * Phi^-1(pA_lower)``.

    Args:
        model: pixel-space classifier (a bare classifier or ``nn.Sequential(denoiser, classifier)``).
        image: ``(C, H, W)`` in [0, 1].
        sigma: noise standard deviation in [0, 1] pixel units.
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    if n0 < 1 or n < 1 or not 0 < alpha < 1:
        raise ValueError(f"expected n0 >= 1, n >= 1 and 0 < alpha < 1, got n0={n0}, n={n}, alpha={alpha}")
    selection = sample_counts(model, image, sigma, n0, batch_size=batch_size, generator=generator)
    top = int(selection.argmax())
    estimation = sample_counts(model, image, sigma, n, batch_size=batch_size, generator=generator)
    p_a_lower = lower_confidence_bound(int(estimation[top]), n, alpha)
    if p_a_lower <= 0.5:
        return CertifyResult(ABSTAIN, 0.0, p_a_lower)
    radius = sigma * float(torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(p_a_lower, dtype=torch.float64)))
    return CertifyResult(top, radius, p_a_lower)
