"""STL baseline (Sun et al., CVPR 2019): solver against sporco, shipped dictionary, reconstruction quality
(the transform contract is in test_contract.py)."""

from __future__ import annotations

import math
import os

import matplotlib
import numpy as np
import pytest
import torch

from recondefense.baselines.stl import (
    STL,
    conv_bpdn,
    conv_reconstruct,
    dictionary_spectrum,
    load_dictionary,
    symmetric_pad,
    tikhonov_split,
)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1 / float(((a - b) ** 2).mean()))


@pytest.fixture(scope="module")
def stl() -> STL:
    return STL()


def _grace_hopper_224() -> torch.Tensor:
    """matplotlib's grace_hopper.jpg, a held-out photo (never used to learn the dictionary), resized to a
    224-pixel short side and center-cropped to 224x224 (ImageNet scale)."""
    from PIL import Image

    img = Image.open(os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")).convert("RGB")
    scale = 224 / min(img.size)
    img = img.resize((round(img.size[0] * scale), round(img.size[1] * scale)), Image.BICUBIC)
    x = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float() / 255
    top, left = (x.shape[1] - 224) // 2, (x.shape[2] - 224) // 2
    return x[:, top : top + 224, left : left + 224].contiguous()


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    """A 64x64 crop (rows 80-143, columns 120-183) of :func:`_grace_hopper_224` whose PSNR after STL
    (30.9 dB) is close to the pooled one of all 25 crops on a 40-pixel grid (30.8 dB; they range
    28.0-36.9 dB) and of the whole 224x224 image (31.2 dB, test_reconstructs_full_photo)."""
    return _grace_hopper_224()[:, 80:144, 120:184].contiguous()


def test_shipped_dictionary() -> None:
    for channels in (3, 1):
        d = load_dictionary(channels)
        assert d.shape == (64, channels, 8, 8)
        torch.testing.assert_close(torch.linalg.vector_norm(d.flatten(1), dim=1), torch.ones(64))


def test_symmetric_pad_matches_numpy() -> None:
    x = torch.rand(2, 5, 7, dtype=torch.float64)
    for pad in (3, 9):
        expected = np.pad(x.numpy(), ((0, 0), (pad, pad), (pad, pad)), "symmetric")
        np.testing.assert_array_equal(symmetric_pad(x, pad).numpy(), expected)


def test_tikhonov_split_is_a_lowpass() -> None:
    x = torch.rand(1, 3, 40, 33, dtype=torch.float64)
    low, high = tikhonov_split(x, 5.0, 16)
    torch.testing.assert_close(low + high, x)
    assert high.abs().mean() < x.abs().mean() / 2
    # A constant image is all low frequency.
    low, high = tikhonov_split(torch.full((1, 1, 20, 20), 0.3, dtype=torch.float64))
    assert float(high.abs().max()) < 1e-12


def test_conv_bpdn_matches_sporco(photo: torch.Tensor) -> None:
    """Same problem, same options: our batched ADMM reaches sporco's ConvBPDN solution."""
    cbpdn = pytest.importorskip("sporco.admm.cbpdn")
    d = load_dictionary(3)
    _, high = tikhonov_split(photo[None, :, :24, :24].double())
    opt = cbpdn.ConvBPDN.Options({"Verbose": False, "MaxMainIter": 200, "RelStopTol": 5e-3, "AuxVarObj": False})
    solver = cbpdn.ConvBPDN(d.permute(2, 3, 1, 0).double().numpy(), high[0].permute(1, 2, 0).numpy(), 0.2, opt)
    solver.solve()
    ref = torch.from_numpy(solver.reconstruct().squeeze()).permute(2, 0, 1)
    coef = conv_bpdn(d.double(), high, 0.2, max_iter=200, rel_tol=5e-3)
    ours = conv_reconstruct(dictionary_spectrum(d.double(), (24, 24)), coef)[0]
    torch.testing.assert_close(ours, ref, atol=1e-6, rtol=0)
    torch.testing.assert_close(coef[0].abs().sum(), torch.from_numpy(np.abs(solver.Y)).sum(), rtol=1e-6, atol=0)


def test_reconstructs_clean_photo(stl: STL, photo: torch.Tensor) -> None:
    out = stl(photo)
    assert out.shape == photo.shape
    assert _psnr(out, photo) > 30
    assert not torch.equal(out, photo)  # it does project


@pytest.mark.slow
def test_reconstructs_full_photo(stl: STL) -> None:
    x = _grace_hopper_224()
    assert _psnr(stl(x), x) > 30


def test_custom_dictionary() -> None:
    custom = STL(dictionary=load_dictionary(1), max_iter=20)
    assert custom.channels == 1
    assert custom(torch.rand(1, 12, 12)).shape == (1, 12, 12)
    with pytest.raises(ValueError, match="1 channel"):
        custom(torch.rand(3, 12, 12))
    with pytest.raises(ValueError, match="lmbda > 0"):
        STL(lmbda=0)
