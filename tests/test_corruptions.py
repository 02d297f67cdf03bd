"""Tests of recondefense.corruptions: the 15 ImageNet-C corruptions (Hendrycks & Dietterich, ICLR 2019).

Reference behaviour is checked against hand computation, the standard library (colorsys), Pillow and
scipy; the PyPI ``imagenet-c`` package is used as an oracle only where it is importable (it needs Wand,
OpenCV and an old scikit-image, so it is normally skipped).
"""

from __future__ import annotations

import colorsys
import io
import math

import numpy as np
import pytest
import torch
from PIL import Image

from recondefense.corruptions import CORRUPTIONS, KNOWN_CORRUPTIONS, REFERENCE_CONSTANTS, Corruption, corrupt
from recondefense.corruptions._ops import motion_blur, plasma_fractal
from recondefense.corruptions.blur import _disk_kernel

# the warning that a small blur does nothing (tested below) would repeat for many tests here
pytestmark = [
    pytest.mark.filterwarnings("ignore:.* images unchanged:UserWarning"),
    pytest.mark.usefixtures("one_thread"),
]

NAMES = [
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "frost",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
]
DETERMINISTIC = {"defocus_blur", "zoom_blur", "brightness", "contrast", "pixelate", "jpeg_compression"}
RANDOM = [n for n in NAMES if n not in DETERMINISTIC]


