"""recondefense.metrics: PSNR, SSIM and Wilson intervals, their input checks and the committed values."""

from __future__ import annotations

import math

import pytest
import torch

from recondefense.metrics import psnr, ssim, wilson_interval


def _pair(*shape: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    a = torch.rand(*shape, generator=gen)
    return a, (a + 0.05 * torch.randn(*shape, generator=gen)).clamp(0, 1)


def test_psnr_matches_the_formula_on_float_batches() -> None:
    a, b = _pair(4, 3, 16, 16)
    expected = -10 * torch.log10((a - b).square().flatten(1).mean(1) + 1e-10)
    assert torch.equal(psnr(a, b), expected)


def test_ssim_of_identical_images_is_one_and_of_a_batch_is_per_image() -> None:
    a, b = _pair(3, 3, 32, 32)
    assert torch.allclose(ssim(a, a), torch.ones(3))
    assert torch.equal(ssim(a, b)[1:2], ssim(a[1:2], b[1:2]))


def test_uint8_images_are_scaled_to_unit_range() -> None:
    """Two uint8 images one grey level apart: 48.1 dB, as for their float /255 copies (was 0.014 dB)."""
    x = torch.full((1, 3, 8, 8), 100, dtype=torch.uint8)
    y = x + 1
    assert psnr(x, y).item() == pytest.approx(20 * math.log10(255), abs=1e-3)
    assert torch.equal(psnr(x, y), psnr(x.float() / 255, y.float() / 255))
    assert torch.equal(psnr(x, y.float() / 255), psnr(x.float() / 255, y.float() / 255))  # mixed: was -43 dB
    a, b = _pair(2, 3, 16, 16)
    a8, b8 = (a * 255).round().byte(), (b * 255).round().byte()
    assert torch.equal(ssim(a8, b8), ssim(a8.float() / 255, b8.float() / 255))


def test_other_integer_dtypes_are_refused() -> None:
    x = torch.zeros(1, 1, 8, 8, dtype=torch.int64)
    with pytest.raises(ValueError, match="dtype torch.int64; pass floats in"):
        psnr(x, x)


def test_a_single_chw_image_is_a_batch_of_one() -> None:
    a, b = _pair(3, 32, 32)
    assert psnr(a, b).shape == (1,) and ssim(a, b).shape == (1,)
    assert torch.equal(psnr(a, b), psnr(a[None], b[None]))
    assert torch.equal(ssim(a, b), ssim(a[None], b[None]))


@pytest.mark.parametrize("metric", [psnr, ssim])
@pytest.mark.parametrize(
    ("shape_a", "shape_b"),
    [((2, 3, 8, 8), (1, 3, 8, 8)), ((1, 3, 8, 8), (1, 1, 8, 8)), ((3, 8, 8), (1, 3, 8, 8))],
)
def test_different_shapes_are_refused(metric, shape_a, shape_b) -> None:
    with pytest.raises(ValueError, match="must have the same shape"):
        metric(torch.rand(shape_a), torch.rand(shape_b))


@pytest.mark.parametrize("metric", [psnr, ssim])
@pytest.mark.parametrize("shape", [(8, 8), (2, 1, 1, 8, 8)])
def test_other_dimensions_are_refused(metric, shape) -> None:
    with pytest.raises(ValueError, match=r"expected images of shape \(N, C, H, W\)"):
        metric(torch.rand(shape), torch.rand(shape))


@pytest.mark.parametrize("window", [0, -3, 10, 2.5, True])
def test_ssim_refuses_a_bad_window(window) -> None:
    a, b = _pair(1, 1, 16, 16)
    with pytest.raises(ValueError, match="window must be an odd int >= 1"):
        ssim(a, b, window=window)


@pytest.mark.parametrize("sigma", [0, -1.0, math.nan, math.inf])
def test_ssim_refuses_a_bad_sigma(sigma) -> None:
    a, b = _pair(1, 1, 16, 16)
    with pytest.raises(ValueError, match="sigma must be a finite number > 0"):
        ssim(a, b, sigma=sigma)


def test_ssim_window_shrinks_to_small_images() -> None:
    a, b = _pair(1, 1, 6, 9)  # window 11 -> 5 (smaller side 6, rounded down to odd)
    assert torch.equal(ssim(a, b), ssim(a, b, window=5))


def test_wilson_interval_values() -> None:
    low, high = wilson_interval(5, 10)
    assert (low, high) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0
    low99, high99 = wilson_interval(5, 10, z=2.576)
    assert low99 < low and high99 > high


@pytest.mark.parametrize(
    ("successes", "n", "z", "message"),
    [
        (11, 10, 1.96, "successes must be between 0 and n=10"),
        (-1, 10, 1.96, "successes must be between 0 and n=10"),
        (5, -3, 1.96, "n must be at least 1"),
        (5, 0, 1.96, "n must be at least 1"),
        (0, 0, 1.96, "n must be at least 1"),
        (3.5, 10, 1.96, "successes must be an int count"),
        (3, 10.0, 1.96, "n must be an int count"),
        (True, 10, 1.96, "successes must be an int count"),
        (5, 10, -1.96, "z must be a finite number > 0"),
        (5, 10, 0, "z must be a finite number > 0"),
        (5, 10, math.nan, "z must be a finite number > 0"),
    ],
)
def test_wilson_interval_refuses_invalid_input(successes, n, z, message) -> None:
    with pytest.raises(ValueError, match=message):
        wilson_interval(successes, n, z)


def test_wilson_interval_takes_numpy_and_tensor_counts() -> None:
    np = pytest.importorskip("numpy")
    assert wilson_interval(np.int64(3), torch.tensor(10)) == wilson_interval(3, 10)
