"""Baseline defenses: formulas and checks against outside references (the shared transform contract is in
test_contract.py)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from recondefense.baselines import JPEG, BitDepth, FeatureDistillation, PixelDeflection, RandomResizePad


def smooth_images(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """Natural-ish test images: upsampled low-resolution noise plus a little fine noise, in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    n, c, h, w = shape
    low = torch.rand(n, c, max(h // 8, 1), max(w // 8, 1), generator=g)
    x = F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)
    return (x + 0.03 * torch.randn(n, c, h, w, generator=g)).clamp(0, 1)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    return x.mul(255).round().to(torch.uint8)


# ---------------------------------------------------------------- JPEG


@pytest.mark.parametrize("quality", [75, 30])
@pytest.mark.parametrize("channels", [3, 1])
def test_jpeg_matches_pil(quality, channels):
    Image = pytest.importorskip("PIL.Image")
    x = smooth_images((1, channels, 64, 48))[0]
    array = to_uint8(x).permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(array[..., 0] if channels == 1 else array).save(buffer, format="JPEG", quality=quality)
    decoded = np.array(Image.open(io.BytesIO(buffer.getvalue())), dtype=np.float32) / 255
    ref = torch.from_numpy(decoded).reshape(64, 48, channels).permute(2, 0, 1)
    diff = (JPEG(quality)(x) - ref).abs()
    assert diff.mean() < 0.5 / 255 and diff.max() <= 3 / 255


def test_jpeg_other_channel_counts_and_bad_quality():
    x = smooth_images((2, 4, 16, 16))
    assert JPEG()(x).shape == x.shape
    with pytest.raises(ValueError, match="quality"):
        JPEG(0)


# ---------------------------------------------------------------- bit depth


@pytest.mark.parametrize("bits", [1, 5, 8])
def test_bit_depth_formula(bits):
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    levels = 2**bits - 1
    expected = np.rint(x.numpy() * levels) / levels
    np.testing.assert_array_equal(BitDepth(bits)(x).numpy(), expected)
    assert len(torch.unique(BitDepth(bits)(x))) <= levels + 1


@pytest.mark.parametrize("bits", [1, 5])
def test_bit_depth_matches_art_feature_squeezing(bits):
    pytest.importorskip("art")
    from art.defences.preprocessor import FeatureSqueezing

    x = torch.rand(2, 3, 16, 16)
    expected, _ = FeatureSqueezing(clip_values=(0.0, 1.0), bit_depth=bits)(x.numpy())
    np.testing.assert_allclose(BitDepth(bits)(x).numpy(), expected, atol=1e-6, rtol=0)


# ---------------------------------------------------------------- pixel deflection


@pytest.mark.parametrize("shape", [(2, 3, 32, 32), (1, 3, 17, 45), (2, 1, 28, 28), (1, 3, 224, 224)])
def test_pixel_deflection_changes_exactly_the_deflection_count(shape):
    n, c, h, w = shape
    pd = PixelDeflection(seed=0)
    x = torch.rand(shape, dtype=torch.float64)  # distinct values, so every copy changes a value
    changed = (pd.deflect(x) != x).sum(dim=(1, 2, 3))
    assert changed.tolist() == [min(200, c * h * w)] * n
    assert (PixelDeflection(deflections=7, seed=0).deflect(x) != x).sum(dim=(1, 2, 3)).tolist() == [7] * n


@pytest.mark.parametrize("window", [1, 10])
def test_pixel_deflection_sources_lie_within_the_window(window):
    c, h, w = 3, 20, 30
    index = torch.arange(c * h * w, dtype=torch.float64).reshape(1, c, h, w)
    out = PixelDeflection(deflections=500, window=window, seed=1).deflect(index)
    target = (out != index).nonzero()[:, 1:]
    source = out[out != index].long()
    s_c, s_r, s_w = source // (h * w), source % (h * w) // w, source % w
    assert len(target) == 500
    assert (s_c == target[:, 0]).all()
    assert ((s_r - target[:, 1]).abs() <= window).all() and ((s_w - target[:, 2]).abs() <= window).all()


def test_pixel_deflection_without_denoise_is_the_deflection_and_tiny_images_work():
    x = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(PixelDeflection(denoise=False, seed=2)(x), PixelDeflection(seed=2).deflect(x))
    assert PixelDeflection(seed=0)(torch.rand(1, 3, 1, 1)).shape == (1, 3, 1, 1)
    with pytest.raises(ValueError, match="wavelet"):
        PixelDeflection(wavelet="nope")


def test_pixel_deflection_denoiser_matches_scikit_image():
    """Our PyWavelets BayesShrink against the original's scikit-image call (per channel, sigma 0.04)."""
    pytest.importorskip("skimage")
    from skimage import color
    from skimage.restoration import denoise_wavelet

    from recondefense.baselines.pixel_deflection import wavelet_denoise

    x = smooth_images((1, 3, 64, 40)).double()
    image = x[0].permute(1, 2, 0).numpy()
    ycbcr = color.rgb2ycbcr(image)
    for i in range(3):
        lo, hi = ycbcr[..., i].min(), ycbcr[..., i].max()
        channel = denoise_wavelet((ycbcr[..., i] - lo) / (hi - lo), sigma=0.04, wavelet="db1", method="BayesShrink")
        ycbcr[..., i] = channel * (hi - lo) + lo
    expected = np.clip(color.ycbcr2rgb(ycbcr), 0, 1)
    ours = wavelet_denoise(x).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(ours, expected, atol=1e-5, rtol=0)


# ---------------------------------------------------------------- feature distillation


def test_feature_distillation_constant_block_and_idempotence():
    fd = FeatureDistillation()
    # A constant block has only a DC coefficient 8 * 255 * v, quantized with step 25.
    out = fd(torch.full((1, 1, 8, 8), 0.5))
    torch.testing.assert_close(out, torch.full_like(out, round(8 * 255 * 0.5 / 25) * 25 / (8 * 255)))
    x = 0.25 + 0.5 * smooth_images((2, 3, 32, 32))  # far from 0 and 1: no clipping
    once = fd(x)
    torch.testing.assert_close(fd(once), once, atol=1e-5, rtol=0)


def test_feature_distillation_matches_scipy_blockwise_dct():
    """The original algorithm written with scipy's orthonormal DCT, block by block."""
    fft = pytest.importorskip("scipy.fft")
    x = torch.rand(1, 3, 16, 24, dtype=torch.float64)
    table = np.full((8, 8), 30.0)
    table[:4, :4] = 25.0
    pixels = x[0].numpy() * 255
    expected = np.empty_like(pixels)
    for c in range(3):
        for i in range(0, 16, 8):
            for j in range(0, 24, 8):
                coef = fft.dctn(pixels[c, i : i + 8, j : j + 8], norm="ortho")
                expected[c, i : i + 8, j : j + 8] = fft.idctn(np.round(coef / table) * table, norm="ortho")
    expected = np.clip(expected / 255, 0, 1)
    np.testing.assert_allclose(FeatureDistillation()(x)[0].numpy(), expected, atol=1e-9, rtol=0)


# ---------------------------------------------------------------- random resize and padding


def test_random_resize_pad_sizes_follow_xie_et_al():
    rrp = RandomResizePad(seed=0)
    assert rrp.padded_size(224, 224) == (248, 248)
    assert rrp.padded_size(299, 299) == (331, 331)
    params = rrp.sample(2000, 224, 224)
    rnd_h, rnd_w, top, left = params.unbind(1)
    assert rnd_h.min() == 224 and rnd_h.max() == 247 and torch.equal(rnd_h, rnd_w)
    assert (top >= 0).all() and (top <= 248 - rnd_h).all() and (left <= 248 - rnd_w).all()
    assert top.max() == 24 and left.max() == 24
    rnd_h, rnd_w, _, _ = rrp.sample(500, 28, 56).unbind(1)  # aspect ratio kept
    assert rnd_h.min() >= 28 and rnd_h.max() < 31 and torch.equal(rnd_w, rnd_h * 2)


def test_random_resize_pad_canvas_is_zero_padded_nearest_resize():
    rrp = RandomResizePad()
    x = torch.rand(1, 3, 224, 224) * 0.9 + 0.1  # no zeros inside the image
    canvas = rrp.resize_pad(x, 240, 240, 3, 5)
    assert canvas.shape == (1, 3, 248, 248)
    inside = canvas[..., 3:243, 5:245]
    torch.testing.assert_close(inside, F.interpolate(x, size=(240, 240), mode="nearest"))
    mask = torch.ones_like(canvas, dtype=torch.bool)
    mask[..., 3:243, 5:245] = False
    assert (canvas[mask] == 0).all() and (inside > 0).all()
    y = RandomResizePad(seed=0)(x)
    assert y.shape == x.shape
    assert (y < 0.1).any()  # some of the zero padding survives the resize back


# ---------------------------------------------------------------- per-image draws (recondefense.seeding)


@pytest.mark.parametrize(
    "make", [lambda: PixelDeflection(deflections=20, window=2, seed=0), lambda: RandomResizePad(seed=0)]
)
def test_per_image_draws_do_not_depend_on_the_batch(make):
    x = smooth_images((4, 3, 24, 24))
    seeds = [11, 12, 13, 14]
    whole, alone = make(), make()
    with whole.per_image(seeds):
        first, second = whole(x), whole(x)  # the generators advance: two calls, two draws
    with alone.per_image(seeds[2:]):
        part = alone(x[2:])
    torch.testing.assert_close(first[2:], part, rtol=0, atol=0)  # image 2 draws the same in a batch of 4 or 2
    assert not torch.equal(first, second)
    with alone.per_image([7]):  # one seed: every call on copies of one image draws from it
        copies = alone(x[:1].expand(3, -1, -1, -1))
    assert not torch.equal(copies[0], copies[1])
    mixed = make()
    with mixed.per_image(seeds):
        outside = mixed(x[:3])  # another number of images: the defense's own generator
    torch.testing.assert_close(outside, make()(x[:3]), rtol=0, atol=0)
    with pytest.raises(ValueError, match="one seed per image"):
        with mixed.per_image([]):
            pass
