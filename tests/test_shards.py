"""Sharded runs (recondefense.shards) and per-image seeding (recondefense.seeding): the shards, their files and
resume in one process; then evaluate and certify under torchrun with two CPU processes (gloo), whose rows equal
those of one process, and a run resumed after a kill, which equals an uninterrupted one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import needs_fashion_mnist

from recondefense.seeding import image_seed
from recondefense.shards import KILL_AFTER_SHARDS, default_shard_size, fingerprint, run_shards, shard_ranges


def test_shards_are_fixed_blocks_of_whole_batches():
    assert shard_ranges(10, 4) == [range(0, 4), range(4, 8), range(8, 10)]
    assert shard_ranges(0, 4) == []
    assert default_shard_size(250) == 250 and default_shard_size(10) == 250 and default_shard_size(200) == 400
    with pytest.raises(ValueError, match="positive number of images"):
        shard_ranges(10, 0)


def test_image_seeds_are_fixed_and_distinct():
    assert image_seed(0, 5, "pgd") == image_seed(0, 5, "pgd") < 2**63
    seeds = {image_seed(s, i, a) for s in (0, 1, -1) for i in range(100) for a in ("none", "pgd", "quality")}
    assert len(seeds) == 3 * 100 * 3


def _squares(calls: list[int]):
    def compute(images: range) -> dict:
        calls.append(images.start)
        return {"start": images.start, "squares": [i * i for i in images]}

    return compute


def test_run_shards_writes_each_shard_and_resume_computes_only_the_missing(tmp_path, caplog):
    settings = {"what": "squares", "seed": 0}
    calls: list[int] = []
    parts = run_shards(_squares(calls), 10, 4, settings=settings, work=tmp_path / "w")
    assert [p["squares"] for p in parts] == [[0, 1, 4, 9], [16, 25, 36, 49], [64, 81]] and calls == [0, 4, 8]
    folder = tmp_path / "w" / fingerprint(settings)
    assert sorted(p.name for p in folder.iterdir()) == [
        "settings.json",
        "shard-000000.json",
        "shard-000001.json",
        "shard-000002.json",
    ]
    (folder / "shard-000001.json").unlink()  # lost with a killed rank
    (folder / "shard-000002.json").write_text('{"fingerprint": "cut short')  # (write_atomic never leaves this)
    calls.clear()
    assert run_shards(_squares(calls), 10, 4, settings=settings, work=tmp_path / "w", resume=True) == parts
    assert calls == [4, 8] and "computing it again" in caplog.text
    calls.clear()
    other = {"what": "squares", "seed": 1}  # other settings never take these shards
    run_shards(_squares(calls), 10, 4, settings=other, work=tmp_path / "w", resume=True)
    assert calls == [0, 4, 8]
    calls.clear()
    run_shards(_squares(calls), 10, 4, settings=settings, work=tmp_path / "w")  # no resume: all again
    assert calls == [0, 4, 8]
    with pytest.raises(ValueError, match="needs a work folder"):
        run_shards(_squares(calls), 10, 4, settings=settings, work=None, resume=True)


@needs_fashion_mnist
def test_a_randomized_baselines_cells_do_not_depend_on_batch_size_or_attack_order():
    from recondefense.evaluate import evaluate

    def cells(attacks: list[str], batch_size: int) -> dict:
        rows = evaluate(
            "fashionmnist", defenses=["rrp"], attacks=attacks, limit=6, batch_size=batch_size, progress=False
        )
        return {r["attack"]: r for r in rows}

    one = cells(["none", "fgsm"], 6)
    other = cells(["fgsm", "none"], 4)
    assert one == other


@needs_fashion_mnist
def test_the_corruption_table_in_shards_equals_one_range(tmp_path):
    from recondefense.evaluate import evaluate_corruptions, main

    out = tmp_path / "c.json"
    argv = ["--corruptions", "gaussian_noise", "--defenses", "none,rrp", "--limit", "6", "--batch-size", "2"]
    assert main([*argv, "--shard-size", "4", "--json", str(out), "--no-progress"]) == 0
    expected = evaluate_corruptions(
        "fashionmnist", defenses=["none", "rrp"], corruptions=["gaussian_noise"], limit=6, batch_size=2, progress=False
    )
    assert json.loads(out.read_text()) == expected
    assert not (tmp_path / "c.json.shards").exists()  # removed once the rows are written


def test_resume_and_torchrun_need_a_json_file(monkeypatch, capsys):
    from recondefense.certify import main as certify
    from recondefense.evaluate import main as evaluate

    assert evaluate(["--resume", "--limit", "2"]) == 2
    assert "--resume need(s) --json FILE" in capsys.readouterr().err
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert evaluate(["--json", "-", "--limit", "2"]) == 2
    assert "torchrun need(s) --json FILE" in capsys.readouterr().err
    assert evaluate(["--from-json", __file__]) == 2
    assert "torchrun: --from-json computes no table" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        certify(["--sigma", "0.25"])
    assert "torchrun need(s) --json FILE" in capsys.readouterr().err


def test_a_shard_size_that_splits_a_batch_is_refused(capsys):
    from recondefense.evaluate import main

    assert main(["--shard-size", "300", "--limit", "2"]) == 2
    assert "--shard-size 300 is not a multiple of the batch size 250" in capsys.readouterr().err


# --- torchrun: two CPU processes ---------------------------------------------------------------------------------

EVALUATE = [
    "--defenses",
    "none,fashionmnist-smallcnn-pgd,rrp",
    "--attacks",
    "none,pgd",
    "--limit",
    "20",
    "--cap",
    "rrp=12",
]
CERTIFY = ["--sigma", "0.25", "--defenses", "none,rrp", "--samples", "100", "--n0", "10", "--limit", "6"]


def _run(
    module: str, argv: list[str], cwd: Path, processes: int = 0, kill_after: int = 0
) -> subprocess.CompletedProcess:
    """``python -m module argv`` (``processes``: under torchrun with that many CPU processes), in ``cwd``."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop(KILL_AFTER_SHARDS, None)
    if kill_after:
        env[KILL_AFTER_SHARDS] = str(kill_after)
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)] if processes else []
    command = [sys.executable, *launcher, "-m", module, *argv, "--no-progress"]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def _without_seconds(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


@needs_fashion_mnist
def test_evaluate_under_torchrun_writes_the_rows_of_one_process(tmp_path):
    argv = [*EVALUATE, "--shard-size", "5"]
    _ok(_run("recondefense.evaluate", [*argv, "--json", "one.json", "--markdown", "one.md"], tmp_path))
    _ok(_run("recondefense.evaluate", [*argv, "--json", "two.json", "--markdown", "two.md"], tmp_path, processes=2))
    one, two = json.loads((tmp_path / "one.json").read_text()), json.loads((tmp_path / "two.json").read_text())
    assert two == one and {r["n"] for r in one} == {20, 12}  # (rrp's cap ends inside a shard)
    assert (tmp_path / "two.md").read_text() == (tmp_path / "one.md").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.json", "one.md", "two.json", "two.md"]


@needs_fashion_mnist
def test_certify_under_torchrun_writes_the_rows_of_one_process(tmp_path):
    argv = [*CERTIFY, "--shard-size", "2"]
    _ok(_run("recondefense.certify", [*argv, "--json", "one.json"], tmp_path))
    _ok(_run("recondefense.certify", [*argv, "--json", "two.json"], tmp_path, processes=2))
    one, two = json.loads((tmp_path / "one.json").read_text()), json.loads((tmp_path / "two.json").read_text())
    assert _without_seconds(two) == _without_seconds(one) and len(one) == 12


@needs_fashion_mnist
def test_a_resumed_run_after_a_kill_equals_an_uninterrupted_one(tmp_path):
    argv = [*EVALUATE, "--shard-size", "5"]
    _ok(_run("recondefense.evaluate", [*argv, "--json", "whole.json"], tmp_path))
    killed = _run("recondefense.evaluate", [*argv, "--json", "rows.json"], tmp_path, processes=2, kill_after=1)
    assert killed.returncode != 0 and not (tmp_path / "rows.json").exists()
    kept = list((tmp_path / "rows.json.shards").glob("*/shard-*.json"))
    assert 1 <= len(kept) < 4  # each rank wrote its first shard (its other one, maybe) before the job was stopped
    resumed = _ok(_run("recondefense.evaluate", [*argv, "--json", "rows.json", "--resume"], tmp_path))
    assert f"resume: {len(kept)} of 4 shards finished" in resumed.stderr
    assert resumed.stderr.count(" done on rank 0") == 4 - len(kept)  # only the missing shards
    assert json.loads((tmp_path / "rows.json").read_text()) == json.loads((tmp_path / "whole.json").read_text())
    assert not (tmp_path / "rows.json.shards").exists()


@pytest.mark.slow  # (about 25 s on an idle 2-core CPU; the evaluate case above runs by default)
@needs_fashion_mnist
def test_a_resumed_certification_under_torchrun_equals_an_uninterrupted_one(tmp_path):
    argv = [*CERTIFY, "--shard-size", "1"]
    _ok(_run("recondefense.certify", [*argv, "--json", "whole.json"], tmp_path))
    killed = _run("recondefense.certify", [*argv, "--json", "rows.json"], tmp_path, processes=2, kill_after=2)
    assert killed.returncode != 0
    _ok(_run("recondefense.certify", [*argv, "--json", "rows.json", "--resume"], tmp_path, processes=2))
    whole, rows = json.loads((tmp_path / "whole.json").read_text()), json.loads((tmp_path / "rows.json").read_text())
    assert _without_seconds(rows) == _without_seconds(whole)
