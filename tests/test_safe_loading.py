"""Hostile or broken weights folders are refused before anything is allocated, each with its own error type."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import safetensors.torch
import torch

from recondefense import ReconstructiveDefense
from recondefense.errors import (
    ConfigError,
    CorruptWeightsError,
    ModelTooLargeError,
    NonFiniteWeightsError,
    WeightsError,
    WeightsMismatchError,
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    ReconstructiveDefense(width=8, depth=2).save_pretrained(tmp_path)
    return tmp_path


def _edit_config(folder: Path, **changes) -> None:
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"width": 1_000_000_000}, ConfigError),
        ({"depth": 20_000}, ConfigError),
        ({"width": "32"}, ConfigError),
        ({"width": 32.5}, ConfigError),
        ({"width": True}, ConfigError),
        ({"skip": "no"}, ConfigError),
        ({"widths": [8, "x"]}, ConfigError),
        ({"widths": {"a": 1}}, ConfigError),
        ({"arch": "unet9000"}, ConfigError),
        ({"meta": [1, 2]}, ConfigError),
        ({"format_version": 2}, ConfigError),
        ({"surprise": 1}, ConfigError),
        ({"depth": 1}, ConfigError),  # the skip needs depth >= 2: no valid network
        ({"arch": "residual", "width": 1024, "depth": 6}, ModelTooLargeError),
        ({"width": 16}, WeightsMismatchError),  # valid config, but not the one the tensors were saved for
        ({"arch": "residual"}, WeightsMismatchError),
    ],
)
def test_bad_config_is_refused_with_its_own_error(folder, changes, error):
    _edit_config(folder, **changes)
    with pytest.raises(error):
        ReconstructiveDefense.from_pretrained(folder)


def test_config_that_is_not_an_object_is_refused(folder):
    (folder / "config.json").write_text("[1, 2, 3]")
    with pytest.raises(ConfigError):
        ReconstructiveDefense.from_pretrained(folder)


def test_truncated_weights_are_corrupt(folder):
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptWeightsError):
        ReconstructiveDefense.from_pretrained(folder)
    (folder / "model.safetensors").write_bytes(b"garbage" * 10)
    with pytest.raises(CorruptWeightsError):
        ReconstructiveDefense.from_pretrained(folder)


def test_non_finite_weights_are_refused(folder):
    state = safetensors.torch.load_file(folder / "model.safetensors")
    key = next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 1)
    state[key][0] = math.nan
    safetensors.torch.save_file(state, folder / "model.safetensors")
    with pytest.raises(NonFiniteWeightsError):
        ReconstructiveDefense.from_pretrained(folder)


def test_every_refusal_is_a_weights_error_and_a_value_error():
    for error in (ConfigError, ModelTooLargeError, WeightsMismatchError, CorruptWeightsError, NonFiniteWeightsError):
        assert issubclass(error, WeightsError) and issubclass(error, ValueError)


def test_valid_folder_still_loads(folder):
    loaded = ReconstructiveDefense.from_pretrained(folder)
    x = torch.rand(1, 3, 8, 8)
    assert loaded(x).shape == x.shape


def test_registered_names_pin_both_the_weights_and_the_config(tmp_path, monkeypatch):
    import shutil

    from recondefense import weights

    name = "fashionmnist-smallcnn-pgd"
    shutil.copytree(weights.weights_root() / name, tmp_path / name)
    monkeypatch.setattr(weights, "weights_root", lambda: tmp_path)
    assert ReconstructiveDefense.from_pretrained(name).arch == "recon"
    _edit_config(tmp_path / name, width=16)  # what a tampered install would hold
    with pytest.raises(CorruptWeightsError, match="config.json"):
        ReconstructiveDefense.from_pretrained(name)
