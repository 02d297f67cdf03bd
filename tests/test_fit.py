"""recondefense.train.fit: a user's nn.Module and Dataset objects, labelled or not, tensors or PIL."""

from __future__ import annotations

import pytest
import tiny_models
import torch
from PIL import Image
from torch.utils.data import Dataset, TensorDataset

from recondefense import ReconstructiveDefense
from recondefense.train import TrainConfig, fit


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
