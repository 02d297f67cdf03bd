"""The purifier a training run builds, read from its options: ``--arch`` and the network's settings, ``--widths``
parsing and the ``--freeze`` prefixes. Below :mod:`~recondefense.train.config` (which checks the options with it)
and :mod:`~recondefense.train.network` (which builds the network from it)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import fields
from typing import Any, Protocol

from ..purifier_config import ARCHITECTURE_KEYS, PurifierConfig
from ..purifiers import build_purifier

__all__ = [
    "NetworkOptions",
    "START_SETTINGS",
    "start_settings",
    "parse_widths",
    "purifier_config",
    "frozen_prefixes",
    "check_freeze",
    "ADOPTED_SETTINGS",
    "ALWAYS_FROZEN",
    "NETWORK_OPTIONS",
    "start_network_options",
    "settings_text",
]


class NetworkOptions(Protocol):
    """The network options of a training run that this module reads (a :class:`~.config.TrainConfig` has them)."""

    arch: str
    width: int
    depth: int
    skip: bool
    widths: str | None
    detail_width: int
    detail_depth: int
    inner: str
    corruption_width: int
    corruption_depth: int
    bypass_below: float
    pass_smoothing: float
    contrast_floor: float
    contrast_target: float
    strong_widths: str | None
    strong_above: float
    freeze: str | None
    start_settings: Mapping[str, Any]


def parse_widths(text: str, flag: str = "--widths") -> list[int]:
    """``--widths "16,16,16"`` (or another ``flag``'s) -> ``[16, 16, 16]``.

    Raises:
        ValueError: not comma-separated positive integers.
    """
    try:
        widths = [int(v) for v in text.split(",")]
    except ValueError:
        widths = []
    if not widths or min(widths) < 1:
        raise ValueError(f"{flag} {text!r}: expected comma-separated positive integers, e.g. 16,16,16")
    return widths


#: The purifier settings no training option sets, which a run started from weights takes from them
#: (:func:`start_settings`): the weightless corrections at inference (salt-and-pepper removal, the unsharp mask and
#: its measures, the black point, the brightness veto, the corruption purifier's strength) and a deblurring
#: purifier's shape. Without them a fine-tuned default would lose what it does besides its networks.
START_SETTINGS: tuple[str, ...] = tuple(
    f.name for f in fields(PurifierConfig) if f.name != "in_channels" and f.name not in NetworkOptions.__annotations__
)


#: The options that change no parameter's shape, which a run started from weights takes from them where it leaves
#: them at their defaults (a start's other values would load without an error and be lost without a word; the
#: command line cannot spell every one, e.g. the default's per-expert ``bypass_below``).
ADOPTED_SETTINGS = ("bypass_below", "pass_smoothing", "contrast_floor", "contrast_target", "strong_above")


#: The network options a run started from weights takes from them: ``fit`` every one, the command line those whose
#: flags it leaves at their defaults (:func:`start_network_options`).
NETWORK_OPTIONS = (
    "arch",
    "width",
    "depth",
    "skip",
    "widths",
    "detail_width",
    "detail_depth",
    "inner",
    "corruption_width",
    "corruption_depth",
    "strong_widths",
    *ADOPTED_SETTINGS,
)


def start_network_options(start: Mapping[str, Any]) -> dict[str, Any]:
    """The start weights' hyper-parameters ``start`` (as config.json holds them) as a run's :data:`NETWORK_OPTIONS`,
    ``widths`` and ``strong_widths`` spelled as their flags take them (``"16,32,64"``)."""
    options = {k: start[k] for k in NETWORK_OPTIONS if k in start}
    return options | {k: _flag_value(options[k]) for k in ("widths", "strong_widths") if k in options}


def start_settings(start: Mapping[str, Any] | None, config: NetworkOptions) -> dict[str, Any]:
    """What a run of ``config`` takes from the start weights' hyper-parameters ``start`` (a
    :attr:`~recondefense.ReconstructiveDefense.hyperparameters`, as config.json holds them), for its
    ``start_settings``: their :data:`START_SETTINGS`, and their :data:`ADOPTED_SETTINGS` that ``config`` leaves at
    the defaults; ``{}`` without start weights."""
    if start is None:
        return {}
    left = [k for k in ADOPTED_SETTINGS if getattr(config, k) == getattr(PurifierConfig, k)]
    return {k: start[k] for k in (*START_SETTINGS, *left) if k in start}


def purifier_config(config: NetworkOptions, in_channels: int = 1) -> PurifierConfig:
    """The purifier ``config`` trains, for images of ``in_channels`` channels (the parameter names do not depend
    on it): what :class:`~recondefense.ReconstructiveDefense` takes and the saved config.json holds, with the
    start weights' settings in ``config.start_settings`` (:func:`start_settings`)."""
    values = dict(
        in_channels=in_channels,
        width=config.width,
        depth=config.depth,
        skip=config.skip,
        widths=None if config.widths is None else tuple(parse_widths(config.widths)),
        arch=config.arch,
        detail_width=config.detail_width,
        detail_depth=config.detail_depth,
        inner=config.inner,
        corruption_width=config.corruption_width,
        corruption_depth=config.corruption_depth,
        bypass_below=config.bypass_below,
        pass_smoothing=config.pass_smoothing,
        contrast_floor=config.contrast_floor,
        contrast_target=config.contrast_target,
        strong_widths=None
        if config.strong_widths is None
        else tuple(parse_widths(config.strong_widths, "--strong-widths")),
        strong_above=config.strong_above,
    )
    carried = (*START_SETTINGS, *ADOPTED_SETTINGS)
    return PurifierConfig(**(values | {k: v for k, v in config.start_settings.items() if k in carried}))


