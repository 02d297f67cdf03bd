"""The purifier a training run builds, read from its options: ``--arch`` and the network's settings, ``--widths``
parsing and the ``--freeze`` prefixes. Below :mod:`~recondefense.train.config` (which checks the options with it)
and :mod:`~recondefense.train.network` (which builds the network from it)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import TrainConfig

__all__ = ["parse_widths", "architecture", "frozen_prefixes", "check_freeze"]


def parse_widths(text: str) -> list[int]:
    """``--widths "16,16,16"`` -> ``[16, 16, 16]``.

    Raises:
        ValueError: not comma-separated positive integers.
    """
    try:
        widths = [int(v) for v in text.split(",")]
    except ValueError:
        widths = []
    if not widths or min(widths) < 1:
        raise ValueError(f"--widths {text!r}: expected comma-separated positive integers, e.g. 16,16,16")
    return widths


def architecture(config: TrainConfig) -> dict[str, Any]:
    """The purifier's settings in ``config``: what :func:`~recondefense.purifiers.build_purifier` and
    :class:`~recondefense.ReconstructiveDefense` take besides the channel count."""
    return {
        "arch": config.arch,
        "width": config.width,
        "depth": config.depth,
        "skip": config.skip,
        "widths": None if config.widths is None else parse_widths(config.widths),
        "detail_width": config.detail_width,
        "detail_depth": config.detail_depth,
        "inner": config.inner,
    }


def frozen_prefixes(config: TrainConfig, names: Iterable[str]) -> list[str]:
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


def check_freeze(config: TrainConfig) -> None:
    """Check ``config.freeze`` against the parameter names of the ``config.arch`` network, laid out on the meta
    device (nothing allocated; the names do not depend on the channel count).

    Raises:
        ValueError: see :func:`frozen_prefixes`.
    """
    import torch

    from ..purifiers import build_purifier

    with torch.device("meta"):
        net = build_purifier(in_channels=1, **architecture(config))
    frozen_prefixes(config, (name for name, _ in net.named_parameters()))
