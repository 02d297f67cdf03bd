"""Projected Gradient Descent (Madry et al., 2018), L-inf."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import Attack, check_count, check_number

__all__ = ["PGD"]


class PGD(Attack):
    """``steps`` signed-gradient steps of size ``alpha``, projected onto the ``eps`` L-inf ball and [0, 1].

    Paper defaults (Table 1): ``eps=0.01, alpha=0.004, steps=10``, no random start, in [0, 1]
    pixel space. Without random start the iterates equal ``torchattacks.PGD(..., random_start=False)``.
    To attack a defense end to end, pass the defended pixel-space model (see
    :func:`~recondefense.attacks.adaptive_model`, which adds BPDA/EOT where the defense needs them).

    Args:
        model: pixel-space classifier, ``(N, C, H, W)`` in [0, 1] -> ``(N, classes)`` logits.
        eps: L-inf radius, in [0, 1] pixel units.
        alpha: step size.
        steps: number of gradient steps (an integer >= 0).
        random_start: start from a uniform random point in the eps ball (Madry et al.).
        targeted: if True, ``labels`` are targets (required) and the steps decrease their loss.

    Shape: ``(N, C, H, W)`` in [0, 1], labels ``(N,)`` -> ``(N, C, H, W)`` in [0, 1] within ``eps``.

    Raises:
        TypeError, ValueError: ``eps`` or ``alpha`` not a finite number >= 0, ``steps`` not an integer >= 0.
    """

    def __init__(
        self,
        model: nn.Module,
        eps: float = 0.01,
        alpha: float = 0.004,
        steps: int = 10,
        random_start: bool = False,
        *,
        targeted: bool = False,
    ) -> None:
        super().__init__(model)
        self.eps = check_number("eps", eps)
        self.alpha = check_number("alpha", alpha)
        self.steps = check_count("steps", steps)
        self.random_start = bool(random_start)
        self.targeted = bool(targeted)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        adv = images.clone()
        if self.random_start:
            adv = (adv + torch.empty_like(adv).uniform_(-self.eps, self.eps)).clamp(0, 1)
        for _ in range(self.steps):
            adv.requires_grad_(True)
            loss = F.cross_entropy(self._logits(adv), labels)
            (grad,) = torch.autograd.grad(-loss if self.targeted else loss, adv)
            adv = adv.detach() + self.alpha * grad.sign()
            delta = (adv - images).clamp(-self.eps, self.eps)
            adv = (images + delta).clamp(0, 1).detach()
        return adv
