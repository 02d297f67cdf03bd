"""recondefense.train on tiny synthetic ImageFolder data with a tiny classifier (CPU, seconds)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from recondefense import ReconstructiveDefense
from recondefense.train import TrainConfig, TrainingInterrupted, train
from recondefense.train.__main__ import main as train_cli
from recondefense.train.checkpoints import load_checkpoint
from recondefense.train.config import add_config_arguments, changed_fields, config_from_args, config_to_command

TESTS = Path(__file__).parent


def _write_images(root: Path, classes: int = 2, per_class: int = 8, size: int = 16, seed: int = 0) -> Path:
    gen = torch.Generator().manual_seed(seed)
    for split in ("train", "val"):
        for c in range(classes):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True)
            for i in range(per_class if split == "train" else 4):
                pixels = (torch.rand(size, size, 3, generator=gen) * 128 + 100 * c).clamp(0, 255).byte().numpy()
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


@pytest.fixture
def data(tmp_path) -> Path:
    return _write_images(tmp_path / "data")


def _config(data: Path, out: Path, **overrides) -> TrainConfig:
    base = dict(
        data=str(data),
        image_size=16,  # the images' own size (folders default to 224 px)
        classifier="tiny_models:tiny_classifier",
        out=str(out),
        epochs=2,
        warmup_epochs=1,
        batch_size=4,
        width=4,
        depth=2,
        steps=2,
        eps=0.03,
        step_size=0.01,
        log_every=1,
        checkpoint_every=1000,
        val_limit=None,
        progress=False,
        lr=1e-2,
    )
    base.update(overrides)
    return TrainConfig(**base)


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return ReconstructiveDefense.from_pretrained(folder).state_dict()


def _metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_training_lowers_the_loss_and_final_folder_loads(data, tmp_path):
    out = tmp_path / "run"
    final = train(_config(data, out, epochs=4, warmup_epochs=4))
    assert (out / "curves.png").stat().st_size > 1000
    losses = [m["loss"] for m in _metrics(out) if "loss" in m]
    assert len(losses) == 16
    assert sum(losses[-4:]) < sum(losses[:4])
    defense = ReconstructiveDefense.from_pretrained(final)
    assert defense(torch.rand(3, 16, 16)).shape == (3, 16, 16)
    assert defense.meta["classifier"] == "tiny_models:tiny_classifier"
    card = (final / "README.md").read_text()
    assert "Validation" in card and "attacked_acc" in card
    assert f"- Trained by: `{config_to_command(_config(data, out, epochs=4, warmup_epochs=4))}`" in card


def test_config_to_command_round_trips_through_the_cli_parser():
    config = TrainConfig(attack="fgsm", eps=0.04, adaptive=True, amp=False, mean=(0.5, 0.25), std=(0.5, 0.5), out="o")
    command = config_to_command(config)
    assert command.startswith(
        "recondefense train --data fashionmnist --classifier fashionmnist-smallcnn --mean 0.5,0.25"
    )
    assert "--resume" not in config_to_command(TrainConfig(out="o", resume=True))
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    assert config_from_args(parser.parse_args(command.split()[2:])) == config


def test_interrupt_and_resume_is_bitwise_equal(data, tmp_path):
    full = train(_config(data, tmp_path / "full"))
    partial_cfg = _config(data, tmp_path / "part", stop_after_steps=5)
    train(partial_cfg)  # epoch 1 (4 steps) + 1 step of epoch 2
    state = load_checkpoint(tmp_path / "part" / "checkpoint.safetensors")
    assert (state["epoch"], state["step_in_epoch"]) == (1, 1)
    checkpoint = (tmp_path / "part" / "checkpoint.safetensors").read_bytes()
    again = train(dataclasses.replace(partial_cfg, resume=True))  # already at its stop: a script's rerun is a no-op
    assert again.name == "checkpoint.safetensors" and again.read_bytes() == checkpoint
    resumed = train(_config(data, tmp_path / "part", resume=True))
    a, b = _weights(full), _weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_init_from_a_checkpoint_starts_from_the_network_the_stopped_run_had(data, tmp_path):
    from recondefense.train.checkpoints import defense_from_checkpoint

    train(_config(data, tmp_path / "part", arch="residual", stop_after_steps=3))
    checkpoint = tmp_path / "part" / "checkpoint.safetensors"
    defense = defense_from_checkpoint(checkpoint)
    saved = load_checkpoint(checkpoint)["model"]
    assert defense.arch == "residual" and defense.channels == 3 and not defense.training
    assert (
        defense.meta["command"].startswith("recondefense train ")
        and "(its checkpoint at step 3)" in defense.meta["command"]
    )
    assert all(torch.equal(saved[k], v) for k, v in defense.autoencoder.state_dict().items())
    assert any(v.abs().sum() > 0 for k, v in saved.items() if k.startswith("correction.out"))  # it had learnt
    # a new run from it, at a negligible learning rate: it ends where it started
    final = train(
        _config(
            data, tmp_path / "next", arch="residual", init_from=str(checkpoint), epochs=1, warmup_epochs=1, lr=1e-12
        )
    )
    started = ReconstructiveDefense.from_pretrained(final)
    for k, v in started.autoencoder.state_dict().items():
        torch.testing.assert_close(v, saved[k], atol=1e-8, rtol=0)
    assert started.meta["train_config"]["init_from"] == str(checkpoint)


def test_a_resumed_run_may_leave_out_its_start_weights(data, tmp_path):
    """Resumed on a machine that has only its checkpoint (the start weights gone), a run started ``--init-from``
    continues exactly as it would have with them and its final weights name that start; another start is refused."""
    train(_config(data, tmp_path / "start", arch="residual", stop_after_steps=3))
    start = tmp_path / "start" / "checkpoint.safetensors"
    begun = _config(data, tmp_path / "run", arch="residual", init_from=str(start), epochs=2, warmup_epochs=1)
    full = train(_config(data, tmp_path / "full", arch="residual", init_from=str(start), epochs=2, warmup_epochs=1))
    train(dataclasses.replace(begun, stop_after_steps=5))
    with pytest.raises(ValueError, match="--init-from"):
        train(dataclasses.replace(begun, init_from=str(full), resume=True))  # another start: refused
    start.unlink()
    resumed = train(dataclasses.replace(begun, init_from=None, resume=True))
    a, b = _weights(full), _weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert ReconstructiveDefense.from_pretrained(resumed).meta["train_config"]["init_from"] == str(start)


def test_a_checkpoint_written_before_a_purifier_setting_existed_resumes_at_that_settings_default():
    """A run that spans sessions must not be refused because a later commit added a PurifierConfig field: its
    checkpoint's start settings lack the key, and it ran at the field's default; another value is still a change."""
    from recondefense.train.config import TrainConfig, changed_fields

    settings = {"brightness_veto": 0.05, "gate_steep_opening": None, "veto_to_floor": False}
    config = TrainConfig(start_settings=settings)
    saved = dataclasses.asdict(config) | {"start_settings": {"brightness_veto": 0.05}}
    assert changed_fields(saved, config) == {}
    moved = dataclasses.replace(config, start_settings=settings | {"veto_to_floor": True})
    assert list(changed_fields(saved, moved)) == ["start_settings"]


def test_checkpoint_is_one_safetensors_file_without_pickle_and_its_state_round_trips(data, tmp_path):
    from safetensors import safe_open

    from recondefense.train.checkpoints import pack_state, unpack_state

    train(_config(data, tmp_path / "part", stop_after_steps=3))
    path = tmp_path / "part" / "checkpoint.safetensors"
    assert not path.read_bytes().startswith(b"PK")  # no torch.save zip, hence no pickle
    with safe_open(str(path), framework="pt") as f:
        assert f.metadata()["format"] == "recondefense-training-checkpoint"
        keys = set(f.keys())
    assert "rng_torch" in keys and any(k.startswith("model.") for k in keys)
    assert any(k.startswith("optimizer.state.0.") for k in keys)  # Adam's moments, keyed by parameter index
    state = {"a": {0: torch.arange(3), 1: (None, 2.5, float("inf"))}, "b": [torch.ones(2, 2), "s", True]}
    structure, tensors = pack_state(state)
    back = unpack_state(json.loads(json.dumps(structure)), tensors)
    assert back["a"][1] == [None, 2.5, float("inf")] and back["b"][1:] == ["s", True]
    assert torch.equal(back["a"][0], state["a"][0]) and torch.equal(back["b"][0], state["b"][0])
    with pytest.raises(TypeError, match="a object cannot be stored"):
        pack_state({"x": object()})
    weights = train(_config(data, tmp_path / "done", epochs=1)) / "model.safetensors"
    with pytest.raises(ValueError, match="not a readable.*format"):  # a weights file is no checkpoint
        load_checkpoint(weights)


def test_an_older_runs_checkpoint_pt_resumes_bitwise_and_is_replaced(data, tmp_path):
    full = train(_config(data, tmp_path / "full"))
    out = tmp_path / "old"
    train(_config(data, out, stop_after_steps=5))
    state = load_checkpoint(out / "checkpoint.safetensors")
    torch.save(state, out / "checkpoint.pt")  # as runs wrote it before checkpoints became safetensors
    (out / "checkpoint.safetensors").unlink()
    resumed = train(_config(data, out, resume=True))
    assert not (out / "checkpoint.pt").exists() and (out / "checkpoint.safetensors").is_file()
    a, b = _weights(full), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_joint_phase_and_cached_triplets(data, tmp_path):
    out = tmp_path / "cached"
    train(_config(data, out, triplets="cached", attack="mix", clean_fraction=0.5))
    assert all((out / f"triplets_{n}.npy").is_file() for n in ("x_adv", "x", "y"))
    # epochs read the cached clean images instead of the dataset: the same training as a cache holding only x~
    # (as written before the clean images were stored), whose epochs read the dataset
    old = tmp_path / "old-cache"
    old.mkdir()
    shutil.copy(out / "triplets_x_adv.npy", old / "triplets_x_adv.npy")
    train(_config(data, old, triplets="cached", attack="mix", clean_fraction=0.5))
    assert not (old / "triplets_x.npy").exists()
    assert all(torch.equal(v, _weights(old / "final")[k]) for k, v in _weights(out / "final").items())
    joint = [m for m in _metrics(out) if m.get("phase") == "joint"]
    assert joint and all(isinstance(m["guidance"], float) for m in joint)
    assert all(m["guidance"] is None for m in _metrics(out) if m.get("phase") == "warmup")


def test_adaptive_triplets(data, tmp_path):
    final = train(_config(data, tmp_path / "adaptive", adaptive=True))
    assert ReconstructiveDefense.from_pretrained(final).meta["adaptive"] is True


def test_sigterm_saves_checkpoint_and_stops(data, tmp_path):
    out = tmp_path / "sig"
    with pytest.raises(TrainingInterrupted, match="resume"):
        train(_config(data, out, classifier="tiny_models:sigterm_classifier", epochs=50))
    assert (out / "checkpoint.safetensors").is_file()


def test_nan_loss_stops_with_last_checkpoint_intact(data, tmp_path):
    out = tmp_path / "nan"
    with pytest.raises(FloatingPointError, match="last good checkpoint"):
        train(_config(data, out, classifier="tiny_models:nan_classifier", epochs=50, checkpoint_every=1))
    state = load_checkpoint(out / "checkpoint.safetensors")
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_bad_inputs(data, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        train(_config(tmp_path / "missing", tmp_path / "a"))
    empty = tmp_path / "empty"
    (empty / "train" / "c0").mkdir(parents=True)
    (empty / "val" / "c0").mkdir(parents=True)
    with pytest.raises(ValueError, match="no images|empty"):
        train(_config(empty, tmp_path / "b"))
    with pytest.raises(ValueError, match="outputs 3 classes"):
        train(_config(data, tmp_path / "c", classifier="tiny_models:three_class_classifier"))
    train(_config(data, tmp_path / "d", epochs=1))
    with pytest.raises(FileExistsError, match="--resume"):
        train(_config(data, tmp_path / "d", epochs=1))
    train(_config(data, tmp_path / "d", epochs=1, overwrite=True))
    with pytest.raises(FileNotFoundError, match="no checkpoint.safetensors"):
        train(_config(data, tmp_path / "e", resume=True))


def test_undecodable_image_is_skipped_and_counted(data, tmp_path):
    (data / "train" / "class0" / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "skip"
    train(_config(data, out, epochs=1))
    final = [m for m in _metrics(out) if m.get("final")][0]
    assert final["skipped_images"] == 1


def test_cli_reports_errors_without_traceback(data, tmp_path, capsys):
    assert (
        train_cli(
            [
                "--data",
                str(tmp_path / "nope"),
                "--classifier",
                "tiny_models:tiny_classifier",
                "--out",
                str(tmp_path / "o"),
                "--no-progress",
            ]
        )
        == 2
    )
    assert "does not exist" in capsys.readouterr().err


def _free_port() -> int:
    """A TCP port free right now (the OS picks it), so parallel test runs do not share a fixed one."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_torchrun_two_processes_agree(data, tmp_path):
    out = tmp_path / "ddp"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
    }
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(_free_port()),
        "-m",
        "recondefense.train",
        "--data",
        str(data),
        "--image-size",
        "16",
        "--classifier",
        "tiny_models:tiny_classifier",
        "--out",
        str(out),
        "--epochs",
        "2",
        "--warmup-epochs",
        "1",
        "--batch-size",
        "4",
        "--width",
        "4",
        "--depth",
        "2",
        "--steps",
        "2",
        "--no-progress",
        "--device",
        "cpu",
    ]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    final = [m for m in _metrics(out) if m.get("final")][0]
    assert final["ranks_agree"] is True
    ReconstructiveDefense.from_pretrained(out / "final")