def smooth_image(n: int = 1, c: int = 3, h: int = 32, w: int = 32) -> torch.Tensor:
    """Natural-looking synthetic batch ``(n, c, h, w)`` in [0.1, 0.9]: colour gradients, a disk, a bar."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    base = 0.2 + 0.6 * torch.stack([xx, yy, 0.5 * (xx + yy)])[:c]
    base[:, (xx - 0.5) ** 2 + (yy - 0.4) ** 2 < 0.05] = 0.9
    base[:, (xx > 0.2) & (xx < 0.35) & (yy > 0.6) & (yy < 0.85)] = 0.1
    return base.expand(n, c, h, w).clone()


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def mad(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().mean())


# ---------------------------------------------------------------------------------------------- API


def test_names_in_paper_order():
    assert list(CORRUPTIONS) == NAMES
    assert list(REFERENCE_CONSTANTS) == NAMES
    for name, fn in CORRUPTIONS.items():
        assert fn.__name__ == name and callable(fn)


def test_reference_constants():
    c = REFERENCE_CONSTANTS
    assert c["gaussian_noise"] == (0.08, 0.12, 0.18, 0.26, 0.38)
    assert c["shot_noise"] == (60, 25, 12, 5, 3)
    assert c["impulse_noise"] == (0.03, 0.06, 0.09, 0.17, 0.27)
    assert c["jpeg_compression"] == (25, 18, 15, 10, 7)
    assert c["pixelate"] == (0.6, 0.5, 0.4, 0.3, 0.25)
    assert c["contrast"] == (0.4, 0.3, 0.2, 0.1, 0.05)
    assert c["brightness"] == (0.1, 0.2, 0.3, 0.4, 0.5)
    assert c["frost"] == ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75))
    assert c["fog"] == ((1.5, 2), (2, 2), (2.5, 1.7), (2.5, 1.5), (3, 1.4))
    assert c["motion_blur"] == ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15))
    assert c["defocus_blur"] == ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))
    assert c["glass_blur"] == ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2))
    assert c["snow"][0] == (0.1, 0.3, 3, 0.5, 10, 4, 0.8) and c["snow"][4] == (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55)
    assert c["elastic_transform"][0] == pytest.approx((488, 170.8, 24.4))
    assert c["elastic_transform"][4] == pytest.approx((29.28, 2.44, 4.88))
    # np.arange(1, 1.11, 0.01) etc. as in the reference, float quirks included (1.11 is reached)
    zooms = c["zoom_blur"]
    assert [len(z) for z in zooms] == [12, 16, 11, 13, 11]
    assert zooms[0][0] == 1.0 and zooms[0][-1] == pytest.approx(1.11) and zooms[4][-1] == pytest.approx(1.30)


@pytest.mark.parametrize("name", NAMES)
def test_contract_shapes_dtypes_range(name):
    """Every severity on grayscale 28x28 (unbatched), RGB 37x53 (batched): same shape/dtype, in [0, 1]."""
    gray = smooth_image(1, 1, 28, 28)[0]
    rgb = smooth_image(2, 3, 37, 53)
    for images in (gray, rgb):
        for severity in range(1, 6):
            out = corrupt(images, name, severity, generator=gen())
            assert out.shape == images.shape and out.dtype == images.dtype
            assert torch.isfinite(out).all()
            assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
            assert not out.requires_grad


def test_tiny_images():
    for shape in [(1, 1, 1, 1), (2, 3, 2, 2), (1, 3, 3, 5), (1, 1, 9, 1)]:
        x = torch.rand(shape, generator=gen())
        for name in KNOWN_CORRUPTIONS:  # the 15 and ImageNet-C's 4 validation corruptions
            for severity in (1, 5):
                out = corrupt(x, name, severity, generator=gen())
                assert out.shape == x.shape and torch.isfinite(out).all(), (name, shape)


def test_module_pickles_with_its_generator_state():
    import pickle

    m = Corruption("snow", 1, seed=2)
    x = smooth_image(1, 3, 16, 16)
    m(x)
    clone = pickle.loads(pickle.dumps(m))
    torch.testing.assert_close(clone(x), m(x))


@pytest.mark.parametrize("name", NAMES)
def test_public_function_equals_corrupt(name):
    x = smooth_image(1, 3, 24, 24)
    a = CORRUPTIONS[name](x, 2, generator=gen(3))
    b = corrupt(x, name, 2, generator=gen(3))
    assert torch.equal(a, b)


@pytest.mark.parametrize("name", NAMES)
def test_seeded_determinism(name):
    x = smooth_image(3, 3, 32, 32)
    a = corrupt(x, name, 3, generator=gen(7))
    b = corrupt(x, name, 3, generator=gen(7))
    c = corrupt(x, name, 3, generator=gen(8))
    assert torch.equal(a, b)
    if name in DETERMINISTIC:
        assert torch.equal(a, c)
        # and a batch is the stack of its images
        assert torch.equal(a, torch.stack([corrupt(img, name, 3) for img in x]))
    else:
        assert not torch.equal(a, c)
        # each image of a batch gets its own draws (two may still coincide, e.g. close motion angles)
        assert not (torch.equal(a[0], a[1]) and torch.equal(a[0], a[2]))


def test_global_rng_when_no_generator():
    x = smooth_image(1, 3, 16, 16)
    torch.manual_seed(5)
    a = corrupt(x, "gaussian_noise", 1)
    torch.manual_seed(5)
    b = corrupt(x, "gaussian_noise", 1)
    assert torch.equal(a, b)


def test_dtypes_uint8_half_double():
    x = smooth_image(1, 3, 20, 20)
    u8 = (x * 255).round().to(torch.uint8)
    out = corrupt(u8, "contrast", 2)
    assert out.dtype == torch.uint8 and out.shape == u8.shape
    assert (out.float() - (corrupt(u8.float() / 255, "contrast", 2) * 255)).abs().max() <= 0.5 + 1e-3
    for dtype in (torch.float16, torch.float64):
        out = corrupt(x.to(dtype), "fog", 2, generator=gen())
        assert out.dtype == dtype and 0 <= float(out.min()) and float(out.max()) <= 1


@pytest.mark.parametrize("severity", [0, 6, -1, 2.0, True, "3", None])
def test_bad_severity(severity):
    with pytest.raises(ValueError, match="severity"):
        corrupt(smooth_image(), "fog", severity)


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError) as info:
        corrupt(smooth_image(), "speckle", 1)
    for name in NAMES:
        assert name in str(info.value)


def test_bad_images_and_scale():
    with pytest.raises(ValueError, match="channels"):
        corrupt(torch.rand(1, 2, 8, 8), "fog", 1)
    with pytest.raises(ValueError):
        corrupt(torch.rand(8, 8), "fog", 1)
    with pytest.raises(ValueError):
        corrupt(torch.full((1, 3, 8, 8), 2.0), "fog", 1)
    for scale in (0, -1.0, float("nan"), "1"):
        with pytest.raises(ValueError, match="scale"):
            corrupt(smooth_image(), "fog", 1, scale=scale)


# ------------------------------------------------------------------------------- hand-checked values


def test_gaussian_noise_std_matches_constant():
    """On mid-grey, the std of the output is the constant's, censored at [0, 1] (exact formula)."""
    x = torch.full((1, 3, 128, 128), 0.5)
    for severity, c in enumerate(REFERENCE_CONSTANTS["gaussian_noise"], start=1):
        out = corrupt(x, "gaussian_noise", severity, generator=gen(severity))
        a = 0.5 / c  # clip at +-a standard deviations
        phi = math.exp(-a * a / 2) / math.sqrt(2 * math.pi)
        cdf = 0.5 * (1 + math.erf(a / math.sqrt(2)))
        expected = c * math.sqrt((2 * cdf - 1) - 2 * a * phi + 2 * a * a * (1 - cdf))
        assert float(out.std()) == pytest.approx(expected, rel=0.02)
        assert float(out.mean()) == pytest.approx(0.5, abs=0.005)
        if severity <= 3:  # clipping is negligible there: std ~= the constant itself
            assert float(out.std()) == pytest.approx(c, rel=0.03)


