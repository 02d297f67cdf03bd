"""``Defended``: a defense in front of a classifier, taking the classifier's own inputs."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from . import defense as defense_module  # its DEFAULT_IMAGENET_WEIGHTS is read when called, as the alias reads it
from .classifiers import check_normalization, load_classifier, random_weights
from .defense import IMAGENET_MEAN, IMAGENET_STD, ReconstructiveDefense
from .errors import InputConventionWarning
from .transform import PixelDefense, check_normalized, is_tracing, range_tolerance, value_range, values_checked
from .weights import list_weights

__all__ = ["Defended", "INPUT_CONVENTIONS"]


#: What ``Defended`` takes (its ``input=``): images normalized with the model's mean/std, or [0, 1] pixels.
INPUT_CONVENTIONS = ("normalized", "pixels")


class Defended(nn.Module):
    """Put a defense in front of a classifier: a drop-in replacement taking the model's own inputs.

    **Input convention.** With ``mean``/``std`` (by default torchvision's ImageNet ones), ``Defended`` takes what a
    normalized model takes: images normalized with them, ``(x - mean) / std``; and
    ``Defended(model)(x) == model(normalize(defense(unnormalize(x))))``. With ``input="pixels"`` it takes [0, 1]
    pixels instead and normalizes for the model: ``model(normalize(defense(x)))``. With ``mean=None, std=None``
    the model itself takes [0, 1] pixels (the RobustBench/torchattacks/foolbox convention), and so does
    ``Defended``, so peer attacks can be pointed at it.

    The two conventions are easy to confuse, so each is checked: [0, 1] pixels fed where normalized images are
    expected un-normalize to a narrow grey band (about [0.49, 0.71] with the ImageNet statistics), which the
    defense would accept; a batch whose values all lie in that band (and is not flat) gets a one-time
    :class:`~recondefense.errors.InputConventionWarning` per ``Defended``, pointing at the caller's line. Pass
    ``input="normalized"`` to say that such a batch is truly normalized (a low-contrast photo) and silence the
    guess. Normalized images fed to ``input="pixels"`` (values below 0) are refused by the defense's own check.

    Args:
        model: any classifier ``nn.Module``; exposed as ``.model``.
        defense: a pixel-space defense (``ReconstructiveDefense`` or a baseline), or a weights name, hub id or
            folder for :meth:`ReconstructiveDefense.from_pretrained`; None loads the default shipped ImageNet
            weights (``"default"``, :data:`~recondefense.defense.DEFAULT_IMAGENET_WEIGHTS`).
        mean, std: per-channel normalization the model expects, or None for pixel-space models.
        input: ``"normalized"`` (the default with ``mean``/``std``) or ``"pixels"`` (the only choice without them):
            what ``Defended`` takes (:data:`INPUT_CONVENTIONS`); exposed as ``.input``.

    Shape: ``(N, C, H, W)`` (or ``(C, H, W)``) floats normalized with ``mean``/``std``, ``C`` their length; with
    ``input="pixels"``, ``(N, C, H, W)`` in [0, 1] (float, or uint8 scaled by 1/255). Returns what ``model``
    returns.

    Normalized inputs that un-normalize outside [0, 1] (``torch.randn`` from a shape probe, an export script
    or a benchmark) are clamped to [0, 1] with a one-time warning instead of refused; the clamp is part of the
    traced graph, so ``torch.export``, ONNX and ``torch.compile(fullgraph=True)`` see the same computation.
    """

    def __init__(
        self,
        model: nn.Module,
        defense: nn.Module | str | None = None,
        *,
        mean: Sequence[float] | None = IMAGENET_MEAN,
        std: Sequence[float] | None = IMAGENET_STD,
        input: str | None = None,  # noqa: A002  (the word users know: what the wrapper takes)
    ) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"expected the classifier as an nn.Module, got {type(model).__name__}")
        normalization = check_normalization(mean, std)
        if input is not None and input not in INPUT_CONVENTIONS:
            raise ValueError(
                f"input={input!r}: expected 'normalized' (images normalized with the model's mean/std) or 'pixels' "
                "([0, 1] pixels)"
            )
        if input == "normalized" and normalization is None:
            raise ValueError(
                "input='normalized' needs the mean and std the images are normalized with: pass mean=..., std=..., "
                "or input='pixels' (mean=None, std=None: the model takes [0, 1] pixels)"
            )
        if defense is None:
            default = defense_module.DEFAULT_IMAGENET_WEIGHTS
            if default not in list_weights():
                raise ValueError(
                    f"Defended(model) loads the default weights {default!r}, which this version "
                    f"does not ship (shipped: {', '.join(list_weights()) or 'none'}); pass one: "
                    "Defended(model, ReconstructiveDefense.from_pretrained(...))"
                )
            defense = ReconstructiveDefense.from_pretrained(default)
        if isinstance(defense, str):
            defense = ReconstructiveDefense.from_pretrained(defense)
        if not isinstance(defense, nn.Module):
            raise TypeError(f"expected the defense as an nn.Module or a weights name, got {type(defense).__name__}")
        defense_channels = getattr(defense, "channels", None)
        if normalization is not None and defense_channels is not None and len(normalization[0]) != defense_channels:
            raise ValueError(
                f"the defense takes {defense_channels}-channel images but mean/std have {len(normalization[0])} "
                f"values: pass mean and std with {defense_channels} value(s) each (the classifier's own), or "
                "mean=None, std=None for a classifier that takes [0, 1] pixels"
            )
        self.model = model
        self.defense = defense.eval()
        #: the model takes images normalized with ``mean``/``std`` (buffers ``.mean``, ``.std``)
        self.normalized = normalization is not None
        #: what this wrapper takes: ``"normalized"`` or ``"pixels"``
        self.input = input or ("normalized" if normalization is not None else "pixels")
        self._warned_range = False
        # [0, 1] pixels read as normalized land in a grey band; guessed at only when the convention was not said
        # and every channel's mean is clear of black (then truly normalized images reach below 0)
        self._guess_convention = False
        self._warned_pixels = False
        if normalization is not None:
            mean_t = torch.as_tensor(normalization[0], dtype=torch.float32).view(-1, 1, 1)
            std_t = torch.as_tensor(normalization[1], dtype=torch.float32).view(-1, 1, 1)
            self.register_buffer("mean", mean_t, persistent=False)
            self.register_buffer("std", std_t, persistent=False)
            self._guess_convention = input is None and min(normalization[0]) > 0.05

    @classmethod
    def from_classifier(cls, spec: str, defense: nn.Module | str | None = None) -> Defended:
        """A defended classifier by name, normalization read from the classifier's own metadata.

        ``spec`` is any :func:`recondefense.classifiers.load_classifier` spec, e.g.
        ``"torchvision:resnet50:IMAGENET1K_V2"`` (mean/std from the weights enum), ``"timm:<name>"``
        (``pretrained_cfg``) or ``"imagenet-efficientnet_lite0"``. The result takes **[0, 1] pixels**
        (``(N, 3, H, W)``) and normalizes inside, so no mean/std is typed by hand.

        Args:
            defense: weights name, hub id, folder or module (None: the default ImageNet weights).

        Raises:
            ValueError: a spec that names no pretrained weights (``"torchvision:resnet18"``: a randomly initialized
                network); pass ``Defended(net, ...)`` for a network you trained.
        """
        if random_weights(spec):
            raise ValueError(
                f"Defended.from_classifier({spec!r}): the spec names no pretrained weights, so the network would be "
                f"randomly initialized; name them ('{spec}:DEFAULT') or pass a network you trained: "
                "Defended(net, mean=..., std=...)"
            )
        return cls(load_classifier(spec), defense, mean=None, std=None)

    def train(self, mode: bool = True) -> Defended:
        """Switch the classifier's mode; the defense stays frozen in eval mode."""
        self.training = mode
        self.model.train(mode)
        self.defense.eval()
        return self

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        """Un-normalize, purify, re-normalize, classify; extra arguments go to the model.

        ``x``: with ``input="normalized"``, a floating ``(N, C, H, W)`` (or ``(C, H, W)``) batch normalized with
        ``mean``/``std``, ``C`` their length; with ``input="pixels"``, what the defense takes (``(N, C, H, W)``
        float in [0, 1] or uint8). Returns the model's output on the purified batch.
        """
        if self.input == "pixels":
            purified = self.defense(x)
            if self.normalized:
                dtype = purified.dtype
                purified = (purified - self.mean.to(dtype)) / self.std.to(dtype)
            return self.model(purified, *args, **kwargs)
        check_normalized(x, self.mean.shape[0], name="x")
        pixels = x * self.std.to(x.dtype) + self.mean.to(x.dtype)
        purified = self._purify(pixels, x)
        return self.model((purified - self.mean.to(x.dtype)) / self.std.to(x.dtype), *args, **kwargs)

    def _purify(self, pixels: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The defense on un-normalized ``pixels`` (of the normalized input ``x``) clamped to [0, 1], reading values
        back to the host at most once per eager call: the range of ``pixels`` (outside [0, 1]: warned once), in
        place of a :class:`PixelDefense`'s own check, NaN (Inf is clamped), and, until it has warned, the range
        of ``x`` for the input-convention guess."""
        clamped = pixels.clamp(0, 1)
        defense_checks = isinstance(self.defense, PixelDefense)  # it would read the values back itself
        if not pixels.is_floating_point() or is_tracing(pixels) or (self._warned_range and not defense_checks):
            return self.defense(clamped)
        guess = self._guess_convention and not self._warned_pixels
        lo, hi, *raw = value_range(pixels, *([x] if guess else []))
        tolerance = range_tolerance(pixels.dtype)
        if guess and -tolerance <= raw[0] < raw[1] <= 1 + tolerance:  # every value in [0, 1], not one flat grey
            mean, std = (tuple(round(v, 3) for v in t.flatten().tolist()) for t in (self.mean, self.std))
            warnings.warn(
                f"Defended: every value of this batch lies in [0, 1] ([{raw[0]:.3g}, {raw[1]:.3g}]), but it is read as "
                f"normalized with mean={mean}, std={std}, so it un-normalizes to pixels in [{lo:.3g}, {hi:.3g}], a "
                "narrow grey band: were [0, 1] pixels passed? This Defended takes normalized images, (x - mean) / std; "
                "build it with input='pixels' to pass [0, 1] pixels, or with input='normalized' if the batch truly "
                "is normalized (warned once).",
                InputConventionWarning,
                stacklevel=5,  # the caller of Defended(...)(x): _purify, forward, Module._call_impl, __call__
            )
            self._warned_pixels = True
        if not self._warned_range and (lo < -tolerance or hi > 1 + tolerance):
            warnings.warn(
                f"Defended: the input un-normalizes to pixels in [{lo:.3g}, {hi:.3g}], outside "
                "[0, 1]; they are clamped (warned once). Feed images normalized with this model's mean/std"
                + (": these look like 0-255 values, so divide by 255 before normalizing." if hi > 5 else "."),
                stacklevel=5,  # the caller of Defended(...)(x): _purify, forward, Module._call_impl, __call__
            )
            self._warned_range = True
        if not defense_checks:
            return self.defense(clamped)
        if math.isnan(lo) or math.isnan(hi):
            raise ValueError("images contain NaN or Inf values")  # the defense's own check, on the clamped pixels
        with values_checked(clamped):
            return self.defense(clamped)
