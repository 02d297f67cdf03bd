"""ReconstructiveDefense and Defended: save/load, hub loading, bad weights files (the transform contract is in
test_contract.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from recondefense import IMAGENET_MEAN, IMAGENET_STD, Defended, ReconAutoencoder, ReconstructiveDefense, list_weights
from recondefense.defense import DEFAULT_IMAGENET_WEIGHTS
from recondefense.weights import _REGISTRY, WeightsEntry, sha256_file


@pytest.fixture
def defense() -> ReconstructiveDefense:
    torch.manual_seed(0)
    d = ReconstructiveDefense(width=8)
    # Non-trivial BatchNorm statistics so eval-mode outputs depend on them.
    for m in d.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return d


def test_autoencoder_shapes_and_skip():
    for skip in (True, False):
        ae = ReconAutoencoder(in_channels=1, width=8, depth=2, skip=skip)
        assert ae.stride == 4
        assert ae(torch.rand(2, 1, 28, 28)).shape == (2, 1, 28, 28)
    ae = ReconAutoencoder(width=16, depth=3)
    assert ae.widths == (16, 8, 4)
    assert ReconAutoencoder(widths=[32, 8]).widths == (32, 8)
    with pytest.raises(ValueError, match="depth >= 2"):
        ReconAutoencoder(depth=1)


def test_save_load_roundtrip_is_bitwise(defense, tmp_path):
    defense.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    loaded = ReconstructiveDefense.from_pretrained(tmp_path)
    for (k, a), (k2, b) in zip(defense.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    x = torch.rand(2, 3, 33, 33)
    assert torch.equal(defense(x), loaded(x))
    assert loaded.autoencoder.widths == defense.autoencoder.widths


def _write_hub_cache(hf_home, repo_id: str, source_folder) -> str:
    """Lay out a Hugging Face hub cache entry for ``repo_id`` the way hf_hub_download leaves it."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo_dir / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        (snapshot / name).write_bytes((source_folder / name).read_bytes())
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(commit)
    return commit


def _load_offline(hf_home, repo_id: str) -> subprocess.CompletedProcess:
    code = textwrap.dedent(
        f"""
        import torch
        from recondefense import ReconstructiveDefense
        d = ReconstructiveDefense.from_pretrained({repo_id!r})
        print(d(torch.full((1, 3, 8, 8), 0.5)).sum().item())
        """
    )
    env = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1"}
    env.pop("HF_HUB_CACHE", None)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_hub_repo_id_loads_offline_from_local_cache(defense, tmp_path):
    defense.save_pretrained(tmp_path / "saved")
    _write_hub_cache(tmp_path / "hf", "someone/their-defense", tmp_path / "saved")
    result = _load_offline(tmp_path / "hf", "someone/their-defense")
    assert result.returncode == 0, result.stderr
    expected = defense(torch.full((1, 3, 8, 8), 0.5)).sum().item()
    assert float(result.stdout.strip().splitlines()[-1]) == pytest.approx(expected, rel=1e-6)


def test_hub_repo_id_missing_from_cache_fails_clearly(tmp_path):
    result = _load_offline(tmp_path / "hf", "someone/not-cached")
    assert result.returncode != 0
    assert "FileNotFoundError" in result.stderr and "HF_HUB_OFFLINE" in result.stderr


# ----------------------------------------------------------------------------------- bad weights
def test_missing_and_corrupt_weights_files(defense, tmp_path):
    with pytest.raises(FileNotFoundError, match="no folder"):
        ReconstructiveDefense.from_pretrained(tmp_path / "nowhere")
    defense.save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match="corrupt"):
        ReconstructiveDefense.from_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        ReconstructiveDefense.from_pretrained(tmp_path)


@pytest.mark.parametrize("edit", [{"format_version": 99}, {"format_version": None}, {"hidden_size": 7}])
def test_config_of_another_version_is_refused(defense, tmp_path, edit):
    defense.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config.update(edit)
    if edit.get("format_version", 1) is None:
        del config["format_version"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="format_version"):
        ReconstructiveDefense.from_pretrained(tmp_path)


def test_config_of_other_architecture_does_not_match_weights(defense, tmp_path):
    defense.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["width"] = 16
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="do not match"):
        ReconstructiveDefense.from_pretrained(tmp_path)


