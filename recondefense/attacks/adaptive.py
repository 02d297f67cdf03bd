"""Adaptive attack tools for honest evaluation of defenses: BPDA, EOT, and end-to-end models.

Athalye, Carlini and Wagner (ICML 2018) show how defenses that break or randomize gradients are
attacked: Backward Pass Differentiable Approximation (:class:`BPDA`) for non-differentiable
transforms, Expectation over Transformation (:class:`EOT`) for randomized ones, and exact
gradients through everything else. :func:`adaptive_model` picks among them from a defense's
``differentiable``/``randomized`` flags (see :class:`~recondefense.transform.PixelDefense`), and
returns a pixel-space model that any attack here (or torchattacks/foolbox) can be pointed at.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import nn

from ..classifiers import Normalized, check_normalization
from ..defended import Defended
from .base import check_count

__all__ = ["BPDA", "EOT", "adaptive_model"]


class BPDA(nn.Module):
    """Forward through the real ``transform``; backward through a differentiable approximation.

    The output equals ``transform(x)`` exactly and its gradient with respect to ``x`` is that of
    ``backward(x)``: ``backward`` if given, else the transform's ``surrogate`` method (every
    :class:`~recondefense.transform.PixelDefense` has one, identity by default), else identity.
    The real transform runs without autograd, so it may be non-differentiable (numpy, rounding).

    Args:
        transform: the defense, ``(N, C, H, W)`` in [0, 1] -> same shape in [0, 1].
        backward: differentiable approximation with the same signature, or None (see above).

    Shape: ``(N, C, H, W)`` -> ``(N, C, H, W)``, values as the transform's.
    """

    def __init__(self, transform: nn.Module, backward: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        super().__init__()
        self.transform = transform
        if backward is None:
            backward = getattr(transform, "surrogate", None)
        self.approximation = backward if backward is not None else _identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            out = self.transform(x.detach())
        if not torch.is_grad_enabled() or not x.requires_grad:
            return out
        approx = self.approximation(x)
        if approx.shape != out.shape:
            raise ValueError(
                f"BPDA's backward approximation returned shape {tuple(approx.shape)}, the transform "
                f"{tuple(out.shape)}: they must match"
            )
        # Value: exactly ``out`` (approx - approx.detach() is exactly zero); gradient: d approx / dx.
        return out + (approx - approx.detach()).to(out.dtype)


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


class EOT(nn.Module):
    """Expectation over Transformation: average ``samples`` forward passes of a randomized model.

    ``average="logits"`` (default) returns the mean logits, so the gradient of the output is
    exactly the mean of the ``samples`` per-pass gradients; ``average="probs"`` returns the log
    of the mean softmax (the log-probabilities of the expected prediction, ``-log E[p_y]`` under
    cross-entropy). Use it as the model of an attack: ``PGD(EOT(defended, 10), ...)``. With
    ``samples=1`` it is the model itself. Passes run one after another, so defenses that draw one
    random setting per call get a fresh draw per sample.

    Args:
        model: ``(N, C, H, W)`` -> ``(N, classes)`` logits, typically a defended classifier
            whose defense is randomized.
        samples: number of forward passes averaged.
        average: ``"logits"`` or ``"probs"``.

    Shape: ``(N, C, H, W)`` -> ``(N, classes)``.
    """

    def __init__(self, model: nn.Module, samples: int = 10, average: Literal["logits", "probs"] = "logits") -> None:
        super().__init__()
        samples = check_count("samples", samples, minimum=1)
        if average not in ("logits", "probs"):
            raise ValueError(f"expected average='logits' or 'probs', got {average!r}")
        self.model = model
        self.samples = int(samples)
        self.average = average

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = [self.model(x) for _ in range(self.samples)]
        if self.average == "logits":
            return outputs[0] if self.samples == 1 else torch.stack(outputs).mean(0)
        log_probs = torch.stack(outputs).log_softmax(-1)
        return torch.logsumexp(log_probs, 0) - torch.log(torch.tensor(float(self.samples), device=x.device))


def adaptive_model(
    defended_or_defense: nn.Module,
    classifier: nn.Module | None = None,
    *,
    eot_samples: int = 10,
    backward: Callable[[torch.Tensor], torch.Tensor] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> nn.Module:
    """The pixel-space model an adaptive (defense-aware) attack should differentiate.

    End to end: ``PGD(adaptive_model(defended), eps, alpha, steps)(x, y)`` attacks the whole
    pipeline ``classifier(defense(x))``. How gradients cross the defense follows its flags:

    - ``differentiable=True`` (the reconstructive defense): exact gradients through it;
    - ``differentiable=False``: :class:`BPDA` with ``backward`` or the defense's ``surrogate``;
    - ``randomized=True``: the result is wrapped in :class:`EOT` with ``eot_samples`` passes.

    Args:
        defended_or_defense: a :class:`~recondefense.Defended` (its classifier and
            normalization are used), or a pixel-space defense to put in front of ``classifier``.
        classifier: the classifier, required with a bare defense, not allowed with a Defended.
        eot_samples: passes averaged for randomized defenses.
        backward: BPDA approximation for non-differentiable defenses (default: the surrogate).
        mean, std: with a bare defense, the normalization ``classifier`` expects (None: it
            takes [0, 1] pixels).

    Returns:
        ``nn.Module`` taking ``(N, C, H, W)`` pixels in [0, 1] and returning the classifier's
        logits; its forward value equals the defended pipeline's on the same pixels (for a
        randomized defense, an average over ``eot_samples`` draws).
    """
    if isinstance(defended_or_defense, Defended):
        if classifier is not None or mean is not None or std is not None:
            raise ValueError("pass a Defended alone: its classifier and normalization are already set")
        defense, classifier = defended_or_defense.defense, defended_or_defense.model
        if defended_or_defense.normalized:
            classifier = Normalized(classifier, defended_or_defense.mean.detach(), defended_or_defense.std.detach())
    else:
        if classifier is None:
            raise ValueError(
                "adaptive_model(defense) needs the classifier: adaptive_model(defense, classifier) "
                "or adaptive_model(Defended(classifier, defense, mean=..., std=...))"
            )
        check_normalization(mean, std)
        defense = defended_or_defense
        if mean is not None:
            classifier = Normalized(classifier, mean, std)
    if not getattr(defense, "differentiable", True):
        defense = BPDA(defense, backward)
    model: nn.Module = Defended(classifier, defense, mean=None, std=None)
    if getattr(defense, "randomized", False) or getattr(getattr(defense, "transform", None), "randomized", False):
        model = EOT(model, eot_samples)
    return model