#: Parameters trained apart, by their own recipe, that a purifier's training never changes: a routed purifier's fog,
#: brightness and snow detectors (``scripts/train_fog_detector.py``; the triplet loss would otherwise move them
#: through the shares they give).
ALWAYS_FROZEN = ("fog.", "brightness.", "snow.")


def frozen_prefixes(config: NetworkOptions, names: Iterable[str]) -> list[str]:
    """The ``freeze`` prefixes, each checked to name some of the parameter ``names``, and not all of them, and the
    :data:`ALWAYS_FROZEN` prefixes that name some of them.

    Raises:
        ValueError: a prefix no parameter name starts with, or prefixes that leave nothing to train.
    """
    names = list(names)
    frozen = [prefix for prefix in (config.freeze or "").split(",") if prefix]
    unknown = [prefix for prefix in frozen if not any(name.startswith(prefix) for name in names)]
    if unknown:
        tops = sorted({name.split(".")[0] for name in names})
        raise ValueError(
            f"--freeze {config.freeze!r}: no parameter of the --arch {config.arch} network starts with "
            f"{', '.join(repr(prefix) for prefix in unknown)}; its parameter names start with {tops}"
        )
    frozen += [prefix for prefix in ALWAYS_FROZEN if any(name.startswith(prefix) for name in names)]
    if frozen and all(any(name.startswith(prefix) for prefix in frozen) for name in names):
        raise ValueError(f"--freeze {config.freeze!r} leaves no parameter to train")
    return frozen


def check_freeze(config: NetworkOptions) -> None:
    """Check ``config.freeze`` against the parameter names of the ``config.arch`` network, laid out on the meta
    device (nothing allocated; the names do not depend on the channel count).

    Raises:
        ValueError: see :func:`frozen_prefixes`.
    """
    import torch

    with torch.device("meta"):
        net = build_purifier(purifier_config(config))
    frozen_prefixes(config, (name for name, _ in net.named_parameters()))


def settings_text(arch: str, values: dict[str, Any], flags: bool) -> str:
    """A network's settings as the caller writes them: ``--arch recon --width 16 ...`` or ``arch recon, width 16``."""
    hidden = ("in_channels", "width", "depth") if values.get("widths") else ("in_channels", "widths")
    keys = ["arch", *(k for k in ARCHITECTURE_KEYS[arch] if k not in hidden and k not in START_SETTINGS)]
    values = {**values, "arch": arch}
    values = {k: _flag_value(v) for k, v in values.items()}
    if not flags:
        return ", ".join(f"{k} {values[k]}" for k in keys)
    return " ".join(
        ("--" if values[k] else "--no-") + k if isinstance(values[k], bool) else f"--{k.replace('_', '-')} {values[k]}"
        for k in keys
    )


def _flag_value(value: Any) -> Any:
    """A setting as its command-line flag takes it (lists comma-separated)."""
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else value
