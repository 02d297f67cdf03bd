"""The routed purifier's fog step (issue 25): the dehaze, the detector, its share, where it runs, its config,
export, and training the detector (CPU, seconds)."""

from __future__ import annotations

import json
from unittest import mock

import pytest
import torch
from test_scripts import load_script

from recondefense import ReconstructiveDefense
from recondefense.haze import FogDetector, dehaze, fog_share
from recondefense.purifier_config import PurifierConfig
from recondefense.purifiers import RoutedPurifier

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"width": 4, "depth": 2, "detail_width": 4, "detail_depth": 1, "corruption_width": 4, "corruption_depth": 1}


def _scenes(count: int = 4, side: int = 32) -> torch.Tensor:
    """Random scenes in [0, 0.8] with a black corner in every window's reach: ``(count, 3, side, side)``."""
    torch.manual_seed(0)
    scene = torch.rand(count, 3, side, side) * 0.8
    scene[:, :, :4, :4] = 0
    return scene


def _certain(detector: FogDetector, fog: bool) -> FogDetector:
    """``detector`` made to read every image as foggy (``fog``) or as clear, whatever its pixels."""
    with torch.no_grad():
        for parameter in detector.parameters():
            parameter.zero_()
        detector.head.bias.fill_(30.0 if fog else -30.0)
    return detector


def assert_detector_step_config(step: str, tmp_path) -> None:
    """A routed defense with a ``step`` detector (``fog``, ``brightness``): ``<step>_range`` and ``<step>_width`` saved,
    loaded with a detector of that width, and checked."""
    defense = ReconstructiveDefense(arch="routed", **SMALL, **{f"{step}_range": [0.5, 0.9], f"{step}_width": 4})
    defense.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())[f"{step}_range"] == [0.5, 0.9]
    loaded = ReconstructiveDefense.from_pretrained(tmp_path)
    assert getattr(loaded.purifier_config, f"{step}_range") == (0.5, 0.9)
    assert getattr(loaded.autoencoder, step).head.in_features == 16
    for bad in ([0.9, 0.5], [0.5, 1.5], [0.1]):
        with pytest.raises(ValueError, match=rf"{step}_range=.*: expected null or two numbers low < high in \[0, 1\]"):
            PurifierConfig(arch="routed", **{f"{step}_range": bad}).validate()
    with pytest.raises(ValueError, match=f"{step}_width=0"):
        PurifierConfig(arch="routed", **{f"{step}_range": (0.5, 0.9), f"{step}_width": 0}).validate()


def assert_exports_and_compiles(module: torch.nn.Module, x: torch.Tensor) -> None:
    """``module`` exported (on ``x[:2]``, batch, height and width dynamic) and compiled gives its eager output on ``x``."""
    stride = module.autoencoder.stride
    dims = {0: torch.export.Dim("batch", min=1, max=64), 2: stride * torch.export.Dim("h", min=1, max=64)}
    dims[3] = stride * torch.export.Dim("w", min=1, max=64)
    program = torch.export.export(module, (x[:2],), dynamic_shapes=(dims,))
    assert torch.allclose(program.module()(x), module(x), atol=1e-6)
    torch._dynamo.reset()
    compiled = torch.compile(module, fullgraph=True, backend="eager")
    assert torch.allclose(compiled(x), module(x), atol=1e-6)


def test_dehaze_removes_a_uniform_haze_and_changes_images_without_a_dark_pixel():
    scene = _scenes()
    hazed = 0.3 + 0.7 * scene  # a uniform grey haze of 0.3: x = t + (1 - t) * scene
    restored = dehaze(hazed, patch=63, sigma=1.0)
    assert restored.shape == hazed.shape and 0 <= restored.min() and restored.max() <= 1
    assert (restored - scene).abs().max() < 1e-5
    assert not torch.allclose(dehaze(scene + 0.1, patch=3, sigma=1.0), scene + 0.1)


def test_fog_detector_reads_any_size_and_its_share_rises_over_its_range():
    detector = FogDetector(3, 4).eval()
    for shape in ((2, 3, 32, 32), (1, 3, 20, 36), (3, 3, 224, 224)):
        assert detector(torch.rand(shape)).shape == (shape[0],)
    with torch.no_grad():
        detector.head.bias.fill_(0.0)
        for parameter in [*detector.features.parameters(), detector.head.weight]:
            parameter.zero_()
    images = torch.rand(2, 3, 32, 32)  # probability 0.5 everywhere
    torch.testing.assert_close(fog_share(detector, images, (0.25, 0.75)), torch.full((2,), 0.5))
    assert torch.equal(fog_share(detector, images, (0.5, 0.9)), torch.zeros(2))
    assert torch.equal(fog_share(detector, images, (0.1, 0.4)), torch.ones(2))


