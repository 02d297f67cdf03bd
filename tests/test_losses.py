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


def test_the_mse_kind_is_the_mean_squared_error_and_an_unknown_kind_is_refused():
    torch.manual_seed(0)
    recon, target = torch.rand(3, 3, 8, 8), torch.rand(3, 3, 8, 8)
    parts = visual_loss(recon, target, kind="mse")
    torch.testing.assert_close(parts.total, (recon - target).square().mean())
    torch.testing.assert_close(parts.psnr_term, visual_loss(recon, target).psnr_term)  # still logged
    import pytest

    with pytest.raises(ValueError, match="unknown visual loss 'l1'"):
        visual_loss(recon, target, kind="l1")


def test_eq1_pins_a_residual_purifier_shown_clean_images_to_the_identity_where_the_mse_does_not():
    """Why the corruption expert trains with kind="mse": with a quarter of its inputs clean, Eq. 1's per-image
    log and square root have unbounded gradients at the images it leaves exactly, and it never starts denoising."""
    from recondefense.purifiers import ResidualPurifier

    generator = torch.Generator().manual_seed(0)
    clean = F.avg_pool2d(torch.rand(8, 3, 48, 48, generator=generator), 3, 1, 1)  # smooth images
    noisy = (clean + 0.1 * torch.randn(clean.shape, generator=generator)).clamp(0, 1)
    noisy[:2] = clean[:2]
    denoised = {}
    for kind in ("eq1", "mse"):
        torch.manual_seed(0)
        net = ResidualPurifier(3, 8, 1)
        opt = torch.optim.Adam(net.parameters(), 3e-3)
        for _ in range(80):
            opt.zero_grad()
            visual_loss(net(noisy), clean, kind=kind).total.backward()
            opt.step()
        with torch.no_grad():
            denoised[kind] = psnr(net(noisy[2:]), clean[2:]).mean().item()
    before = psnr(noisy[2:], clean[2:]).mean().item()
    assert denoised["eq1"] < before + 0.5 < before + 2 < denoised["mse"]
