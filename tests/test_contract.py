"""The pixel-space transform contract (recondefense.transform), checked once for every defense in the package.

Every defense is a :class:`~recondefense.transform.PixelDefense`: ``(C, H, W)`` or ``(N, C, H, W)`` in [0, 1]
(any ``H`` and ``W``) -> same shape in [0, 1]; ``float16``/``bfloat16``/``float64`` kept, ``uint8`` scaled by
1/255 and returned as ``float32``; bad input refused with ``TypeError``/``ValueError``; ``differentiable`` and
``randomized`` flags that tell attacks how to get through it (BPDA through ``surrogate``, EOT with a seed).

Defense-specific checks (formulas, outside references, hub loading, ``Defended``) live in test_baselines.py,
test_stl.py and test_defense.py.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from recondefense import ReconstructiveDefense
from recondefense.attacks import BPDA
from recondefense.baselines import JPEG, STL, BitDepth, FeatureDistillation, PixelDeflection, RandomResizePad
from recondefense.purifier_config import GATED_INNER
from recondefense.purifiers import ARCHITECTURES
from recondefense.transform import RANGE_TOLERANCE, PixelDefense

pytestmark = pytest.mark.usefixtures("one_thread")


def reconstructive(arch: str, channels: int = 3, inner: str = "recon") -> ReconstructiveDefense:
    """A small ReconstructiveDefense of ``arch`` that is not the identity: the zero-initialised output layers
    (residual and detail U-Nets, the gate) are perturbed, and BatchNorm statistics made non-trivial."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        defense = ReconstructiveDefense(
            in_channels=channels, width=8, depth=2, arch=arch, detail_width=4, detail_depth=2, inner=inner
        )
        with torch.no_grad():
            for module in defense.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.running_mean.uniform_(-0.1, 0.1)
                    module.running_var.uniform_(0.5, 1.5)
            for p in defense.parameters():
                if not p.any():  # zero-initialised: the network would ignore this path
                    p.normal_(0, 0.05)
            if arch == "gated":
                defense.autoencoder.gate[-1].bias.zero_()  # gate near 0.5 instead of nearly closed
    return defense


@dataclass(frozen=True)
class Spec:
    """How to build a defense, and what its contract says about it."""

    make: Callable[..., PixelDefense]  # make(channels=3, seed=0)
    differentiable: bool
    randomized: bool
    any_channels: bool = True  # accepts any channel count (channels is None); else fixed or 1 and 3 only
    wrong_channels: tuple[int, str] | None = None  # (a refused channel count, its error message) for 3-channel
    dtype_max_diff: float = 0.15  # float16/bfloat16/float64 result vs float32, largest pixel difference


SPECS: dict[str, Spec] = {
    "pixel_deflection": Spec(lambda channels=3, seed=0: PixelDeflection(seed=seed), False, True),
    "random_resize_pad": Spec(lambda channels=3, seed=0: RandomResizePad(seed=seed), True, True),
    "feature_distillation": Spec(lambda channels=3, seed=0: FeatureDistillation(), False, False),
    # Fast: at most 40 ADMM iterations (the default is 200) and a looser stopping tolerance, at which the images
    # of test_deterministic_and_batch_equals_per_image stop on their own at different iterations (26 to 37),
    # so batch == per image checks the per-image stopping too; max_batch=2 solves a batch of 3 in two chunks.
    "stl": Spec(
        lambda channels=3, seed=0: STL(max_iter=40, rel_tol=2e-2, max_batch=2),
        False,
        False,
        any_channels=False,  # shipped dictionaries for 1 and 3 channels
        wrong_channels=(2, "1- and 3-channel"),
    ),
    "jpeg": Spec(lambda channels=3, seed=0: JPEG(), False, False),
    "bit_depth": Spec(lambda channels=3, seed=0: BitDepth(), False, False),
    **{
        f"reconstructive_{arch}": Spec(
            lambda channels=3, seed=0, arch=arch: reconstructive(arch, channels),
            True,
            False,
            any_channels=False,  # in_channels fixed by the weights (built here for the test images' count)
            wrong_channels=(1, "3 channel"),
            dtype_max_diff=1e-2,
        )
        for arch in ARCHITECTURES
    },
    "reconstructive_gated_residual": Spec(
        lambda channels=3, seed=0: reconstructive("gated", channels, inner="residual"),
        True,
        False,
        any_channels=False,
        wrong_channels=(1, "3 channel"),
        dtype_max_diff=1e-2,
    ),
}
NAMES = list(SPECS)
DETERMINISTIC = [n for n in NAMES if not SPECS[n].randomized]
RANDOMIZED = [n for n in NAMES if SPECS[n].randomized]
RECONSTRUCTIVE = [n for n in NAMES if n.startswith("reconstructive_")]
# (C, H, W) and (N, C, H, W); odd, non-square, smaller than an 8x8 block or the network's stride, 1 and 3 channels.
SHAPES = [(3, 32, 32), (1, 12, 9), (3, 5, 6), (2, 3, 32, 32), (1, 3, 17, 45), (2, 1, 28, 28), (1, 3, 1, 9)]