def test_routed_fog_step_dehazes_what_the_detector_reads_as_fog_and_passes_it_past_the_gate(tmp_path):
    hazed = 0.3 + 0.7 * _scenes()
    net = RoutedPurifier(**SMALL, fog_range=(0.5, 0.9)).eval()
    assert isinstance(net.fog, FogDetector) and any(k.startswith("fog.") for k in net.state_dict())
    plain = RoutedPurifier(**SMALL).eval()
    plain.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("fog.")})
    with torch.no_grad():
        _certain(net.fog, fog=True)
        torch.testing.assert_close(net.prepare(hazed), dehaze(hazed))
        # the gate would read the dehaze's amplified detail as an attack's: a dehazed image passes it by its share
        torch.testing.assert_close(net(hazed), dehaze(hazed))
        assert torch.equal(net.gate_value(hazed), torch.zeros(4))
        _certain(net.fog, fog=False)
        with mock.patch("recondefense.routing.dehaze", wraps=dehaze) as step:
            assert torch.equal(net.prepare(hazed), hazed)  # read as clear: exactly as it came, the dehaze not run
            torch.testing.assert_close(net(hazed), plain(hazed))
        assert step.call_count == 0
        torch.testing.assert_close(net.gate_value(hazed), plain.gate_value(hazed))
    assert_detector_step_config("fog", tmp_path)


def test_fog_step_exports_and_compiles_with_the_eager_values():
    class BrightIsFog(torch.nn.Module):  # a detector that reads bright images as foggy: the batch holds both
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 40 * (x.mean((1, 2, 3)) - 0.3)

    module = ReconstructiveDefense(arch="routed", **SMALL, fog_range=(0.4, 0.6))
    module.autoencoder.fog = BrightIsFog()
    clear = torch.rand(2, 3, 20, 36) * 0.1
    x = torch.cat([clear, 0.5 + 0.5 * torch.rand(2, 3, 20, 36)])
    shares = fog_share(module.autoencoder.fog, x, (0.4, 0.6))
    assert torch.equal(shares[:2], torch.zeros(2)) and (shares[2:] == 1).all()
    assert_exports_and_compiles(module, x)


@pytest.mark.parametrize("step", ["fog", "brightness"])
def test_train_fog_detector_writes_a_detector_config_variant_puts_into_a_routed_defense(
    step, monkeypatch, tmp_path, capsys
):
    from recondefense.data import Consensus
    from recondefense.data._tensors import TensorImages

    module = load_script("train_fog_detector")
    torch.manual_seed(0)
    images = (torch.rand(6, 3, 32, 32) * 255).to(torch.uint8)
    crops = TensorImages(images, torch.zeros(6, dtype=torch.long))

    class Crops:  # the train split's stream, small
        def __init__(self, split: str, length: int, seed: int) -> None:
            assert split == "train"
            self.length = length

        def __len__(self) -> int:
            return self.length

        def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
            return crops[index % 6][0], -1

    monkeypatch.setattr(module, "ObjectCrops", Crops)
    monkeypatch.setattr(module, "object_test_set", lambda split: Consensus(crops, torch.arange(6), torch.arange(6)))
    monkeypatch.setattr(
        module, "load_classifier", lambda name: torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3072, 2))
    )
    args = ["--out", str(tmp_path / "fog"), "--images", "60", "--epochs", "2", "--width", "4", "--corruption", step]
    assert module.main(args) == 0
    out = capsys.readouterr().out
    assert "epoch 2/2" in out and f"{step}@5" in out and "pgd imagenet-efficientnet_lite2" in out
    report = json.loads((tmp_path / "fog" / "validation.json").read_text())
    assert report["width"] == 4 and "--epochs 2" in report["command"]
    kinds = {"clean", f"{step}@1", f"{step}@5", "contrast@1", "contrast@3", "pgd imagenet-efficientnet_lite0"}
    other = "brightness" if step == "fog" else "fog"  # the other detector's corruption is a negative
    kinds |= {"clean, largest probability", f"{step}@1, smallest probability", f"{other}@5"}
    assert set(report["validation"]) >= kinds
    assert all(0 <= share <= 1 for share in report["validation"].values())
    assert "impulse_noise@3" not in report["validation"]  # the held-out corruptions never appear

    variant = load_script("config_variant")
    ReconstructiveDefense(arch="routed", **SMALL).save_pretrained(tmp_path / "a")
    fog_file = str(tmp_path / "fog" / f"{step}.safetensors")
    command = ["--weights", str(tmp_path / "a"), f"--{step}", fog_file, "--set", f"{step}_range=0.5,0.9"]
    assert variant.main([*command, "--set", "fog_yields_to_gate=true", "--out", str(tmp_path / "b")]) == 0
    a, b = (ReconstructiveDefense.from_pretrained(tmp_path / p) for p in ("a", "b"))
    config = b.purifier_config
    assert getattr(config, f"{step}_range") == (0.5, 0.9) and getattr(config, f"{step}_width") == 4
    assert b.autoencoder.fog_yields_to_gate and not a.autoencoder.fog_yields_to_gate
    from safetensors.torch import load_file

    detector = load_file(fog_file)
    for key, value in b.state_dict().items():
        prefix = f"autoencoder.{step}."
        expected = detector[key[len(prefix) :]] if key.startswith(prefix) else a.state_dict()[key]
        assert torch.equal(value, expected), key
    card = (tmp_path / "b" / "README.md").read_text()
    assert f"the {step} detector `{fog_file}`, trained by `python scripts/train_fog_detector.py --out" in card
    with pytest.raises(SystemExit):  # a range without a detector would add tensors
        variant.main(["--weights", str(tmp_path / "a"), "--set", f"{step}_range=0.5,0.9", "--out", str(tmp_path / "c")])
    assert not (tmp_path / "c").exists()