def test_shot_noise_is_poisson():
    x = torch.full((1, 3, 128, 128), 0.5)
    for severity in (1, 2):
        c = REFERENCE_CONSTANTS["shot_noise"][severity - 1]
        out = corrupt(x, "shot_noise", severity, generator=gen())
        counts = out * c
        assert torch.allclose(counts, counts.round(), atol=1e-4)  # photon counts / c
        assert float(out.mean()) == pytest.approx(0.5, abs=0.005)
        assert float(out.var()) == pytest.approx(0.5 / c, rel=0.05)


def test_impulse_noise_fraction():
    x = torch.full((1, 3, 128, 128), 0.5)
    for severity, c in enumerate(REFERENCE_CONSTANTS["impulse_noise"], start=1):
        out = corrupt(x, "impulse_noise", severity, generator=gen())
        salt = float((out == 1).float().mean())
        pepper = float((out == 0).float().mean())
        assert float(((out == 0.5) | (out == 0) | (out == 1)).float().mean()) == 1.0
        assert salt == pytest.approx(c / 2, rel=0.1) and pepper == pytest.approx(c / 2, rel=0.1)


def test_brightness_matches_hsv_by_hand():
    """Against colorsys: RGB -> HSV, V + c clipped to 1, -> RGB; black becomes grey c."""
    torch.manual_seed(0)
    x = torch.rand(1, 3, 6, 7)
    x[0, :, 0, 0] = 0.0  # black
    x[0, :, 0, 1] = torch.tensor([0.2, 0.4, 0.6])
    x[0, :, 0, 2] = torch.tensor([0.95, 0.5, 0.1])  # V + c saturates at 1
    for severity, c in enumerate(REFERENCE_CONSTANTS["brightness"], start=1):
        out = corrupt(x, "brightness", severity)
        expected = torch.empty_like(x)
        for i in range(x.shape[2]):
            for j in range(x.shape[3]):
                h, s, v = colorsys.rgb_to_hsv(*x[0, :, i, j].tolist())
                expected[0, :, i, j] = torch.tensor(colorsys.hsv_to_rgb(h, s, min(v + c, 1.0)))
        torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(corrupt(x, "brightness", 1)[0, :, 0, 1], torch.tensor([0.7 / 3, 1.4 / 3, 0.7]))
    # grayscale: the value itself (an RGB image with equal channels gives the same)
    g = x[:, :1]
    torch.testing.assert_close(corrupt(g, "brightness", 2), (g + 0.2).clamp(max=1))
    torch.testing.assert_close(
        corrupt(g.expand(1, 3, 6, 7), "brightness", 2), corrupt(g, "brightness", 2).expand(1, 3, 6, 7)
    )


def test_contrast_by_hand():
    torch.manual_seed(1)
    x = torch.rand(2, 3, 9, 11)
    for severity, c in enumerate(REFERENCE_CONSTANTS["contrast"], start=1):
        means = x.mean(dim=(2, 3), keepdim=True)  # per image and channel
        torch.testing.assert_close(corrupt(x, "contrast", severity), (x - means) * c + means)


