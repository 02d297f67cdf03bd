"""Purifier networks beyond the paper's AE, and the one registry that builds any of them by name.

- ``"recon"``: :class:`~recondefense.autoencoder.ReconAutoencoder`, the paper's bottleneck AE (section 3.1).
- ``"residual"``: :class:`ResidualPurifier`, HGD's design (Liao et al., CVPR 2018): a small U-Net predicts a
  correction that is *added to its input*; the output convolution starts at zero, so an untrained purifier is
  exactly the identity and cannot cost clean accuracy before it has learned anything.
- ``"detail"``: :class:`DetailPurifier`, a bottleneck path plus a detail path: the paper's AE removes the
  perturbation from the start (it can be initialised from trained AE weights), and a zero-initialised
  residual U-Net that sees both the input and the AE's output learns to put back the detail the bottleneck
  lost, so at initialisation it equals the AE.
- ``"gated"``: :class:`GatedPurifier`, a purifier (the paper's AE, or a residual one with ``inner="residual"``)
  applied through a learned per-image gate (a perturbation detector) that starts nearly closed: clean images
  pass almost untouched, attacked ones are purified.
- ``"routed"``: :class:`RoutedPurifier`, a gate with a softmax over routes that sends each image to what it
  needs: clean ones through untouched, attacked ones to the adversarial purifier, corrupted ones to a residual
  corruption purifier.

Every architecture maps ``(N, C, H, W)`` in [0, 1] to ``(N, C, H, W)`` and exposes ``in_channels`` and
``stride`` (input height and width must be multiples of it; ``ReconstructiveDefense`` pads with
:func:`pad_to_stride` and crops back).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .autoencoder import ReconAutoencoder
from .blending import blend, bypass_thresholds
from .gate import PerturbationGate, conv_relu
from .haze import DETECTOR_POOL, FogDetector
from .levels import noise_level, restore_levels, unsharp_mask
from .purifier_config import ARCHITECTURE_KEYS, GATED_INNER, PurifierConfig
from .routing import RouteMixture

__all__ = [
    "ResidualPurifier",
    "UnsharpMask",
    "DetailPurifier",
    "GatedPurifier",
    "RoutedPurifier",
    "Architecture",
    "ARCHITECTURES",
    "build_purifier",
    "pad_to_stride",
]


def pad_to_stride(images: torch.Tensor, stride: int) -> torch.Tensor:
    """Pad ``(N, C, H, W)`` images at the bottom and right (edge replicated) to the next multiples of ``stride``.

    What a purifier of that :attr:`stride` takes; crop its output back with ``[..., :H, :W]``. Stride 1 returns
    ``images`` itself (no size arithmetic); any other stride pads unconditionally (a zero pad when ``H`` and
    ``W`` are multiples already), so an exported graph holds no shape branch.
    """
    if stride == 1:
        return images
    height, width = images.shape[-2:]
    return F.pad(images, (0, (-width) % stride, 0, (-height) % stride), mode="replicate")


class _CorrectionUNet(nn.Module):
    """A light U-Net whose output convolution starts at zero: ``(N, C_in, H, W) -> (N, C_out, H, W)``, 0 at init.

    Level 0 runs at full resolution with ``width`` channels; level ``i`` at ``1/2**i`` resolution with
    ``width * 2**i`` channels (capacity where it is cheap). Decoder: 1x1 projection, bilinear upsampling,
    addition of the encoder feature of that level, 3x3 conv. No normalisation layers: batch statistics of
    small CPU batches are noise, and the module stays exportable as plain convolutions.
    """

    def __init__(self, c_in: int, c_out: int, width: int, depth: int) -> None:
        super().__init__()
        widths = [width * 2**i for i in range(depth + 1)]
        self.stem = conv_relu(c_in, widths[0])
        self.down = nn.ModuleList(
            nn.Sequential(conv_relu(widths[i], widths[i + 1], stride=2), conv_relu(widths[i + 1], widths[i + 1]))
            for i in range(depth)
        )
        self.project = nn.ModuleList(nn.Conv2d(widths[i + 1], widths[i], 1) for i in range(depth))
        self.up = nn.ModuleList(conv_relu(widths[i], widths[i]) for i in range(depth))
        self.out = nn.Conv2d(widths[0], c_out, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.depth = depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [self.stem(x)]
        for block in self.down:
            features.append(block(features[-1]))
        h = features[-1]
        for i in reversed(range(self.depth)):
            skip = features[i]
            h = F.interpolate(self.project[i](h), size=skip.shape[-2:], mode="bilinear", align_corners=False)
            h = self.up[i](h + skip)
        return self.out(h)


class ResidualPurifier(nn.Module):
    """``x + r(x)``: a zero-initialised U-Net correction added to the input (HGD's ``out += x``).

    Exactly the identity at initialisation. Cost at 224 px (``width=16, depth=2``, 3 channels), counted
    with ``torch.utils.flop_counter``: see ``benchmarks/inference.py`` for the wall-clock ratio.

    Args:
        in_channels: image channels.
        width: channels of the full-resolution level (doubled per level).
        depth: number of stride-2 levels of the U-Net.
        strength, noise_range: the share of ``r(x)`` added, by the image's noise level ``s``
            (:func:`~recondefense.levels.noise_level`): ``strength`` up to ``s = noise_range[0]``, rising linearly
            to 1 at ``noise_range[1]``; ``strength`` 1 (the default): all of it (:meth:`share`).

    Shape: ``(N, C, H, W)`` in [0, 1] -> ``(N, C, H, W)``, clamped to [0, 1].
    """

    def __init__(
        self,
        in_channels: int = 3,
        width: int = 16,
        depth: int = 2,
        strength: float = 1.0,
        noise_range: tuple[float, float] | list[float] = (0.1, 0.3),
    ) -> None:
        super().__init__()
        if in_channels < 1 or width < 1 or depth < 1:
            raise ValueError(f"expected positive in_channels, width, depth; got {in_channels}, {width}, {depth}")
        self.in_channels = in_channels
        self.correction = _CorrectionUNet(in_channels, in_channels, width, depth)
        self.strength = float(strength)
        self.noise_range = (float(noise_range[0]), float(noise_range[1]))

    @property
    def stride(self) -> int:
        """Any height and width works (the U-Net upsamples to each skip's size): 1, nothing to pad."""
        return 1

    def share(self, x: torch.Tensor) -> torch.Tensor:
        """The share of the correction each image gets, in [``strength``, 1]: ``(N, C, H, W)`` -> ``(N,)``."""
        low, high = self.noise_range
        rise = ((noise_level(x) - low) / (high - low)).clamp(0, 1)
        return self.strength + (1 - self.strength) * rise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        correction = self.correction(x)
        if self.strength < 1:
            correction = correction * self.share(x).view(-1, 1, 1, 1)
        return (x + correction).clamp(0, 1)


class UnsharpMask(nn.Module):
    """A deblurring purifier with no weights: :func:`~recondefense.levels.unsharp_mask` of ``sigma`` and ``amount``.

    Shape: ``(N, C, H, W)`` in [0, 1] -> same, in [0, 1].
    """

    stride = 1

    def __init__(self, in_channels: int, sigma: float, amount: float) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.sigma = float(sigma)
        self.amount = float(amount)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return unsharp_mask(x, self.sigma, self.amount)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}, amount={self.amount}"


class DetailPurifier(nn.Module):
    """``AE(x) + d(x, AE(x))``: the paper's bottleneck AE plus a zero-initialised detail path.

    Equal to the AE at initialisation (load trained AE weights into ``.bottleneck``, a
    :class:`~recondefense.autoencoder.ReconAutoencoder`, to start from a purifier that already removes the
    perturbation); the detail U-Net sees the input and the AE's reconstruction and learns what to restore.

    Args:
        in_channels: image channels.
        hyper: the other :class:`~recondefense.purifier_config.PurifierConfig` fields it takes, by keyword, with their defaults there: ``width``,
            ``depth``, ``skip``, ``widths`` (the bottleneck AE, see ``ReconAutoencoder``) and ``detail_width``,
            ``detail_depth`` (the detail U-Net, see :class:`ResidualPurifier`).

    Shape: ``(N, C, H, W)`` in [0, 1] -> ``(N, C, H, W)``, clamped to [0, 1].
    """

    def __init__(self, in_channels: int = 3, **hyper: Any) -> None:
        super().__init__()
        config = PurifierConfig.for_architecture("detail", in_channels, **hyper)
        self.in_channels = in_channels
        self.bottleneck = build_purifier(replace(config, arch="recon"))
        self.detail = _CorrectionUNet(2 * in_channels, in_channels, config.detail_width, config.detail_depth)

    @property
    def stride(self) -> int:
        """Input height and width must be multiples of this (the AE's, or the detail U-Net's if larger)."""
        return max(self.bottleneck.stride, 2**self.detail.depth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = self.bottleneck(x)
        return (base + self.detail(torch.cat([x, base], dim=1))).clamp(0, 1)


class GatedPurifier(nn.Module):
    """``x + g(x) * (P(x) - x)``: a purifier ``P`` applied as much as a learned per-image gate ``g`` in (0, 1) says.

    ``P`` is the paper's AE (``inner="recon"``) or a :class:`ResidualPurifier` (``inner="residual"``), built from
    the same config (:func:`build_purifier`); it is the attribute ``bottleneck`` either way (the name the first
    gated weights were saved under). ``g`` is a :class:`~recondefense.gate.PerturbationGate` (a small strided CNN
    with global average pooling, a detector of perturbations); its last bias starts at -4, so an untrained gated purifier is within 2% of the identity on
    every image (clean images pass almost untouched), and a detection loss (``recondefense train --gate-weight``)
    teaches it when to purify. Load trained purifier weights into ``.bottleneck`` to start from one that already
    removes the perturbation.

    Args:
        in_channels: image channels.
        hyper: the other :class:`~recondefense.purifier_config.PurifierConfig` fields it takes, by keyword, with their defaults there but
            ``detail_depth`` 3: ``width``, ``depth``, ``skip``, ``widths`` (the purifier behind the gate; the residual
            one ignores ``skip`` and ``widths``), ``detail_width``, ``detail_depth`` (channels of the gate's first
            level, doubled per level, and its stride-2 levels), ``inner``, ``"recon"`` or ``"residual"``
            (:data:`~recondefense.purifier_config.GATED_INNER`), ``bypass_below``: in eval mode, images whose gate is below it skip the
            purifier (returned as the pass route gives them), so clean traffic pays for the gate alone; training
            and tracing (export, ``torch.compile``) run the blend on every image; and ``pass_smoothing``, what the
            pass route gives (:func:`~recondefense.blending.blend`); ``contrast_floor``, ``contrast_target``,
            ``black_point_floor``: the image's levels restored first (:func:`~recondefense.levels.restore_levels`).

    Shape: ``(N, C, H, W)`` in [0, 1] -> ``(N, C, H, W)`` in [0, 1].
    """

    def __init__(self, in_channels: int = 3, **hyper: Any) -> None:
        super().__init__()
        config = PurifierConfig.for_architecture("gated", in_channels, **{"detail_depth": 3, **hyper})
        if config.inner not in GATED_INNER:
            raise ValueError(f"unknown purifier behind the gate {config.inner!r}: expected one of {GATED_INNER}")
        self.in_channels = in_channels
        self.inner = config.inner
        self.bypass_below = bypass_thresholds(config.bypass_below, 1)[0]
        self.pass_smoothing = float(config.pass_smoothing)
        self.contrast_floor = float(config.contrast_floor)
        self.contrast_target = float(config.contrast_target)
        self.black_point_floor = float(config.black_point_floor)
        self.bottleneck = build_purifier(replace(config, arch=config.inner))
        self.gate = PerturbationGate(in_channels, config.detail_width, config.detail_depth)

    @property
    def stride(self) -> int:
        """Input height and width must be multiples of this (the inner purifier's)."""
        return self.bottleneck.stride

    def gate_logit(self, x: torch.Tensor) -> torch.Tensor:
        """The gate's logit per image: ``(N, C, H, W)`` -> ``(N,)`` (the gate is its sigmoid)."""
        return self.gate(x).flatten()

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """The image as the gate and the purifier see it: its levels restored
        (:func:`~recondefense.levels.restore_levels`; unchanged with both floors 0). Shape kept, [0, 1]."""
        return restore_levels(x, self.contrast_floor, self.contrast_target, self.black_point_floor)

    def gate_value(self, x: torch.Tensor) -> torch.Tensor:
        """The gate per image, as :meth:`forward` opens it (on :meth:`prepare`'s image): ``(N, C, H, W)`` ->
        ``(N,)`` in (0, 1)."""
        return torch.sigmoid(self.gate_logit(self.prepare(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prepare(x)
        gate = torch.sigmoid(self.gate_logit(x))[:, None]
        return blend(x, gate, [self.bottleneck], self.bypass_below, self.training, self.pass_smoothing)


class RoutedPurifier(RouteMixture):
    """``p0 * x + p1 * A(x) + p2 * R(x)``: a gate's softmax over the :data:`~recondefense.routing.ROUTES` sends each
    image to what it needs: clean ones through untouched, attacked ones to ``A`` (``.bottleneck``, as in
    :class:`GatedPurifier`), corrupted ones to ``R`` (``.corruption``, a :class:`ResidualPurifier`: the identity at
    init). The gate is a gated purifier's with one logit per expert (biases -4: route 0 holds 0.96 at init; it can
    start from a gated gate, :meth:`~recondefense.routing.RouteMixture.load_gate`). Mixing, routes and the bypass:
    :class:`~recondefense.routing.RouteMixture`.

    Args:
        in_channels: image channels.
        hyper: the :class:`~recondefense.purifier_config.PurifierConfig` fields of :data:`~recondefense.purifier_config.ARCHITECTURE_KEYS` ``["routed"]``, by keyword, with their
            defaults there but ``detail_depth`` 3 (``corruption_width`` and ``corruption_depth`` size ``R``;
            ``strong_widths``, if set, adds ``.strong``, a wider paper AE that stands in for ``A`` on the images
            whose route-1 probability is at least ``strong_above``; ``deblur_sharpness_range``, if set, adds
            ``.deblur``, a :class:`ResidualPurifier` of ``deblur_width`` and ``deblur_depth`` (or, with
            ``deblur_unsharp``, an :class:`UnsharpMask`) that deblurs the images that read smooth before the gate
            sees them; ``impulse_range``, if set, removes salt-and-pepper dots first; ``fog_range``, if set, adds
            ``.fog``, a :class:`~recondefense.haze.FogDetector`, and dehazes the images it reads as foggy (with
            ``fog_yields_to_gate``, not those the gate opens on as they came); ``brightness_range``, if set, adds
            ``.brightness``, another, and lowers the images it reads as brightened to black; ``snow_range``, if
            set, adds ``.snow``, another, and shrinks the routes of the images it reads as snowy;
            ``brightness_veto`` > 0 keeps the gate shut on images it opens on only for their brightness,
            :func:`~recondefense.gate.veto_brightened`).

    Shape: ``(N, C, H, W)`` in [0, 1] -> ``(N, C, H, W)`` in [0, 1].
    """

    def __init__(self, in_channels: int = 3, **hyper: Any) -> None:
        config = PurifierConfig.for_architecture("routed", in_channels, **{"detail_depth": 3, **hyper})
        if config.inner not in GATED_INNER:
            raise ValueError(f"unknown adversarial purifier {config.inner!r}: expected one of {GATED_INNER}")
        experts = {
            "bottleneck": build_purifier(replace(config, arch=config.inner)),
            "corruption": ResidualPurifier(
                in_channels,
                config.corruption_width,
                config.corruption_depth,
                config.corruption_strength,
                config.corruption_noise_range,
            ),
        }
        gate = PerturbationGate(in_channels, config.detail_width, config.detail_depth, 2)
        strong = deblur = None
        if config.strong_widths is not None:
            strong = build_purifier(replace(config, arch="recon", widths=tuple(config.strong_widths)))
        if config.deblur_sharpness_range is not None:
            if config.deblur_unsharp is not None:
                deblur = UnsharpMask(in_channels, *config.deblur_unsharp)
            else:
                deblur = ResidualPurifier(in_channels, config.deblur_width, config.deblur_depth)
        super().__init__(
            gate,
            experts,
            config.bypass_below,
            config.pass_smoothing,
            config.contrast_floor,
            config.contrast_target,
            strong,
            config.strong_above,
            config.black_point_floor,
            deblur,
            config.deblur_sharpness_range,
            config.brightness_veto,
            config.deblur_ratio_range,
            config.impulse_range,
            config.impulse_noise_range,
            config.veto_black_point,
            config.veto_clipped,
            None if config.fog_range is None else FogDetector(in_channels, config.fog_width, DETECTOR_POOL["fog"]),
            config.fog_range,
            config.fog_yields_to_gate,
            config.gate_steep_opening,
            config.veto_to_floor,
            None
            if config.brightness_range is None
            else FogDetector(in_channels, config.brightness_width, DETECTOR_POOL["brightness"]),
            config.brightness_range,
            None if config.snow_range is None else FogDetector(in_channels, config.snow_width, DETECTOR_POOL["snow"]),
            config.snow_range,
        )
        self.in_channels = in_channels
        self.inner = config.inner


class Architecture(NamedTuple):
    """A registered purifier architecture: the class and the config keys it takes."""

    module: type[nn.Module]
    keys: tuple[str, ...]


_CLASSES: dict[str, type[nn.Module]] = {
    "recon": ReconAutoencoder,
    "residual": ResidualPurifier,
    "detail": DetailPurifier,
    "gated": GatedPurifier,
    "routed": RoutedPurifier,
}
#: The one registry: architecture name (config.json's ``arch``) -> its class and config keys.
ARCHITECTURES: dict[str, Architecture] = {
    name: Architecture(_CLASSES[name], keys) for name, keys in ARCHITECTURE_KEYS.items()
}


def build_purifier(arch: str | PurifierConfig = "recon", **config: Any) -> nn.Module:
    """Build a purifier from a :class:`~recondefense.purifier_config.PurifierConfig`, or from an architecture name
    and config keys (keys the architecture does not take are ignored).

    Raises:
        ValueError: unknown architecture.
        TypeError: keyword arguments beside a PurifierConfig.
    """
    if isinstance(arch, PurifierConfig):
        if config:
            raise TypeError(f"build_purifier(PurifierConfig) takes no keyword arguments, got {sorted(config)}")
        config, arch = arch.as_dict(), arch.arch
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown purifier architecture {arch!r}: expected one of {sorted(ARCHITECTURES)}")
    cls, keys = ARCHITECTURES[arch]
    return cls(**{k: config[k] for k in keys if k in config})
