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

import math
import numbers
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .transform import check_pixels

__all__ = [
    "ABSTAIN",
    "CertifyResult",
    "PRECISIONS",
    "base_classifier",
    "sample_counts",
    "lower_confidence_bound",
    "predict",
    "certify",
    "certify_dataset",
    "certified_accuracy",
    "plot_certified_accuracy",
    "row_label",
    "print_table",
    "main",
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


def _check_model(model: Any) -> None:
    if not callable(model):
        raise TypeError(
            f"expected model as a classifier: an nn.Module or any callable mapping (N, C, H, W) images in [0, 1] "
            f"to (N, K) logits, got {type(model).__name__}"
        )


def _model_tensor(model: Any) -> torch.Tensor | None:
    """The first floating parameter (else buffer) of an ``nn.Module``, or None (none, or a plain function)."""
    if not isinstance(model, nn.Module):
        return None
    for tensor in (*model.parameters(), *model.buffers()):
        if tensor.is_floating_point():
            return tensor
    return None


def _check_sigma(sigma: float | torch.Tensor) -> float:
    if isinstance(sigma, torch.Tensor) and sigma.ndim == 0 and sigma.dtype != torch.bool:
        sigma = sigma.item()
    if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real) or not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(
            f"sigma must be a positive finite number (the noise std in [0, 1] pixel units, e.g. 0.25), got {sigma!r}"
        )
    return float(sigma)


def _check_int(value: int, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _check_alpha(alpha: float) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 < alpha < 1:
        raise ValueError(f"alpha must be a number in (0, 1) (the failure probability, e.g. 0.001), got {alpha!r}")
    return float(alpha)


def _check_image(image: torch.Tensor, model: Any) -> torch.Tensor:
    """``image`` validated like every pixel input of the library (:func:`~recondefense.transform.check_pixels`:
    dtype, rank, NaN/Inf, range; ``uint8`` scaled to [0, 1]) and in the model's floating dtype: ``(C, H, W)``."""
    batch = check_pixels(image, name="image pixels")
    if image.ndim != 3:
        raise ValueError(f"expected one image of shape (C, H, W), got {tuple(image.shape)}: certify images one by one")
    reference = _model_tensor(model)
    if reference is not None and batch.dtype != reference.dtype:
        batch = batch.to(reference.dtype)
    return batch[0]


def _batch_sizes(num: int, batch_size: int) -> list[int]:
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
    for size in _batch_sizes(num, batch_size):
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
    _check_model(model)
    sigma = _check_sigma(sigma)
    num = _check_int(num, "num")
    batch_size = _check_int(batch_size, "batch_size")
    if num_classes is not None:
        num_classes = _check_int(num_classes, "num_classes")
    image = _check_image(image, model)
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

    trials = _check_int(trials, "trials")
    successes = _check_int(successes, "successes", minimum=0)
    alpha = _check_alpha(alpha)
    if successes > trials:
        raise ValueError(f"successes must be at most trials, got successes={successes} > trials={trials}")
    if successes == 0:
        return 0.0
    return float(beta.ppf(alpha, successes, trials - successes + 1))


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

    n, alpha = _check_int(n, "n"), _check_alpha(alpha)
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
    _check_model(model)
    sigma = _check_sigma(sigma)
    n0, n = _check_int(n0, "n0"), _check_int(n, "n")
    alpha = _check_alpha(alpha)
    batch_size = _check_int(batch_size, "batch_size")
    image = _check_image(image, model)
    selection = _counts(model, image, sigma, n0, batch_size, None, generator)
    top = int(selection.argmax())
    estimation = _counts(model, image, sigma, n, batch_size, None, generator)
    p_a_lower = lower_confidence_bound(int(estimation[top]), n, alpha)
    if p_a_lower <= 0.5:
        return CertifyResult(ABSTAIN, 0.0, p_a_lower)
    radius = sigma * float(torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(p_a_lower, dtype=torch.float64)))
    return CertifyResult(top, radius, p_a_lower)


