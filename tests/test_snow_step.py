"""The routed purifier's snow step (issue 25): a detector of ImageNet-C's snow shrinks the routes of the images it
reads, so snowfall (which no route undoes) passes the gate as the levels left it; its config, export, and its place
in a variant (CPU, seconds)."""

from __future__ import annotations

import pytest
import torch
from test_haze import SMALL, assert_detector_step_config, assert_exports_and_compiles
from test_scripts import load_script

from recondefense import ReconstructiveDefense
from recondefense.haze import DETECTOR_POOL, FogDetector
from recondefense.purifiers import RoutedPurifier

pytestmark = pytest.mark.usefixtures("one_thread")


class BrightIsSnow(torch.nn.Module):
    """A detector that reads an image as snowy where its mean is above 0.5 (snow whitens a photo)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 100 * (x.mean((1, 2, 3)) - 0.5)


def _dark_and_snowy() -> torch.Tensor:
    """Two dark scenes in [0, 0.3] and two whitened ones in [0.7, 1]: ``(4, 3, 32, 32)``."""
    torch.manual_seed(0)
    return torch.cat([0.3 * torch.rand(2, 3, 32, 32), 0.7 + 0.3 * torch.rand(2, 3, 32, 32)])


def _opened(net: RoutedPurifier) -> RoutedPurifier:
    """``net`` with a gate that sends every image wholly to route 1."""
    with torch.no_grad():
        net.gate[-1].weight.zero_()
        net.gate[-1].bias.copy_(torch.tensor([100.0, -100.0]))
    return net


def test_snow_step_shuts_the_gate_on_what_its_detector_reads_and_changes_no_pixel(tmp_path):
    images = _dark_and_snowy()
    net = _opened(RoutedPurifier(**SMALL, snow_range=(0.5, 0.9)).eval())
    assert isinstance(net.snow, FogDetector) and any(k.startswith("snow.") for k in net.state_dict())
    assert net.snow.pool == DETECTOR_POOL["snow"] == 1  # snowflakes are pixel-scale: read at full resolution
    plain = RoutedPurifier(**SMALL).eval()
    plain.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("snow.")})
    net.snow = BrightIsSnow()
    with torch.no_grad():
        assert torch.equal(net.prepare(images), images)  # no pixel changed
        assert net.snow_share(images).tolist() == [0, 0, 1, 1]
        assert torch.equal(plain.snow_share(images), torch.zeros(4))
        assert net.gate_value(images).tolist() == [1, 1, 0, 0]  # the snowy two pass, the dark two open as before
        assert plain.gate_value(images).tolist() == [1, 1, 1, 1]
        out, expected = net(images), plain(images)
        torch.testing.assert_close(out[:2], expected[:2])
        assert torch.equal(out[2:], images[2:])
    assert RoutedPurifier(**SMALL).snow is None  # every weights folder without the key: no step
    assert_detector_step_config("snow", tmp_path)


def test_snow_step_exports_and_compiles_with_the_eager_values():
    module = ReconstructiveDefense(arch="routed", **SMALL, snow_range=(0.4, 0.6))
    module.autoencoder.snow = BrightIsSnow()
    assert_exports_and_compiles(module, _dark_and_snowy())


def test_config_variant_gives_a_routed_defense_a_snow_detector(tmp_path):
    variant_script = load_script("config_variant")
    base = ReconstructiveDefense(arch="routed", **SMALL)
    base.save_pretrained(tmp_path / "base")
    detector = FogDetector(3, 8)
    from safetensors.torch import save_file

    save_file(detector.state_dict(), str(tmp_path / "snow.safetensors"))
    out = tmp_path / "variant"
    args = ["--weights", str(tmp_path / "base"), "--snow", str(tmp_path / "snow.safetensors")]
    variant_script.main([*args, "--set", "snow_range=0.7,0.9", "--out", str(out)])
    loaded = ReconstructiveDefense.from_pretrained(out)
    assert loaded.purifier_config.snow_range == (0.7, 0.9) and loaded.purifier_config.snow_width == 8
    assert all(torch.equal(v, detector.state_dict()[k]) for k, v in loaded.autoencoder.snow.state_dict().items())
    kept = {k: v for k, v in loaded.state_dict().items() if ".snow." not in k}
    assert all(torch.equal(v, base.state_dict()[k]) for k, v in kept.items())
    assert loaded.meta["variant_snow"] == str(tmp_path / "snow.safetensors")


def test_a_detector_reads_pixel_scale_detail_only_at_full_resolution():
    checkerboard = ((torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2).float().expand(1, 3, 16, 16)
    grey = torch.full_like(checkerboard, 0.5)  # the checkerboard average-pooled by 2 or 4
    torch.manual_seed(0)
    quarter = FogDetector(3, 4, pool=4).eval()
    full = FogDetector(3, 4, pool=1).eval()
    full.load_state_dict(quarter.state_dict())  # the same tensors: only the pooling differs
    with torch.no_grad():
        assert torch.equal(quarter(checkerboard), quarter(grey))
        assert not torch.equal(full(checkerboard), full(grey))


def test_the_makefile_trains_the_snow_detector_and_composes_routed22s_candidate(tmp_path):
    """``make imagenet-snow-detector`` trains a snow detector and gives -routed20- its step over 0.85-0.95: the
    recipe of the registered -routed22-."""
    import sys

    from test_routed import run_make

    from recondefense import ReconstructiveDefense

    out = tmp_path / "detector"
    lines = run_make("-n", "imagenet-snow-detector", f"PY={sys.executable}", f"SNOW_OUT={out}", "IMAGENET_STAMP=")
    flat = " ".join(lines.replace("\\\n", " ").split())
    assert f"scripts/train_fog_detector.py --corruption snow --out {out}" in flat
    routed20 = "imagenet-efficientnet_lite0_lite2-routed20-objects3-mix"
    compose = f"config_variant.py --weights {routed20} --snow {out}/snow.safetensors --set snow_range=0.85,0.95"
    assert compose in flat
    shipped = ReconstructiveDefense.from_pretrained("imagenet-efficientnet_lite0_lite2-routed22-objects3-mix")
    assert shipped.purifier_config.snow_range == (0.85, 0.95)
    assert shipped.meta["variant_of"] == routed20 and not out.exists()
