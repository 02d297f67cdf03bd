"""Per-image gates and routes, the parts the gated and routed purifiers share (built from a
:class:`~recondefense.purifier_config.PurifierConfig` by :mod:`recondefense.purifiers`, which sits above this module):

- the gate, :class:`~recondefense.gate.PerturbationGate`, and its brightness veto: :mod:`recondefense.gate`;
- :class:`RouteMixture`: ``p0 * x + sum_k pk * P_k(x)``, a softmax over routes (route 0 passes the image through,
  route ``k`` sends it to expert ``P_k``) that may skip, at inference, the experts an image barely uses, after the
  corrections in front of its gate (dots, fog, levels, blur);
- how the routes' outputs and those corrections are mixed into an image (:func:`blend`, :func:`partly`):
  :mod:`recondefense.blending`; the shares, the dot removal and the levels restored before the gate:
  :mod:`recondefense.levels` and :mod:`recondefense.haze` (the old names still import from here).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from .blending import binomial_blur, blend, bypass_thresholds, partly
from .gate import VETO_BLACK_POINT, PerturbationGate, conv_relu, steepen_opening, veto_brightened
from .haze import dehaze, fog_share
from .levels import (
    MAX_CONTRAST_GAIN,
    clean_impulses,
    contrast_gain,
    contrast_spread,
    deblur_share,
    impulse_share,
    restore_black_point,
    restore_contrast,
    restore_levels,
)
from .transform import is_tracing

__all__ = [
    "MAX_CONTRAST_GAIN",
    "ROUTES",
    "binomial_blur",
    "blend",
    "deblur_share",
    "impulse_share",
    "partly",
    "veto_brightened",
    "contrast_gain",
    "contrast_spread",
    "restore_contrast",
    "bypass_thresholds",
    "conv_relu",
    "PerturbationGate",
    "RouteMixture",
]

#: The routes of :class:`~recondefense.purifiers.RoutedPurifier`, in the order of its route probabilities: route 0
#: passes the image untouched, route 1 is the adversarial purifier, route 2 the corruption purifier.
ROUTES = ("pass", "adversarial", "corruption")


class RouteMixture(nn.Module):
    """``x + sum_k pk(x) * (P_k(x) - x)``, that is ``p0 * x + sum_k pk * P_k(x)``: a gate's softmax over routes
    (route 0's logit is fixed at 0, the gate gives one logit per expert) blends the image with its experts' outputs.

    With ``bypass_below`` > 0, in eval mode expert ``k`` runs only on the images whose ``pk`` is at least
    ``bypass_below`` (its share of the others goes to the pass route, each pixel within ``pk`` of the dense
    blend), so an image no expert is flagged for comes out as the pass route gives it, and clean traffic pays for
    the gate alone; training and tracing (export, ``torch.compile``) run every expert on every image. With
    ``pass_smoothing`` > 0 the pass route gives a slightly smoothed image instead of ``x`` (:func:`blend`).

    Args:
        gate: one logit per expert, ``(N, C, H, W)`` -> ``(N, len(experts))``.
        experts: the purifiers by attribute name (the state dict's prefixes), in route order 1, 2, ...
        bypass_below: the inference threshold above, in [0, 0.5], for every expert or one per expert (route
            order); 0 runs the expert on every image.
        pass_smoothing: the pass route's smoothing, in [0, 1]; 0 passes the image untouched.
        contrast_floor, contrast_target, black_point_floor: the image's levels restored first, before the gate and
            the experts see them (:func:`~recondefense.levels.restore_levels`; floors 0: never).
        strong, strong_above: a stronger purifier that stands in for the first expert on the images whose route-1
            probability is at least ``strong_above`` (:func:`blend`); None: the first expert serves every image.
        deblur, deblur_range, deblur_ratio_range: a deblurring purifier applied after the levels, before the gate
            and the experts, as much as :func:`~recondefense.levels.deblur_share` says for ``deblur_range`` and ``deblur_ratio_range``
            (:func:`partly`); None and None: none.
        brightness_veto: the gate also reads the image with its black point restored, and opens no further than
            that reading allows (:func:`~recondefense.gate.veto_brightened`), in (0, 0.5]; 0: one reading.
            ``veto_black_point``: the black point from which that reading restores it; ``veto_clipped``: the share
            of clipped pixels an image needs for that reading (0: none); ``veto_to_floor``: the veto's cap is the
            restored reading itself, a vetoed image keeps the veto's gate.
        impulse_range, impulse_noise_range: salt-and-pepper dots removed first
            (:func:`~recondefense.levels.remove_impulses`), as much as :func:`~recondefense.levels.impulse_share` says for them; None:
            never (and: by the dots' fraction alone).
        fog, fog_range: a :class:`~recondefense.haze.FogDetector` and the probability range over which an image
            gets the dehaze (:func:`~recondefense.haze.fog_share`), after the dots; None and None: none.
        fog_yields_to_gate: that share scaled by ``1 -`` the gate's opening on the image before the dehaze (an
            attacked image read as fog keeps its routes).
        steep_opening: ``(at, steepness)``, a second, steeper opening of the gate above its logit ``at``, after the
            veto (:func:`~recondefense.gate.steepen_opening`); None: one opening.
        brightness, brightness_range: a detector of ImageNet-C's brightness and the probability range over which an
            image is lowered to black (:func:`~recondefense.levels.restore_black_point`), after the levels (a
            washed-out image is stretched first); None and None: none. The gate reads the lowered image.
        snow, snow_range: a detector of ImageNet-C's snow and the probability range over which an image's routes
            shrink to none (:func:`~recondefense.haze.fog_share`), read after the levels; no pixel is changed (snowfall
            passes as the levels left it); None and None: none.

    Shape: ``(N, C, H, W)`` in [0, 1] -> ``(N, C, H, W)`` in [0, 1].
    """

    def __init__(
        self,
        gate: nn.Module,
        experts: Mapping[str, nn.Module],
        bypass_below: float | Sequence[float] = 0.0,
        pass_smoothing: float = 0.0,
        contrast_floor: float = 0.0,
        contrast_target: float = 0.2,
        strong: nn.Module | None = None,
        strong_above: float = 0.5,
        black_point_floor: float = 0.0,
        deblur: nn.Module | None = None,
        deblur_range: tuple[float, float] | None = None,
        brightness_veto: float = 0.0,
        deblur_ratio_range: tuple[float, float] | None = None,
        impulse_range: tuple[float, float] | None = None,
        impulse_noise_range: tuple[float, float] | None = None,
        veto_black_point: float = VETO_BLACK_POINT,
        veto_clipped: float = 0.0,
        fog: nn.Module | None = None,
        fog_range: tuple[float, float] | None = None,
        fog_yields_to_gate: bool = False,
        steep_opening: tuple[float, float] | None = None,
        veto_to_floor: bool = False,
        brightness: nn.Module | None = None,
        brightness_range: tuple[float, float] | None = None,
        snow: nn.Module | None = None,
        snow_range: tuple[float, float] | None = None,
    ) -> None:
        super().__init__()
        self.gate = gate
        self.expert_names = tuple(experts)
        for name, expert in experts.items():
            self.add_module(name, expert)
        self.strong = strong
        self.strong_above = float(strong_above)
        self.bypass_below = bypass_thresholds(bypass_below, len(experts))
        self.pass_smoothing = float(pass_smoothing)
        self.contrast_floor = float(contrast_floor)
        self.contrast_target = float(contrast_target)
        self.black_point_floor = float(black_point_floor)
        if (deblur is None) != (deblur_range is None):
            raise ValueError("a deblurring purifier and its sharpness range come together: give both or neither")
        self.deblur = deblur
        if (fog is None) != (fog_range is None):
            raise ValueError("a fog detector and its probability range come together: give both or neither")
        self.fog = fog
        self.fog_range = None if fog_range is None else (float(fog_range[0]), float(fog_range[1]))
        if (brightness is None) != (brightness_range is None):
            raise ValueError("a brightness detector and its probability range come together: give both or neither")
        self.brightness = brightness
        self.brightness_range = None if brightness_range is None else tuple(float(p) for p in brightness_range)
        if (snow is None) != (snow_range is None):
            raise ValueError("a snow detector and its probability range come together: give both or neither")
        self.snow = snow
        self.snow_range = None if snow_range is None else tuple(float(p) for p in snow_range)
        self.fog_yields_to_gate = bool(fog_yields_to_gate)
        self.deblur_range = None if deblur_range is None else (float(deblur_range[0]), float(deblur_range[1]))
        self.deblur_ratio_range = None if deblur_ratio_range is None else tuple(float(b) for b in deblur_ratio_range)
        self.impulse_range = None if impulse_range is None else tuple(float(f) for f in impulse_range)
        self.impulse_noise_range = None if impulse_noise_range is None else tuple(float(s) for s in impulse_noise_range)
        self.brightness_veto = float(brightness_veto)
        self.veto_black_point = float(veto_black_point)
        self.veto_clipped = float(veto_clipped)
        self.veto_to_floor = bool(veto_to_floor)
        self.steep_opening = None if steep_opening is None else (float(steep_opening[0]), float(steep_opening[1]))

    def experts(self) -> list[nn.Module]:
        """The experts in route order (route ``k`` is ``experts()[k - 1]``)."""
        return [getattr(self, name) for name in self.expert_names]

    def load_gate(self, state: Mapping[str, torch.Tensor], share_opening: bool = False) -> None:
        """Load a gate's state dict (keys without the ``gate.`` prefix). A gate of fewer outputs, e.g. a gated
        purifier's (one logit, sigmoid), fills the first experts' logits and leaves the others as they are: its
        logit becomes route 1's against route 0, so alone it would open exactly as it did.

        With ``share_opening`` (the start of training a routed gate from a gated one), its last logit also fills
        every remaining expert's, each lowered by ``log`` of the number of experts it now serves: route 0 keeps
        exactly the probability it had, and what the gate opened is shared evenly. A gate whose logit grows with
        high-frequency energy (hundreds on Gaussian noise) then starts the route loss near ``log 2`` on corrupted
        images, where a shut new route would start it in the hundreds, and its first steps stay small.

        Raises:
            ValueError: a gate of another trunk, or of more outputs than this one has experts.
        """
        own = self.gate.state_dict()
        mine = {k: v.clone() for k, v in own.items()}
        last = self._last_layer_keys()
        for key, value in state.items():
            target = mine.get(key)
            fewer = key in last and target is not None and value.shape[1:] == target.shape[1:]
            if target is None or (value.shape != target.shape and not (fewer and len(value) <= len(target))):
                shape = None if target is None else tuple(target.shape)
                raise ValueError(f"the gate weights do not fit: {key} {tuple(value.shape)} vs {shape} here")
            target[: len(value)] = value
            if fewer and share_opening and len(value) < len(target):
                shared = len(target) - len(value) + 1  # the last loaded logit and the rows it now fills
                target[len(value) - 1 :] = value[-1]
                if key.endswith("bias"):
                    target[len(value) - 1 :] -= math.log(shared)
        missing = sorted(set(own) - set(state))
        if missing:
            raise ValueError(f"the gate weights do not fit: missing {missing}")
        self.gate.load_state_dict(mine)

    @torch.no_grad()
    def route_above(self, threshold: float, source: int = 1, target: int = 2) -> None:
        """Send the images whose route-``source`` logit ``l`` exceeds ``threshold`` to route ``target`` instead:
        route ``target``'s logit becomes ``2 l - threshold`` (its output row twice ``source``'s, its bias twice
        less ``threshold``), so it beats route ``source`` by ``l - threshold`` where ``l > threshold`` and loses by
        as much below. A gate whose logit grows with high-frequency energy (a few units on PGD's perturbation,
        hundreds on Gaussian noise: ``scripts/gate_logits.py``) then routes noise to the corruption purifier and
        leaves every image below the threshold routed as the source route alone routed it (within
        ``exp(l - threshold)``).

        Raises:
            ValueError: a route that is not an expert's, or the same route twice.
        """
        experts = len(self.expert_names)
        if source == target or not (1 <= source <= experts and 1 <= target <= experts):
            raise ValueError(f"routes {source} -> {target}: expected two different routes in 1..{experts}")
        last = self.gate[-1]
        last.weight[target - 1] = 2 * last.weight[source - 1]
        last.bias[target - 1] = 2 * last.bias[source - 1] - threshold

    def _last_layer_keys(self) -> set[str]:
        """The state-dict keys of the gate's output layer (the one with a row per expert)."""
        last = len(self.gate) - 1 if isinstance(self.gate, nn.Sequential) else None
        return {f"{last}.weight", f"{last}.bias"}

    @property
    def stride(self) -> int:
        """Input height and width must be multiples of this (the largest of the experts' and the strong one's)."""
        extra = [net for net in (self.strong, self.deblur) if net is not None]
        return max(expert.stride for expert in [*self.experts(), *extra])

    def expert_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The gate's logit per expert (route 0's is 0), after the brightness veto if there is one:
        ``(N, C, H, W)`` -> ``(N, experts)``."""
        logits = self.gate(x)
        if self.brightness_veto > 0:
            always = self.training or is_tracing(x)
            veto = (self.brightness_veto, self.veto_black_point, self.veto_clipped)
            logits = veto_brightened(self.gate, x, logits, *veto, always=always, to_floor=self.veto_to_floor)
        if self.steep_opening is not None:
            logits = steepen_opening(logits, *self.steep_opening)
        return logits

    def route_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The logits of the routes, route 0 (pass) fixed at 0: ``(N, C, H, W)`` -> ``(N, 1 + experts)``."""
        return F.pad(self.expert_logits(x), (1, 0))  # a zero column in front (export keeps the batch size dynamic)

    def routes(self, x: torch.Tensor) -> torch.Tensor:
        """The route probabilities per image: ``(N, C, H, W)`` -> ``(N, 1 + experts)``, rows summing to 1."""
        return torch.softmax(self.route_logits(x), dim=1)

    def gate_logit(self, x: torch.Tensor) -> torch.Tensor:
        """The logit of "some expert" against "pass": ``logsumexp`` of the expert logits, ``(N, C, H, W)`` ->
        ``(N,)``; with one expert, a gated purifier's gate logit."""
        return torch.logsumexp(self.expert_logits(x), dim=1)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """The image as the gate and the experts see it: its salt-and-pepper dots removed as much as
        :func:`~recondefense.levels.impulse_share` says, dehazed as much as :func:`~recondefense.haze.fog_share`
        says, its levels restored (:func:`~recondefense.levels.restore_levels`), lowered to black as much as its
        brightness detector says, then deblurred
        as much as :func:`~recondefense.levels.deblur_share` says (each step only where configured). Shape kept, [0, 1], in ``x``'s memory
        format (its measures read the usual layout: on the CPU they run about twice as fast there as
        channels-last)."""
        return self._prepare(x)[0]

    def _prepare(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:meth:`prepare`'s image and each image's share ``(N,)`` that the dot removal, the dehaze and the snow
        step settled (``1 - (1 - impulse share) (1 - fog share) (1 - snow share)``; None without any)."""
        steps = (self.impulse_range, self.fog, self.brightness, self.deblur, self.contrast_floor or None)
        steps += (self.black_point_floor or None, self.snow)
        if all(step is None for step in steps):  # nothing to prepare: no layout round trip either
            return x, None
        channels_last = not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
        always = self.training or is_tracing(x)
        x, settled = self._dots_fog_levels(x.contiguous(), always)
        if self.snow is not None and self.snow_range is not None:
            snowy = fog_share(self.snow, x, self.snow_range)
            settled = snowy if settled is None else 1 - (1 - settled) * (1 - snowy)
        if self.brightness is not None and self.brightness_range is not None:
            lowered = fog_share(self.brightness, x, self.brightness_range)
            x = partly(x, lowered, partial(restore_black_point, floor=VETO_BLACK_POINT), always)
        if self.deblur is not None and self.deblur_range is not None:
            share = deblur_share(x, self.deblur_range, self.deblur_ratio_range, always)
            x = partly(x, share, self.deblur, always)
        return (x.contiguous(memory_format=torch.channels_last) if channels_last else x), settled

    def _dots_fog_levels(self, x: torch.Tensor, always: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The first steps of :meth:`_prepare`: the dot removal, the dehaze and the levels, with the share settled."""
        settled = None
        if self.impulse_range is not None:
            x, settled = clean_impulses(x, self.impulse_range, self.impulse_noise_range, always)
        if self.fog is not None and self.fog_range is not None:
            haze = self._fog_share(x, always)
            x = partly(x, haze, dehaze, always)
            settled = haze if settled is None else 1 - (1 - settled) * (1 - haze)
        return restore_levels(x, self.contrast_floor, self.contrast_target, self.black_point_floor), settled

    def lowering_share(self, x: torch.Tensor) -> torch.Tensor:
        """How far :meth:`forward` lowers each image to black (read after the dots, the dehaze and the levels; 0
        without a brightness step): ``(N, C, H, W)`` -> ``(N,)`` in [0, 1]."""
        return self._share_after_levels(self.brightness, self.brightness_range, x)

    def snow_share(self, x: torch.Tensor) -> torch.Tensor:
        """How far :meth:`forward` shrinks each image's routes for snow (read after the dots, the dehaze and the
        levels; 0 without a snow step): ``(N, C, H, W)`` -> ``(N,)`` in [0, 1]."""
        return self._share_after_levels(self.snow, self.snow_range, x)

    def _share_after_levels(
        self, detector: nn.Module | None, share_range: tuple[float, float] | None, x: torch.Tensor
    ) -> torch.Tensor:
        """``detector``'s :func:`~recondefense.haze.fog_share` of ``x`` after the dots, the dehaze and the levels;
        0 without a detector: ``(N, C, H, W)`` -> ``(N,)`` in [0, 1]."""
        if detector is None or share_range is None:
            return x.new_zeros(x.shape[0])
        x = self._dots_fog_levels(x.contiguous(), self.training or is_tracing(x))[0]
        return fog_share(detector, x, share_range)

    def dehaze_share(self, x: torch.Tensor) -> torch.Tensor:
        """How much of the dehaze :meth:`forward` gives each image (read after the dot removal; 0 without a fog
        step): ``(N, C, H, W)`` -> ``(N,)`` in [0, 1]."""
        if self.fog is None or self.fog_range is None:
            return x.new_zeros(x.shape[0])
        always = self.training or is_tracing(x)
        if self.impulse_range is not None:
            x = clean_impulses(x.contiguous(), self.impulse_range, self.impulse_noise_range, always)[0]
        return self._fog_share(x, always)

    def _fog_share(self, x: torch.Tensor, always: bool) -> torch.Tensor:
        """:func:`~recondefense.haze.fog_share` ``(N,)``, with ``fog_yields_to_gate`` scaled by ``1 -`` the gate's
        opening (:meth:`routes`' experts) on ``x`` as it is; the gate reads only the images whose share is above 0,
        unless ``always`` (training, tracing)."""
        share = fog_share(self.fog, x, self.fog_range)
        if not self.fog_yields_to_gate:
            return share
        if always:
            return share * self.routes(x)[:, 0]
        index = (share > 0).nonzero().flatten()
        if not len(index):
            return share
        return share.index_put((index,), share[index] * self.routes(x[index])[:, 0])

    def _expert_routes(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`prepare`'s image and its experts' route probabilities ``(N, experts)``, those of an image cleaned
        of dots, dehazed or read as snowy scaled by ``1 -`` the share those settled: the gate reads their traces as
        an attack's, and the classifier does best on the corrected image itself."""
        x, settled = self._prepare(x)
        routes = self.routes(x)[:, 1:]
        return x, routes if settled is None else routes * (1 - settled).unsqueeze(1)

    def gate_value(self, x: torch.Tensor) -> torch.Tensor:
        """How far :meth:`forward` sends the image to the experts, ``1 - p0`` on :meth:`prepare`'s image (less the
        share the dot removal and the dehaze settled): ``(N, C, H, W)`` -> ``(N,)`` in [0, 1). (:meth:`routes` and
        :meth:`gate_logit` read ``x`` as given.)"""
        return self._expert_routes(x)[1].sum(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, routes = self._expert_routes(x)
        strong = None if self.strong is None else (self.strong, self.strong_above)
        return blend(x, routes, self.experts(), self.bypass_below, self.training, self.pass_smoothing, strong)
