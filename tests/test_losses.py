"""Eq. 1 and Eq. 2 against hand computations."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from recondefense.losses import ReconstructiveLoss, visual_loss
from recondefense.metrics import psnr


def test_visual_loss_matches_hand_computation():
    clean = torch.zeros(2, 1, 2, 2)
    recon = torch.tensor([[[[0.1, 0.1], [0.1, 0.1]]], [[[0.2, 0.0], [0.0, 0.0]]]])
    # image 0: mse 0.01, rmse 0.1; image 1: mse 0.04/4 = 0.01, rmse 0.1
    parts = visual_loss(recon, clean, alpha=1.0, beta=0.01, c=100.0)
    expected_rmse = 0.1
    expected_psnr_term = 100 + 10 * math.log10(0.01)  # = 80 (PSNR 20 dB)
    assert math.isclose(parts.rmse.item(), expected_rmse, rel_tol=1e-5)
    assert math.isclose(parts.psnr_term.item(), expected_psnr_term, rel_tol=1e-5)
    assert math.isclose(parts.total.item(), 1.0 * expected_rmse + 0.01 * expected_psnr_term, rel_tol=1e-5)
    assert torch.allclose(psnr(recon, clean), torch.tensor([20.0, 20.0]))


def test_reconstructive_loss_is_visual_plus_cross_entropy():
    torch.manual_seed(0)
    classifier = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    clean, recon = torch.rand(4, 3, 2, 2), torch.rand(4, 3, 2, 2)
    labels = torch.tensor([0, 1, 2, 1])
    loss = ReconstructiveLoss(classifier, visual_weight=0.5, ce_weight=2.0)
    parts = loss(recon, clean, labels)
    ce = F.cross_entropy(classifier(recon), labels)
    visual = visual_loss(recon, clean).total
    torch.testing.assert_close(parts.total, 0.5 * visual + 2.0 * ce)
    torch.testing.assert_close(parts.cross_entropy, ce)
    assert not any(p.requires_grad for p in classifier.parameters())


def test_loss_gradient_reaches_reconstruction_only():
    classifier = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    recon = torch.rand(2, 3, 2, 2, requires_grad=True)
    ReconstructiveLoss(classifier)(recon, torch.rand(2, 3, 2, 2), torch.tensor([0, 2])).total.backward()
    assert recon.grad is not None and all(p.grad is None for p in classifier.parameters())
