"""The one list of a purifier's hyper-parameters, :class:`PurifierConfig`, and what each architecture takes.

Pure data (no network is built here, and nothing of recondefense is imported): the networks and the registry that
builds them, :func:`~recondefense.purifiers.build_purifier`, live in :mod:`recondefense.purifiers`, which imports
this module; :class:`~recondefense.ReconstructiveDefense`, config.json and ``recondefense train``'s ``TrainConfig``
derive from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["ARCHITECTURE_KEYS", "EXPERTS", "GATED_INNER", "INT_RANGES", "NUMBER_RANGES", "PurifierConfig"]

_AE = ("in_channels", "width", "depth", "skip", "widths")  # the paper AE's keys, which every composite takes
_GATE = (
    *_AE,
    "detail_width",
    "detail_depth",
    "inner",
    "bypass_below",
    "pass_smoothing",
    "contrast_floor",
    "contrast_target",
    "black_point_floor",
)  # a gated purifier's
#: Architecture name (config.json's ``arch``) -> the config keys its class takes.
ARCHITECTURE_KEYS: dict[str, tuple[str, ...]] = {
    "recon": _AE,
    "residual": ("in_channels", "width", "depth"),
    "detail": (*_AE, "detail_width", "detail_depth"),
    "gated": _GATE,
    "routed": (
        *_GATE,
        "corruption_width",
        "corruption_depth",
        "strong_widths",
        "strong_above",
        "corruption_strength",
        "corruption_noise_range",
        "deblur_width",
        "deblur_depth",
        "deblur_sharpness_range",
        "deblur_unsharp",
        "deblur_ratio_range",
        "brightness_veto",
        "veto_black_point",
        "veto_clipped",
        "impulse_range",
        "impulse_noise_range",
        "fog_range",
        "fog_width",
        "fog_yields_to_gate",
        "gate_steep_opening",
        "veto_to_floor",
        "brightness_range",
        "brightness_width",
        "snow_range",
        "snow_width",
    ),
}

#: How many experts a gate routes between, by architecture (``bypass_below`` may give one threshold each).
EXPERTS: dict[str, int] = {"gated": 1, "routed": 2}

#: The settings that are null or two numbers (config.json holds them as lists).
_OPTIONAL_PAIRS = (
    "deblur_sharpness_range",
    "deblur_unsharp",
    "deblur_ratio_range",
    "impulse_range",
    "impulse_noise_range",
    "fog_range",
    "gate_steep_opening",
    "brightness_range",
    "snow_range",
)

#: What a gated purifier may hold behind its gate (config.json's ``inner``).
GATED_INNER = ("recon", "residual")

#: The integer hyper-parameters and their ranges, ``(low, high)``: what an untrusted config.json may ask for.
INT_RANGES: dict[str, tuple[int, int]] = {
    "in_channels": (1, 16),
    "width": (1, 1024),
    "depth": (1, 8),
    "detail_width": (1, 256),
    "detail_depth": (1, 6),
    "corruption_width": (1, 256),
    "corruption_depth": (1, 6),
    "deblur_width": (1, 256),
    "deblur_depth": (1, 6),
    "fog_width": (1, 64),
    "brightness_width": (1, 64),
    "snow_width": (1, 64),
}

#: The real-valued hyper-parameters checked by range, in the order :meth:`PurifierConfig.problem` checks them:
#: ``(low, high, low_open)``, the value a number in ``[low, high]`` (``(low, high]`` where ``low_open``).
NUMBER_RANGES: dict[str, tuple[float, float, bool]] = {
    "pass_smoothing": (0, 1, False),
    "contrast_floor": (0, 1, False),
    "contrast_target": (0, 1, True),
    "black_point_floor": (0, 1, False),
    "brightness_veto": (0, 0.5, False),
    "veto_black_point": (0, 1, False),
    "veto_clipped": (0, 1, False),
    "strong_above": (0, 1, True),
    "corruption_strength": (0, 1, False),
}


def _is_pair(value: Any) -> bool:
    """Whether ``value`` is a list or tuple of two numbers (int or float)."""
    return isinstance(value, (list, tuple)) and len(value) == 2 and all(type(s) in (int, float) for s in value)


def _is_range(value: Any, most: float) -> bool:
    """Whether ``value`` is a list or tuple of two numbers ``low < high`` in ``[0, most]``."""
    return _is_pair(value) and 0 <= value[0] < value[1] <= most


@dataclass(frozen=True)
class PurifierConfig:
    """One purifier's hyper-parameters, the one list of them: what :class:`~recondefense.ReconstructiveDefense`
    takes, its config.json holds (besides ``meta`` and ``format_version``) and a training run sets.

    Defaults: the paper's AE (section 3.1: width 16, three blocks, the skip on). Fields an architecture does not
    take are ignored by :func:`~recondefense.purifiers.build_purifier` (:data:`ARCHITECTURE_KEYS` lists those it
    takes); the purifier classes take them as keyword arguments. A field's default is what every weights folder
    written before the field did, so a config.json without the key reads as the default.

    Attributes:
        in_channels: image channels (3 RGB, 1 grayscale).
        width, depth: the AE's first-block filters (block ``i``: ``max(1, width // 2**i)``) and its blocks, the
            input downsampled by ``2**depth``; for ``"residual"``, its U-Net's full-resolution channels (doubled per
            level) and stride-2 levels.
        skip: the AE's first-encoder-to-last-decoder skip connection (paper: on).
        widths: explicit filters per AE block, overriding ``width`` and ``depth``.
        arch: the architecture, a key of :data:`ARCHITECTURE_KEYS`.
        detail_width, detail_depth: the detail U-Net of ``"detail"``, the gate of ``"gated"`` (first-level channels,
            doubled per level, and stride-2 levels).
        inner: what ``"gated"`` holds behind its gate (``"routed"``: its adversarial purifier), one of
            :data:`GATED_INNER`.
        bypass_below: ``"gated"`` at inference: images whose gate is below this skip the purifier and come out as
            the pass route gives them (each pixel within ``bypass_below`` of the blended output); 0 (the default)
            runs the purifier on every image. ``"routed"``: the same per expert and route probability. The bypass
            saves the purifier's time on clean traffic, but an image that sits just across a decision boundary
            (DeepFool's) also comes back untouched, where the dense mix's small share of the purifier pulls most of
            them back: ``pass_smoothing`` is the cheap way to keep both. ``"routed"`` also takes one threshold per
            expert, in route order (config.json: a list), e.g. ``(0, 0.05)``: the adversarial purifier dense, the
            corruption purifier only on flagged images.
        pass_smoothing: ``"gated"`` and ``"routed"``: what the pass route (the gate shut) gives, ``x`` smoothed by
            this share of a 3 x 3 binomial blur (:func:`~recondefense.blending.blend`); 0 (the default) passes the
            image untouched. A few hundredths of a grey level on clean images, it pulls minimal-margin adversarial
            images (DeepFool's) back across the decision boundary, as the dense mix's share of the purifier does, at
            a fraction of its cost.
        contrast_floor, contrast_target: ``"gated"`` and ``"routed"``: images whose contrast (the RMS deviation from
            their per-channel means, :func:`~recondefense.routing.contrast_spread`) is below ``contrast_floor`` are
            stretched around those means towards ``contrast_target`` before the gate sees them, no further than
            their own range allows (:func:`~recondefense.routing.contrast_gain`: a dim photo that touches black is
            left alone); 0 (the default) leaves every image's contrast alone; the target is in (0, 1], 1 meaning as
            far as the range allows. The validation object crops sit above 0.10 and ImageNet-C's contrast corruption
            brings them below.
        black_point_floor: ``"gated"`` and ``"routed"``: images whose black point (the HSV value of their darkest 4
            x 4 block, :func:`~recondefense.levels.black_point`) is at least this, after the contrast stretch, have
            every pixel's value lowered by it (:func:`~recondefense.levels.restore_black_point`: ImageNet-C's
            brightness undone where it did not clip) before the gate sees them; 0 (the default): never.
        corruption_width, corruption_depth: ``"routed"``'s corruption purifier, a :class:`ResidualPurifier` of that
            width and depth (never read by the other architectures).
        strong_widths, strong_above: ``"routed"``: a second, wider paper AE (filters per block) that takes over from
            the adversarial purifier on the images whose adversarial route probability is at least ``strong_above``
            (in (0, 1]); the adversarial purifier keeps its share of every other image. Capacity where the gate
            flags an attack, the small purifier's cost on clean traffic. None (the default): no strong purifier.
        corruption_strength, corruption_noise_range: ``"routed"``: how much of its correction the corruption
            purifier applies, by the image's noise level ``s`` (:func:`~recondefense.levels.noise_level`,
            Immerkaer's estimate, in [0, 1] pixel units): ``corruption_strength`` (in [0, 1]) at ``s`` up to
            ``corruption_noise_range[0]``, rising linearly to all of it at ``corruption_noise_range[1]`` and above
            (:class:`~recondefense.purifiers.ResidualPurifier`). For a denoiser that overshoots on mild noise. 1
            (the default): all of it on every image.
        deblur_width, deblur_depth, deblur_sharpness_range: ``"routed"``: a deblurring
            :class:`~recondefense.purifiers.ResidualPurifier` of that width and depth (``.deblur``) applied after
            the levels and before the gate, by the image's :func:`~recondefense.levels.sharpness` ``h``: all of its
            correction at ``h`` up to ``deblur_sharpness_range[0]``, falling linearly to none at
            ``deblur_sharpness_range[1]`` and above (at inference it runs only on the images it touches, so sharp
            ones, most clean photographs among them, pay for the measure alone). None (the default): no deblurring
            purifier. ``recondefense train`` does not build one: train it alone (``--arch residual``) and put it in
            with ``scripts/compose_routed.py --deblur``.
        deblur_unsharp: ``"routed"`` with a ``deblur_sharpness_range``: ``(sigma, amount)`` makes the deblurring
            purifier an :class:`~recondefense.purifiers.UnsharpMask` (:func:`~recondefense.levels.unsharp_mask`, no
            weights; ``deblur_width`` and ``deblur_depth`` unused), sigma in (0, 4] pixels, amount in (0, 8]. None
            (the default): the learned one.
        deblur_ratio_range: ``"routed"`` with a ``deblur_sharpness_range``: the deblurring purifier's share is also
            scaled by the image's :func:`~recondefense.levels.blur_ratio` ``b`` (about 4 where a blur left no
            pixel-scale detail, 1.2-2.2 on clean photographs, lower where glass blur or noise left pixel jitter): 0
            at ``b`` up to ``deblur_ratio_range[0]``, rising linearly to 1 at ``deblur_ratio_range[1]``
            (:func:`~recondefense.routing.deblur_share`). None (the default): by sharpness alone.
        brightness_veto: ``"routed"``: the gate also reads the image with its black point restored
            (:func:`~recondefense.levels.restore_black_point`: ImageNet-C's brightness undone where it did not clip)
            and opens only where that reading is above ``brightness_veto`` too (in (0, 0.5]; a vetoed image stays
            below half open, at ``brightness_veto`` with ``veto_to_floor``;
            :func:`~recondefense.gate.veto_brightened`). Brightening lifts a photo's dark pixels, and their fine
            detail with them, which a perturbation gate reads as an attack; the pixels themselves are left as they
            are. The second reading is taken only of images the gate opens on by more than ``brightness_veto``. 0
            (the default): one reading.
        veto_black_point: ``"routed"`` with a ``brightness_veto``: the second reading restores the black point only
            of images whose black point is at least this (in [0, 1]); the others keep their first reading.
            ImageNet-C brightens by 0.1-0.5; a photo bright by nature is lowered too, an attack's perturbation in
            its dark pixels with it, and a higher value leaves the photos below it alone. 1/255 (the default): every
            image whose darkest block is not black.
        veto_clipped: ``"routed"`` with a ``brightness_veto``: the second reading is taken only of images whose
            share of clipped pixels (HSV value at 1, :func:`~recondefense.levels.clipped_share`) is at least this
            (in [0, 1]). ImageNet-C's brightness clips every pixel it raises past 1; an attack moves about half of a
            photo's clipped pixels off 1, so a photo bright by nature keeps its first reading once attacked. 0 (the
            default): every image.
        veto_to_floor: ``"routed"`` with a ``brightness_veto``: the veto caps the gate logit at the restored reading
            itself (at least the veto's), so a vetoed image keeps a gate of ``brightness_veto``; False (the
            default): at the restored reading's distance above the veto's logit, so where the gate's clean logit
            sits near the veto's (the shipped gates) a vetoed image reads about half open
            (:func:`~recondefense.gate.veto_brightened`).
        impulse_range: ``"routed"``: salt-and-pepper dots are removed first, before the levels, the deblurring and
            the gate (:func:`~recondefense.levels.remove_impulses`), as much as the image's
            :func:`~recondefense.levels.impulse_fraction` ``f`` says: none at ``f`` up to ``impulse_range[0]``,
            rising linearly to all at ``impulse_range[1]`` and above (:func:`~recondefense.routing.impulse_share`);
            two numbers in [0, 1]. None (the default): no impulse removal.
        impulse_noise_range: ``"routed"`` with an ``impulse_range``: the removal's share is also scaled by the
            :func:`~recondefense.levels.noise_level` ``s`` of the image with its dots removed: 1 at ``s`` up to
            ``impulse_noise_range[0]``, falling linearly to 0 at ``impulse_noise_range[1]`` (Gaussian and shot
            noise, whose clipped values read as dots too, stay noisy and go to the denoiser); two numbers in [0, 1].
            None (the default): by the fraction alone.
        fog_range, fog_width: ``"routed"``: a :class:`~recondefense.haze.FogDetector` of ``fog_width`` reads each
            image after the dot removal, and the image is dehazed (:func:`~recondefense.haze.dehaze`) as much as its
            probability of fog ``p`` says: none at ``p`` up to ``fog_range[0]``, rising linearly to all at
            ``fog_range[1]`` (:func:`~recondefense.haze.fog_share`); its gate's routes shrink by that share. Two
            numbers in [0, 1]; None (the default): no fog step.
        fog_yields_to_gate: ``"routed"`` with a ``fog_range``: that share is first scaled by ``1 -`` how far the
            gate opens on the image as it came (read only where the share is above 0), so an attacked image the
            detector reads as fog keeps its routes and is not dehazed; False (the default): the detector's share
            alone.
        gate_steep_opening: ``"routed"``: ``(at, steepness)``, a second, steeper opening of the gate above the gate
            logit ``at``: the gate logit ``L`` becomes ``max(L, steepness (L - at))``
            (:func:`~recondefense.gate.steepen_opening`), so an image whose logit passes ``at`` opens all the way
            while every image below it keeps the share it had (the small share of the adversarial purifier that
            clean and DeepFool-attacked images get). ``at`` in [-20, 20], ``steepness`` in (1, 100]. None (the
            default): one opening.
        brightness_range, brightness_width: ``"routed"``: as ``fog_range`` and ``fog_width``, a detector of
            ImageNet-C's brightness (``.brightness``, after the levels); an image it reads is lowered to black
            (:func:`~recondefense.levels.restore_black_point`) as much as its probability says, and the gate reads
            the lowered image. None (the default): no brightness step.
        snow_range, snow_width: ``"routed"``: as ``fog_range`` and ``fog_width``, a detector of ImageNet-C's snow
            (``.snow``, after the levels) whose share shrinks the gate's routes and changes no pixel: snowfall,
            which no route undoes, passes as the levels left it. None (the default): no snow step.
    """

    in_channels: int = 3
    width: int = 16
    depth: int = 3
    skip: bool = True
    widths: tuple[int, ...] | list[int] | None = None
    arch: str = "recon"
    detail_width: int = 16
    detail_depth: int = 2
    inner: str = "recon"
    bypass_below: float | tuple[float, ...] | list[float] = 0.0
    corruption_width: int = 16
    corruption_depth: int = 2
    pass_smoothing: float = 0.0
    contrast_floor: float = 0.0
    contrast_target: float = 0.2
    strong_widths: tuple[int, ...] | list[int] | None = None
    strong_above: float = 0.5
    black_point_floor: float = 0.0
    corruption_strength: float = 1.0
    corruption_noise_range: tuple[float, float] | list[float] = (0.1, 0.3)
    deblur_width: int = 16
    deblur_depth: int = 3
    deblur_sharpness_range: tuple[float, float] | list[float] | None = None
    brightness_veto: float = 0.0
    deblur_unsharp: tuple[float, float] | list[float] | None = None
    deblur_ratio_range: tuple[float, float] | list[float] | None = None
    impulse_range: tuple[float, float] | list[float] | None = None
    impulse_noise_range: tuple[float, float] | list[float] | None = None
    veto_black_point: float = 1 / 255
    veto_clipped: float = 0.0
    fog_range: tuple[float, float] | list[float] | None = None
    fog_width: int = 16
    fog_yields_to_gate: bool = False
    gate_steep_opening: tuple[float, float] | list[float] | None = None
    veto_to_floor: bool = False
    brightness_range: tuple[float, float] | list[float] | None = None
    brightness_width: int = 16
    snow_range: tuple[float, float] | list[float] | None = None
    snow_width: int = 16

    def __post_init__(self) -> None:
        for key in ("corruption_noise_range", *_OPTIONAL_PAIRS):
            if isinstance(getattr(self, key), list):  # config.json's list: the same config as the tuple
                object.__setattr__(self, key, tuple(getattr(self, key)))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> PurifierConfig:
        """The config of ``values`` (e.g. a config.json), other keys ignored, values not checked: see :meth:`problem`."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    def as_dict(self) -> dict[str, Any]:
        """The hyper-parameters as config.json holds them (``widths`` a list of ints or None)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for key in ("widths", "strong_widths"):
            value = getattr(self, key)
            values[key] = None if value is None else [int(w) for w in value]
        if isinstance(self.bypass_below, (list, tuple)):
            values["bypass_below"] = [float(b) for b in self.bypass_below]
        values["corruption_noise_range"] = [float(s) for s in self.corruption_noise_range]
        for key in _OPTIONAL_PAIRS:
            if getattr(self, key) is not None:
                values[key] = [float(s) for s in getattr(self, key)]
        return values

    def problem(self) -> tuple[str, str] | None:
        """The first hyper-parameter of a wrong type or out of range, as ``(name, what was expected)``; None when
        all are valid. Nothing is built."""
        for key, (low, high) in INT_RANGES.items():
            value = getattr(self, key)
            if type(value) is not int or not low <= value <= high:
                return key, f"an integer in [{low}, {high}]"
        for key in ("skip", "fog_yields_to_gate", "veto_to_floor"):
            if type(getattr(self, key)) is not bool:
                return key, "true or false"
        (_, most), (_, widest) = INT_RANGES["depth"], INT_RANGES["width"]
        for key in ("widths", "strong_widths"):
            widths = getattr(self, key)
            if widths is not None and (
                not isinstance(widths, (list, tuple))
                or not 1 <= len(widths) <= most
                or any(type(w) is not int or not 1 <= w <= widest for w in widths)
            ):
                return key, f"null or a list of 1 to {most} integers in [1, {widest}]"
        if not isinstance(self.arch, str) or self.arch not in ARCHITECTURE_KEYS:
            return "arch", f"one of {sorted(ARCHITECTURE_KEYS)}"
        if self.inner not in GATED_INNER:
            return "inner", f"one of {list(GATED_INNER)}"
        experts = EXPERTS.get(self.arch, 1)
        per_expert = isinstance(self.bypass_below, (list, tuple))
        thresholds = self.bypass_below if per_expert else [self.bypass_below]
        if (per_expert and len(thresholds) != experts) or any(
            type(b) not in (int, float) or not 0 <= b <= 0.5 for b in thresholds
        ):
            lists = f", or a list of {experts} such numbers (one per expert)" if experts > 1 else ""
            return "bypass_below", f"a number in [0, 0.5]{lists}"
        for key, (low, high, low_open) in NUMBER_RANGES.items():
            value = getattr(self, key)
            if type(value) not in (int, float) or not (low < value if low_open else low <= value) or value > high:
                return key, f"a number in {'(' if low_open else '['}{low}, {high}]"
        if not _is_range(self.corruption_noise_range, 1):
            return "corruption_noise_range", "two numbers low < high in [0, 1]"
        if self.deblur_sharpness_range is not None and not _is_range(self.deblur_sharpness_range, 8):
            return "deblur_sharpness_range", "null or two numbers low < high in [0, 8]"
        if self.deblur_ratio_range is not None and not _is_range(self.deblur_ratio_range, 8):
            return "deblur_ratio_range", "null or two numbers low < high in [0, 8]"
        unsharp = self.deblur_unsharp
        if unsharp is not None and not (_is_pair(unsharp) and 0 < unsharp[0] <= 4 and 0 < unsharp[1] <= 8):
            return "deblur_unsharp", "null or two numbers: a sigma in (0, 4] and an amount in (0, 8]"
        steep = self.gate_steep_opening
        if steep is not None and not (_is_pair(steep) and -20 <= steep[0] <= 20 and 1 < steep[1] <= 100):
            return "gate_steep_opening", "null or two numbers: a gate logit in [-20, 20] and a steepness in (1, 100]"
        for key in ("impulse_range", "impulse_noise_range", "fog_range", "brightness_range", "snow_range"):
            if getattr(self, key) is not None and not _is_range(getattr(self, key), 1):
                return key, "null or two numbers low < high in [0, 1]"
        return None

    def validate(self) -> PurifierConfig:
        """``self``, checked by :meth:`problem` (nothing built).

        Raises:
            ValueError: naming the hyper-parameter, its value and what was expected.
        """
        bad = self.problem()
        if bad is not None:
            raise ValueError(f"{bad[0]}={getattr(self, bad[0])!r}: expected {bad[1]}")
        return self

    @classmethod
    def for_architecture(cls, arch: str, in_channels: int = 3, **hyper: Any) -> PurifierConfig:
        """The config of a purifier ``arch`` built with ``in_channels`` and the keyword arguments ``hyper``, which
        must be among those ``arch`` takes (:data:`ARCHITECTURE_KEYS`); values not checked (see :meth:`problem`).

        Raises:
            ValueError: unknown ``arch``.
            TypeError: a keyword argument the architecture does not take.
        """
        if arch not in ARCHITECTURE_KEYS:
            raise ValueError(f"unknown purifier architecture {arch!r}: expected one of {sorted(ARCHITECTURE_KEYS)}")
        takes = ARCHITECTURE_KEYS[arch]
        unknown = sorted(set(hyper) - set(takes))
        if unknown:
            raise TypeError(f"purifier {arch!r} got unexpected keyword arguments {unknown}: it takes {list(takes)}")
        return cls(in_channels, arch=arch, **hyper)