def make(name: str, shape: tuple[int, ...] = (3, 1, 1), seed: int = 0) -> PixelDefense:
    """Defense ``name`` for images of ``shape`` (its channel dimension picks the reconstructive network's)."""
    return SPECS[name].make(channels=shape[-3], seed=seed)


def smooth_images(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """Natural-ish test images: upsampled low-resolution noise plus a little fine noise, in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    n, c, h, w = shape
    low = torch.rand(n, c, max(h // 8, 1), max(w // 8, 1), generator=g)
    x = F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)
    return (x + 0.03 * torch.randn(n, c, h, w, generator=g)).clamp(0, 1)


def test_every_defense_of_the_package_is_covered():
    """A new PixelDefense subclass or purifier architecture must be added to SPECS."""
    import importlib
    import pkgutil

    import recondefense
    import recondefense.baselines
    from recondefense.baselines._random import RandomizedDefense

    for module in pkgutil.walk_packages(recondefense.__path__, "recondefense."):
        importlib.import_module(module.name)  # every subclass defined anywhere in the package

    def subclasses(cls: type) -> set[type]:
        return {sub for direct in cls.__subclasses__() for sub in {direct} | subclasses(direct)}

    package = {c for c in subclasses(PixelDefense) if c.__module__.startswith("recondefense.")} - {RandomizedDefense}
    covered = {type(make(name)) for name in NAMES}
    assert covered == package
    assert {c.__name__ for c in covered} == set(recondefense.baselines.__all__) | {"ReconstructiveDefense"}
    built = {(make(name).arch, make(name).hyperparameters["inner"]) for name in RECONSTRUCTIVE}
    assert {arch for arch, _ in built} == set(ARCHITECTURES)
    assert {inner for arch, inner in built if arch == "gated"} == set(GATED_INNER)


# ---------------------------------------------------------------- shape, range, dtype


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_shape_range_dtype(name, shape):
    defense = make(name, shape)
    assert isinstance(defense, PixelDefense)
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    y = defense(x)
    assert y.shape == x.shape and y.dtype == x.dtype and y.device == x.device
    assert torch.isfinite(y).all() and y.min() >= 0 and y.max() <= 1
    assert defense.surrogate(x).shape == x.shape


@pytest.mark.parametrize("name", [n for n in NAMES if SPECS[n].any_channels])
@pytest.mark.parametrize("channels", [2, 4])
def test_any_channel_count_where_none_is_fixed(name, channels):
    x = smooth_images((2, channels, 16, 16))
    assert make(name).channels is None
    assert make(name)(x).shape == x.shape


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64], ids=str)
def test_float_dtypes_are_kept(name, dtype):
    x = smooth_images((2, 3, 24, 24))
    y = make(name)(x.to(dtype))
    assert y.dtype == dtype
    ref = make(name)(x)  # same seed: same random draws whatever the dtype
    diff = (y.float() - ref).abs()
    assert diff.mean() < (1e-2 if dtype == torch.bfloat16 else 3e-3)
    assert diff.max() < SPECS[name].dtype_max_diff


@pytest.mark.parametrize("name", NAMES)
def test_uint8_is_scaled(name):
    x = smooth_images((2, 3, 16, 16)).mul(255).round().to(torch.uint8)
    y = make(name)(x)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, make(name)(x.float() / 255))


# ---------------------------------------------------------------- bad input


BAD_INPUTS = {
    "rank2": (torch.rand(32, 32), ValueError, "shape"),
    "rank5": (torch.rand(1, 1, 3, 8, 8), ValueError, "shape"),
    "bool": (torch.zeros(2, 3, 8, 8, dtype=torch.bool), TypeError, "dtype"),
    "int64": (torch.zeros(2, 3, 8, 8, dtype=torch.int64), TypeError, "dtype"),
    "out_of_range": (torch.rand(2, 3, 8, 8) * 4 - 2, ValueError, r"\[0, 1\]"),
    "nan": (torch.full((1, 3, 8, 8), float("nan")), ValueError, "NaN"),
    "inf": (torch.full((1, 3, 8, 8), float("inf")), ValueError, "NaN or Inf"),
    "empty_batch": (torch.rand(0, 3, 8, 8), ValueError, "non-empty"),
    "list": ([[0.5]], TypeError, "Tensor"),
}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_refused(name, case):
    images, error, match = BAD_INPUTS[case]
    with pytest.raises(error, match=match):
        make(name)(images)


@pytest.mark.parametrize("name", [n for n in NAMES if SPECS[n].wrong_channels is not None])
def test_wrong_channel_count_is_refused(name):
    channels, match = SPECS[name].wrong_channels
    with pytest.raises(ValueError, match=match):
        make(name)(torch.rand(2, channels, 8, 8))


@pytest.mark.parametrize("name", NAMES)
def test_range_tolerance(name):
    """Rounding just outside [0, 1] (un-normalization) is accepted and clamped; beyond the tolerance is refused."""
    x = smooth_images((1, 3, 12, 12))
    x[0, 0, 0, 0], x[0, 1, 0, 0] = 1 + 1e-5, -1e-5
    y = make(name)(x)
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    x[0, 0, 0, 0] = 1 + 2 * RANGE_TOLERANCE
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        make(name)(x)


@pytest.mark.parametrize("name", RECONSTRUCTIVE)
def test_device_mismatch_is_refused(name):
    meta = make(name).to("meta")
    with pytest.raises(ValueError, match="defense is on meta"):
        meta(torch.rand(1, 3, 8, 8))


# ---------------------------------------------------------------- determinism


@pytest.mark.parametrize("name", DETERMINISTIC)
@pytest.mark.parametrize("shape", [(3, 3, 32, 32), (2, 3, 17, 45), (2, 1, 28, 28)], ids=str)
def test_deterministic_and_batch_equals_per_image(name, shape):
    defense = make(name, shape)
    x = smooth_images(shape)
    batched = defense(x)
    assert torch.equal(batched, defense(x)) and torch.equal(batched, make(name, shape)(x))
    single = torch.stack([defense(image) for image in x])
    torch.testing.assert_close(batched, single, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", RANDOMIZED)
def test_seeded_determinism(name):
    x = smooth_images((2, 3, 32, 32))
    first, second = make(name, seed=3), make(name, seed=3)
    a1, a2 = first(x), first(x)
    torch.testing.assert_close(a1, second(x), atol=0, rtol=0)  # same seed: same sequence
    torch.testing.assert_close(a2, second(x), atol=0, rtol=0)
    assert not torch.equal(a1, a2)  # successive draws differ
    assert not torch.equal(a1, make(name, seed=4)(x))
    twin = copy.deepcopy(first)  # copies carry the generator state
    torch.testing.assert_close(twin(x), first(x), atol=0, rtol=0)
    first.reseed(3)
    torch.testing.assert_close(first(x), a1, atol=0, rtol=0)
    gen = torch.Generator().manual_seed(3)
    torch.testing.assert_close(type(first)(generator=gen)(x), a1, atol=0, rtol=0)
    torch.manual_seed(11)  # neither seed nor generator: the global RNG
    b = type(first)()(x)
    torch.manual_seed(11)
    torch.testing.assert_close(type(first)()(x), b, atol=0, rtol=0)
    with pytest.raises(ValueError, match="not both"):
        type(first)(seed=1, generator=gen)


# ---------------------------------------------------------------- attack flags, gradients


@pytest.mark.parametrize("name", NAMES)
def test_attack_flags_and_gradient(name):
    defense, spec = make(name), SPECS[name]
    assert type(defense.differentiable) is bool and type(defense.randomized) is bool
    assert (defense.differentiable, defense.randomized) == (spec.differentiable, spec.randomized)
    x = smooth_images((2, 3, 16, 16)).requires_grad_(True)
    model = defense if defense.differentiable else BPDA(defense)
    y = model(x)
    y.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    if not defense.differentiable:
        # BPDA: the forward value is the defense's, the backward the identity surrogate's (straight through).
        assert torch.equal(defense.surrogate(x.detach()), x.detach())
        torch.testing.assert_close(x.grad, 2 * y.detach(), atol=0, rtol=0)


@pytest.mark.parametrize("name", RECONSTRUCTIVE)
def test_reconstructive_gradient_reaches_input_parameters_stay_frozen(name):
    defense = make(name)
    x = smooth_images((2, 3, 24, 24))
    assert (defense(x) - x).abs().max() > 1e-3  # the perturbed network is not the identity
    x.requires_grad_(True)
    defense(x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(not p.requires_grad and p.grad is None for p in defense.parameters())


@pytest.mark.parametrize("name", RECONSTRUCTIVE)
def test_reconstructive_stays_in_eval_mode(name):
    defense = make(name)
    assert defense.train() is defense
    assert not defense.training and not any(m.training for m in defense.modules())