@pytest.mark.parametrize("arch", ["residual", "detail"])
@pytest.mark.parametrize("guidance", ["kl", "logits-l1"])
def test_identity_start_architectures_with_logit_guidance(data, tmp_path, arch, guidance):
    out = tmp_path / f"{arch}-{guidance}"
    final = train(
        _config(data, out, arch=arch, guidance=guidance, clean_weight=1.0, warmup_epochs=0, triplets="cached")
    )
    defense = ReconstructiveDefense.from_pretrained(final)
    assert defense.arch == arch
    assert defense.meta["guidance"] == guidance
    records = [m for m in _metrics(out) if "guidance" in m]
    assert records and all(m["guidance"] is not None and m["guidance"] >= 0 for m in records)
    # training moved the zero-initialised correction away from its start
    start = ReconstructiveDefense(arch=arch, width=4, depth=2).state_dict()
    trained = defense.state_dict()
    assert any(not torch.equal(start[k], trained[k]) for k in start if "out." in k)


def test_several_classifiers_judge_alternate_images(data, tmp_path, monkeypatch):
    import tiny_models

    from recondefense.train import triplets

    calls: dict[str, int] = {"tiny": 0, "other": 0}
    for name, cls in (("tiny", tiny_models.TinyClassifier), ("other", tiny_models._OtherTiny)):
        original = cls.forward

        def counted(self, x, _original=original, _name=name, _cls=cls):
            if type(self) is _cls:
                calls[_name] += len(x)
            return _original(self, x)

        monkeypatch.setattr(cls, "forward", counted)
    index = torch.tensor([0, 1, 2, 3, 4])
    assert [(k, rows.tolist()) for k, rows in triplets.classifier_groups(index, 2)] == [(0, [0, 2, 4]), (1, [1, 3])]
    out = tmp_path / "two"
    final = train(
        _config(
            data,
            out,
            classifier="tiny_models:tiny_classifier,tiny_models:other_tiny_classifier",
            arch="residual",
            guidance="kl",
            warmup_epochs=0,
        )
    )
    assert calls["tiny"] > 0 and calls["other"] > 0  # both attacked and judged their share
    assert ReconstructiveDefense.from_pretrained(final).meta["classifier"].count(",") == 1


