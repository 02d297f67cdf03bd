"""torch.export, ONNX (both exporters), torch.compile(fullgraph=True), meta and fake tensors on the defenses."""

from __future__ import annotations

import copy
import importlib.util
import sys
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from recondefense import Defended, ReconstructiveDefense

EXAMPLES = Path(__file__).parent.parent / "examples"


class _TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).mean((2, 3))


def _defenses() -> list[tuple[str, nn.Module]]:
    torch.manual_seed(0)
    residual = ReconstructiveDefense(arch="residual", width=4, depth=2)
    with torch.no_grad():  # leave the identity so outputs differ from inputs
        residual.autoencoder.correction.out.weight.normal_(0, 0.01)
    recon = ReconstructiveDefense(width=8, depth=2)
    small = {"width": 4, "depth": 2, "detail_width": 4, "detail_depth": 1, "corruption_width": 4, "corruption_depth": 1}
    # uniform noise (contrast 0.29) is below the floor and short of its range: stretched by about 2-3.5
    stretched = ReconstructiveDefense(arch="routed", **small, contrast_floor=0.5, contrast_target=1.0)
    # the untrained gate gives route 1 about 0.018: above strong_above, so the strong purifier serves every image
    strong = ReconstructiveDefense(arch="routed", **small, strong_widths=[8, 8], strong_above=0.01)
    # a denoiser whose share rises with the noise level (levels.noise_level), a correction that is not zero
    gentle = ReconstructiveDefense(arch="routed", **small, corruption_strength=0.5, corruption_noise_range=(0.1, 0.3))
    with torch.no_grad():
        gentle.autoencoder.corruption.correction.out.weight.normal_(0, 0.01)
    # uniform noise reads a sharpness of about 3.6: a deblurring share of about 0.6 over (1, 8)
    deblurred = ReconstructiveDefense(
        arch="routed", **small, deblur_width=4, deblur_depth=2, deblur_sharpness_range=(1.0, 8.0)
    )
    with torch.no_grad():
        deblurred.autoencoder.deblur.correction.out.weight.normal_(0, 0.01)
    # the unsharp mask, by sharpness and by blur ratio: a share of about 0.57 on uniform noise
    unsharp = ReconstructiveDefense(
        arch="routed",
        **small,
        deblur_sharpness_range=(1.0, 8.0),
        deblur_ratio_range=(0.1, 1.0),
        deblur_unsharp=(1.0, 2.0),
    )
    # a gate that reads something (the untrained one's last layer is 0), opened past the veto on every image
    vetoed = ReconstructiveDefense(arch="routed", **small, brightness_veto=0.1)
    with torch.no_grad():
        vetoed.autoencoder.gate[-1].weight.normal_(0, 0.5)
        vetoed.autoencoder.gate[-1].bias.fill_(1.0)
    clipped = ReconstructiveDefense(arch="routed", **small, brightness_veto=0.1, veto_clipped=0.01)
    clipped.load_state_dict(vetoed.state_dict())
    return [
        ("residual", residual),
        ("routed, brightness veto", vetoed),
        ("routed, brightness veto on clipped images", clipped),
        ("routed, gentle denoiser", gentle),
        ("routed, deblurred", deblurred),
        ("routed, unsharp by blur ratio", unsharp),
        ("recon", recon),
        ("routed, contrast stretched", stretched),
        ("routed, strong purifier", strong),
        ("defended", Defended(_TinyNet(), residual, input="normalized").eval()),
    ]


def _dims(stride: int = 1) -> dict[int, torch.export.Dim]:
    """Dynamic batch, height, width; the paper AE's transposed convolutions need multiples of its stride."""
    if stride == 1:
        return {
            0: torch.export.Dim("n", min=1, max=16),
            2: torch.export.Dim("h", min=8),
            3: torch.export.Dim("w", min=8),
        }
    h, w = torch.export.Dim("h", min=2), torch.export.Dim("w", min=2)
    return {0: torch.export.Dim("n", min=1, max=16), 2: stride * h, 3: stride * w}


