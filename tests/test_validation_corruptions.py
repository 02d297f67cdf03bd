"""ImageNet-C's four validation corruptions (:mod:`recondefense.corruptions.validation`): apart from the benchmark's 15,
faithful to the reference's formulas (scikit-image as the oracle; OpenCV, where installed, for spatter's water)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import needs_fashion_mnist

from recondefense.corruptions import (
    CORRUPTIONS,
    KNOWN_CORRUPTIONS,
    VALIDATION_CONSTANTS,
    VALIDATION_CORRUPTIONS,
    corrupt,
    corruption_names,
)
from recondefense.evaluate import evaluate_corruptions

NAMES = ["speckle_noise", "gaussian_blur", "spatter", "saturate"]

pytestmark = pytest.mark.usefixtures("one_thread")


def photo_like(n: int = 2, h: int = 48, w: int = 48, seed: int = 0) -> torch.Tensor:
    """``(n, 3, h, w)`` in [0, 1]: smooth colour fields with edges, a grey patch and a black corner."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 6, 6, generator=g)
    x = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    x[:, :, h // 4 : h // 2, w // 4 : w // 2] = 0.5  # grey: saturation 0
    x[:, :, :4, :4] = 0.0  # black
    return x.clamp(0, 1)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_validation_corruptions_are_apart_from_the_benchmark_and_named_after_it():
    assert list(VALIDATION_CORRUPTIONS) == NAMES == list(VALIDATION_CONSTANTS)
    assert not set(VALIDATION_CORRUPTIONS) & set(CORRUPTIONS) and len(CORRUPTIONS) == 15
    assert KNOWN_CORRUPTIONS == (*CORRUPTIONS, *NAMES)  # benchmark first: its table seeds keep their indices
    for name, fn in VALIDATION_CORRUPTIONS.items():
        assert fn.__name__ == name
        x = photo_like(1, 32, 32)
        assert torch.equal(fn(x, 2, generator=gen(1)), corrupt(x, name, 2, generator=gen(1)))


def test_corruption_names_take_validation_names_unless_told_the_benchmark_only():
    assert corruption_names("") == []
    assert corruption_names("gaussian_noise,speckle_noise") == ["gaussian_noise", "speckle_noise"]
    with pytest.raises(ValueError, match="speckle_noise"):
        corruption_names("gaussian_noise,speckle_noise", CORRUPTIONS)
    for text in ("speckle", "gaussian_noise,,shot_noise"):
        with pytest.raises(ValueError, match="unknown"):
            corruption_names(text)


@pytest.mark.parametrize("name", NAMES)
def test_contract_and_seeds(name):
    for images in (photo_like(2, 37, 53), photo_like(1, 28, 28)[:, :1][0]):
        for severity in range(1, 6):
            out = corrupt(images, name, severity, generator=gen(3))
            assert out.shape == images.shape and out.dtype == images.dtype and torch.isfinite(out).all()
            assert 0 <= float(out.min()) and float(out.max()) <= 1
            assert torch.equal(out, corrupt(images, name, severity, generator=gen(3)))
            assert not torch.equal(out, images), (name, severity)


def test_speckle_noise_is_multiplicative_gaussian():
    x = photo_like(1, 64, 64)
    c = VALIDATION_CONSTANTS["speckle_noise"][2]
    expected = (x + x * c * torch.randn(x.shape, generator=gen(5))).clamp(0, 1)
    torch.testing.assert_close(corrupt(x, "speckle_noise", 3, generator=gen(5)), expected)
    assert torch.equal(corrupt(x, "speckle_noise", 5)[:, :, :4, :4], x[:, :, :4, :4])  # black stays black


def test_gaussian_blur_matches_scikit_image_at_224_and_scales_below():
    filters = pytest.importorskip("skimage.filters")
    x = photo_like(1, 224, 224)
    for severity in (1, 5):
        sigma = VALIDATION_CONSTANTS["gaussian_blur"][severity - 1]
        expected = filters.gaussian(x[0].permute(1, 2, 0).double().numpy(), sigma=sigma, channel_axis=-1)
        ours = corrupt(x, "gaussian_blur", severity)[0].permute(1, 2, 0).double().numpy()
        np.testing.assert_allclose(ours, expected, atol=1e-5)
    small = photo_like(1, 112, 112)
    expected = filters.gaussian(small[0].permute(1, 2, 0).double().numpy(), sigma=1.5, channel_axis=-1)
    np.testing.assert_allclose(corrupt(small, "gaussian_blur", 3)[0].permute(1, 2, 0).numpy(), expected, atol=1e-5)


def test_saturate_matches_scikit_image_hsv():
    color = pytest.importorskip("skimage.color")
    x = photo_like(1, 40, 40)
    for severity in range(1, 6):
        a, b = VALIDATION_CONSTANTS["saturate"][severity - 1]
        hsv = color.rgb2hsv(x[0].permute(1, 2, 0).double().numpy())
        hsv[..., 1] = np.clip(hsv[..., 1] * a + b, 0, 1)
        expected = np.clip(color.hsv2rgb(hsv), 0, 1)
        ours = corrupt(x, "saturate", severity)[0].permute(1, 2, 0).double().numpy()
        np.testing.assert_allclose(ours, expected, atol=1e-5)


def _liquid(n: int, h: int, w: int, severity: int, seed: int) -> np.ndarray:
    """The liquid layer ``spatter`` draws from ``gen(seed)``: ``(n, h, w)`` normal draws of the severity's mean and std."""
    mean, std = VALIDATION_CONSTANTS["spatter"][severity - 1][:2]
    return (mean + std * torch.randn((n, 1, h, w), generator=gen(seed), dtype=torch.float64))[:, 0].numpy()


def test_spatter_mud_is_the_reference_formula():
    filters = pytest.importorskip("skimage.filters")
    x = photo_like(2, 64, 64)
    for severity in (4, 5):
        _, _, sigma, threshold, mask_sigma, _ = VALIDATION_CONSTANTS["spatter"][severity - 1]
        s = 64 / 224
        ours = corrupt(x, "spatter", severity, generator=gen(2))
        for i, liquid in enumerate(_liquid(2, 64, 64, severity, 2)):
            liquid = filters.gaussian(liquid, sigma=sigma * s)
            liquid[liquid < threshold] = 0
            m = filters.gaussian(np.where(liquid > threshold, 1.0, 0.0), sigma=mask_sigma * s)
            m[m < 0.8] = 0
            mud = np.array([63, 42, 20])[:, None, None] / 255 * m
            expected = np.clip(x[i].double().numpy() * (1 - m) + mud, 0, 1)
            np.testing.assert_allclose(ours[i].double().numpy(), expected, atol=1e-5)


def test_spatter_water_adds_turquoise_where_the_liquid_is():
    x = photo_like(2, 96, 96)
    for severity in (1, 2, 3):
        out = corrupt(x, "spatter", severity, generator=gen(4))
        added = out - x
        assert float(added.min()) >= -1e-6  # water only brightens
        assert float(added.amax()) > 0.05
        # pale turquoise (175, 238, 238): where not clipped, green and blue gain more than red, equally
        free = (out < 1).all(1, keepdim=True) & (added.sum(1, keepdim=True) > 0.05)
        r, g, b = (added[:, k : k + 1][free] for k in range(3))
        torch.testing.assert_close(g, b)
        assert bool((g > r).all()) and float((r / g).mean()) == pytest.approx(175 / 238, abs=1e-4)


def test_spatter_water_against_opencv_where_installed():
    """Where OpenCV imports (not a dependency), the water of severities 1-3 is compared with the reference's own
    OpenCV steps on the same liquid layer: over 95% of the pixels agree to one 8-bit level (the distance transform and Canny
    here are documented approximations)."""
    cv2 = pytest.importorskip("cv2")
    filters = pytest.importorskip("skimage.filters")
    x = photo_like(2, 224, 224)
    for severity in (1, 2, 3):
        _, _, sigma, threshold, strength, _ = VALIDATION_CONSTANTS["spatter"][severity - 1]
        ours = corrupt(x, "spatter", severity, generator=gen(6))
        for i, liquid in enumerate(_liquid(2, 224, 224, severity, 6)):
            liquid = filters.gaussian(liquid, sigma=sigma)
            liquid[liquid < threshold] = 0
            levels = (liquid * 255).astype(np.uint8)
            dist = 255 - cv2.Canny(levels, 50, 150)
            dist = cv2.distanceTransform(dist, cv2.DIST_L2, 5)
            _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
            dist = cv2.blur(dist, (3, 3)).astype(np.uint8)
            dist = cv2.equalizeHist(dist)
            dist = cv2.filter2D(dist, cv2.CV_8U, np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]))
            dist = cv2.blur(dist, (3, 3)).astype(np.float32)
            m = levels * dist
            m = m / m.max() * strength
            water = np.array([175, 238, 238])[:, None, None] / 255
            expected = np.clip(x[i].double().numpy() + m[None] * water, 0, 1)
            close = np.abs(ours[i].double().numpy() - expected) <= 1 / 255
            assert close.mean() > 0.95, (severity, close.mean())


@needs_fashion_mnist
def test_corruption_tables_take_validation_corruptions_and_keep_benchmark_seeds():
    def rows(names: list[str]) -> dict[str, dict]:
        out = evaluate_corruptions(
            "fashionmnist", defenses=["none"], corruptions=names, limit=8, batch_size=4, progress=False
        )
        return {r["attack"]: r for r in out}

    both = rows(["gaussian_noise", "speckle_noise"])
    assert set(both) == {"corruption:gaussian_noise", "corruption:speckle_noise"}
    assert both["corruption:gaussian_noise"] == rows(["gaussian_noise"])["corruption:gaussian_noise"]
    with pytest.raises(ValueError, match="unknown corruptions"):
        rows(["speckle"])