def test_detail_network_starts_as_the_recon_weights_it_is_initialised_from(data, tmp_path):
    recon = train(_config(data, tmp_path / "recon", epochs=1, warmup_epochs=1))
    start = loop_build(
        _config(data, tmp_path / "unused", arch="detail", init_from=str(recon), width=4, depth=2), in_channels=3
    )
    x = torch.rand(2, 3, 16, 16)
    expected = ReconstructiveDefense.from_pretrained(recon).autoencoder(x)
    assert torch.allclose(start.eval()(x), expected.clamp(0, 1), atol=1e-6)
    with pytest.raises(ValueError, match="does not match") as caught:
        loop_build(_config(data, tmp_path / "unused", arch="residual", init_from=str(recon)), in_channels=3)
    message = str(caught.value)  # the settings as flags, not the state dict's size mismatches
    assert "--arch recon --width 4 --depth 2 --skip (the weights) vs --arch residual" in message
    assert "size mismatch" not in message and len(message.splitlines()) == 1
    with pytest.raises(ValueError, match="purifies 3-channel images but the training images have 1 channel"):
        loop_build(_config(data, tmp_path / "unused", init_from=str(recon)), in_channels=1)


def test_widths_set_the_paper_ae_blocks_and_start_from_widened_weights(data, tmp_path):
    """--widths overrides --width/--depth, reaches the saved config, and a run may start from weights of those
    widths (what scripts/widen_autoencoder.py writes); start weights of other widths are named as such."""
    final = train(_config(data, tmp_path / "wide", epochs=1, warmup_epochs=1, widths="4,6"))
    defense = ReconstructiveDefense.from_pretrained(final)
    assert defense.autoencoder.widths == (4, 6) and defense.hyperparameters["widths"] == [4, 6]
    assert "--widths 4,6" in defense.meta["command"]
    again = loop_build(_config(data, tmp_path / "unused", widths="4,6", init_from=str(final)), in_channels=3)
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in defense.autoencoder.state_dict().items())
    with pytest.raises(
        ValueError, match="--arch recon --skip --widths 4,6 .the weights. vs --arch recon --width 4 --depth 2"
    ):
        loop_build(_config(data, tmp_path / "unused", init_from=str(final)), in_channels=3)