def test_jpeg_matches_pillow_at_reference_quality():
    x = smooth_image(1, 3, 40, 40)
    u8 = (x[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    for severity, quality in enumerate(REFERENCE_CONSTANTS["jpeg_compression"], start=1):
        buffer = io.BytesIO()
        Image.fromarray(u8).save(buffer, "JPEG", quality=quality)
        expected = torch.from_numpy(np.array(Image.open(buffer))).permute(2, 0, 1).float() / 255
        torch.testing.assert_close(corrupt(x, "jpeg_compression", severity)[0], expected, atol=1e-6, rtol=0)
    gray = corrupt(x[:, :1], "jpeg_compression", 5)
    assert gray.shape == (1, 1, 40, 40) and torch.allclose(gray * 255, (gray * 255).round(), atol=1e-4)


def test_pixelate_matches_pillow_box():
    """Float ('F' mode) Pillow BOX resize down to int(side * c) and back, per channel, odd sizes."""
    x = smooth_image(1, 3, 37, 53)
    for severity, c in enumerate(REFERENCE_CONSTANTS["pixelate"], start=1):
        out = corrupt(x, "pixelate", severity)
        for ch in range(3):
            im = Image.fromarray(x[0, ch].numpy().astype(np.float32), mode="F")
            small = im.resize((int(53 * c), int(37 * c)), Image.BOX)
            back = np.asarray(small.resize((53, 37), Image.BOX))
            np.testing.assert_allclose(out[0, ch].numpy(), back, atol=1e-5)


def _reference_clipped_zoom(img: np.ndarray, zoom_factor: float) -> np.ndarray:
    """make_imagenet_c.py's clipped_zoom (square HxWxC), transcribed for the test."""
    from scipy.ndimage import zoom as scizoom

    h = img.shape[0]
    ch = int(np.ceil(h / zoom_factor))
    top = (h - ch) // 2
    img = scizoom(img[top : top + ch, top : top + ch], (zoom_factor, zoom_factor, 1), order=1)
    trim_top = (img.shape[0] - h) // 2
    return img[trim_top : trim_top + h, trim_top : trim_top + h]


def test_zoom_blur_matches_reference_transcription():
    x = smooth_image(1, 3, 48, 48)
    arr = x[0].permute(1, 2, 0).numpy().astype(np.float32)
    for severity in (1, 5):
        zooms = REFERENCE_CONSTANTS["zoom_blur"][severity - 1]
        out = np.zeros_like(arr)
        for z in zooms:
            out += _reference_clipped_zoom(arr, z)
        expected = np.clip((arr + out) / (len(zooms) + 1), 0, 1)
        np.testing.assert_allclose(corrupt(x, "zoom_blur", severity)[0].permute(1, 2, 0).numpy(), expected, atol=1e-5)


def test_glass_blur_matches_reference_loop():
    """The reference's loop (blur, uint8, pixel moves on numpy views, blur) with the same draws."""
    from scipy.ndimage import gaussian_filter

    x = smooth_image(1, 3, 20, 20)
    sigma, delta, iterations = REFERENCE_CONSTANTS["glass_blur"][2]
    out = corrupt(x, "glass_blur", 3, generator=gen(4), scale=1.0)

    arr = x[0].permute(1, 2, 0).numpy().astype(np.float64)
    steps = len(range(20 - delta, delta, -1)) ** 2
    draws = iter(torch.randint(-delta, delta, (iterations, steps, 1, 2), generator=gen(4)).reshape(-1, 2).numpy())
    img = np.uint8(gaussian_filter(arr, sigma=(sigma, sigma, 0), mode="nearest", truncate=4.0) * 255)
    for _ in range(iterations):
        for h in range(20 - delta, delta, -1):
            for w in range(20 - delta, delta, -1):
                dx, dy = next(draws)
                h_prime, w_prime = h + dy, w + dx
                img[h, w], img[h_prime, w_prime] = img[h_prime, w_prime], img[h, w]  # views: a copy
    expected = np.clip(gaussian_filter(img / 255.0, sigma=(sigma, sigma, 0), mode="nearest", truncate=4.0), 0, 1)
    np.testing.assert_allclose(out[0].permute(1, 2, 0).numpy(), expected, atol=1e-5)


def test_motion_blur_kernel_is_imagemagick_line():
    """An impulse spreads along one side of a line with weights exp(-i^2 / 2 sigma^2), as MotionBlurImage."""
    img = torch.zeros(1, 1, 41, 41)
    img[0, 0, 20, 20] = 1.0
    radius, sigma = 10, 3
    out = motion_blur(img, radius, sigma, torch.tensor([0.0]))
    i = torch.arange(2 * radius + 1, dtype=torch.float64)
    k = torch.exp(-(i**2) / (2 * sigma**2))
    k = (k / k.sum()).float()
    # angle 0: out[y, x] = sum_i k_i in[y, x + i] -> the impulse lands at x = 20 - i
    torch.testing.assert_close(out[0, 0, 20, 20 - 2 * radius : 21].flip(0), k)
    assert float(out.sum()) == pytest.approx(1.0, abs=1e-6)
    assert float(out[0, 0, 20, 21:].abs().sum()) == 0.0 and float(out[0, 0, :20].abs().sum()) == 0.0
    # angle 90: along +y
    out = motion_blur(img, radius, sigma, torch.tensor([90.0]))
    torch.testing.assert_close(out[0, 0, 20 - 2 * radius : 21, 20].flip(0), k)


def test_defocus_disk_kernel():
    for radius, alias in REFERENCE_CONSTANTS["defocus_blur"]:
        k = _disk_kernel(radius, alias)
        # the reference anti-aliases the normalized disk with reflect-101 borders: where the disk touches
        # the grid edge (radius 8 and 10) mass is reflected back in and the kernel sums to ~1.01
        expected = {8: 1.012975, 10: 1.010786}.get(radius, 1.0)
        assert float(k.sum()) == pytest.approx(expected, abs=1e-6)
        torch.testing.assert_close(k, k.flip(0))
        torch.testing.assert_close(k, k.T)
        assert k.shape[0] == (17 if radius <= 8 else 2 * radius + 1)
    # radius 3, alias 0.1: essentially the 29-pixel aliased disk
    k = _disk_kernel(3, 0.1)
    assert int((k > 1e-6).sum()) == 29


def test_plasma_fractal_range_and_shape():
    maps = plasma_fractal(3, 64, 2.0, gen(), torch.device("cpu"))
    assert maps.shape == (3, 64, 64)
    flat = maps.reshape(3, -1)
    torch.testing.assert_close(flat.amin(1), torch.zeros(3, dtype=maps.dtype))
    torch.testing.assert_close(flat.amax(1), torch.ones(3, dtype=maps.dtype))
    assert not torch.equal(maps[0], maps[1])


def test_fog_formula_bounds():
    """fog = (x + c * plasma) * max(x) / (max(x) + c): never brighter than max(x)."""
    x = smooth_image(2, 3, 40, 40)
    for severity in (1, 5):
        out = corrupt(x, "fog", severity, generator=gen())
        assert float(out.max()) <= float(x.max()) + 1e-6


def test_frost_mixes_image_with_texture():
    """frost = clip(c0 * x + c1 * texture), texture in [0, 1]: bounds follow from the coefficients."""
    x = smooth_image(2, 3, 48, 48)
    for severity, (a, b) in enumerate(REFERENCE_CONSTANTS["frost"], start=1):
        out = corrupt(x, "frost", severity, generator=gen())
        texture = (out - a * x) / b  # valid where nothing clipped
        unclipped = out < 1
        assert float(texture[unclipped].min()) >= -1e-5 and float(texture[unclipped].max()) <= 1 + 1e-5
        assert float(out.mean()) > float(a * x.mean())  # frost brightens on average


def test_elastic_small_severities_are_local():
    """Severities 3-5 (small affine jitter, small-sigma field) move the image by about a pixel."""
    x = smooth_image(1, 3, 64, 64)
    for severity in (3, 4, 5):
        out = corrupt(x, "elastic_transform", severity, generator=gen(), scale=1.0)
        assert 0 < mad(out, x) < 0.1


# ------------------------------------------------------------------------------------- severity order

# mean |x_c - x| strictly increases with severity for these, on the smooth image (several seeds)
MONOTONE = [
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "motion_blur",
    "zoom_blur",
    "brightness",
    "contrast",
    "pixelate",
    "jpeg_compression",
]


@pytest.mark.parametrize(
    ("name", "shape"),
    [(name, (2, 3, 64, 64)) for name in MONOTONE]
    # at 28 px pixelate goes to int(28 * c) = 16, 14, 11, 8, 7 px: aliasing makes 16 vs 14 non-monotone
    + [(name, (2, 1, 28, 28)) for name in MONOTONE if name != "pixelate"],
)
def test_distortion_grows_with_severity(name, shape):
    x = smooth_image(*shape)
    for seed in (0, 1):
        d = [mad(corrupt(x, name, s, generator=gen(seed)), x) for s in range(1, 6)]
        assert all(b > a for a, b in zip(d, d[1:])), (name, d)


def test_blur_severity_order():
    x = smooth_image(2, 3, 48, 48)
    # defocus: at the reference pixel constants (scale=1) strictly increasing
    d = [mad(corrupt(x, "defocus_blur", s, scale=1.0), x) for s in range(1, 6)]
    assert all(b > a for a, b in zip(d, d[1:])), d
    # default scale at 28 px: radius 3..10 px becomes 0.375..1.25 px, low severities nearly the identity
    g = smooth_image(1, 1, 28, 28)
    d = [mad(corrupt(g, "defocus_blur", s), g) for s in range(1, 6)]
    assert all(b >= a for a, b in zip(d, d[1:])) and d[4] > 0.005, d
    # fog: weight 1.5 -> 2.5 -> 3 (sev 3/4 differ only in decay)
    d = [mad(corrupt(x, "fog", s, generator=gen()), x) for s in range(1, 6)]
    assert d[0] < d[2] < d[4], d


@pytest.mark.parametrize("name", ["glass_blur", "snow", "frost", "elastic_transform"])
def test_non_monotone_corruptions_still_distort(name):
    """No pixel-distance order for these (e.g. elastic 1-2 are large affine warps, 3-5 local jitter;
    frost/snow trade image weight for texture), but every severity changes the image."""
    x = smooth_image(2, 3, 40, 40)
    for severity in range(1, 6):
        assert mad(corrupt(x, name, severity, generator=gen()), x) > 0.005


# ---------------------------------------------------------------------------------------- scale / size


def test_default_scale_is_reference_at_224_and_proportional():
    x = smooth_image(1, 3, 224, 224)
    torch.testing.assert_close(corrupt(x, "defocus_blur", 4), corrupt(x, "defocus_blur", 4, scale=1.0))
    small = smooth_image(1, 3, 56, 56)
    torch.testing.assert_close(
        corrupt(small, "motion_blur", 2, generator=gen()), corrupt(small, "motion_blur", 2, generator=gen(), scale=0.25)
    )
    # scale=1 keeps the 224 px constants on a small image: much stronger blur
    assert mad(corrupt(small, "defocus_blur", 1, scale=1.0), small) > 3 * mad(corrupt(small, "defocus_blur", 1), small)


def test_grayscale_is_rgb_with_equal_channels():
    g = smooth_image(1, 1, 30, 30)
    rgb = g.expand(1, 3, 30, 30)
    for name in ["defocus_blur", "zoom_blur", "contrast", "brightness", "pixelate"]:
        torch.testing.assert_close(corrupt(rgb, name, 3), corrupt(g, name, 3).expand(1, 3, 30, 30), msg=name)


# --------------------------------------------------------------------------------------------- module


def test_corruption_module():
    x = smooth_image(2, 3, 24, 24)
    m = Corruption("gaussian_noise", 2, seed=3)
    assert isinstance(m, torch.nn.Module)
    assert "gaussian_noise" in repr(m) and "severity=2" in repr(m)
    first = m(x)
    torch.testing.assert_close(first, corrupt(x, "gaussian_noise", 2, generator=gen(3)))
    second = m(x, torch.tensor([0, 1]))  # attack-like call, labels ignored
    assert not torch.equal(first, second)  # the generator advances
    torch.testing.assert_close(Corruption("gaussian_noise", 2, seed=3)(x), first)  # fresh module replays
    m.reset()
    torch.testing.assert_close(m(x), first)
    assert m(x[0]).shape == x[0].shape  # single image, as a dataset transform
    for bad in [("nope", 1, 0), ("fog", 0, 0), ("fog", 1, 1.5)]:
        with pytest.raises(ValueError):
            Corruption(*bad)


# ------------------------------------------------------------------------------ optional oracle: imagenet-c


def test_against_imagenet_c_package():
    """If the PyPI imagenet-c package (0.0.3) imports, deterministic corruptions must match it at 224 px
    within 1/255 (it returns uint8-truncated images). It needs Wand, OpenCV and scikit-image < 0.19 and
    numpy < 2 at import/call time, so in most environments this is skipped."""
    ref = pytest.importorskip("imagenet_c")
    x = smooth_image(1, 3, 224, 224)
    u8 = (x[0] * 255).round().to(torch.uint8)
    arr = u8.permute(1, 2, 0).numpy()
    x8 = u8.float()[None] / 255
    for name in ["contrast", "brightness", "pixelate", "jpeg_compression", "zoom_blur", "defocus_blur"]:
        for severity in (1, 3, 5):
            try:
                expected = ref.corrupt(arr, severity=severity, corruption_name=name)
            except Exception as err:  # noqa: BLE001 - an old API missing here is a skip, not a failure
                pytest.skip(f"imagenet_c.{name} does not run here: {err!r}")
            ours = corrupt(x8, name, severity)[0].permute(1, 2, 0).numpy() * 255
            # imagenet_c.corrupt truncates to uint8 (np.uint8), Pillow rounds between passes: 1 level + float32
            assert np.abs(ours - expected.astype(np.float64)).max() <= 1.0 + 1e-3, (name, severity)


# ------------------------------------------------------------------------------- blurs too small to act

#: min(H, W) up to which each blur leaves images unchanged, per severity 1..5 (the documented sizes)
UNCHANGED_UP_TO = {"defocus_blur": (74, 55, 37, 27, 22), "motion_blur": (21, 12, 7, 5, 4)}


@pytest.mark.parametrize("name", sorted(UNCHANGED_UP_TO))
def test_small_blurs_are_the_identity_up_to_the_documented_sizes(name, monkeypatch):
    import recondefense.corruptions as corruptions
    from recondefense.corruptions.blur import UNCHANGED

    monkeypatch.setattr(corruptions, "_WARNED", set())
    for severity, side in enumerate(UNCHANGED_UP_TO[name], start=1):
        for size, unchanged in ((side, True), (side + 1, False)):
            x = torch.rand(2, 1, size, size, generator=gen())
            with pytest.warns(UserWarning, match="unchanged") if unchanged else _no_warning():
                change = float((corrupt(x, name, severity, generator=gen()) - x).abs().max())
            assert (change < UNCHANGED) == unchanged, (name, severity, size, change)


def _no_warning():
    """A context in which any warning fails the test."""
    import contextlib
    import warnings

    @contextlib.contextmanager
    def context():
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            yield

    return context()


def test_a_blur_that_does_nothing_warns_once(monkeypatch):
    import recondefense.corruptions as corruptions

    monkeypatch.setattr(corruptions, "_WARNED", set())
    x = smooth_image(1, 1, 28, 28)
    with pytest.warns(UserWarning, match=r"defocus_blur at severity 2 leaves 28 x 28 images unchanged.*56 px"):
        assert torch.equal(corrupt(x, "defocus_blur", 2), x)
    with _no_warning():
        corrupt(x, "defocus_blur", 2)  # once
        assert not torch.equal(corrupt(x, "defocus_blur", 4), x)  # it acts: no warning
    with pytest.warns(UserWarning, match="motion_blur at severity 1 leaves 8 x 8"):
        corrupt(torch.rand(1, 3, 8, 8, generator=gen()), "motion_blur", 1, generator=gen())


def test_severity_as_a_0d_tensor_and_images_of_the_wrong_type():
    x = smooth_image(1, 3, 16, 16)
    assert torch.equal(corrupt(x, "contrast", torch.tensor(2)), corrupt(x, "contrast", 2))
    assert torch.equal(corrupt(x, "contrast", np.int64(2)), corrupt(x, "contrast", 2))
    for severity in (torch.tensor(2.0), torch.tensor([2]), torch.tensor(True)):
        with pytest.raises(ValueError, match="severity"):
            corrupt(x, "contrast", severity)
    with pytest.raises(TypeError):
        corrupt(x.numpy(), "contrast", 2)
    with pytest.raises(TypeError):
        corrupt(x.to(torch.int32), "contrast", 2)
