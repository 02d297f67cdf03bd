"""recondefense.train.fit: a user's nn.Module and Dataset objects, labelled or not, tensors or PIL."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tiny_models
import torch
from PIL import Image
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from recondefense import ReconstructiveDefense
from recondefense.train import TrainConfig, fit
from recondefense.train.checkpoints import load_checkpoint


class _Unlabelled(Dataset):
    """PIL images, no labels: what a folder of camera frames gives."""

    def __init__(self, count: int = 12) -> None:
        gen = torch.Generator().manual_seed(0)
        self.images = [
            Image.fromarray((torch.rand(16, 16, 3, generator=gen) * 255).byte().numpy()) for _ in range(count)
        ]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Image.Image:
        return self.images[index]


def _config(tmp_path, **overrides) -> TrainConfig:
    base = dict(
        out=str(tmp_path / "run"),
        epochs=1,
        warmup_epochs=0,
        batch_size=4,
        width=4,
        depth=2,
        steps=2,
        eps=0.03,
        step_size=0.01,
        val_limit=None,
        progress=False,
        arch="residual",
        guidance="kl",
    )
    return TrainConfig(**(base | overrides))


def test_fit_unlabelled_pil_images_with_a_normalized_classifier(tmp_path):
    classifier = tiny_models.TinyClassifier(2)
    defense = fit(classifier, _Unlabelled(), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), config=_config(tmp_path))
    assert isinstance(defense, ReconstructiveDefense) and defense.arch == "residual"
    assert defense.meta["classifier"] == "python:TinyClassifier"
    card = (tmp_path / "run" / "final" / "README.md").read_text()
    assert "recondefense.train.fit(TinyClassifier, _Unlabelled" in card
    assert not any(p.requires_grad for p in classifier.parameters())  # frozen in place, as documented


def test_fit_labelled_tensors_from_a_start_defense(tmp_path):
    gen = torch.Generator().manual_seed(1)
    data = TensorDataset(torch.rand(10, 3, 16, 16, generator=gen), torch.randint(0, 2, (10,), generator=gen))
    start = ReconstructiveDefense(arch="detail", width=4, depth=2, detail_width=4, detail_depth=1)
    defense = fit(tiny_models.TinyClassifier(2), data, val_data=data, defense=start, config=_config(tmp_path))
    assert defense.arch == "detail" and defense.hyperparameters["detail_depth"] == 1


def test_fit_refuses_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="nn.Module"):
        fit(lambda x: x, _Unlabelled(), config=_config(tmp_path))
    with pytest.raises(ValueError, match="both mean and std"):
        fit(tiny_models.TinyClassifier(2), _Unlabelled(), mean=(0.5,) * 3, config=_config(tmp_path))
    with pytest.raises(ValueError, match="empty"):
        fit(tiny_models.TinyClassifier(2), TensorDataset(torch.rand(0, 3, 4, 4)), config=_config(tmp_path))
    for setting, message in [({"eps": 5.0}, "--eps 5.0: expected a number in"), ({"freeze": "x"}, "--freeze 'x'")]:
        with pytest.raises(ValueError, match=message):
            fit(tiny_models.TinyClassifier(2), _Unlabelled(), config=_config(tmp_path, **setting))
    assert not (tmp_path / "run").exists()


def test_push_to_hub_uploads_weights_config_and_the_trained_card(tmp_path, monkeypatch):
    import huggingface_hub

    defense = fit(tiny_models.TinyClassifier(2), _Unlabelled(), config=_config(tmp_path))
    uploaded: dict[str, str] = {}

    class FakeApi:
        def __init__(self, token=None) -> None:
            pass

        def create_repo(self, repo_id, private=None, exist_ok=False):
            return type("Repo", (), {"repo_id": repo_id})()

        def upload_folder(self, *, repo_id, folder_path, **kwargs):
            for path in sorted(folder_path.iterdir()):
                uploaded[path.name] = path.read_text() if path.suffix in (".md", ".json") else "<binary>"
            return f"https://huggingface.co/{repo_id}/commit/0"

    monkeypatch.setattr(huggingface_hub.hub_mixin, "HfApi", FakeApi)
    url = defense.push_to_hub("me/my-defense")
    assert url.endswith("/commit/0")
    assert set(uploaded) == {"README.md", "config.json", "model.safetensors"}
    card = uploaded["README.md"]
    assert "python:TinyClassifier" in card and "recondefense.train.fit(TinyClassifier" in card
    assert "| attacked_acc |" in card and "library_name: recondefense" in card


def _gray_classifier() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))


def test_fit_trains_the_default_paper_network_on_28_px_images(tmp_path):
    """Depth 3 (stride 8) on 28 px: padded to 32 and cropped back, as at inference."""
    gen = torch.Generator().manual_seed(0)
    images = [torch.rand(1, 28, 28, generator=gen) for _ in range(12)]
    config = _config(tmp_path, arch="recon", depth=3, guidance="ce")
    defense = fit(_gray_classifier(), images, config=config)
    assert defense.autoencoder.stride == 8 and defense(images[0]).shape == (1, 28, 28)


def test_fit_stopped_after_steps_returns_the_checkpoint_weights_and_resumes(tmp_path):
    data = _Unlabelled()
    config = _config(tmp_path, epochs=2, stop_after_steps=1)
    early = fit(tiny_models.TinyClassifier(2), data, config=config)
    state = load_checkpoint(tmp_path / "run" / "checkpoint.safetensors")
    assert early.meta["stopped_after_steps"] == 1 and not (tmp_path / "run" / "final").exists()
    weights = early.autoencoder.state_dict()
    assert weights.keys() == state["model"].keys() and all(torch.equal(weights[k], state["model"][k]) for k in weights)
    done = fit(
        tiny_models.TinyClassifier(2), data, config=dataclasses.replace(config, stop_after_steps=None, resume=True)
    )
    assert done.meta["epochs_trained"] == 2 and (tmp_path / "run" / "final" / "model.safetensors").is_file()


def test_fit_start_weights_of_another_channel_count_name_the_mismatch(tmp_path):
    images = [torch.rand(1, 16, 16)] * 8
    with pytest.raises(
        ValueError, match=r"fit\(defense='imagenet-efficientnet_lite0-pgd'\) purifies 3-channel images "
    ):
        fit(_gray_classifier(), images, defense="imagenet-efficientnet_lite0-pgd", config=_config(tmp_path))
    with pytest.raises(
        ValueError, match=r"fit\(defense=...\) purifies 3-channel images but the training images have 1"
    ):
        fit(_gray_classifier(), images, defense=ReconstructiveDefense(width=4, depth=2), config=_config(tmp_path))


_GEN = torch.Generator().manual_seed(0)


@pytest.mark.parametrize(
    ("items", "error", "message"),
    [
        ([torch.rand(16, 16, 1)] * 8, ValueError, r"got \(16, 16, 1\), channels last: pass image.permute\(2, 0, 1\)"),
        ([np.random.rand(1, 16, 16)] * 8, ValueError, r"looks like \(C, H, W\) \(1, 16, 16\): pass torch.from_numpy"),
        ([Image.new("RGB", (16, 16))] * 8, ValueError, "takes 1-channel images but the training images have 3"),
        ([(torch.rand(1, 16, 16), 59)] * 8, ValueError, "label 59 is outside the classifier's 10 classes"),
        ([torch.rand(1, 16, 16) * 255] * 8, ValueError, "expected float images in \\[0, 1\\]"),
        ([torch.rand(1, 16, 16).int()] * 8, ValueError, "float in \\[0, 1\\] or uint8, got torch.int32"),
        (["photo.png"] * 8, TypeError, "tensors, PIL images or numpy arrays, got str"),
        ([torch.rand(1, 16, 16)] * 6 + [torch.rand(1, 20, 20)] * 6, ValueError, "images of different sizes"),
    ],
    ids=["hwc-tensor", "chw-numpy", "rgb-pil-gray-model", "label", "0-255-floats", "int32", "str", "mixed-sizes"],
)
def test_fit_refuses_inputs_the_classifier_cannot_take_with_the_fix(tmp_path, items, error, message):
    with pytest.raises(error, match=message):
        fit(_gray_classifier(), items, config=_config(tmp_path))


def test_fit_takes_numpy_images_and_labels_and_checks_every_batch_labels(tmp_path):
    images = [np.random.default_rng(i).random((16, 16, 1), dtype=np.float32) for i in range(8)]
    labels = np.arange(8, dtype=np.int64) % 10
    defense = fit(_gray_classifier(), list(zip(images, labels)), config=_config(tmp_path))
    assert defense.channels == 1
    good, bad = [(torch.rand(1, 16, 16), 1)] * 4, [(torch.rand(1, 16, 16), 1)] + [(torch.rand(1, 16, 16), 12)] * 7
    with pytest.raises(ValueError, match="label 12 is outside the classifier's 10 classes"):  # item 0 passes
        fit(_gray_classifier(), bad, val_data=good, config=_config(tmp_path, overwrite=True))


def test_fit_on_a_small_folder_says_its_validation_is_not_meaningful(tmp_path, caplog):
    """fit on 12 images validated on one and wrote ``attacked_acc 1.0000`` into the card with no warning."""
    import logging

    with caplog.at_level(logging.WARNING, logger="recondefense.train"):
        fit(tiny_models.TinyClassifier(2), _Unlabelled(), config=_config(tmp_path))
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("validation on only 1 image" in m and "not meaningful" in m for m in warned), warned
    card = " ".join((tmp_path / "run" / "final" / "README.md").read_text().split())
    assert "Warning:** validation on only 1 image(s): its accuracies are not meaningful" in card


def test_fine_tuning_keeps_the_start_weights_weightless_corrections(tmp_path):
    """The settings no training option sets (``architecture.START_SETTINGS``: the dot removal, the unsharp mask and
    its measures, the black point, the brightness veto, the corruption purifier's strength) come with the start
    weights into the run: its final weights, an early stop's defense and checkpoint, from ``fit(defense=...)`` and
    from ``--init-from`` a folder."""
    from test_train import _config as _folder_config
    from test_train import _write_images

    from recondefense.train import train
    from recondefense.train.architecture import START_SETTINGS
    from recondefense.train.checkpoints import CHECKPOINT, defense_from_checkpoint

    carried = dict(
        impulse_range=[0.01, 0.015],
        impulse_noise_range=[0.045, 0.06],
        deblur_sharpness_range=[0.1, 0.2],
        deblur_unsharp=[1.0, 1.5],
        deblur_ratio_range=[2.0, 3.0],
        black_point_floor=0.1,
        brightness_veto=0.2,
        veto_black_point=0.25,
        veto_clipped=0.01,
        corruption_strength=0.5,
        corruption_noise_range=[0.05, 0.2],
        fog_range=[0.5, 0.9],
        fog_yields_to_gate=True,
        gate_steep_opening=[-2.0, 8.0],
        veto_to_floor=True,
        brightness_range=[0.6, 0.95],
        snow_range=[0.7, 0.9],
    )
    widths = {"deblur_width", "deblur_depth", "fog_width", "brightness_width", "snow_width"}
    assert set(carried) | widths == set(START_SETTINGS)
    network = dict(
        arch="routed", width=4, depth=2, detail_width=4, detail_depth=1, corruption_width=4, corruption_depth=1
    )
    adopted = dict(bypass_below=[0.0, 0.05], pass_smoothing=0.02, contrast_floor=0.1, contrast_target=1.0)
    start = ReconstructiveDefense(**network, **carried, **adopted)

    def assert_carried(defense: ReconstructiveDefense) -> None:
        assert {k: defense.hyperparameters[k] for k in carried} == carried
        detectors = (".fog.", ".brightness.", ".snow.")  # trained apart: never moved
        detector = {k: v for k, v in defense.state_dict().items() if any(d in k for d in detectors)}
        assert detector and all(torch.equal(v, start.state_dict()[k]) for k, v in detector.items())

    gen = torch.Generator().manual_seed(1)
    data = TensorDataset(torch.rand(8, 3, 16, 16, generator=gen), torch.randint(0, 2, (8,), generator=gen))
    assert_carried(fit(tiny_models.TinyClassifier(2), data, val_data=data, defense=start, config=_config(tmp_path)))
    early = _config(tmp_path, out=str(tmp_path / "early"), stop_after_steps=1)
    assert_carried(fit(tiny_models.TinyClassifier(2), data, val_data=data, defense=start, config=early))
    assert_carried(defense_from_checkpoint(tmp_path / "early" / CHECKPOINT))
    start.save_pretrained(tmp_path / "start")
    folder = _write_images(tmp_path / "images")
    options = dict(network, init_from=str(tmp_path / "start"), epochs=1, warmup_epochs=1)
    final = ReconstructiveDefense.from_pretrained(train(_folder_config(folder, tmp_path / "cli", **options)))
    assert_carried(final)
    assert "start_settings" not in final.meta["command"]  # no flag: --init-from brings them again
    # the options that change no shape: the start's where the run leaves them at their defaults, else the run's
    assert {k: final.hyperparameters[k] for k in adopted} == adopted
    options["contrast_floor"] = 0.05
    own = ReconstructiveDefense.from_pretrained(train(_folder_config(folder, tmp_path / "own", **options)))
    assert {k: own.hyperparameters[k] for k in adopted} == adopted | {"contrast_floor": 0.05}
    without = ReconstructiveDefense.from_pretrained(
        train(_folder_config(folder, tmp_path / "fresh", **network, epochs=1, warmup_epochs=1))
    )
    assert without.hyperparameters["impulse_range"] is None and without.hyperparameters["black_point_floor"] == 0