def _device_of(model: Any, device: str | torch.device | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    tensor = _model_tensor(model)
    return torch.device("cpu") if tensor is None else tensor.device


def certify_dataset(
    model: Callable[[torch.Tensor], torch.Tensor],
    dataset: Any,
    sigma: float,
    *,
    n0: int = 100,
    n: int = 100_000,
    alpha: float = 0.001,
    limit: int | None = None,
    batch_size: int = 1000,
    seed: int = 0,
    device: str | torch.device | None = None,
    warmup: bool = False,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """CERTIFY every image of ``dataset`` (``(image, label)`` items, images as :func:`certify` takes them).

    The noise generator is seeded per image (``seed * 1_000_003 + index``), so rows are reproducible and
    shardable.

    Args:
        limit: the first ``limit`` images, >= 1 (default: all).
        device: where images and noise go (default: the model's parameters' device; CPU if it has none).
        warmup: before timing, call the model once on each batch shape :func:`certify` will use (for a
            ``torch.compile``-d model: ``seconds`` then excludes compilation). A model with its own random
            state advances it; the certificates' noise is untouched.
        sigma, n0, n, alpha, batch_size: as :func:`certify`.

    Returns:
        One row per image: ``{index, label, prediction, radius, correct, seconds, sigma, n0, n, alpha}``
        (``seconds``: that image's certification time), what :func:`certified_accuracy`,
        :func:`plot_certified_accuracy` and :func:`print_table` take.

    Raises:
        TypeError, ValueError: as :func:`certify`; ``limit`` or ``seed`` not an int (``limit`` >= 1).
    """
    import scipy.stats  # noqa: F401 (imported before the first image's clock starts: about 0.4 s)
    from tqdm.auto import tqdm

    _check_model(model)
    sigma = _check_sigma(sigma)
    n0, n = _check_int(n0, "n0"), _check_int(n, "n")
    alpha = _check_alpha(alpha)
    batch_size = _check_int(batch_size, "batch_size")
    seed = _check_int(seed, "seed", minimum=0)
    if limit is not None:
        limit = _check_int(limit, "limit")
    device = _device_of(model, device)
    count = len(dataset) if limit is None else min(limit, len(dataset))
    if warmup and count:
        image = _check_image(dataset[0][0], model).to(device)
        with torch.no_grad(), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            for size in dict.fromkeys(_batch_sizes(n0, batch_size) + _batch_sizes(n, batch_size)):
                model(image.unsqueeze(0).expand(size, *image.shape).contiguous())
    rows = []
    for index in tqdm(range(count), desc=f"certify sigma={sigma}", disable=not progress):
        image, label = dataset[index][:2]
        generator = torch.Generator(device=device).manual_seed(seed * 1_000_003 + index)
        start = time.perf_counter()
        result = certify(
            model, image.to(device), sigma, n0=n0, n=n, alpha=alpha, batch_size=batch_size, generator=generator
        )
        rows.append(
            {
                "index": index,
                "label": int(label),
                "prediction": result.prediction,
                "radius": result.radius,
                "correct": result.prediction == int(label),
                "seconds": time.perf_counter() - start,
                "sigma": sigma,
                "n0": n0,
                "n": n,
                "alpha": alpha,
            }
        )
    return rows


def certified_accuracy(rows: list[dict[str, Any]], radius: float) -> float:
    """Share of images predicted correctly with a certified radius of at least ``radius`` (Cohen et al.'s metric)."""
    return sum(r["correct"] and r["radius"] >= radius for r in rows) / max(len(rows), 1)


def plot_certified_accuracy(curves: dict[str, list[dict[str, Any]]], path: str | Path, title: str = "") -> Path:
    """Certified accuracy against L2 radius, one line per defense, as a PNG (matplotlib object API)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 4), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    for name, rows in curves.items():
        top = max([r["radius"] for r in rows] + [0.0])
        radii = [top * i / 100 for i in range(101)] if top > 0 else [0.0]
        axes.plot(radii, [certified_accuracy(rows, r) for r in radii], label=name)
    axes.set(xlabel="L2 radius (pixels in [0, 1])", ylabel="certified accuracy", ylim=(0, 1.02), title=title)
    axes.legend()
    figure.savefig(path, dpi=100)
    return Path(path)


def row_label(row: dict[str, Any], default_classifier: str) -> str:
    """A table row's name: the defense, or the classifier's name for a bare classifier other than the tier's.

    ``row`` needs ``"defense"`` (``"none"``: a bare classifier) and may have ``"classifier"`` (default
    ``default_classifier``): ``recondefense certify`` adds both to :func:`certify_dataset`'s rows, which
    know neither.

    Raises:
        ValueError: ``row`` has no ``"defense"``.
    """
    if "defense" not in row:
        raise ValueError(
            "the row names no 'defense': certify_dataset's rows do not know what the model was; set "
            "row['defense'] (and row['classifier'] for another bare classifier), as `recondefense certify` does, "
            "or name the curves yourself for print_table and plot_certified_accuracy"
        )
    classifier = row.get("classifier", default_classifier)
    if row["defense"] == "none" and classifier != default_classifier:
        return classifier
    return row["defense"]


_TABLE_KEYS = ("prediction", "radius", "correct", "seconds", "n", "n0")


def print_table(curves: dict[str, list[dict[str, Any]]], radii: list[float]) -> None:
    """Certified accuracy at each radius, abstain rate, noise samples/s and minutes, one Markdown row per curve.

    Args:
        curves: name -> rows of :func:`certify_dataset` (``prediction``, ``radius``, ``correct``, ``seconds``,
            ``n`` and ``n0`` are used). Noise samples/s and minutes count the certifications' ``seconds``.
        radii: L2 radii of the accuracy columns.

    Raises:
        ValueError: a row lacks one of those keys.
    """
    for name, rows in curves.items():
        missing = sorted({key for row in rows for key in _TABLE_KEYS if key not in row})
        if missing:
            raise ValueError(f"rows of {name!r} lack {missing}: expected the rows of certify_dataset")
    print(f"| defense | {' | '.join(f'r={r}' for r in radii)} | abstain | noise samples/s | minutes |")
    print("|---|" + "---|" * (len(radii) + 3))
    for name, rows in curves.items():
        seconds = sum(r["seconds"] for r in rows)
        rate = sum(r["n"] + r["n0"] for r in rows) / max(seconds, 1e-9)
        abstain = sum(r["prediction"] == ABSTAIN for r in rows) / max(len(rows), 1)
        cells = " | ".join(f"{certified_accuracy(rows, r):.3f}" for r in radii)
        print(f"| {name} | {cells} | {abstain:.3f} | {rate:,.0f} | {seconds / 60:.1f} |")


#: Keys every rows file of ``recondefense certify --from-json`` must have in each row.
_ROW_KEYS = ("index", "defense", "sigma", "n", "n0", "alpha", *_TABLE_KEYS)


def _read_rows(paths: list[str]) -> list[dict[str, Any]]:
    """The rows of ``paths``, in order. Raises ValueError naming a bad or empty file."""
    import json

    rows: list[dict[str, Any]] = []
    for path in paths:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as err:
            raise ValueError(f"--from-json {path}: {err}") from None
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise ValueError(f"--from-json {path}: expected a JSON list of rows (written by --json)")
        bad = next((r for r in data if any(k not in r for k in _ROW_KEYS)), None)
        if bad is not None:
            missing = [k for k in _ROW_KEYS if k not in bad]
            raise ValueError(f"--from-json {path}: a row lacks {missing}: expected rows written by --json")
        rows += data
    if not rows:
        files = f"the file {paths[0]} holds" if len(paths) == 1 else f"the files {' '.join(paths)} hold"
        raise ValueError(f"--from-json: {files} no rows: nothing to tabulate")
    return rows


def _first_per_image(rows: list[dict[str, Any]], default_classifier: str) -> list[dict[str, Any]]:
    """The first row of each (curve, image index), in order: a file given twice or overlapping shards count
    each image once."""
    kept: dict[tuple[str, int], dict[str, Any]] = {}
    for row in rows:
        kept.setdefault((row_label(row, default_classifier), row["index"]), row)
    return list(kept.values())


def main(argv: list[str] | None = None) -> int:
    """``recondefense certify``: certified accuracy of the tier's classifier, bare or behind each defense."""
    import argparse
    import json
    import sys

    from .arguments import positive_int
    from .classifiers import load_classifier
    from .evaluate import TIERS, build_defense

    def positive_float(text: str) -> float:
        try:
            return _check_sigma(float(text))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}") from None

    def probability(text: str) -> float:
        try:
            return _check_alpha(float(text))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}") from None

    def radius_list(text: str) -> list[float]:
        try:
            radii = [float(r) for r in text.split(",")]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated radii such as 0,0.25,0.5, got {text!r}"
            ) from None
        if not all(math.isfinite(r) and r >= 0 for r in radii):
            raise argparse.ArgumentTypeError(f"expected finite radii >= 0, got {text!r}")
        return radii

    parser = argparse.ArgumentParser(
        prog="recondefense certify", description=main.__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--tier", default="fashionmnist", choices=sorted(TIERS), help="test set and classifier")
    parser.add_argument("--defenses", default="none", help="comma-separated: none (bare classifier) or weights")
    parser.add_argument("--classifier", default=None, help="the base classifier; None: the tier's target")
    parser.add_argument(
        "--sigma", type=positive_float, default=None, help="noise level, > 0 (required unless --from-json)"
    )
    parser.add_argument("--n0", type=positive_int, default=100, help="noise samples selecting the top class")
    parser.add_argument("--n", type=positive_int, default=100_000, help="noise samples bounding its probability")
    parser.add_argument("--alpha", type=probability, default=0.001, help="failure probability of each certificate")
    parser.add_argument("--limit", type=positive_int, default=None, help="first N test images; None: all")
    parser.add_argument("--batch-size", type=positive_int, default=1000, help="noise samples per forward pass")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (image i uses seed * 1000003 + i)")
    parser.add_argument("--device", default="cpu", help='"auto" (cuda when available), "cpu", "cuda" or "cuda:N"')
    parser.add_argument(
        "--precision", default="float32", choices=sorted(PRECISIONS), help="base classifier's arithmetic"
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the base classifier (faster on long runs; compiled before timing starts)",
    )
    parser.add_argument("--radii", type=radius_list, default="0,0.25,0.5,0.75,1.0", help="radii of the printed table")
    parser.add_argument("--json", default=None, help="write the rows here")
    parser.add_argument("--from-json", nargs="+", default=None, help="certify nothing: table and plot from rows files")
    parser.add_argument("--plot", default=None, help="write the certified-accuracy curve (PNG) here")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.from_json is None and args.sigma is None:
        parser.error("--sigma is required (or --from-json to tabulate rows already certified)")
    if args.seed < 0:
        parser.error(f"argument --seed: expected an integer >= 0, got {args.seed}")
    try:
        from .arguments import check_device

        check_device(args.device)
    except ValueError as err:
        parser.error(str(err))
    for target in (args.json, args.plot):
        if target and not Path(target).resolve().parent.is_dir():
            parser.error(f"the folder of {target} does not exist")
    tier = TIERS[args.tier]
    radii = args.radii
    if args.from_json is not None:
        try:
            all_rows = _read_rows(args.from_json)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        settings = {(r["sigma"], r["n"], r["n0"], r["alpha"], r.get("precision", "float32")) for r in all_rows}
        if len(settings) != 1:
            print(f"error: the rows mix settings (sigma, n, n0, alpha, precision): {sorted(settings)}", file=sys.stderr)
            return 2
        sigma, n, _, alpha, precision = settings.pop()
        kept = _first_per_image(all_rows, tier.classifier)
        if len(kept) < len(all_rows):
            repeats = len(all_rows) - len(kept)
            print(f"note: {repeats} repeated row(s) (same curve and image) left out, the first kept", file=sys.stderr)
        all_rows = kept
    else:
        device = args.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            classifier = load_classifier(args.classifier or tier.classifier).to(device)
            defenses = {name: build_defense(name, tier=tier) for name in args.defenses.split(",")}
        except (ValueError, FileNotFoundError, ImportError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        data = tier.test_set(classifier)
        sigma, n, alpha, precision = args.sigma, args.n, args.alpha, args.precision
        all_rows = []
        for name, defense in defenses.items():
            if defense is not None:
                defense.to(device)
            model = base_classifier(classifier, defense, precision=precision, compile=args.compile)
            rows = certify_dataset(
                model,
                data,
                sigma,
                n0=args.n0,
                n=n,
                alpha=alpha,
                limit=args.limit,
                batch_size=args.batch_size,
                seed=args.seed,
                device=device,
                warmup=args.compile,
                progress=not args.no_progress,
            )
            for row in rows:
                row.update(
                    defense=name,
                    classifier=args.classifier or tier.classifier,
                    sigma=sigma,
                    n=n,
                    n0=args.n0,
                    alpha=alpha,
                    precision=precision,
                )
            all_rows += rows
    curves: dict[str, list[dict[str, Any]]] = {}
    for row in all_rows:
        curves.setdefault(row_label(row, tier.classifier), []).append(row)
    images = max(len(rows) for rows in curves.values())
    print(f"{tier.name}: sigma {sigma}, n {n}, alpha {alpha}, {precision}, {images} images")
    print_table(curves, radii)
    if args.from_json is None and args.compile:
        print("(--compile: the compilation, before the first image, is not counted in noise samples/s or minutes)")
    if args.json:
        Path(args.json).write_text(json.dumps(all_rows, indent=1))
    if args.plot:
        title = f"{tier.name}, sigma={sigma}, n={n}, alpha={alpha}" + (
            "" if precision == "float32" else f", {precision}"
        )
        plot_certified_accuracy(curves, args.plot, title)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