def loop_build(config: TrainConfig, in_channels: int):
    from recondefense.train.network import build_network

    start = None if config.init_from is None else ReconstructiveDefense.from_pretrained(config.init_from)
    return build_network(config, in_channels, start)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--attack", "nope"], "--attack 'nope'"),
        (["--batch-size", "0"], "--batch-size 0"),
        (["--epochs", "0"], "--epochs 0"),
        (["--epochs", "2", "--warmup-epochs", "9"], "--warmup-epochs 9"),
        (["--clean-fraction", "1.5"], "--clean-fraction"),
        (["--guidance", "mse"], "--guidance"),
        (["--arch", "unet"], "--arch"),
        (["--lr-schedule", "step"], "--lr-schedule"),
        (["--val-limit", "0"], "--val-limit"),
        (["--triplets", "cached", "--adaptive"], "cannot be cached"),
        (["--freeze", "nosuch"], "--freeze 'nosuch': no parameter of the --arch recon network starts with 'nosuch'"),
        (["--image-size", "0"], "--image-size 0: expected a positive number"),
        (["--image-size", "-5"], "--image-size -5"),
        (["--device", "nosuch"], "--device 'nosuch': expected auto, cpu, cuda or cuda:N"),
        (["--data", "photos:abc"], "--data 'photos:abc': expected photos:N"),
        (["--eps", "5"], "--eps 5.0: expected a number in (0, 1]"),
        (["--step-size", "0"], "--step-size 0.0: expected a number in (0, 1]"),
        (["--widths", "16,x"], "--widths '16,x': expected comma-separated positive integers"),
        (["--widths", "8"], "--widths 8: the skip connection needs two blocks or more"),
    ],
)
def test_cli_refuses_bad_flags_before_touching_anything(data, tmp_path, capsys, flags, message):
    out = tmp_path / "run"
    code = train_cli(["--data", str(data), "--classifier", "tiny_models:tiny_classifier", "--out", str(out), *flags])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_overwrite_with_bad_data_keeps_the_previous_run(data, tmp_path, capsys):
    out = tmp_path / "run"
    train(_config(data, out, epochs=1))
    before = sorted(p.name for p in out.iterdir())
    code = train_cli(
        ["--data", str(tmp_path / "typo"), "--classifier", "tiny_models:tiny_classifier", "--out", str(out)]
        + ["--overwrite", "--no-progress"]
    )
    assert code == 2 and "does not exist" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == before and (out / "final" / "model.safetensors").is_file()