def test_a_fog_step_that_yields_to_the_gate_leaves_an_image_the_gate_opens_on_undehazed_and_routed():
    from torch import nn

    class OpenOn(nn.Module):  # opens (route 1) on images whose mean is above 0.5, shut below
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            level = 2000 * (x.mean((1, 2, 3)) - 0.5)
            return torch.stack([level, torch.full_like(level, -100.0)], dim=1)

    hazed = 0.3 + 0.7 * _scenes()  # means above 0.5: the gate opens on them as they came
    calm = 0.3 * _scenes()  # means below: shut
    for yields in (False, True):
        net = RoutedPurifier(**SMALL, fog_range=(0.5, 0.9), fog_yields_to_gate=yields).eval()
        net.gate = OpenOn()
        _certain(net.fog, fog=True)
        with torch.no_grad():
            opened, shut = net.gate_value(hazed), net.gate_value(calm)
            prepared = net.prepare(hazed)
            torch._dynamo.reset()
            traced = torch.compile(net, fullgraph=True, backend="eager")(hazed)
            share = net.dehaze_share(hazed)
        if yields:  # read as fog, but attacked as far as the gate can tell: kept as it came, routed in full
            assert share.max() < 1e-6
            torch.testing.assert_close(prepared, hazed)
            assert torch.all(opened > 0.99)
        else:  # dehazed, and the dehazed share passes the gate
            assert torch.equal(share, torch.ones(4))
            torch.testing.assert_close(prepared, dehaze(hazed))
            assert torch.equal(opened, torch.zeros(4))
        assert torch.equal(shut, torch.zeros(4))  # the gate shut as it came: dehazed and passed either way
        torch.testing.assert_close(traced, net(hazed))  # the dense path (compiled) gives the eager values
    with mock.patch.object(RoutedPurifier, "routes", wraps=net.routes) as routes:
        _certain(net.fog, fog=False)
        with torch.no_grad():
            net.gate_value(calm)
        assert routes.call_count == 1  # read as clear: the gate reads the image once, not for the fog step
    assert torch.equal(RoutedPurifier(**SMALL).dehaze_share(calm), torch.zeros(4))  # no fog step: none
    assert PurifierConfig(arch="routed", fog_yields_to_gate=True).validate().fog_yields_to_gate
    with pytest.raises(ValueError, match="fog_yields_to_gate=1: expected true or false"):
        PurifierConfig(arch="routed", fog_yields_to_gate=1).validate()


def test_a_purifier_training_never_moves_the_fog_detector():
    from types import SimpleNamespace

    from recondefense.train.architecture import frozen_prefixes

    names = [name for name, _ in RoutedPurifier(**SMALL, fog_range=(0.5, 0.9)).named_parameters()]
    assert frozen_prefixes(SimpleNamespace(freeze=None, arch="routed"), names) == ["fog."]
    assert frozen_prefixes(SimpleNamespace(freeze="gate.", arch="routed"), names) == ["gate.", "fog."]
    plain = [name for name, _ in RoutedPurifier(**SMALL).named_parameters()]
    assert frozen_prefixes(SimpleNamespace(freeze=None, arch="routed"), plain) == []


def test_fog_readings_count_the_attacked_crops_read_as_fog_and_refuse_a_defense_without_a_detector(monkeypatch, capsys):
    from types import SimpleNamespace

    module = load_script("fog_readings")
    defense = ReconstructiveDefense(arch="routed", **SMALL, fog_range=[0.5, 0.9], fog_width=4)
    _certain(defense.autoencoder.fog, fog=True)
    monkeypatch.setattr(module, "ReconstructiveDefense", SimpleNamespace(from_pretrained=lambda w: defense))
    monkeypatch.setattr(module, "ObjectCrops", lambda split, length, seed: [(img, -1) for img in _scenes(length)])
    monkeypatch.setattr(
        module, "load_classifier", lambda name: torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3072, 2))
    )
    assert module.main(["--images", "3", "--thresholds", "0.5,0.9"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "---" not in line]
    kinds = [row.split(" | ")[0][2:] for row in rows[1:]]
    assert kinds == ["clean"] + [f"{a} {t}" for t in module.TARGETS for a in ("fgsm", "pgd")]
    assert all(row.endswith("| 1.0000 | 1.0000 | 1.0000 |") for row in rows[1:])  # every crop read as fog
    defense.autoencoder.fog = None
    with pytest.raises(SystemExit):
        module.main(["--images", "3"])
    assert "has no fog detector" in capsys.readouterr().err
