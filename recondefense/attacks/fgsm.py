"""Fast Gradient Sign Method (Goodfellow et al., 2015), L-inf."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import Attack, check_number

__all__ = ["FGSM"]


class FGSM(Attack):
    """One signed-gradient step of size ``eps`` on the cross-entropy loss, clipped to [0, 1].

    Paper default (Table 1): ``eps=0.01`` in [0, 1] pixel space (Fashion-MNIST needs a larger eps).
    Same update as ``torchattacks.FGSM``.

    Args:
        model: pixel-space classifier, ``(N, C, H, W)`` in [0, 1] -> ``(N, classes)`` logits.
        eps: L-inf size of the perturbation, in [0, 1] pixel units.
        targeted: if True, ``labels`` are targets (required) and the step decreases their loss.

    Shape: ``(N, C, H, W)`` in [0, 1], labels ``(N,)`` -> ``(N, C, H, W)`` in [0, 1] within ``eps``.

    Raises:
        TypeError, ValueError: ``eps`` not a finite number >= 0.
    """

    def __init__(self, model: nn.Module, eps: float = 0.01, *, targeted: bool = False) -> None:
        super().__init__(model)
        self.eps = check_number("eps", eps)
        self.targeted = bool(targeted)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x = images.clone().requires_grad_(True)
        loss = F.cross_entropy(self._logits(x), labels)
        (grad,) = torch.autograd.grad(-loss if self.targeted else loss, x)
        return (images + self.eps * grad.sign()).clamp(0, 1).detach()