def test_resume_refuses_changed_settings_and_corrupt_checkpoints(data, tmp_path):
    out = tmp_path / "run"
    train(_config(data, out, epochs=2, stop_after_steps=3))
    with pytest.raises(ValueError, match="--batch-size 2 .checkpoint: 4."):
        train(_config(data, out, epochs=2, batch_size=2, resume=True))
    good = (out / "checkpoint.safetensors").read_bytes()
    (out / "checkpoint.safetensors").write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="checkpoint.safetensors is not a readable"):
        train(_config(data, out, epochs=2, resume=True))
    (out / "checkpoint.safetensors").write_bytes(good)
    with (out / "metrics.jsonl").open("a") as f:
        f.write('{"step": 99, "loss": 1.0}\n{"torn')  # logged after the checkpoint, then a crash mid-line
    train(_config(data, out, epochs=3, resume=True))  # more epochs: applied and recorded
    records = _metrics(out)
    steps = [m["step"] for m in records if "loss" in m]
    assert len(steps) == len(set(steps)) and 99 not in steps
    assert any(m.get("changed") == {"epochs": [2, 3]} for m in records)


def test_cpu_bfloat16_autocast_trains_the_same_batches_and_may_be_switched_on_at_resume(data, tmp_path):
    float32, bfloat16 = tmp_path / "float32", tmp_path / "bfloat16"
    train(_config(data, float32, epochs=1, warmup_epochs=0, stop_after_steps=2))
    train(_config(data, bfloat16, epochs=1, warmup_epochs=0, stop_after_steps=2, cpu_amp=True))
    losses = [[m["loss"] for m in _metrics(run) if "loss" in m] for run in (float32, bfloat16)]
    assert len(losses[0]) == len(losses[1]) == 2 and losses[0] != losses[1]  # bfloat16 arithmetic, same batches
    assert losses[1] == pytest.approx(losses[0], rel=0.05)
    train(_config(data, float32, epochs=1, warmup_epochs=0, stop_after_steps=3, cpu_amp=True, resume=True))
    assert any(m.get("changed", {}).get("cpu_amp") == [False, True] for m in _metrics(float32))
    config = _config(data, float32)
    older = {k: v for k, v in dataclasses.asdict(config).items() if k != "cpu_amp"}  # a checkpoint that predates it
    assert changed_fields(older, config) == {}  # it ran at the default
    assert changed_fields(older, dataclasses.replace(config, cpu_amp=True)) == {"cpu_amp": (False, True)}


