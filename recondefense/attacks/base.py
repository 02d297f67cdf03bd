"""The :class:`Attack` base class: input checks, model freezing and restoring, torchattacks-like call."""

from __future__ import annotations

import contextlib
import math
import operator
from collections.abc import Callable, Iterator
from typing import TypeVar

import torch
from torch import nn

from ..transform import check_pixels

__all__ = ["Attack", "frozen"]

T = TypeVar("T")


def check_number(name: str, value: object) -> float:
    """``value`` (a real number, or a one-element tensor) as a float; refuses NaN, Inf and negative values."""
    try:
        if isinstance(value, (bool, str, bytes)):
            raise TypeError
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"expected {name} as a number, got {value!r} ({type(value).__name__})") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"expected {name} to be a finite number >= 0, got {value}")
    return number


def check_count(name: str, value: object, minimum: int = 0) -> int:
    """``value`` as an int, refusing non-integers (``2.7`` is not silently truncated) and values below ``minimum``."""
    try:
        if isinstance(value, bool):
            raise TypeError
        count = operator.index(value)
    except TypeError:
        raise TypeError(f"expected {name} as an integer, got {value!r} ({type(value).__name__})") from None
    if count < minimum:
        raise ValueError(f"expected {name} >= {minimum}, got {count}")
    return count


@contextlib.contextmanager
def frozen(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode with parameters not requiring grad; restore both exactly on exit.

    Every submodule's ``training`` flag and every parameter's ``requires_grad`` flag are saved and
    put back, so a model that keeps some parts in eval (frozen batch norm, a defense) is unchanged.
    Because parameters do not require grad during the attack, no gradient reaches their ``.grad``.
    """
    modes = [(module, module.training) for module in model.modules()]
    flags = [(param, param.requires_grad) for param in model.parameters()]
    try:
        model.eval()
        for param, _ in flags:
            param.requires_grad_(False)
        yield model
    finally:
        for module, mode in modes:
            module.training = mode
        for param, flag in flags:
            param.requires_grad_(flag)


def _model_device(model: nn.Module) -> torch.device | None:
    tensor = next(model.parameters(), None)
    if tensor is None:
        tensor = next(model.buffers(), None)
    return None if tensor is None else tensor.device


class Attack:
    """Base class of the attacks: ``x_adv = attack(images, labels)``, like torchattacks.

    The model takes pixel-space input in [0, 1] (normalization inside it, e.g.
    ``Defended(net, defense, mean=None, std=None)``) and returns ``(N, classes)`` logits. During
    the call it is in eval mode with frozen parameters (see :func:`frozen`); its modes and
    ``requires_grad`` flags are restored afterwards and no gradient accumulates in its parameters.

    Shape: images ``(N, C, H, W)`` or ``(C, H, W)`` in [0, 1] (``uint8`` scaled by 1/255), labels
    ``(N,)`` (or a scalar for one image) integer class indices in ``[0, classes)``, or None to use the
    model's predictions on the clean images (not allowed for a targeted attack) -> adversarial images
    of the input's shape, floating, in [0, 1].

    Subclasses implement :meth:`forward` on a validated floating ``(N, C, H, W)`` batch and get logits
    from :meth:`_logits`, which checks them (and, on the first call, the labels' range).
    """

    #: Whether ``labels`` are targets to reach (set by targeted attacks): they must then be given.
    targeted: bool = False

    def __init__(self, model: nn.Module) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"expected the model as an nn.Module, got {type(model).__name__}")
        self.model = model
        self._unchecked_labels: torch.Tensor | None = None

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k != "model" and not k.startswith("_"))
        return f"{type(self).__name__}({fields})"

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Attack a checked ``(N, C, H, W)`` float batch in [0, 1] with ``(N,)`` labels on the model's device."""
        raise NotImplementedError

    def _run(
        self, fn: Callable[[torch.Tensor, torch.Tensor], T], images: torch.Tensor, labels: torch.Tensor | None
    ) -> T:
        """Check inputs, freeze the model, and call ``fn(x, y)`` on a ``(N, C, H, W)`` batch."""
        x = check_pixels(images, device=_model_device(self.model)).detach()
        with frozen(self.model), torch.enable_grad():
            y = self._check_labels(x, labels)
            self._unchecked_labels = y  # their range is checked against the first logits the attack computes
            try:
                return fn(x, y)
            finally:
                self._unchecked_labels = None

    def __call__(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Return adversarial images: same shape as ``images``, floating, in [0, 1]."""
        out = self._run(self.forward, images, labels)
        return out.squeeze(0) if images.ndim == 3 else out

    def _check_labels(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """``(N,)`` int64 labels for the ``(N, C, H, W)`` batch ``x``: ``labels`` of shape ``(N,)`` (or a scalar
        for a single image), or the model's predictions when None (untargeted attacks only)."""
        if labels is None:
            if self.targeted:
                raise ValueError(
                    f"{type(self).__name__}(targeted=True) needs the target classes: pass labels of shape (N,) "
                    "(without them the targets would be the model's own predictions, already reached)"
                )
            with torch.no_grad():
                return self._logits(x).argmax(1)
        labels = torch.as_tensor(labels, device=x.device)
        if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
            raise TypeError(f"expected integer class labels, got dtype {labels.dtype}")
        if tuple(labels.shape) != (len(x),) and not (labels.ndim == 0 and len(x) == 1):
            raise ValueError(
                f"expected labels of shape ({len(x)},), one class index per image, got shape {tuple(labels.shape)}"
                + ("" if labels.numel() != len(x) else f": flatten them with labels.reshape({len(x)})")
            )
        return labels.reshape(-1).long()

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        """The model's ``(N, classes)`` logits on ``x``; raises ``ValueError`` for another output, or for
        labels outside ``[0, classes)`` on the first call of an attack."""
        logits = self.model(x)
        if not isinstance(logits, torch.Tensor):
            raise ValueError(
                f"expected the model to return ({len(x)}, classes) logits, got a {type(logits).__name__}: wrap it "
                "in an nn.Module whose forward returns the logits tensor only"
            )
        if logits.ndim != 2 or len(logits) != len(x):
            raise ValueError(
                f"expected the model to return ({len(x)}, classes) logits for {len(x)} image(s), got shape "
                f"{tuple(logits.shape)}: one row of class scores per image"
            )
        labels, self._unchecked_labels = self._unchecked_labels, None
        if labels is not None and labels.numel():
            low, high = labels.min().item(), labels.max().item()
            if low < 0 or high >= logits.shape[1]:
                raise ValueError(
                    f"expected labels in [0, {logits.shape[1]}) for a model with {logits.shape[1]} classes, "
                    f"got labels from {low} to {high}"
                )
        return logits
