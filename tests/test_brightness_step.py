"""The routed purifier's brightness step (issue 25): a detector of ImageNet-C's brightness lowers the images it
reads to black before the gate sees them; where it runs, its config, export (CPU, seconds)."""

from __future__ import annotations

import json
from unittest import mock

import pytest
import torch

from recondefense import ReconstructiveDefense
from recondefense.gate import VETO_BLACK_POINT
from recondefense.haze import FogDetector
from recondefense.levels import black_point, restore_black_point
from recondefense.purifier_config import PurifierConfig
from recondefense.purifiers import RoutedPurifier

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"width": 4, "depth": 2, "detail_width": 4, "detail_depth": 1, "corruption_width": 4, "corruption_depth": 1}


class LiftedIsBright(torch.nn.Module):
    """A detector that reads an image as brightened where its black point is above 0.1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 100 * (black_point(x) - 0.1)


def _clean_and_brightened() -> tuple[torch.Tensor, torch.Tensor]:
    """Two scenes in [0, 0.7] with a black corner, and the same with every pixel's HSV value raised by 0.25 (hue and
    saturation kept, black turned grey: ImageNet-C's brightness where it does not clip): ``(2, 3, 32, 32)`` each."""
    torch.manual_seed(0)
    clean = torch.rand(2, 3, 32, 32) * 0.7
    clean[:, :, :4, :4] = 0
    value = clean.amax(1, keepdim=True)
    return clean, torch.where(value > 0, clean * (value + 0.25) / value.clamp_min(1e-6), torch.full_like(clean, 0.25))


def test_brightness_step_lowers_what_its_detector_reads_and_the_gate_reads_the_lowered_image(tmp_path):
    clean, brightened = _clean_and_brightened()
    net = RoutedPurifier(**SMALL, brightness_range=(0.5, 0.9)).eval()
    assert isinstance(net.brightness, FogDetector) and any(k.startswith("brightness.") for k in net.state_dict())
    plain = RoutedPurifier(**SMALL).eval()
    plain.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("brightness.")})
    net.brightness = LiftedIsBright()
    with torch.no_grad():
        lowered = restore_black_point(brightened, VETO_BLACK_POINT)
        torch.testing.assert_close(lowered, clean, atol=1e-6, rtol=0)  # hue and saturation kept: the lift undone
        torch.testing.assert_close(net.prepare(brightened), lowered)
        torch.testing.assert_close(net(brightened), plain(lowered))  # routed as the lowered image is
        with mock.patch("recondefense.routing.restore_black_point", wraps=restore_black_point) as step:
            assert torch.equal(net.prepare(clean), clean)  # read as clean: exactly as it came, the step not run
        assert step.call_count == 0
        torch.testing.assert_close(net(clean), plain(clean))
        assert net.lowering_share(torch.cat([clean, brightened])).tolist() == [0, 0, 1, 1]
        assert torch.equal(plain.lowering_share(brightened), torch.zeros(2))
    defense = ReconstructiveDefense(arch="routed", **SMALL, brightness_range=[0.5, 0.9], brightness_width=4)
    defense.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["brightness_range"] == [0.5, 0.9]
    loaded = ReconstructiveDefense.from_pretrained(tmp_path)
    assert loaded.purifier_config.brightness_range == (0.5, 0.9)
    assert loaded.autoencoder.brightness.head.in_features == 16
    assert RoutedPurifier(**SMALL).brightness is None  # every weights folder without the key: no step
    for bad in ([0.9, 0.5], [0.5, 1.5], [0.1]):
        with pytest.raises(ValueError, match=r"brightness_range=.*: expected null or two numbers low < high"):
            PurifierConfig(arch="routed", brightness_range=bad).validate()
    with pytest.raises(ValueError, match="brightness_width=0"):
        PurifierConfig(arch="routed", brightness_range=(0.5, 0.9), brightness_width=0).validate()


def test_brightness_step_exports_and_compiles_with_the_eager_values():
    module = ReconstructiveDefense(arch="routed", **SMALL, brightness_range=(0.4, 0.6))
    module.autoencoder.brightness = LiftedIsBright()
    clean, brightened = _clean_and_brightened()
    x = torch.cat([clean, brightened])
    stride = module.autoencoder.stride
    dims = {0: torch.export.Dim("batch", min=1, max=64), 2: stride * torch.export.Dim("h", min=1, max=64)}
    dims[3] = stride * torch.export.Dim("w", min=1, max=64)
    program = torch.export.export(module, (x[:2],), dynamic_shapes=(dims,))
    assert torch.allclose(program.module()(x), module(x), atol=1e-6)
    torch._dynamo.reset()
    compiled = torch.compile(module, fullgraph=True, backend="eager")
    assert torch.allclose(compiled(x), module(x), atol=1e-6)