def test_unwritable_out_and_undecodable_data_are_one_line_errors(data, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert train_cli(["--data", str(data), "--classifier", "tiny_models:tiny_classifier", "--out", str(blocker)]) == 2
    assert "is a file" in capsys.readouterr().err
    broken = tmp_path / "broken"
    for split in ("train", "val"):
        (broken / split / "c0").mkdir(parents=True)
        (broken / split / "c0" / "x.png").write_bytes(b"not a png")
    code = train_cli(
        ["--data", str(broken), "--classifier", "tiny_models:tiny_classifier", "--out", str(tmp_path / "o")]
    )
    assert code == 2 and "can be decoded" in capsys.readouterr().err


def test_folder_of_unlabelled_images_any_nesting_hash_split(tmp_path):
    from recondefense.data import UnlabelledFolder, hash_split

    root = tmp_path / "camera"
    gen = torch.Generator().manual_seed(0)
    for i in range(30):
        folder = root / f"day{i % 3}" / ("night" if i % 2 else "")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((torch.rand(20, 24, 3, generator=gen) * 255).byte().numpy()).save(folder / f"{i}.jpg")
    train_split, val_split = UnlabelledFolder(root, "train", size=16), UnlabelledFolder(root, "val", size=16)
    assert len(train_split) + len(val_split) == 30 and len(val_split) >= 1
    assert train_split[0][0].shape == (3, 16, 16) and train_split[0][1] == -1
    # adding files never moves an existing file to the other split
    before = {p.name for p in val_split.paths}
    Image.fromarray(torch.zeros(8, 8, 3, dtype=torch.uint8).numpy()).save(root / "new.jpg")
    assert before <= {p.name for p in UnlabelledFolder(root, "val", size=16).paths}
    assert hash_split("a/b.jpg") == hash_split("a/b.jpg") and hash_split("a/b.jpg", seed=1) in ("train", "val")
    final = train(_config(f"folder:{root}", tmp_path / "run", image_size=16, warmup_epochs=0, arch="residual"))
    assert ReconstructiveDefense.from_pretrained(final).meta["dataset"] == f"folder:{root}"


def test_gaussian_noise_triplets_for_denoised_smoothing(data, tmp_path, capsys):
    from recondefense.train.attack_specs import gaussian_sigma

    assert gaussian_sigma("gaussian:0.25") == 0.25 and gaussian_sigma("pgd") is None
    out = tmp_path / "noise"
    final = train(_config(data, out, attack="gaussian:0.25", arch="residual", guidance="kl", warmup_epochs=0))
    assert ReconstructiveDefense.from_pretrained(final).meta["attack"].startswith("gaussian noise, sigma 0.25")
    code = train_cli(
        ["--data", str(data), "--classifier", "tiny_models:tiny_classifier", "--attack", "gaussian:-1"]
        + ["--out", str(tmp_path / "bad")]
    )
    assert code == 2 and "positive sigma" in capsys.readouterr().err


def test_corruption_triplets_mixed_with_pgd(data, tmp_path, capsys):
    from recondefense.train.attack_specs import attack_parts, corruption_spec

    assert corruption_spec("corruption:fog,snow@1-3") == (("fog", "snow"), (1, 2, 3))
    assert corruption_spec("corruption@2")[1] == (2,) and len(corruption_spec("corruption")[0]) == 15
    assert attack_parts("pgd+corruption:fog") == ["pgd", "corruption:fog"] and corruption_spec("pgd") is None
    out = tmp_path / "realworld"
    final = train(_config(data, out, attack="pgd+corruption:gaussian_noise,fog@1-2", warmup_epochs=0))
    assert "corruption:gaussian_noise,fog@1-2" in ReconstructiveDefense.from_pretrained(final).meta["attack"]
    for bad in ("corruption:nope", "corruption@7", "pgd+"):
        code = train_cli(
            ["--data", str(data), "--classifier", "tiny_models:tiny_classifier", "--attack", bad]
            + ["--out", str(tmp_path / "bad")]
        )
        assert code == 2, bad
    assert "unknown corruptions" in capsys.readouterr().err


def test_freeze_keeps_a_sub_network_and_its_batch_norm_statistics(data, tmp_path):
    start = train(_config(data, tmp_path / "recon", epochs=1, warmup_epochs=1))
    final = train(
        _config(
            data,
            tmp_path / "gated",
            arch="gated",
            init_from=str(start),
            freeze="bottleneck",
            warmup_epochs=0,
            guidance="kl",
            clean_weight=1.0,
            detail_width=4,
            detail_depth=1,
        )
    )
    before = ReconstructiveDefense.from_pretrained(start).autoencoder.state_dict()
    after = ReconstructiveDefense.from_pretrained(final).autoencoder
    assert all(torch.equal(before[k], v) for k, v in after.bottleneck.state_dict().items())  # running stats too
    assert not torch.equal(after.gate[-1].bias, torch.tensor([-4.0]))  # the gate learned
    with pytest.raises(ValueError, match="leaves no parameter"):
        train(_config(data, tmp_path / "none", freeze="encoder,decoder", epochs=1))


def test_gate_detection_loss_trains_the_gate_without_the_classifier(data, tmp_path):
    start = train(_config(data, tmp_path / "recon", epochs=1, warmup_epochs=1))
    final = train(
        _config(
            data,
            tmp_path / "gate",
            arch="gated",
            init_from=str(start),
            freeze="bottleneck",
            warmup_epochs=0,
            epochs=3,
            visual_weight=0.0,
            ce_weight=0.0,
            clean_weight=0.0,
            gate_weight=1.0,
            detail_width=4,
            detail_depth=1,
            eps=0.2,
            step_size=0.1,
            triplets="cached",
            lr=0.05,
        )
    )
    gate = ReconstructiveDefense.from_pretrained(final).autoencoder.gate[-1].bias
    assert not torch.equal(gate, torch.tensor([-4.0]))
    steps = [m for m in _metrics(tmp_path / "gate") if "loss" in m]
    assert steps and all(m["guidance"] is None for m in steps)  # no classifier guidance in the steps
    with pytest.raises(ValueError, match="only a --arch gated"):
        train(_config(data, tmp_path / "bad", gate_weight=1.0))


def test_gated_residual_starts_from_a_trained_residual_purifier(data, tmp_path):
    start = train(_config(data, tmp_path / "residual", arch="residual", epochs=1, warmup_epochs=1, lr=1e-3))
    final = train(
        _config(
            data,
            tmp_path / "gated",
            arch="gated",
            inner="residual",
            init_from=str(start),
            freeze="bottleneck",
            warmup_epochs=0,
            epochs=1,
            visual_weight=0.0,
            ce_weight=0.0,
            gate_weight=1.0,
            detail_width=4,
            detail_depth=1,
        )
    )
    before = ReconstructiveDefense.from_pretrained(start).autoencoder.state_dict()
    after = ReconstructiveDefense.from_pretrained(final)
    assert after.hyperparameters["inner"] == "residual"
    assert all(torch.equal(before[k], v) for k, v in after.autoencoder.bottleneck.state_dict().items())
    with pytest.raises(ValueError, match="does not match"):  # a residual start for a gated AE
        train(_config(data, tmp_path / "mismatch", arch="gated", init_from=str(start), epochs=1, warmup_epochs=0))


def test_max_minutes_ends_training_at_an_epoch_end_and_the_card_says_how_many_epochs(data, tmp_path):
    final = train(_config(data, tmp_path / "budget", epochs=5, warmup_epochs=1, max_minutes=1e-6))
    meta = ReconstructiveDefense.from_pretrained(final).meta
    assert meta["epochs_trained"] == 1 and "--max-minutes" in meta["command"]
    assert "Epochs trained: 1" in (final / "README.md").read_text()
    assert any(m.get("stopped_early") for m in _metrics(tmp_path / "budget"))
    with pytest.raises(ValueError, match="max-minutes"):
        train(_config(data, tmp_path / "bad", max_minutes=0.0))


def test_noise_augmentation_of_the_classifier_recipe_matches_the_certify_noise_model():
    from recondefense.train.classifier import _noisy, accuracy, train_classifier

    x = torch.rand(4, 1, 8, 8)
    assert _noisy(x, 0.0, torch.Generator()) is x
    a, b = (_noisy(x, 0.5, torch.Generator().manual_seed(0)) for _ in range(2))
    assert torch.equal(a, b) and a.min() >= 0 and a.max() <= 1 and not torch.equal(a, x)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
    labels = model(x).argmax(1)
    assert accuracy(model, x, labels) == 1.0
    assert accuracy(model, x, labels, noise_sigma=0.5) == accuracy(model, x, labels, noise_sigma=0.5)  # seeded
    with pytest.raises(ValueError, match="noise_sigma"):
        train_classifier("smallcnn", noise_sigma=-1.0)


@pytest.mark.parametrize("bias", [30.0, -30.0])
def test_validation_of_a_gated_purifier_reports_its_gate_and_the_purifier_behind_it(bias):
    from tiny_models import tiny_classifier

    from recondefense.purifiers import GatedPurifier
    from recondefense.train.triplets import TripletMaker
    from recondefense.train.validation import validate

    torch.manual_seed(0)
    classifier = tiny_classifier().eval()
    images = torch.rand(6, 3, 16, 16)
    labels = classifier(images).argmax(1)
    dataset = [(x, int(y), i) for i, (x, y) in enumerate(zip(images, labels))]
    config = TrainConfig(classifier="tiny_models:tiny_classifier", batch_size=4, val_limit=None, eps=0.2, steps=2)
    gated = GatedPurifier(width=4, depth=2, detail_width=4, detail_depth=1)
    with torch.no_grad():
        gated.gate[-1].bias.fill_(bias)  # fully open or fully closed on every image
    result = validate(gated, classifier, TripletMaker(config, [classifier]), dataset, config, torch.device("cpu"))
    assert result["n"] == 6 and result["clean_acc_undefended"] == 1.0
    if bias > 0:  # open: the system is the purifier behind the gate
        assert result["gate_clean"] == pytest.approx(1.0) and result["gate_attacked"] == pytest.approx(1.0)
        assert result["attacked_acc"] == result["inner_attacked_acc"]
        assert result["clean_acc"] == result["inner_clean_acc"]
    else:  # closed: the system is the identity, whatever the purifier behind it does
        assert result["gate_clean"] == pytest.approx(0.0, abs=1e-9)
        assert result["attacked_acc"] == result["attacked_acc_undefended"] and result["clean_acc"] == 1.0
    assert "gate_clean" not in validate(
        gated.bottleneck, classifier, TripletMaker(config, [classifier]), dataset, config, torch.device("cpu")
    )


def test_recon_trains_and_validates_on_sizes_off_its_stride(data, tmp_path):
    """Padded to the network's stride and cropped back, as ReconstructiveDefense.purify does at inference."""
    out = tmp_path / "odd"
    final = train(_config(data, out, image_size=14, depth=3, epochs=1, warmup_epochs=0))  # 14 px, stride 8
    defense = ReconstructiveDefense.from_pretrained(final)
    assert defense.autoencoder.stride == 8 and defense(torch.rand(3, 14, 14)).shape == (3, 14, 14)
    record = [m for m in _metrics(out) if m.get("final")][0]
    assert 0 < record["validation"]["psnr"] < 100


def test_training_pads_like_inference_and_leaves_the_shipped_sizes_untouched():
    from recondefense import list_weights
    from recondefense.train.network import AnySize

    defense = ReconstructiveDefense(in_channels=1, width=4, depth=3)
    x = torch.rand(2, 1, 28, 28)
    assert torch.allclose(AnySize(defense.autoencoder)(x), defense.purify(x), atol=1e-6)
    # the shipped Fashion-MNIST networks take 28 px as they are (stride 4 or 1): training sees no padding
    for name in [n for n in list_weights() if n.startswith("fashionmnist")]:
        ae = ReconstructiveDefense.from_pretrained(name).autoencoder
        assert 28 % ae.stride == 0, name
        assert torch.equal(AnySize(ae)(x), ae(x)), name


def test_a_run_that_failed_before_its_first_checkpoint_does_not_block_the_retry(data, tmp_path, monkeypatch):
    from recondefense.train.loop import _Run

    out = tmp_path / "retry"
    original = _Run.step

    def crash(self, *args, **kwargs):
        raise RuntimeError("crash in the first step")

    monkeypatch.setattr(_Run, "step", crash)
    with pytest.raises(RuntimeError, match="first step"):
        train(_config(data, out, epochs=1))
    assert sorted(p.name for p in out.iterdir()) == ["metrics.jsonl"]
    monkeypatch.setattr(_Run, "step", original)
    with pytest.raises(FileNotFoundError, match="run again without --resume"):
        train(_config(data, out, epochs=1, resume=True))
    final = train(_config(data, out, epochs=1))
    assert (final / "model.safetensors").is_file()
    with pytest.raises(FileExistsError, match="--overwrite"):  # a run with final weights is still protected
        train(_config(data, out, epochs=1))


def test_cli_start_weights_of_another_channel_count_are_one_line_errors(data, tmp_path, capsys):
    gray = tmp_path / "gray"
    ReconstructiveDefense(in_channels=1, width=4, depth=2).save_pretrained(gray)
    code = train_cli(
        ["--data", str(data), "--image-size", "16", "--classifier", "tiny_models:tiny_classifier"]
        + ["--width", "4", "--depth", "2", "--init-from", str(gray), "--out", str(tmp_path / "o"), "--no-progress"]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"error: --init-from '{gray}' purifies 1-channel images but the training images have 3" in err


def test_cli_init_from_alone_trains_the_start_network_and_a_given_flag_wins(data, tmp_path, caplog):
    """``recondefense train --init-from W``: the network flags left at their defaults take W's values (``fit``
    takes them all); one given another value keeps it (here a detail network around W's AE)."""
    start = tmp_path / "routed"
    ReconstructiveDefense(
        arch="routed", width=4, depth=2, detail_width=4, detail_depth=1, corruption_width=4, corruption_depth=1
    ).save_pretrained(start)
    common = ["--data", str(data), "--image-size", "16", "--classifier", "tiny_models:tiny_classifier", "--no-progress"]
    common += ["--epochs", "1", "--warmup-epochs", "1", "--batch-size", "4", "--val-limit", "4"]
    with caplog.at_level("INFO"):
        assert train_cli([*common, "--init-from", str(start), "--out", str(tmp_path / "a")]) == 0
    trained = ReconstructiveDefense.from_pretrained(tmp_path / "a" / "final")
    network = {k: trained.hyperparameters[k] for k in ("arch", "width", "depth", "detail_depth", "corruption_depth")}
    assert network == {"arch": "routed", "width": 4, "depth": 2, "detail_depth": 1, "corruption_depth": 1}
    assert "--arch routed --width 4 --depth 2" in caplog.text and "from the start weights" in caplog.text
    recon = tmp_path / "recon"
    ReconstructiveDefense(width=4, depth=2).save_pretrained(recon)
    detail = [*common, "--arch", "detail", "--detail-width", "4", "--detail-depth", "1", "--init-from", str(recon)]
    assert train_cli([*detail, "--out", str(tmp_path / "b")]) == 0
    wrapped = ReconstructiveDefense.from_pretrained(tmp_path / "b" / "final")
    assert (wrapped.arch, wrapped.hyperparameters["width"], wrapped.hyperparameters["depth"]) == ("detail", 4, 2)


def test_labels_outside_the_classifier_classes_are_refused(tmp_path):
    """An ImageFolder with 3 classes for a 2-class classifier (caught before training), and the per-batch check."""
    from recondefense.train.triplets import check_labels

    data = _write_images(tmp_path / "three", classes=3, per_class=2)
    with pytest.raises(ValueError, match="outputs 2 classes but the data"):
        train(_config(data, tmp_path / "o", epochs=1))
    check_labels(torch.tensor([0, 1]), 2)
    with pytest.raises(ValueError, match="label 59 is outside the classifier's 10 classes .0 to 9."):
        check_labels(torch.tensor([3, 59]), 10)
    with pytest.raises(ValueError, match="label -3 is outside"):
        check_labels(torch.tensor([-3, 1]), 10)


def test_log_lines_never_land_on_the_progress_bars_line(data, tmp_path):
    """``train --stop-after-steps 3`` printed 'stopped after 3 steps ...' onto the bar's line ('psnr=10.2]2026-...')."""
    import os
    import subprocess
    import sys

    argv = ["--data", str(data), "--image-size", "16", "--classifier", "tiny_models:tiny_classifier"]
    argv += ["--out", str(tmp_path / "run"), "--epochs", "1", "--warmup-epochs", "0", "--batch-size", "4"]
    argv += ["--width", "4", "--depth", "2", "--steps", "2", "--stop-after-steps", "3", "--device", "cpu"]
    result = subprocess.run(
        [sys.executable, "-m", "recondefense", "train", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(TESTS)},
    )
    assert result.returncode == 0, result.stderr
    assert "it/s" in result.stderr  # the bar was drawn
    logged = [line for line in result.stderr.split("\n") if "stopped after 3 steps" in line]
    assert len(logged) == 1
    on_its_line = logged[0].split("\r")[-1]  # what a terminal shows: the text after the last carriage return
    assert "it/s" not in on_its_line and "%|" not in on_its_line, repr(logged[0])