def test_registered_name_checks_sha256(defense, tmp_path, monkeypatch):
    folder = tmp_path / "toy-weights"
    defense.save_pretrained(folder)
    monkeypatch.setattr("recondefense.weights.weights_root", lambda: tmp_path)
    good = WeightsEntry("toy-weights", "toy-weights", sha256_file(folder / "model.safetensors"))
    monkeypatch.setitem(_REGISTRY, "toy-weights", good)
    assert "toy-weights" in list_weights()
    loaded = ReconstructiveDefense.from_pretrained("toy-weights")
    assert torch.equal(loaded(torch.rand(1, 3, 8, 8) * 0 + 0.5), defense(torch.full((1, 3, 8, 8), 0.5)))
    monkeypatch.setitem(_REGISTRY, "toy-weights", WeightsEntry("toy-weights", "toy-weights", "0" * 64))
    with pytest.raises(ValueError, match="corrupt"):
        ReconstructiveDefense.from_pretrained("toy-weights")


# ----------------------------------------------------------------------------------- Defended
class TinyNet(nn.Module):
    def __init__(self, channels: int = 3, classes: int = 5) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, classes)

    def forward(self, x):
        return self.fc(self.bn(self.conv(x)).relu().mean((2, 3)))


def test_defended_equals_manual_pipeline(defense):
    torch.manual_seed(1)
    net = TinyNet().eval()
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    model = Defended(net, defense, mean=mean, std=std)
    m, s = torch.tensor(mean).view(3, 1, 1), torch.tensor(std).view(3, 1, 1)
    x = (torch.rand(4, 3, 20, 20) - m) / s
    expected = net((defense(x * s + m) - m) / s)
    torch.testing.assert_close(model(x), expected)
    assert model.model is net


def test_defended_pixel_convention(defense):
    net = TinyNet().eval()
    model = Defended(net, defense, mean=None, std=None)
    x = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(model(x), net(defense(x)))


