"""The :class:`Attack` base class: input checks, model freezing and restoring, torchattacks-like call."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TypeVar

import torch
from torch import nn

from ..transform import check_pixels

__all__ = ["Attack", "frozen"]

T = TypeVar("T")


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
    ``(N,)`` (or a scalar for one image) class indices, or None to use the model's predictions on
    the clean images -> adversarial images of the input's shape, floating, in [0, 1].

    Subclasses implement :meth:`forward` on a validated floating ``(N, C, H, W)`` batch.
    """

    def __init__(self, model: nn.Module) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"expected the model as an nn.Module, got {type(model).__name__}")
        self.model = model

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
            return fn(x, self._check_labels(x, labels))

    def __call__(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Return adversarial images: same shape as ``images``, floating, in [0, 1]."""
        out = self._run(self.forward, images, labels)
        return out.squeeze(0) if images.ndim == 3 else out

    def _check_labels(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if labels is None:
            with torch.no_grad():
                return self.model(x).argmax(1)
        labels = torch.as_tensor(labels, device=x.device)
        if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
            raise TypeError(f"expected integer class labels, got dtype {labels.dtype}")
        labels = labels.reshape(-1).long()
        if labels.numel() != len(x):
            raise ValueError(
                f"expected one label per image ({len(x)}), got labels of shape {tuple(labels.shape)}: "
                "pass labels of shape (N,)"
            )
        return labels

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.model(x)
        if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
            raise ValueError(
                "expected the model to return (N, classes) logits, got "
                f"{tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__}"
            )
        return logits
