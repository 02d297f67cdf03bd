"""The paper's training losses: the visual loss (Eq. 1) and visual + classification (Eq. 1 + Eq. 2)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .metrics import psnr

__all__ = [
    "EQ1_ALPHA",
    "EQ1_BETA",
    "EQ1_C",
    "VISUAL_LOSSES",
    "visual_loss",
    "VisualLossParts",
    "ReconstructiveLoss",
    "LossParts",
    "psnr",
    "guidance_loss",
    "GUIDANCES",
]

#: The kinds of :func:`visual_loss`: the paper's Eq. 1, or the plain mean squared error.
VISUAL_LOSSES = ("eq1", "mse")

#: The paper's Eq. 1 constants (section 3.2), the defaults of :func:`visual_loss`, :class:`ReconstructiveLoss` and
#: ``TrainConfig``: the RMSE weight alpha, the PSNR-term weight beta and the PSNR offset C (dB).
EQ1_ALPHA, EQ1_BETA, EQ1_C = 1.0, 0.01, 100.0


@dataclass
class VisualLossParts:
    """Eq. 1 and its two terms, each a scalar tensor averaged over the batch."""

    total: torch.Tensor
    rmse: torch.Tensor
    psnr_term: torch.Tensor


def visual_loss(
    reconstruction: torch.Tensor,
    target: torch.Tensor,
    *,
    alpha: float = EQ1_ALPHA,
    beta: float = EQ1_BETA,
    c: float = EQ1_C,
    eps: float = 1e-10,
    kind: str = "eq1",
) -> VisualLossParts:
    """Eq. 1: ``alpha * RMSE + beta * (C + log(squared error))``, paper defaults alpha=1, beta=0.01, C=100.

    Reduction: per image ``i`` (all ``C*H*W`` values), ``rmse_i = sqrt(mean (x - x^)^2)`` and the
    PSNR term ``C + 10*log10(mean (x - x^)^2 + eps) = C - PSNR_i`` (dB, unit peak); both are then
    averaged over the batch. The paper writes ``log`` of the *sum* of squared errors; using the mean
    and base 10 changes the term by a constant and a factor, so it reads as ``C - PSNR`` and matches
    the official code's ``C + 10*log10(per-image MSE)`` averaged over the batch.

    ``kind="mse"`` makes ``total`` the plain mean squared error over the batch (alpha, beta and C unused; the two
    terms are still returned for the logs). Eq. 1 suits a purifier that redraws every image. It does not suit one
    that should leave some inputs as they are (a residual purifier, with clean images among its inputs): at an
    image it reproduces exactly, the gradients of ``log(mse_i)`` and ``sqrt(mse_i)`` grow without bound (``1 /
    mse_i``), so a few untouched images pin the whole network to the identity. The MSE's gradient there is 0.

    Args:
        reconstruction, target: ``(N, C, H, W)`` in [0, 1].
        kind: ``"eq1"`` (the paper) or ``"mse"``.

    Returns:
        :class:`VisualLossParts` with ``total``, ``rmse`` and ``psnr_term`` (scalars).
    """
    if kind not in VISUAL_LOSSES:
        raise ValueError(f"unknown visual loss {kind!r}: expected one of {list(VISUAL_LOSSES)}")
    if reconstruction.shape != target.shape:
        raise ValueError(
            f"reconstruction {tuple(reconstruction.shape)} and target {tuple(target.shape)} differ in shape"
        )
    mse = (reconstruction.float() - target.float()).square().flatten(1).mean(1)
    rmse = torch.sqrt(mse + eps).mean()
    psnr_term = (c + 10 * torch.log10(mse + eps)).mean()
    total = alpha * rmse + beta * psnr_term if kind == "eq1" else mse.mean()
    return VisualLossParts(total, rmse, psnr_term)


@dataclass
class LossParts:
    """Eq. 1 + Eq. 2 and their parts (scalar tensors), plus the classifier's logits on x^."""

    total: torch.Tensor
    visual: torch.Tensor
    rmse: torch.Tensor
    psnr_term: torch.Tensor
    cross_entropy: torch.Tensor
    logits: torch.Tensor


class ReconstructiveLoss(nn.Module):
    """``visual_weight * Eq. 1 + ce_weight * Eq. 2`` with the frozen classifier as discriminator.

    Eq. 2 is the categorical cross-entropy of ``classifier(x^)`` against the labels, averaged over
    the batch. The paper sums the two (both weights 1); the official code uses
    ``visual_weight=0.005`` in this phase.

    Args:
        classifier: pixel-space classifier (input in [0, 1]); frozen here (``requires_grad_(False)``).
        alpha, beta, c: Eq. 1 constants.
        visual_weight, ce_weight: weights of Eq. 1 and Eq. 2.
    """

    def __init__(
        self,
        classifier: nn.Module,
        *,
        alpha: float = EQ1_ALPHA,
        beta: float = EQ1_BETA,
        c: float = EQ1_C,
        visual_weight: float = 1.0,
        ce_weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.classifier = classifier.eval().requires_grad_(False)
        self.alpha, self.beta, self.c = alpha, beta, c
        self.visual_weight, self.ce_weight = visual_weight, ce_weight

    def forward(self, reconstruction: torch.Tensor, clean: torch.Tensor, labels: torch.Tensor) -> LossParts:
        """Loss of ``reconstruction`` (N, C, H, W) against ``clean`` and integer ``labels`` (N,)."""
        visual = visual_loss(reconstruction, clean, alpha=self.alpha, beta=self.beta, c=self.c)
        logits = self.classifier(reconstruction)
        ce = F.cross_entropy(logits.float(), labels)
        total = self.visual_weight * visual.total + self.ce_weight * ce
        return LossParts(total, visual.total, visual.rmse, visual.psnr_term, ce, logits)


#: Guidance of the joint phase: the paper's cross-entropy to the labels, or matching the frozen classifier's
#: logits on the clean image (HGD's representation-guided loss, Liao et al. CVPR 2018) by KL or L1.
GUIDANCES = ("ce", "kl", "logits-l1")


def guidance_loss(logits: torch.Tensor, clean_logits: torch.Tensor, labels: torch.Tensor, kind: str) -> torch.Tensor:
    """How far the classifier's ``logits`` on a purified image are from what it says on the clean image.

    Args:
        logits: ``(N, K)`` on the purified image (differentiable).
        clean_logits: ``(N, K)`` on the clean image (a constant target).
        labels: ``(N,)`` integer labels, used by ``"ce"`` only.
        kind: ``"ce"`` (Eq. 2: cross-entropy to ``labels``), ``"kl"`` (KL(softmax(clean) || softmax(logits)),
            mean over the batch) or ``"logits-l1"`` (mean absolute logit difference, HGD).

    Returns:
        A scalar tensor.
    """
    logits = logits.float()
    if kind == "ce":
        return F.cross_entropy(logits, labels)
    if kind == "kl":
        target = F.log_softmax(clean_logits.float(), dim=1)
        return F.kl_div(F.log_softmax(logits, dim=1), target, log_target=True, reduction="batchmean")
    if kind == "logits-l1":
        return (logits - clean_logits.float()).abs().mean()
    raise ValueError(f"unknown guidance {kind!r}: expected one of {GUIDANCES}")