def test_defended_keeps_defense_frozen_while_classifier_trains(defense):
    net = TinyNet()
    model = Defended(net, defense).train()
    assert net.training and not defense.training
    before = {k: v.clone() for k, v in defense.state_dict().items()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    for _ in range(2):
        x = (torch.rand(4, 3, 16, 16) - model.mean) / model.std
        loss = nn.functional.cross_entropy(model(x), torch.randint(0, 5, (4,)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(torch.equal(before[k], v) for k, v in defense.state_dict().items())
    assert net.conv.weight.grad is not None


def test_defended_moves_with_to(defense):
    model = Defended(TinyNet(), defense).to(torch.float64)
    assert model.mean.dtype == torch.float64 and next(defense.parameters()).dtype == torch.float64
    assert model(torch.zeros(1, 3, 8, 8, dtype=torch.float64)).dtype == torch.float64


def test_defended_reads_the_input_range_back_once_per_call(defense, monkeypatch):
    """Defended checks the un-normalized input (and the input convention) and the defense then skips its own check
    of the same pixels: one read-back to the host (Tensor.tolist) per eager call, before and after the out-of-range
    warning. The outcome is unchanged: out-of-range pixels warn once and are clamped, Inf is clamped, NaN is
    refused."""
    import warnings

    model = Defended(TinyNet().eval(), defense)
    x = (torch.rand(2, 3, 16, 16) - model.mean) / model.std
    expected = model(x)
    original, calls = torch.Tensor.tolist, []

    def counted(self, *args, **kwargs):
        calls.append(self.shape)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "tolist", counted)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for inputs in (x, x * 10, x, x * 10):
            calls.clear()
            out = model(inputs)
            assert len(calls) == 1
    assert len([w for w in caught if "clamped" in str(w.message)]) == 1
    torch.testing.assert_close(out, model(((x * 10) * model.std + model.mean).clamp(0, 1).sub(model.mean) / model.std))
    torch.testing.assert_close(model(x), expected)
    inf, nan = x.clone(), x.clone()
    inf[0, 0, 0, 0], nan[0, 0, 0, 0] = float("inf"), float("nan")
    assert torch.isfinite(model(inf)).all()
    with pytest.raises(ValueError, match="NaN"):
        model(nan)
    calls.clear()
    defense(torch.rand(2, 3, 16, 16))  # the defense alone still checks its input
    assert len(calls) == 1
    with pytest.raises(ValueError, match="pixel values"):
        defense(torch.full((1, 3, 8, 8), 1.01))


def test_defended_with_a_module_defense_warns_once_and_passes_nan_through(monkeypatch):
    """A defense that is a plain nn.Module checks nothing itself: Defended reads the range back until it has
    warned, then not at all, and leaves NaN to the defense, as before."""
    import warnings

    model = Defended(TinyNet().eval(), nn.Identity())
    x = (torch.rand(2, 3, 16, 16) - model.mean) / model.std
    original, calls = torch.Tensor.tolist, []
    monkeypatch.setattr(torch.Tensor, "tolist", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model(x)
        model(x * 10)
        model(x)
    assert len(calls) == 2 and len([w for w in caught if "clamped" in str(w.message)]) == 1
    nan = x.clone()
    nan[0, 0, 0, 0] = float("nan")
    assert torch.isnan(model(nan)).any()


def test_defended_with_torchvision_model(defense):
    """A torchvision classifier with the default ImageNet normalization: Defended un-normalizes, purifies,
    re-normalizes and classifies, exactly as done by hand, and the defense is not skipped."""
    from torchvision.models import resnet18

    torch.manual_seed(0)
    net = resnet18(num_classes=10).eval()
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    pixels = torch.rand(2, 3, 32, 32)
    out = Defended(net, defense)((pixels - mean) / std)
    torch.testing.assert_close(out, net((defense(pixels) - mean) / std), atol=1e-5, rtol=1e-4)
    assert not torch.allclose(out, net((pixels - mean) / std), atol=1e-3)


def test_defended_bad_arguments(defense, monkeypatch):
    with pytest.raises(ValueError, match="both mean and std"):
        Defended(TinyNet(), defense, mean=(0.5,), std=None)
    with pytest.raises(TypeError, match="nn.Module"):
        Defended(lambda x: x, defense)
    monkeypatch.delitem(_REGISTRY, DEFAULT_IMAGENET_WEIGHTS, raising=False)
    with pytest.raises(ValueError, match="does not ship"):
        Defended(TinyNet())


@pytest.mark.parametrize(
    ("x", "error", "match"),
    [
        ((torch.rand(1, 3, 16, 16) * 255).to(torch.uint8), TypeError, "floating point .*got torch.uint8"),
        (torch.ones(1, 3, 16, 16, dtype=torch.bool), TypeError, "got torch.bool"),
        (torch.rand(1, 1, 16, 16), ValueError, r"3 channel\(s\).*\(1, 1, 16, 16\).*mean/std"),
        (torch.rand(1, 16, 16, 3), ValueError, r"3 channel\(s\)"),
        (torch.rand(16, 16), ValueError, "2 dimensions"),
        (torch.rand(0, 3, 16, 16), ValueError, "non-empty"),
        ([[0.5]], TypeError, "torch.Tensor, got list"),
    ],
    ids=["uint8", "bool", "grayscale", "channels-last-layout", "2-d", "empty", "list"],
)
def test_defended_refuses_bad_normalized_input_before_computing(defense, x, error, match):
    """With mean/std, the input is checked as normalized images before un-normalizing: uint8 used to turn into
    NaN logits (std cast to uint8 is 0) and a grayscale batch was silently broadcast to 3 channels."""
    with pytest.raises(error, match=match):
        Defended(TinyNet().eval(), defense)(x)


def test_defended_refuses_a_normalization_of_another_channel_count():
    with pytest.raises(ValueError, match="1-channel images but mean/std have 3 values"):
        Defended(TinyNet(), ReconstructiveDefense(in_channels=1, width=4, depth=2))
    Defended(TinyNet(), ReconstructiveDefense(in_channels=1, width=4, depth=2), mean=(0.5,), std=(0.25,))


def test_defended_range_warning_points_at_the_caller(defense):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Defended(TinyNet().eval(), defense)(torch.full((1, 3, 16, 16), 5.0))
    assert [w.filename for w in caught if "clamped" in str(w.message)] == [__file__]


def test_defended_takes_a_weights_name_as_from_classifier_does():
    """``Defended(net, "default")`` raised "expected the defense as an nn.Module, got str" though ``fit`` and
    ``Defended.from_classifier`` take names."""
    model = Defended(TinyNet().eval(), "default")
    assert isinstance(model.defense, ReconstructiveDefense)
    assert (
        model.defense.meta["classifier"]
        == ReconstructiveDefense.from_pretrained(DEFAULT_IMAGENET_WEIGHTS).meta["classifier"]
    )
    with pytest.raises(TypeError, match="nn.Module or a weights name, got int"):
        Defended(TinyNet(), 3)


def test_defended_range_warning_names_0_255_values(defense):
    with pytest.warns(UserWarning, match="0-255 values, so divide by 255"):
        Defended(TinyNet().eval(), defense)(torch.full((1, 3, 16, 16), 200.0))


@pytest.mark.parametrize(
    ("scale", "shift", "match"),
    [
        (255.0, 0.0, "look like 0-255 values; divide by 255"),
        (2.0, -1.0, "look normalized"),
        (1.05, 0.0, "clamp or rescale"),
    ],
    ids=["0-255", "normalized", "slightly-above-1"],
)
def test_out_of_range_pixels_get_the_likely_cause(defense, scale, shift, match):
    """The error said "wrap the classifier with Defended(...)" for every out-of-range batch, also from inside a
    ``Defended(input='pixels')`` and for 0-255 values."""
    x = torch.linspace(0, 1, 3 * 16 * 16).view(1, 3, 16, 16) * scale + shift
    with pytest.raises(ValueError, match=match):
        defense(x)
    with pytest.raises(ValueError, match=match):
        Defended(TinyNet().eval(), defense, input="pixels")(x)


def test_defended_without_a_defense_loads_the_shipped_imagenet_weights():
    from torchvision.models import resnet18

    model = Defended(resnet18(num_classes=10).eval())  # ImageNet normalization by default
    assert isinstance(model.defense, ReconstructiveDefense)
    assert model.defense.meta["classifier"] == "imagenet-efficientnet_lite0,imagenet-efficientnet_lite2"
    assert model.defense.arch == "routed" and model.defense.hyperparameters["in_channels"] == 3
    x = torch.rand(2, 3, 64, 48)
    normalized = (x - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) / torch.tensor(IMAGENET_STD).view(3, 1, 1)
    expected = model.model(
        (model.defense(x) - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) / torch.tensor(IMAGENET_STD).view(3, 1, 1)
    )
    torch.testing.assert_close(model(normalized), expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("arch", ["recon", "gated", "residual"])
def test_purify_computes_channels_last_on_the_cpu_and_returns_the_usual_layout(arch):
    torch.manual_seed(0)
    defense = ReconstructiveDefense(arch=arch, width=8, depth=2, detail_width=4, detail_depth=1)
    with torch.no_grad():  # leave the identity so the comparison checks real arithmetic
        for p in defense.parameters():
            p.add_(0.05 * torch.randn_like(p))
    x = torch.rand(3, 3, 32, 40)
    with torch.no_grad():
        reference = defense.autoencoder(x).clamp(0, 1)  # the purifier on the usual (NCHW) layout
    for images in (x, x.contiguous(memory_format=torch.channels_last)):
        out = defense(images)
        assert out.is_contiguous() and out.shape == x.shape
        torch.testing.assert_close(out, reference, atol=1e-5, rtol=0)


# ----------------------------------------------------------------------------------- the default alias, names
def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_default_alias_loads_the_default_weights_and_follows_the_constant(monkeypatch):
    """``from_pretrained("default")`` is whatever ``recondefense.defense.DEFAULT_IMAGENET_WEIGHTS`` names, read
    when called (the default will change: the alias must follow the constant, not today's name)."""
    import recondefense.defense as defense_module

    default = ReconstructiveDefense.from_pretrained("default")
    assert _same_weights(default, ReconstructiveDefense.from_pretrained(DEFAULT_IMAGENET_WEIGHTS))
    names = list_weights()
    assert names.default == DEFAULT_IMAGENET_WEIGHTS and DEFAULT_IMAGENET_WEIGHTS in names
    assert f"default={DEFAULT_IMAGENET_WEIGHTS!r}" in repr(names)  # what a user sees in the REPL
    assert "default" not in names and names == sorted(names)  # still the plain sorted list of shipped names
    other = "imagenet-efficientnet_lite0-pgd"
    monkeypatch.setattr(defense_module, "DEFAULT_IMAGENET_WEIGHTS", other)
    assert _same_weights(ReconstructiveDefense.from_pretrained("default"), ReconstructiveDefense.from_pretrained(other))
    assert list_weights().default == other
    from recondefense.weights import get_weights

    assert get_weights("default").name == other


def test_weights_command_marks_the_default(capsys):
    from recondefense.cli import main as cli

    assert cli(["weights"]) == 0
    lines = capsys.readouterr().out.splitlines()
    marked = [line for line in lines if "default" in line]
    assert marked and all(DEFAULT_IMAGENET_WEIGHTS in line for line in marked), lines
    assert any(line.startswith(DEFAULT_IMAGENET_WEIGHTS) and "(default" in line for line in lines), lines


def test_a_missing_folder_is_said_first_without_the_list_of_names(tmp_path):
    """It listed all 15 shipped names before saying that the folder does not exist."""
    for path in (tmp_path / "nowhere", "./runs/exp/final", "runs/exp/final"):
        with pytest.raises(FileNotFoundError) as err:
            ReconstructiveDefense.from_pretrained(path)
        message = str(err.value)
        assert "no folder" in message.split(":")[1] or "no such folder" in message, message
        assert "fashionmnist-smallcnn-fgsm" not in message, message  # no list of every shipped name


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("fashionmnist-smallcnn-pdg", "fashionmnist-smallcnn-pgd"),
        ("imagenet-efficientnet_lite0_lite2-gated2", "imagenet-efficientnet_lite0_lite2-gated2-pgd"),
        ("Default", "default"),
    ],
)
def test_a_mistyped_name_gets_did_you_mean(typo, meant):
    with pytest.raises(FileNotFoundError, match=f"did you mean '{meant}'"):
        ReconstructiveDefense.from_pretrained(typo)


@pytest.mark.parametrize("name", ["", "  "])
def test_an_empty_name_is_refused_as_empty(name):
    """``from_pretrained("")`` said "no folder <the working directory>"."""
    with pytest.raises(ValueError, match="an empty weights name"):
        ReconstructiveDefense.from_pretrained(name)


# ----------------------------------------------------------------------------------- the input convention
def _normalized(pixels: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    return (pixels - torch.tensor(mean).view(-1, 1, 1)) / torch.tensor(std).view(-1, 1, 1)


def test_pixels_fed_to_a_normalized_defended_are_warned_once(defense):
    """The most common mistake: [0, 1] pixels into Defended(net), which expects normalized input. They
    un-normalize to about [0.49, 0.71], a valid range, so nothing complained and the results were wrong."""
    import warnings

    from recondefense.errors import InputConventionWarning

    model = Defended(TinyNet().eval(), defense)
    pixels = torch.rand(2, 3, 16, 16)
    with pytest.warns(InputConventionWarning, match=r"input='pixels'") as caught:
        model(pixels)
    (warning,) = caught
    assert warning.filename == __file__  # points at the caller's line
    message = str(warning.message)
    assert "[0, 1]" in message and "normalized" in message and "(x - mean) / std" in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model(pixels)  # once per Defended
        model(torch.rand(1, 3, 16, 16))
    fresh = Defended(TinyNet().eval(), defense, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    with pytest.warns(InputConventionWarning):
        fresh(pixels)


@pytest.mark.parametrize(
    "batch",
    [
        _normalized(torch.rand(2, 3, 16, 16)),  # what it expects
        torch.zeros(1, 3, 16, 16),  # the mean image (a shape probe)
        torch.full((1, 3, 16, 16), 0.5),  # a flat grey: no contrast to judge by
        torch.randn(2, 3, 16, 16),  # an export script's probe (clamped, with its own warning)
    ],
    ids=["normalized", "zeros", "flat", "randn"],
)
def test_normalized_input_is_not_mistaken_for_pixels(defense, batch):
    import warnings

    from recondefense.errors import InputConventionWarning

    model = Defended(TinyNet().eval(), defense)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model(batch)
    assert not [w for w in caught if issubclass(w.category, InputConventionWarning)]


def test_input_pixels_takes_pixels_and_normalizes_for_the_model(defense):
    import warnings

    torch.manual_seed(2)
    net = TinyNet().eval()
    model = Defended(net, defense, input="pixels")
    assert model.input == "pixels" and Defended(net, defense).input == "normalized"
    pixels = torch.rand(2, 3, 16, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = model(pixels)
    torch.testing.assert_close(out, net(_normalized(defense(pixels))), atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match=r"expected pixel values in \[0, 1\]"):
        model(_normalized(pixels))  # the other mistake is refused outright
    assert Defended(net, defense, mean=None, std=None).input == "pixels"


def test_input_normalized_said_explicitly_silences_the_guess(defense):
    import warnings

    model = Defended(TinyNet().eval(), defense, input="normalized")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model(_normalized(torch.rand(1, 3, 16, 16) * 0.3 + 0.45))  # a low-contrast photo, truly normalized


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"input": "rgb"}, "input='rgb': expected 'normalized' (images normalized with the model's mean/std) or"),
        ({"input": "normalized", "mean": None, "std": None}, "input='normalized' needs the mean and std"),
    ],
)
def test_input_convention_bad_arguments(defense, kwargs, match):
    with pytest.raises(ValueError, match=re.escape(match)):
        Defended(TinyNet(), defense, **kwargs)
