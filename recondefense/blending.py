"""How an image and its purifiers' outputs are mixed, per image: the parts of the gated and routed purifiers below
their gates (:mod:`recondefense.routing` builds on them).

- :func:`blend`: ``s + sum_k shares[:, k] * (P_k(x) - s)``, the output of a gate's routes, where ``s`` is what the
  pass route gives (the image, or with ``pass_smoothing`` a nudge toward its :func:`binomial_blur`); at inference an
  expert runs only on the images whose share is above its bypass threshold (:func:`bypass_thresholds`).
- :func:`partly`: a correction in front of the gate (the deblurring purifier, the dehaze) applied to each image as
  much as its share says, only where it is above 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .transform import is_tracing

__all__ = ["binomial_blur", "blend", "bypass_thresholds", "partly"]


def binomial_blur(images: torch.Tensor) -> torch.Tensor:
    """A 3 x 3 binomial blur (``[1, 2, 1] / 4`` both ways) per channel, borders replicated.

    Shape: ``(N, C, H, W)`` -> same.
    """
    channels = images.shape[1]
    kernel = torch.tensor([1.0, 2.0, 1.0], device=images.device, dtype=images.dtype)
    kernel = (kernel[:, None] * kernel[None, :] / 16).expand(channels, 1, 3, 3)
    return F.conv2d(F.pad(images, (1, 1, 1, 1), mode="replicate"), kernel, groups=channels)


def blend(
    x: torch.Tensor,
    shares: torch.Tensor,
    experts: Sequence[nn.Module],
    bypass_below: float | Sequence[float] = 0.0,
    training: bool = False,
    pass_smoothing: float = 0.0,
    strong: tuple[nn.Module, float] | None = None,
) -> torch.Tensor:
    """``s + sum_k shares[:, k] * (experts[k](x) - s)``, clamped to [0, 1]: what the gated and routed purifiers
    output, where ``s`` is what the pass route gives: ``x`` itself, or with ``pass_smoothing`` > 0
    ``x + pass_smoothing * (binomial_blur(x) - x)``, a nudge of a fraction of a grey level on clean images that
    pulls an image sitting just across a decision boundary (DeepFool's) back, for the cost of a 3 x 3 blur.

    ``strong``, a purifier and a share ``above``: it stands in for ``experts[0]`` on the images whose
    ``shares[:, 0]`` is at least ``above`` (the first expert runs on the others only).

    With ``bypass_below`` > 0, outside ``training`` and tracing (export, ``torch.compile``), expert ``k`` runs only on
    the images whose share is at least ``bypass_below``; the others get the pass route's pixels there (each within
    its share of the dense blend), so an image no expert is flagged for comes out as the pass route gives it.
    A sequence gives one threshold per expert (0: that expert runs on every image).

    Shape: ``x`` ``(N, C, H, W)`` in [0, 1], ``shares`` ``(N, K)`` in [0, 1], ``K`` experts -> ``(N, C, H, W)``.
    """
    passed = x if pass_smoothing <= 0 else torch.lerp(x, binomial_blur(x), pass_smoothing)
    out = passed
    thresholds = bypass_thresholds(bypass_below, len(experts))
    always = training or is_tracing(x)
    for k, (expert, threshold) in enumerate(zip(experts, thresholds)):
        share = shares[:, k].view(-1, 1, 1, 1)
        if k == 0 and strong is not None:
            out = out + _strong_or_weak(x, passed, shares[:, 0], expert, strong, threshold, always)
            continue
        if always or threshold <= 0:
            out = out + share * (expert(x) - passed)
            continue
        flagged = (shares[:, k] >= threshold).nonzero().flatten()
        if len(flagged):  # the expert runs on its flagged images only
            out = out.index_add(0, flagged, share[flagged] * (expert(x[flagged]) - passed[flagged]))
    return out.clamp(0, 1)


def _strong_or_weak(
    x: torch.Tensor,
    passed: torch.Tensor,
    share: torch.Tensor,
    weak: nn.Module,
    strong: tuple[nn.Module, float],
    bypass_below: float,
    always: bool,
) -> torch.Tensor:
    """``share * (P(x) - passed)``, where ``P`` is ``strong[0]`` on the images whose ``share`` is at least
    ``strong[1]`` and ``weak`` on the others (those below ``bypass_below`` get nothing, outside ``always``). With
    ``always`` (training, tracing) both purifiers run on every image and ``torch.where`` picks; otherwise each runs
    on its own images, and a batch none of whose images is flagged pays for ``weak`` alone, as without ``strong``.

    Shape: ``x``, ``passed`` ``(N, C, H, W)``, ``share`` ``(N,)`` -> ``(N, C, H, W)``.
    """
    net, above = strong
    flagged = share >= above
    scale = share.view(-1, 1, 1, 1)
    if always:
        return scale * (torch.where(flagged.view(-1, 1, 1, 1), net(x), weak(x)) - passed)
    if bypass_below <= 0 and not bool(flagged.any()):  # the small purifier on the whole batch, as without strong
        return scale * (weak(x) - passed)
    term = torch.zeros_like(x)
    rest = ~flagged if bypass_below <= 0 else ~flagged & (share >= bypass_below)
    for mask, purifier in ((flagged, net), (rest, weak)):
        index = mask.nonzero().flatten()
        if len(index):
            term = term.index_add(0, index, scale[index] * (purifier(x[index]) - passed[index]))
    return term


def partly(
    x: torch.Tensor, share: torch.Tensor, purifier: Callable[[torch.Tensor], torch.Tensor], always: bool
) -> torch.Tensor:
    """``x + share * (purifier(x) - x)`` per image. Unless ``always`` (training, tracing), the purifier runs only on
    the images whose share is above 0, and a batch with none returns ``x`` itself.

    Shape: ``x`` ``(N, C, H, W)``, ``share`` ``(N,)`` in [0, 1] -> ``(N, C, H, W)``.
    """
    scale = share.view(-1, 1, 1, 1)
    if always:
        return x + scale * (purifier(x) - x)
    index = (share > 0).nonzero().flatten()
    if not len(index):
        return x
    return x.index_add(0, index, scale[index] * (purifier(x[index]) - x[index]))


def bypass_thresholds(bypass_below: float | Sequence[float], experts: int) -> tuple[float, ...]:
    """One bypass threshold per expert: a number serves every expert, a sequence gives each its own.

    Raises:
        ValueError: a sequence of another length than ``experts``.
    """
    if isinstance(bypass_below, (int, float)):
        return (float(bypass_below),) * experts
    thresholds = tuple(float(b) for b in bypass_below)
    if len(thresholds) != experts:
        raise ValueError(f"bypass_below {list(thresholds)}: expected one threshold per expert ({experts})")
    return thresholds
