"""Randomized smoothing of one image: the base classifier, its noise counts, the Clopper-Pearson bound, PREDICT and
CERTIFY (Cohen et al. 2019), and the argument checks they share."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..transform import check_pixels

__all__ = [
    "ABSTAIN",
    "CertifyResult",
    "PRECISIONS",
    "base_classifier",
    "sample_counts",
    "lower_confidence_bound",
    "predict",
    "certify",
]

#: Returned as the prediction when the smoothed classifier abstains.
ABSTAIN = -1

#: Arithmetic the base classifier may run in: ``bfloat16`` autocasts convolutions and matrix products (about 2x the
#: noise samples per second on CPUs with AVX512-BF16 or AMX, and on GPUs). The certificate is then exact for that
#: bfloat16 classifier, which is the one to deploy with it.
PRECISIONS = {"float32": None, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class CertifyResult:
    """One image's certificate: the smoothed prediction (``ABSTAIN`` = -1) and its certified L2 radius
    (0.0 when abstaining), with the lower confidence bound ``p_a_lower`` behind it."""

    prediction: int
    radius: float
    p_a_lower: float


class _Autocast(nn.Module):
    """Runs ``model`` under autocast to ``dtype`` and returns float32 logits."""

    def __init__(self, model: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.model, self.dtype = model, dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, dtype=self.dtype):
            return self.model(x).float()


def base_classifier(
    classifier: nn.Module,
    denoiser: nn.Module | None = None,
    *,
    precision: str = "float32",
    compile: bool = False,
) -> nn.Module:
    """The base classifier ``f`` that randomized smoothing samples: ``denoiser`` (if any) then ``classifier``, in
    eval mode, in ``precision`` (a key of ``PRECISIONS``), optionally through ``torch.compile`` (same function,
    fused kernels: about 1.7x the noise samples per second of eager mode for smallcnn on a CPU).

    Shape: ``(N, C, H, W)`` in [0, 1] -> ``(N, K)`` float32 logits.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: expected one of {sorted(PRECISIONS)}")
    model: nn.Module = classifier if denoiser is None else nn.Sequential(denoiser, classifier)
    model.eval()
    if PRECISIONS[precision] is not None:
        model = _Autocast(model, PRECISIONS[precision])
    return torch.compile(model) if compile else model


def check_model(model: Any) -> None:
    """Refuse a ``model`` that is not callable (an ``nn.Module`` or a function of images to logits)."""
    if not callable(model):
        raise TypeError(
            f"expected model as a classifier: an nn.Module or any callable mapping (N, C, H, W) images in [0, 1] "
            f"to (N, K) logits, got {type(model).__name__}"
        )


def model_tensor(model: Any) -> torch.Tensor | None:
    """The first floating parameter (else buffer) of an ``nn.Module``, or None (none, or a plain function)."""
    if not isinstance(model, nn.Module):
        return None
    for tensor in (*model.parameters(), *model.buffers()):
        if tensor.is_floating_point():
            return tensor
    return None


def check_sigma(sigma: float | torch.Tensor) -> float:
    """``sigma`` as a float, checked positive and finite (a 0-d tensor is accepted)."""
    if isinstance(sigma, torch.Tensor) and sigma.ndim == 0 and sigma.dtype != torch.bool:
        sigma = sigma.item()
    if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real) or not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(
            f"sigma must be a positive finite number (the noise std in [0, 1] pixel units, e.g. 0.25), got {sigma!r}"
        )
    return float(sigma)


def check_int(value: int, name: str, minimum: int = 1) -> int:
    """``value`` as an int, checked ``>= minimum`` (``name`` goes in the message; booleans are refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def check_alpha(alpha: float) -> float:
    """``alpha`` as a float, checked in (0, 1)."""
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 < alpha < 1:
        raise ValueError(f"alpha must be a number in (0, 1) (the failure probability, e.g. 0.001), got {alpha!r}")
    return float(alpha)


def check_image(image: torch.Tensor, model: Any) -> torch.Tensor:
    """``image`` validated like every pixel input of the library (:func:`~recondefense.transform.check_pixels`:
    dtype, rank, NaN/Inf, range; ``uint8`` scaled to [0, 1]) and in the model's floating dtype: ``(C, H, W)``."""
    batch = check_pixels(image, name="image pixels")
    if image.ndim != 3:
        raise ValueError(f"expected one image of shape (C, H, W), got {tuple(image.shape)}: certify images one by one")
    reference = model_tensor(model)
    if reference is not None and batch.dtype != reference.dtype:
        batch = batch.to(reference.dtype)
    return batch[0]


