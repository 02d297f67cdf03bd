"""recondefense.data: load_dataset specs and sizes, and batches of images of different sizes."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from PIL import Image
from torch import nn

from recondefense.data import (
    PHOTO_SIZE,
    PhotoCrops,
    UnlabelledFolder,
    collate_skipping,
    label_with_classifier,
    load_dataset,
    photo_count,
)
from recondefense.data._tensors import TensorImages


def test_imagefolder_defaults_to_the_folder_size_like_folder_specs(tmp_path):
    for i, size in enumerate([(20, 12), (9, 30)]):  # photos of mixed sizes, no image_size
        (tmp_path / "c0").mkdir(exist_ok=True)
        Image.new("RGB", size, (i * 90, 0, 0)).save(tmp_path / "c0" / f"{i}.png")
    for spec in (str(tmp_path), f"imagefolder:{tmp_path}"):
        images, labels, skipped = collate_skipping([load_dataset(spec, "train")[i] for i in range(2)])
        assert images.shape == (2, 3, PHOTO_SIZE, PHOTO_SIZE) and skipped == 0
    assert load_dataset(str(tmp_path), "train", image_size=8)[1][0].shape == (3, 8, 8)
    with pytest.raises(ValueError, match="image_size 0: expected a positive number of pixels"):
        load_dataset(str(tmp_path), "train", image_size=0)


def test_batches_of_different_sizes_and_bad_photo_counts_name_the_fix():
    with pytest.raises(ValueError, match=r"different sizes in one batch, \(3, 8, 8\) and \(3, 9, 8\): resize"):
        collate_skipping([(torch.rand(3, 8, 8), 0), None, (torch.rand(3, 9, 8), 1)])
    assert photo_count("photos") == 10_000 and photo_count("photos:6") == 6
    for spec in ("photos:abc", "photos:0", "photos:-2"):
        with pytest.raises(ValueError, match="expected photos:N with N a positive number"):
            photo_count(spec)


def _image(path, colour=(200, 30, 0), size=(20, 16)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


def test_imagefolder_splits_share_the_train_class_map(tmp_path):
    for name in ("train/cat/a.png", "train/dog/b.png", "val/dog/c.png"):
        _image(tmp_path / name)
    val = load_dataset(str(tmp_path), "val", image_size=8)
    assert val.classes == ["cat", "dog"] and val[0][1] == 1  # dog keeps its train label
    assert [load_dataset(str(tmp_path), "train", image_size=8)[i][1] for i in range(2)] == [0, 1]
    _image(tmp_path / "val/bird/d.png")
    with pytest.raises(ValueError, match=r"classes \['bird'\] that the train split lacks"):
        load_dataset(str(tmp_path), "val")


def test_missing_splits_and_empty_paths_are_refused(tmp_path, monkeypatch):
    for name in ("train/cat/a.png", "val/cat/b.png"):
        _image(tmp_path / name)
    with pytest.raises(ValueError, match=r"split sub-folders train, val but no 'test'"):
        load_dataset(str(tmp_path), "test")
    monkeypatch.chdir(tmp_path)
    for spec in ("", "imagefolder:", "folder:"):
        with pytest.raises(ValueError, match="empty PATH: expected one of fashionmnist, photos"):
            load_dataset(spec, "train", classifier=nn.Identity())
    for spec in ("no_such_dir", "imagefolder:no_such_dir", "folder:no_such_dir", "fashion-mnist"):
        with pytest.raises(
            FileNotFoundError, match=r"does not exist .*fashionmnist, photos\[:N\], objects\[:N\], folder:PATH"
        ):
            load_dataset(spec, "train", classifier=nn.Identity())


def test_label_with_classifier_runs_in_eval_mode_and_restores_the_mode(tmp_path):
    torch.manual_seed(0)
    classifier = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    classifier.train()
    classifier[1].running_mean.normal_()  # eval-mode predictions depend on the stored statistics only
    stats = classifier[1].running_mean.clone()
    images = TensorImages(torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8), torch.full((10,), -1))
    labels = [[label for _, label in label_with_classifier(images, classifier, batch_size=b)] for b in (1, 3, 10)]
    assert labels[0] == labels[1] == labels[2]
    assert torch.equal(classifier[1].running_mean, stats) and classifier.training and classifier[1].training
    classifier[0].eval()  # a mixed mode is restored module by module
    label_with_classifier(images, classifier)
    assert classifier.training and not classifier[0].training and classifier[1].training


def test_label_with_classifier_keeps_its_labels_in_a_cache_file_for_restarts(tmp_path):
    calls = []

    class Counting(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.ones(()))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            calls.append(len(x))
            return x.mean((2, 3)) * self.scale  # top-1: the brightest channel

    images = TensorImages(torch.randint(0, 256, (7, 3, 4, 4), dtype=torch.uint8), torch.full((7,), -1))
    cache = tmp_path / "labels" / "train-key.npy"
    first = [label for _, label in label_with_classifier(images, Counting(), batch_size=3, cache=cache)]
    assert calls == [3, 3, 1] and cache.is_file() and not list(cache.parent.glob("*.partial.npy"))
    again = [label for _, label in label_with_classifier(images, Counting(), batch_size=3, cache=cache)]
    assert again == first and calls == [3, 3, 1]  # read back: the classifier did not run again
    fewer = TensorImages(images.images[:5], images.labels[:5])
    assert [label for _, label in label_with_classifier(fewer, Counting(), cache=cache)] == first[:5]
    assert calls[-1] == 5  # another length: labelled again (and the file rewritten for it)


def test_a_training_run_names_its_label_cache_by_what_the_labels_depend_on(tmp_path):
    from recondefense.train import TrainConfig
    from recondefense.train.setup import label_cache

    config = TrainConfig(data="objects:64", classifier="imagenet-efficientnet_lite0", out=str(tmp_path))
    train, val = label_cache(config, "train"), label_cache(config, "val")
    assert train.parent == val.parent == tmp_path / "labels" and train.name.startswith("train-") and train != val
    assert label_cache(dataclasses.replace(config, epochs=3), "train") == train  # training settings do not matter
    for change in ({"data": "objects:128"}, {"classifier": "imagenet-efficientnet_lite2"}, {"image_size": 192}):
        assert label_cache(dataclasses.replace(config, **change), "train") != train


def test_unlabelled_folder_follows_symlinked_folders_without_looping(tmp_path):
    _image(tmp_path / "outside" / "x.png")
    root = tmp_path / "data"
    _image(root / "a" / "y.png")
    (root / "linked").symlink_to(tmp_path / "outside", target_is_directory=True)
    (root / "a" / "loop").symlink_to(root, target_is_directory=True)
    (root / "dangling.png").symlink_to(tmp_path / "missing.png")
    both = UnlabelledFolder(root, "train", 8).paths + UnlabelledFolder(root, "val", 8).paths
    assert sorted(p.relative_to(root).as_posix() for p in both) == ["a/y.png", "linked/x.png"]


def test_photo_crops_and_unlabelled_folder_validate_their_arguments(tmp_path):
    photo = _image(tmp_path / "p.png", size=(40, 30))
    for size in (0, -5):
        with pytest.raises(ValueError, match=f"size {size}: expected a positive number of pixels"):
            UnlabelledFolder(tmp_path, "train", size)
    for args, match in [
        ((-1, 16), "length must be a non-negative"),
        ((2, 0), "size must be a positive"),
        ((2, 16, 0, (1.0, 0.25)), r"scale \(1.0, 0.25\): expected \(low, high\) with 0 < low <= high"),
        ((2, 16, 0, (0.25, 1.0), (0.0, 1.0)), "ratio"),
    ]:
        with pytest.raises(ValueError, match=match):
            PhotoCrops([photo], *args)
    crops = PhotoCrops(str(photo), 5, 16)  # one path, not its characters
    assert len(crops.paths) == 1 and torch.equal(crops[-1][0], crops[4][0])
    with pytest.raises(IndexError, match="index -6 out of range for 5 crops"):
        crops[-6]


def test_fashion_mnist_refuses_an_image_size_it_cannot_give():
    with pytest.raises(ValueError, match="image_size 64: Fashion-MNIST images are 28x28"):
        load_dataset("fashionmnist", "train", image_size=64)
