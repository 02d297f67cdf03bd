"""The routed purifier's brightness step (issue 25): a detector of ImageNet-C's brightness lowers the images it
reads to black before the gate sees them; where it runs, its config, export (CPU, seconds)."""

from __future__ import annotations

from unittest import mock

import pytest
import torch
from test_haze import SMALL, assert_detector_step_config, assert_exports_and_compiles

from recondefense import ReconstructiveDefense
from recondefense.gate import VETO_BLACK_POINT
from recondefense.haze import FogDetector
from recondefense.levels import black_point, restore_black_point
from recondefense.purifiers import RoutedPurifier

pytestmark = pytest.mark.usefixtures("one_thread")


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
    assert RoutedPurifier(**SMALL).brightness is None  # every weights folder without the key: no step
    assert_detector_step_config("brightness", tmp_path)


def test_brightness_step_exports_and_compiles_with_the_eager_values():
    module = ReconstructiveDefense(arch="routed", **SMALL, brightness_range=(0.4, 0.6))
    module.autoencoder.brightness = LiftedIsBright()
    clean, brightened = _clean_and_brightened()
    assert_exports_and_compiles(module, torch.cat([clean, brightened]))