@pytest.mark.parametrize(("name", "module"), _defenses(), ids=lambda v: v if isinstance(v, str) else "")
def test_torch_export_with_dynamic_batch_height_width(name, module):
    example = torch.rand(2, 3, 16, 24)
    stride = module.autoencoder.stride if isinstance(module, ReconstructiveDefense) else 1
    program = torch.export.export(module, (example,), dynamic_shapes=(_dims(stride),))
    other = torch.rand(3, 3, 20, 36) if name != "recon" else torch.rand(3, 3, 24, 40)
    assert torch.allclose(program.module()(other), module(other), atol=1e-6)


@pytest.mark.parametrize(("name", "module"), _defenses(), ids=lambda v: v if isinstance(v, str) else "")
def test_compile_fullgraph_meta_and_fake_tensors(name, module):
    from torch._subclasses.fake_tensor import FakeTensorMode

    x = torch.rand(2, 3, 16, 16)
    torch._dynamo.reset()  # each case compiles on its own, not against the recompile limit the others used up
    compiled = torch.compile(module, fullgraph=True, backend="eager")
    assert torch.allclose(compiled(x), module(x), atol=1e-6)
    assert copy.deepcopy(module).to("meta")(x.to("meta")).shape == module(x).shape
    expected = module(x).shape
    with FakeTensorMode(allow_non_fake_inputs=True) as mode:
        assert module(mode.from_tensor(x)).shape == expected


def test_tolerance_follows_the_dtype():
    defense = ReconstructiveDefense(width=8, depth=2)
    model = Defended(_TinyNet(), defense).to(torch.bfloat16)
    black = (torch.zeros(1, 3, 16, 16) - model.mean) / model.std  # bf16 rounding lands a little below 0
    assert torch.isfinite(model(black.to(torch.bfloat16))).all()
    with pytest.raises(ValueError, match="pixel values"):
        defense(torch.full((1, 3, 8, 8), 1.01))  # float32 keeps the strict tolerance


def test_defended_clamps_out_of_range_normalized_input_with_one_warning():
    model = Defended(_TinyNet(), ReconstructiveDefense(width=8, depth=2)).eval()
    x = torch.randn(2, 3, 16, 16) * 3
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first, second = model(x), model(x)
    assert len([w for w in caught if "clamped" in str(w.message)]) == 1
    assert torch.equal(first, second)
    pixels = (x * model.std + model.mean).clamp(0, 1)
    assert torch.allclose(first, model((pixels - model.mean) / model.std), atol=1e-5)


@pytest.mark.parametrize("legacy", [False, True], ids=["dynamo", "torchscript"])
def test_onnx_export_example_matches_onnxruntime(tmp_path, legacy):
    for package in ("onnx", "onnxruntime", "onnxscript"):
        if importlib.util.find_spec(package) is None:
            pytest.skip(f"{package} is not installed (pip install recondefense[test])")
    sys.path.insert(0, str(EXAMPLES))
    try:
        import export_onnx
    finally:
        sys.path.remove(str(EXAMPLES))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gap = export_onnx.export(export_onnx.DEFAULT_IMAGENET_WEIGHTS, str(tmp_path / "m.onnx"), legacy)
    assert gap < 1e-4
    assert not [w for w in caught if "clamped" in str(w.message)], "the example feeds images outside [0, 1]"


def test_salt_and_pepper_removal_exports_and_compiles_with_the_eager_values():
    from recondefense.corruptions import corrupt

    small = {"width": 4, "depth": 2, "detail_width": 4, "detail_depth": 1, "corruption_width": 4}
    module = ReconstructiveDefense(arch="routed", **small, impulse_range=(0.01, 0.02), impulse_noise_range=(0.3, 0.5))
    clean = torch.nn.functional.interpolate(torch.rand(3, 3, 4, 9), size=(20, 36), mode="bilinear")
    x = torch.cat([clean, corrupt(clean, "impulse_noise", 3, generator=torch.Generator().manual_seed(0))])
    share = module.autoencoder.prepare(x).sub(x).abs().flatten(1).amax(1)
    assert torch.equal(share[:3], torch.zeros(3)) and (share[3:] > 0.1).all()  # the dotted ones cleaned, only them
    program = torch.export.export(module, (x[:2],), dynamic_shapes=(_dims(module.autoencoder.stride),))
    assert torch.allclose(program.module()(x), module(x), atol=1e-6)
    torch._dynamo.reset()  # the other compile tests have used up the forward's recompilations
    compiled = torch.compile(module, fullgraph=True, backend="eager")
    assert torch.allclose(compiled(x), module(x), atol=1e-6)