def batch_sizes(num: int, batch_size: int) -> list[int]:
    """The batch sizes :func:`sample_counts` draws ``num`` samples in."""
    return [min(batch_size, num - start) for start in range(0, num, batch_size)]


@torch.no_grad()
def _counts(
    model: Any,
    image: torch.Tensor,
    sigma: float,
    num: int,
    batch_size: int,
    num_classes: int | None,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """:func:`sample_counts` on checked arguments."""
    counts: torch.Tensor | None = None
    for size in batch_sizes(num, batch_size):
        batch = image.unsqueeze(0).expand(size, *image.shape)
        noise = torch.randn(batch.shape, device=image.device, dtype=image.dtype, generator=generator)
        logits = model((batch + sigma * noise).clamp(0, 1))
        if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or logits.shape[0] != size or logits.shape[1] < 1:
            shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
            raise ValueError(f"expected the model to return ({size}, K) logits for {size} noisy images, got {shape}")
        if not bool(torch.isfinite(logits).all()):
            raise ValueError(
                "the model returned NaN or Inf logits on noisy copies of the image: no certificate can rest on them "
                "(check the model on inputs in [0, 1], and its precision)"
            )
        classes = num_classes or logits.shape[-1]
        if logits.shape[-1] > classes:
            raise ValueError(f"num_classes={num_classes} but the model returns {logits.shape[-1]} logits per image")
        batch_counts = torch.bincount(logits.argmax(1), minlength=classes).cpu()
        counts = batch_counts if counts is None else counts + batch_counts
    assert counts is not None  # num >= 1
    return counts


def sample_counts(
    model: Callable[[torch.Tensor], torch.Tensor],
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
        model: pixel-space classifier, ``(N, C, H, W)`` in [0, 1] -> ``(N, K)`` logits (an ``nn.Module`` or any
            callable).
        image: ``(C, H, W)``, float in [0, 1] or ``uint8`` in [0, 255]; cast to the model's floating dtype.
        sigma: noise standard deviation in [0, 1] pixel units, > 0 (a float or a 0-d tensor).
        num: number of noisy copies, >= 1.
        batch_size: noisy copies per forward pass, >= 1.
        num_classes: length of the returned counts, >= ``K`` (default: ``K``).
        generator: the noise's random generator (on ``image``'s device), for reproducible certificates.

    Returns:
        ``(num_classes or K,)`` int64 counts (on the CPU) summing to ``num``.

    Raises:
        TypeError: ``image`` not a uint8 or floating tensor, or ``model`` not callable.
        ValueError: ``image`` not one ``(C, H, W)`` image in [0, 1] (or with NaN/Inf), bad ``sigma``, ``num``,
            ``batch_size`` or ``num_classes``, or the model returns logits of another shape, or NaN/Inf ones.
    """
    check_model(model)
    sigma = check_sigma(sigma)
    num = check_int(num, "num")
    batch_size = check_int(batch_size, "batch_size")
    if num_classes is not None:
        num_classes = check_int(num_classes, "num_classes")
    image = check_image(image, model)
    return _counts(model, image, sigma, num, batch_size, num_classes, generator)


def lower_confidence_bound(successes: int, trials: int, alpha: float) -> float:
    """One-sided (1 - alpha) Clopper-Pearson lower bound on a binomial proportion: ``Beta.ppf(alpha, k, n - k + 1)``.

    Args:
        successes: ``k``, an int in ``0..trials``.
        trials: ``n``, an int >= 1.
        alpha: in (0, 1).

    Returns:
        The bound, in [0, 1] (0.0 when ``k = 0``).
    """
    from scipy.stats import beta

    trials = check_int(trials, "trials")
    successes = check_int(successes, "successes", minimum=0)
    alpha = check_alpha(alpha)
    if successes > trials:
        raise ValueError(f"successes must be at most trials, got successes={successes} > trials={trials}")
    if successes == 0:
        return 0.0
    return float(beta.ppf(alpha, successes, trials - successes + 1))


def max_certifiable_radius(sigma: float, n: int, alpha: float) -> float:
    """The largest radius CERTIFY can give with ``n`` samples at level ``alpha``: ``sigma * Phi^-1(alpha ** (1/n))``,
    when all ``n`` samples fall on the top class (0.0 when even that bound is at most 1/2). Radii above it are never
    certified, whatever the classifier: raise ``n`` to reach them."""
    sigma, n, alpha = check_sigma(sigma), check_int(n, "n"), check_alpha(alpha)
    p_a_lower = lower_confidence_bound(n, n, alpha)
    if p_a_lower <= 0.5:
        return 0.0
    return sigma * float(torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(p_a_lower, dtype=torch.float64)))


def predict(
    model: Callable[[torch.Tensor], torch.Tensor],
    image: torch.Tensor,
    sigma: float,
    n: int,
    alpha: float,
    *,
    batch_size: int = 1000,
    generator: torch.Generator | None = None,
) -> int:
    """Cohen et al.'s PREDICT: the top class if a two-sided binomial test against the runner-up rejects a tie at
    level ``alpha``, else ``ABSTAIN``. Wrong with probability at most ``alpha``.

    Args:
        model: pixel-space classifier, ``(N, C, H, W)`` in [0, 1] -> ``(N, K)`` logits (an ``nn.Module`` or any
            callable; a bare classifier or ``nn.Sequential(denoiser, classifier)``).
        image: ``(C, H, W)``, float in [0, 1] or ``uint8`` in [0, 255].
        sigma: noise standard deviation in [0, 1] pixel units, > 0.
        n: noise samples, >= 1.
        alpha: test level in (0, 1).
        batch_size: noise samples per forward pass, >= 1.
        generator: the noise's random generator (on ``image``'s device).

    Returns:
        The predicted class in ``0..K-1``, or ``ABSTAIN`` (-1).

    Raises:
        TypeError, ValueError: as :func:`sample_counts`, and ``alpha`` outside (0, 1).
    """
    from scipy.stats import binomtest

    n, alpha = check_int(n, "n"), check_alpha(alpha)
    counts = sample_counts(model, image, sigma, n, batch_size=batch_size, generator=generator)
    top2 = counts.topk(min(2, counts.numel()))
    n_a = int(top2.values[0])
    n_b = int(top2.values[1]) if counts.numel() > 1 else 0  # a 1-class model: no runner-up
    if binomtest(n_a, n_a + n_b, 0.5).pvalue > alpha:
        return ABSTAIN
    return int(top2.indices[0])


def certify(
    model: Callable[[torch.Tensor], torch.Tensor],
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
        model: pixel-space classifier, ``(N, C, H, W)`` in [0, 1] -> ``(N, K)`` logits (an ``nn.Module`` or any
            callable; a bare classifier or ``nn.Sequential(denoiser, classifier)``, e.g. :func:`base_classifier`).
        image: ``(C, H, W)``, float in [0, 1] or ``uint8`` in [0, 255]; cast to the model's floating dtype.
        sigma: noise standard deviation in [0, 1] pixel units, > 0 (a float or a 0-d tensor).
        n0: samples that select the top class, >= 1.
        n: fresh samples that bound its probability, >= 1; the radius can reach at most
            ``sigma * Phi^-1(alpha ** (1 / n))``.
        alpha: the certificate is wrong with probability at most ``alpha``, in (0, 1).
        batch_size: noise samples per forward pass, >= 1 (memory, not results).
        generator: the noise's random generator (on ``image``'s device); same seed, same certificate.

    Returns:
        :class:`CertifyResult`: the class and a float radius >= 0, or ``ABSTAIN`` (-1) and 0.0; ``p_a_lower``.

    Raises:
        TypeError: ``image`` not a uint8 or floating tensor, or ``model`` not callable.
        ValueError: ``image`` not one ``(C, H, W)`` image in [0, 1] (or with NaN/Inf); ``sigma`` not a positive
            finite number; ``n0``, ``n`` or ``batch_size`` not an int >= 1; ``alpha`` outside (0, 1); logits of
            another shape than ``(N, K)``, or NaN/Inf ones.
    """
    check_model(model)
    sigma = check_sigma(sigma)
    n0, n = check_int(n0, "n0"), check_int(n, "n")
    alpha = check_alpha(alpha)
    batch_size = check_int(batch_size, "batch_size")
    image = check_image(image, model)
    selection = _counts(model, image, sigma, n0, batch_size, None, generator)
    top = int(selection.argmax())
    estimation = _counts(model, image, sigma, n, batch_size, None, generator)
    p_a_lower = lower_confidence_bound(int(estimation[top]), n, alpha)
    if p_a_lower <= 0.5:
        return CertifyResult(ABSTAIN, 0.0, p_a_lower)
    radius = sigma * float(torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(p_a_lower, dtype=torch.float64)))
    return CertifyResult(top, radius, p_a_lower)
