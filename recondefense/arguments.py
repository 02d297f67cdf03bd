"""What the command lines' arguments share: argparse value types and the ``--device`` check, run before anything
is loaded (torch is imported only when a device name needs it, so ``--help`` and argument errors stay fast)."""

from __future__ import annotations

import argparse

__all__ = ["check_device", "corruption_list", "number_pair", "positive_int"]


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (a 0 or negative count must not fall back to a default silently)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def number_pair(text: str) -> tuple[float, float]:
    """argparse type: two numbers separated by a comma, e.g. ``LOW,HIGH``."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 2:
        raise argparse.ArgumentTypeError(f"expected two numbers separated by a comma, got {text!r}")
    return values


def corruption_list(text: str) -> tuple[str, ...]:
    """argparse type: comma-separated names of corruptions :func:`~recondefense.corruptions.corrupt` knows (the 15
    ImageNet-C ones and its four validation ones), at least one."""
    from .corruptions import corruption_names  # torch: only once a value is parsed

    try:
        names = tuple(corruption_names(text))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    if not names:
        raise argparse.ArgumentTypeError("expected at least one corruption")
    return names


def check_device(name: str) -> None:
    """Refuse a ``--device`` torch cannot parse or this machine lacks: ``"auto"``, ``"cpu"``, ``"cuda"``,
    ``"cuda:N"`` or ``"mps"`` pass where the machine has them.

    Raises:
        ValueError: one line naming the flag, the value and what is allowed.
    """
    if name == "auto":
        return
    import torch

    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"--device {name!r}: expected auto, cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: this machine has no CUDA device (use --device cpu or auto)")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {name}: this machine has no MPS device (use --device cpu or auto)")
