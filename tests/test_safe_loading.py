"""Hostile or broken weights folders are refused before anything is allocated, each with its own error type."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import safetensors.torch
import torch

from recondefense import ReconstructiveDefense, loading
from recondefense.errors import (
    ConfigError,
    CorruptWeightsError,
    ModelTooLargeError,
    NonFiniteWeightsError,
    WeightsError,
    WeightsMismatchError,
)
from recondefense.loading import check_folder, check_hub_id, config_errors


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


# ------------------------------------------------------------------- checks made before huggingface_hub reads
@pytest.mark.parametrize("text", [b'{"width": 8,', b"\xff\xfe not utf-8"], ids=["truncated", "not-utf8"])
def test_malformed_config_json_is_a_config_error_naming_the_file(folder, text):
    (folder / "config.json").write_bytes(text)
    with pytest.raises(ConfigError, match="not valid JSON") as err:
        check_folder(folder)
    assert str(folder / "config.json") in str(err.value)


def test_folder_without_config_json_is_file_not_found(folder):
    check_folder(folder)  # a saved folder passes
    (folder / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="config.json is missing"):
        check_folder(folder)


def test_hub_parser_errors_become_config_errors():
    with pytest.raises(ConfigError, match="config.json of the hub repo a/b: not valid JSON"):
        with config_errors("config.json of the hub repo a/b"):
            json.loads("{")


def _unreachable(*args, **kwargs):
    raise ConnectionError("[Errno -2] Name or service not known (test)")


def test_missing_two_part_path_fails_fast_naming_folder_and_hub(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(loading, "_hub_offline", lambda: True)
    with pytest.raises(FileNotFoundError, match="HF_HUB_OFFLINE is set") as err:
        check_hub_id("runs/mine", cache_dir=tmp_path / "hub")
    assert f"no local folder {tmp_path / 'runs' / 'mine'}, and the hub id 'runs/mine' could not be loaded" in str(
        err.value
    )
    monkeypatch.setattr(loading, "_hub_offline", lambda: False)
    with pytest.raises(FileNotFoundError, match="local_files_only=True"):
        check_hub_id("runs/mine", cache_dir=tmp_path / "hub", local_files_only=True)
    monkeypatch.setattr(loading, "get_hf_file_metadata", _unreachable)  # online, no network: no ~20 s of retries
    with pytest.raises(FileNotFoundError, match=r"no local folder .*the hub is unreachable \(ConnectionError"):
        check_hub_id("runs/mine", cache_dir=tmp_path / "hub")
    with pytest.raises(FileNotFoundError, match="not a valid hub id"):
        check_hub_id("runs/my mine", cache_dir=tmp_path / "hub")


def test_cached_hub_repo_passes_offline(tmp_path, monkeypatch):
    snapshot = tmp_path / "hub" / "models--someone--their-defense" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (tmp_path / "hub" / "models--someone--their-defense" / "refs").mkdir()
    (tmp_path / "hub" / "models--someone--their-defense" / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(loading, "_hub_offline", lambda: True)
    check_hub_id("someone/their-defense", cache_dir=tmp_path / "hub")
    monkeypatch.setattr(loading, "_hub_offline", lambda: False)
    monkeypatch.setattr(loading, "get_hf_file_metadata", _unreachable)
    check_hub_id("someone/their-defense", cache_dir=tmp_path / "hub")  # the mixin falls back on the cache itself


def test_missing_shipped_file_is_file_not_found_not_corrupt(tmp_path, monkeypatch):
    import shutil

    from recondefense import weights

    name = "fashionmnist-smallcnn-pgd"
    shutil.copytree(weights.weights_root() / name, tmp_path / name)
    monkeypatch.setattr(weights, "weights_root", lambda: tmp_path)
    (tmp_path / name / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="config.json is missing; reinstall recondefense"):
        weights.get_weights(name).path()
    (tmp_path / name / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors is missing; reinstall recondefense"):
        weights.get_weights(name).path()


def test_mismatch_names_each_tensor_and_both_shapes(folder):
    _edit_config(folder, width=16)
    with pytest.raises(WeightsMismatchError, match=r"do not match config.json \(.*weight 16x8x3x3 in the file, 32x16"):
        ReconstructiveDefense.from_pretrained(folder)


# ----------------------------------------------------------- from_pretrained: the checks above, end to end
def test_from_pretrained_malformed_config_json_is_a_config_error_naming_the_file(folder):
    (folder / "config.json").write_text('{"width": 8,')
    with pytest.raises(ConfigError, match="not valid JSON") as err:
        ReconstructiveDefense.from_pretrained(folder)
    assert str(folder / "config.json") in str(err.value)


def test_from_pretrained_folder_without_config_logs_nothing(folder, capfd, caplog):
    (folder / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="config.json is missing"):
        ReconstructiveDefense.from_pretrained(folder)
    assert "not found" not in capfd.readouterr().err + caplog.text


def test_from_pretrained_missing_two_part_path_fails_fast_naming_folder_and_hub(tmp_path, monkeypatch):
    import time

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(loading, "_hub_offline", lambda: False)
    monkeypatch.setattr(loading, "get_hf_file_metadata", _unreachable)  # online, no network
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError, match=r"no local folder .*runs/mine, and the hub id 'runs/mine' could not"):
        ReconstructiveDefense.from_pretrained("runs/mine")
    assert time.perf_counter() - start < 5  # not huggingface_hub's ~20 s of retries
    monkeypatch.setattr(loading, "_hub_offline", lambda: True)
    with pytest.raises(FileNotFoundError, match="no local folder .*HF_HUB_OFFLINE is set"):
        ReconstructiveDefense.from_pretrained("runs/mine")
