"""Projected Gradient Descent (Madry et al., 2018), L-inf."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import Attack

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
        steps: number of gradient steps.
        random_start: start from a uniform random point in the eps ball (Madry et al.).
        targeted: if True, ``labels`` are targets and the steps decrease their loss.

    Shape: ``(N, C, H, W)`` in [0, 1], labels ``(N,)`` -> ``(N, C, H, W)`` in [0, 1] within ``eps``.
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
        if eps < 0 or alpha < 0 or steps < 0:
            raise ValueError(f"expected eps, alpha, steps >= 0, got eps={eps}, alpha={alpha}, steps={steps}")
        self.eps = float(eps)
        self.alpha = float(alpha)
        self.steps = int(steps)
        self.random_start = random_start
        self.targeted = targeted

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
