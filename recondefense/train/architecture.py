"""The purifier a training run builds, read from its options: ``--arch`` and the network's settings, ``--widths``
parsing and the ``--freeze`` prefixes. Below :mod:`~recondefense.train.config` (which checks the options with it)
and :mod:`~recondefense.train.network` (which builds the network from it)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import fields
from typing import Any, Protocol

from ..purifier_config import PurifierConfig
from ..purifiers import build_purifier

__all__ = [
    "NetworkOptions",
    "START_SETTINGS",
    "start_settings",
    "parse_widths",
    "purifier_config",
    "frozen_prefixes",
    "check_freeze",
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


def start_settings(start: Mapping[str, Any] | None) -> dict[str, Any]:
    """The :data:`START_SETTINGS` of the start weights' hyper-parameters ``start`` (a
    :attr:`~recondefense.ReconstructiveDefense.hyperparameters`, as config.json holds them), for a run's
    ``start_settings``; ``{}`` without start weights."""
    return {} if start is None else {k: start[k] for k in START_SETTINGS if k in start}


def purifier_config(config: NetworkOptions, in_channels: int = 1) -> PurifierConfig:
    """The purifier ``config`` trains, for images of ``in_channels`` channels (the parameter names do not depend
    on it): what :class:`~recondefense.ReconstructiveDefense` takes and the saved config.json holds, with the
    start weights' :data:`START_SETTINGS` (``config.start_settings``)."""
    return PurifierConfig(
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
        **{k: v for k, v in config.start_settings.items() if k in START_SETTINGS},
    )


def frozen_prefixes(config: NetworkOptions, names: Iterable[str]) -> list[str]:
    """The ``freeze`` prefixes, each checked to name some of the parameter ``names``, and not all of them.

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
