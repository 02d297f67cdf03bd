"""CERTIFY over a dataset: one seeded, timed row per image."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from .smoothing import (
    batch_sizes,
    certify,
    check_alpha,
    check_image,
    check_int,
    check_model,
    check_sigma,
    model_tensor,
)

__all__ = ["certify_dataset"]


def _device_of(model: Any, device: str | torch.device | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    tensor = model_tensor(model)
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
    indices: Sequence[int] | None = None,
    batch_size: int = 1000,
    seed: int = 0,
    device: str | torch.device | None = None,
    warmup: bool = False,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """CERTIFY every image of ``dataset`` (``(image, label)`` items, images as :func:`certify` takes them).

    Seeded per image (:mod:`recondefense.seeding`): the noise from ``seed * 1_000_003 + index``, a randomized
    baseline inside ``model`` from ``image_seed(seed, index, "certify")``; so an image's row does not depend on
    which other images are certified, in which order or process.

    Args:
        limit: the first ``limit`` images, >= 1 (default: all).
        indices: the images to certify instead, by index in ``dataset`` (e.g. one shard: ``range(200, 300)``).
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
        TypeError, ValueError: as :func:`certify`; ``limit`` or ``seed`` not an int (``limit`` >= 1); both ``limit``
            and ``indices``, or an index outside ``dataset``.
    """
    import scipy.stats  # noqa: F401 (imported before the first image's clock starts: about 0.4 s)
    from tqdm.auto import tqdm

    from ..baselines._random import RandomizedDefense
    from ..seeding import image_seed

    check_model(model)
    sigma = check_sigma(sigma)
    n0, n = check_int(n0, "n0"), check_int(n, "n")
    alpha = check_alpha(alpha)
    batch_size = check_int(batch_size, "batch_size")
    seed = check_int(seed, "seed", minimum=0)
    if limit is not None:
        limit = check_int(limit, "limit")
    device = _device_of(model, device)
    if indices is None:
        indices = range(len(dataset) if limit is None else min(limit, len(dataset)))
    elif limit is not None:
        raise ValueError(f"pass limit or indices, not both (got limit={limit!r} and indices)")
    outside = [i for i in indices if not 0 <= int(i) < len(dataset)]
    if outside:
        raise ValueError(f"indices {outside[:5]} are outside the dataset's {len(dataset)} images")
    randomized = (
        [m for m in model.modules() if isinstance(m, RandomizedDefense)] if isinstance(model, nn.Module) else []
    )
    if warmup and len(indices):
        image = check_image(dataset[indices[0]][0], model).to(device)
        with torch.no_grad(), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            for size in dict.fromkeys(batch_sizes(n0, batch_size) + batch_sizes(n, batch_size)):
                model(image.unsqueeze(0).expand(size, *image.shape).contiguous())
    rows = []
    for index in tqdm([int(i) for i in indices], desc=f"certify sigma={sigma}", disable=not progress):
        image, label = dataset[index][:2]
        generator = torch.Generator(device=device).manual_seed(seed * 1_000_003 + index)
        start = time.perf_counter()
        with contextlib.ExitStack() as draws:
            for module in randomized:
                draws.enter_context(module.per_image([image_seed(seed, index, "certify")]))
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
