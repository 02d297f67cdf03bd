"""recondefense.data: load_dataset specs and sizes, and batches of images of different sizes."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from recondefense.data import PHOTO_SIZE, collate_skipping, load_dataset, photo_count


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
