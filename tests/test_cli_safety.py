"""Bad command lines of ``recondefense purify`` and ``recondefense evaluate``: exit code 2 with one
``error:`` line on stderr, before anything is written, loaded or evaluated; inputs are never overwritten."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import needs_fashion_mnist
from PIL import Image

import recondefense.evaluate as ev
from recondefense.cli import main as cli
from recondefense.evaluate import cli as ev_cli
from recondefense.evaluate import figures as ev_figures
from recondefense.evaluate import run as ev_run

WEIGHTS = "fashionmnist-smallcnn-pgd"  # 1 channel


def _png(path: Path, seed: int, fmt: str = "PNG") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (16, 16), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format=fmt)


def _snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` (folders as None, files and symlinks by content)."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def _run(argv: list[str], main, capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse usage errors
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _assert_one_line_error(err: str, usage: bool, match: str) -> None:
    lines = err.strip().splitlines()
    if usage:  # argparse: the usage, then one "prog: error: ..." line
        assert [line for line in lines if "error:" in line] == [lines[-1]]
    else:
        assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert match in lines[-1], lines[-1]


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """In the working folder: in/x.png, in/a/x.png, in/a/x.jpg, in/b/x.png, in/bad.png (garbage),
    in/empty.png, a file ``afile``, link/x.png (symlink to in/a/x.png), hard/x.png (hard link to it)."""
    monkeypatch.chdir(tmp_path)
    _png(tmp_path / "in" / "x.png", 0)
    _png(tmp_path / "in" / "a" / "x.png", 1)
    _png(tmp_path / "in" / "a" / "x.jpg", 2, fmt="JPEG")
    _png(tmp_path / "in" / "b" / "x.png", 3)
    (tmp_path / "in" / "bad.png").write_bytes(b"\x89PNG not really")
    (tmp_path / "in" / "empty.png").write_bytes(b"")
    (tmp_path / "afile").write_text("x")
    (tmp_path / "link").mkdir()
    (tmp_path / "link" / "x.png").symlink_to(tmp_path / "in" / "a" / "x.png")
    (tmp_path / "hard").mkdir()
    os.link(tmp_path / "in" / "a" / "x.png", tmp_path / "hard" / "x.png")
    return tmp_path


PURIFY_BAD = [
    # (arguments, argparse usage error, part of the message)
    (["in/a/x.png", "--out", "in/a"], False, "is the input folder"),
    (["in/a/x.png", "in/b/x.png", "--out", "in"], False, "in/a/x.png and in/b/x.png (outputs are named after"),
    (["in/a/x.png", "in/b/x.png", "--out", "in/."], False, "would be written to the same output"),
    (["in/x.png", "in/a/x.png", "--out", "in/a"], False, "--out in/a is the input folder of in/a/x.png"),
    (["in/a/x.png", "--out", "in/a/."], False, "is the input folder"),
    (["in/a/x.png", "--out", "link"], False, "would overwrite the input in/a/x.png"),
    (["in/a/x.png", "--out", "hard"], False, "would overwrite the input in/a/x.png"),
    (["in/a/x.png", "in/a/x.jpg", "--out", "out"], False, "in/a/x.png and in/a/x.jpg"),
    (["in/a/x.png", "in/bad.png", "--out", "out"], False, "1 of 2 input(s) cannot be read, nothing written"),
    (["in/empty.png", "in/a/x.png", "--out", "out"], False, "in/empty.png (empty file)"),
    (["in/missing.png", "--out", "out"], False, "in/missing.png (no such file"),
    (["in/b", "--out", "out"], False, "in/b (is a directory)"),
    (["in/a/x.png", "--out", "afile"], False, "is a file"),
    (["in/a/x.png", "--out", "afile/sub"], False, "afile is a file"),
    (["in/a/x.png", "--weights", "no-such-weights", "--out", "out"], False, "cannot load 'no-such-weights'"),
    (["--out", "out"], True, "the following arguments are required: images"),
]


@pytest.mark.parametrize(("argv", "usage", "match"), PURIFY_BAD)
def test_purify_refuses_bad_input_and_writes_nothing(tree: Path, capsys, argv, usage, match) -> None:
    before = _snapshot(tree)
    weights = [] if "--weights" in argv else ["--weights", WEIGHTS]
    code, out, err = _run(["purify", *argv, *weights], cli, capsys)
    assert code == 2 and out == ""
    _assert_one_line_error(err, usage, match)
    assert _snapshot(tree) == before  # nothing written, no input modified


def test_purify_names_every_bad_file_at_once(tree: Path, capsys) -> None:
    code, _, err = _run(
        ["purify", "in/a/x.png", "in/bad.png", "in/empty.png", "in/nope.png", "in/b", "--weights", WEIGHTS], cli, capsys
    )
    assert code == 2
    _assert_one_line_error(err, False, "4 of 5 input(s) cannot be read")
    for name in ("in/bad.png", "in/empty.png", "in/nope.png", "in/b "):
        assert name in err
    assert "in/a/x.png" not in err and not (tree / "purified").exists()


def test_purify_names_each_output_after_its_input(tree: Path, capsys) -> None:
    before = _snapshot(tree / "in")
    code, out, err = _run(["purify", "in/a/x.png", "in/b/x.png", "--weights", WEIGHTS], cli, capsys)
    assert code == 2 and out == "" and "in/a/x.png and in/b/x.png" in err  # one name, two files: refused
    code, out, err = _run(["purify", "in/a/x.png", "in/a/x.png", "--weights", WEIGHTS], cli, capsys)
    assert code == 0 and err == ""  # the same file twice is purified once
    assert [line.split(" (")[0] for line in out.splitlines() if " -> " in line] == ["in/a/x.png -> purified/x.png"]
    assert np.asarray(Image.open(tree / "purified" / "x.png")).shape == (16, 16)
    assert _snapshot(tree / "in") == before
    # a folder inside the input tree is fine when no input is overwritten
    assert _run(["purify", "in/a/x.jpg", "--weights", WEIGHTS, "--out", "in/a/purified"], cli, capsys)[0] == 0
    assert (tree / "in" / "a" / "purified" / "x.png").is_file()


@pytest.fixture
def no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if evaluate.main loads a classifier or starts any evaluation."""

    def boom(*args, **kwargs):
        raise AssertionError("evaluate.main did work before refusing its arguments")

    # each name where the code looks it up: the command line, the evaluation loops, the figures
    for module, names in (
        (ev_cli, ("AttackTable", "CorruptionTable", "run_shards", "save_figures", "eps_curve", "corruption_figure")),
        (ev_run, ("load_classifier", "build_defense")),
        (ev_figures, ("build_defense",)),  # (its classifier: through ev_run's load_classifier)
    ):
        for name in names:
            monkeypatch.setattr(module, name, boom)


EVALUATE_BAD = [
    (["--limit", "0"], True, "argument --limit: expected a positive integer, got 0"),
    (["--limit", "-5"], True, "argument --limit: expected a positive integer, got -5"),
    (["--limit", "many"], True, "argument --limit"),
    (["--batch-size", "0"], True, "argument --batch-size"),
    (["--tier", "nope"], True, "argument --tier"),
    (["--defenses", "none,nope"], False, "unknown defense(s) ['nope']"),
    (["--defenses", "./no-such-folder"], False, "unknown defense(s) ['./no-such-folder']"),
    (["--defenses", "none,,jpeg"], False, "unknown defense(s) ['']"),
    (["--no-table", "--curve", "c.png", "--curve-defenses", "nope"], False, "unknown defense(s) ['nope']"),
    (["--curve", "c.png", "--curve-defenses", "none"], False, "--curve-defenses none"),
    (["--attacks", "none,pgd,nope"], False, "unknown attack(s) ['nope']"),
    (["--no-table", "--attacks", "fgms"], False, "unknown attack(s) ['fgms']"),
    (["--json", "no-dir/rows.json"], False, "--json no-dir/rows.json: no-dir is not an existing folder"),
    (["--json", "afile/rows.json"], False, "afile is not an existing folder"),
    (["--json", "in"], False, "--json in is a folder"),
    (["--markdown", "no-dir/t.md"], False, "--markdown no-dir/t.md"),
    (["--figures", "afile/figs"], False, "--figures afile/figs"),
    (["--figures", "afile"], False, "--figures afile is a file"),
    (["--curve", "no-dir/c.png", "--json", "ok.json"], False, "--curve no-dir/c.png: no-dir is not an existing folder"),
    (["--curve", "c.json"], False, "--curve (points) c.json is also the --curve file"),
    (["--json", "t.json", "--markdown", "t.json"], False, "is also the"),
    (["--curve", "c.png", "--json", "c.json"], False, "--curve (points) c.json is also the --json file"),
    (["--from-json", "no-such.json"], False, "--from-json no-such.json: no such file"),
    (["--from-json", "rows.json", "--markdown", "rows.json"], False, "is also the --from-json file"),
    (["--corruptions", "gaussian_noise,gaussian_noise"], False, "['gaussian_noise'] given more than once"),
    (["--corruptions", "fog,speckle"], False, "--corruptions: unknown corruption(s) ['speckle']"),
    (["--held-out-corruptions", "fog"], False, "--held-out-corruptions needs --corruptions"),
    (["--corruptions", "--held-out-corruptions", "fgo"], False, "unknown corruption(s) ['fgo']"),
    (["--corruptions", "fog", "--held-out-corruptions", "snow"], False, "['snow'] are not among the evaluated"),
    (["--device", "tpu"], False, "--device 'tpu': expected auto, cpu, cuda or cuda:N"),
    # a classifier of another dataset, or two classifiers at once
    (
        ["--classifier", "imagenet-efficientnet_lite0"],
        False,
        "--classifier imagenet-efficientnet_lite0 takes imagenet images, but tier 'fashionmnist' gives 1 x 28 x 28",
    ),
    (["--transfer", "--classifier", "fashionmnist-smallcnn"], False, "--transfer evaluates the tier's transfer"),
    # flags that would do nothing
    (["--defenses", "none,jpeg", "--figures", "figs_base"], False, "--figures shows one of our defenses (weights)"),
    (["--corruptions", "fog", "--defenses", "jpeg", "--figures", "figs"], False, "--defenses jpeg names none"),
    (["--no-table"], False, "--no-table without --figures or --curve: nothing to do"),
    (["--no-table", "--curve", "c.png", "--json", "t.json"], False, "--no-table skips the table, so --json would"),
    (["--curve-defenses", WEIGHTS], False, "--curve-defenses without --curve"),
    (["--corruptions", "fog", "--cap", "fog=2"], False, "--cap is for the attack table"),
    (["--from-json", "rows.json", "--figures", "figs"], False, "--from-json only tabulates saved rows: --figures"),
    (["--from-json", "rows.json", "--curve", "c.png"], False, "--from-json only tabulates saved rows: --curve"),
    # shards: whole batches, and a --json file to keep them beside
    (["--shard-size", "0"], True, "argument --shard-size: expected a positive integer, got 0"),
    (["--shard-size", "300"], False, "--shard-size 300 is not a multiple of the batch size 250"),
    (["--batch-size", "40", "--shard-size", "100"], False, "--shard-size 100 is not a multiple of the batch size 40"),
    (["--resume"], False, "--resume need(s) --json FILE: the finished shards are kept in FILE.shards/"),
    (["--resume", "--json", "-"], False, "--resume need(s) --json FILE"),
    (["--resume", "--from-json", "rows.json"], False, "--resume: --from-json computes no table"),
]


@pytest.mark.parametrize(("argv", "usage", "match"), EVALUATE_BAD)
def test_evaluate_refuses_bad_arguments_before_any_work(tree: Path, no_work, capsys, argv, usage, match) -> None:
    (tree / "rows.json").write_text("[]")
    before = _snapshot(tree)
    code, out, err = _run(["evaluate", *argv, "--no-progress"], cli, capsys)
    assert code == 2 and out == ""
    _assert_one_line_error(err, usage, match)
    assert _snapshot(tree) == before


def test_evaluate_accepts_every_kind_of_defense_name(tree: Path, monkeypatch, capsys) -> None:
    seen = {}

    class FakeTable:
        total, settings = 0, {}

        def __init__(self, tier, **kwargs):
            seen.update(kwargs)

        def rows(self, parts):
            return []

    monkeypatch.setattr(ev_cli, "AttackTable", FakeTable)  # where main looks it up
    names = ["none", "jpeg", WEIGHTS, "owner/their-defense", str(tree / "in")]  # the last: an existing folder
    assert ev.main(["--defenses", ",".join(names), "--attacks", "none,pgd-e2e", "--no-progress"]) == 0
    assert seen["defenses"] == names and seen["attacks"] == ["none", "pgd-e2e"]


@needs_fashion_mnist
def test_evaluate_json_to_stdout_keeps_stdout_pure(tmp_path: Path) -> None:
    argv = ["--tier", "fashionmnist", "--limit", "2", "--defenses", "none", "--attacks", "none", "--no-progress"]
    proc = subprocess.run(
        [sys.executable, "-m", "recondefense.cli", "evaluate", *argv, "--json", "-"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)  # nothing but the rows
    assert {(r["defense"], r["attack"]) for r in rows} == {("none", "none")}  # (no PGD: no quality row)
    assert all(r["n"] == 2 for r in rows)
    assert "| none |" in proc.stderr  # the table went to stderr
    assert list(tmp_path.iterdir()) == []  # no file named '-'


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_evaluate_refuses_cuda_without_a_cuda_device(tree: Path, no_work, capsys) -> None:
    code, out, err = _run(["evaluate", "--corruptions", "fog", "--device", "cuda", "--no-progress"], cli, capsys)
    assert code == 2 and out == ""
    _assert_one_line_error(err, False, "--device cuda: this machine has no CUDA device")


def test_evaluate_from_json_refuses_held_out_corruptions_not_in_the_rows(tmp_path: Path, capsys) -> None:
    rows = tmp_path / "rows.json"
    rows.write_text(
        json.dumps(
            [{"defense": "none", "attack": "corruption:fog", "accuracy": 0.5, "per_severity": [0.5] * 5, "n": 4}]
        )
    )
    argv = ["evaluate", "--corruptions", "--from-json", str(rows), "--held-out-corruptions", "snow"]
    code, out, err = _run(argv, cli, capsys)
    assert code == 2 and out == ""
    _assert_one_line_error(err, False, "['snow'] are not in the table")


def test_write_atomic_from_a_writer_function_is_whole_or_absent(tmp_path):
    """Checkpoints and triplet caches stream into write_atomic (torch.save, np.save): a writer that fails
    halfway leaves the old file untouched and no temporary file behind."""
    from recondefense.files import write_atomic

    target = tmp_path / "cache.npy"
    write_atomic(target, lambda file: np.save(file, np.arange(5)))
    assert np.load(target).tolist() == [0, 1, 2, 3, 4]

    def failing(file):
        file.write(b"partial")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        write_atomic(target, failing)
    assert np.load(target).tolist() == [0, 1, 2, 3, 4] and sorted(p.name for p in tmp_path.iterdir()) == ["cache.npy"]


def _rows(defense: str = "none", quality: bool = True, **extra) -> list[dict]:
    """One attack row (and its quality row) as an evaluate --json run writes them."""
    rows = [{"defense": defense, "attack": "none", "accuracy": 0.5, "n": 4, "ci95": [0.2, 0.8], **extra}]
    quality_row = {"defense": defense, "attack": "quality", "psnr": 20.0, "ssim": 0.5, "psnr_clean": None, "n": 4}
    return rows + ([quality_row] if quality else [])


_FOG = {"defense": "none", "attack": "corruption:fog", "accuracy": 0.5, "per_severity": [0.5] * 5, "n": 4}
FROM_JSON_BAD = [
    # (file content, --corruptions, part of the message)
    ("", False, "rows.json: empty file"),
    ("[1,", False, "rows.json: not JSON (Expecting value at line 1 column 4)"),
    (b"\xff\xfe[]", False, "rows.json: not UTF-8 text"),
    ('{"a": 1}', False, "rows.json: a JSON object, expected a list of rows"),
    ("[]", False, "rows.json: the file holds no rows"),
    ("[]", True, "rows.json: the file holds no rows"),
    ([1], False, "rows.json: row 0: expected an object with 'defense' and 'attack', got int"),
    ([{"defense": "none"}], False, "row 0: no 'attack' name"),
    ([{"attack": "none"}], False, "row 0: no 'defense' name"),
    (_rows(quality=False, attack="pgd"), False, "defense(s) ['none'] have PGD rows but no 'quality' row (PSNR/SSIM)"),
    ([{**_rows()[0], "accuracy": "high"}, _rows()[1]], False, "row 0: (defense 'none', attack 'none') lacks a valid"),
    ([{**_rows()[0], "attack": "cw"}], False, "row 0: unknown attack 'cw'"),
    ([_FOG], False, "attack 'corruption:fog' is a corruption-table row: add --corruptions"),
    (_rows(), True, "attack 'none' is an attack-table row: drop --corruptions"),
    ([{**_FOG, "per_severity": []}], True, "lacks a valid per_severity"),
    ([_FOG, {**_FOG, "defense": "jpeg", "per_severity": [0.5], "severities": [3]}], True, "different severities"),
]


@pytest.mark.parametrize(("content", "corruptions", "match"), FROM_JSON_BAD)
def test_evaluate_from_json_refuses_what_is_not_rows(tree: Path, no_work, capsys, content, corruptions, match):
    path = tree / "rows.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    before = _snapshot(tree)
    argv = ["evaluate", "--from-json", "rows.json", "--markdown", "t.md", "--json", "merged.json"]
    code, out, err = _run(argv + (["--corruptions"] if corruptions else []), cli, capsys)
    assert code == 2 and out == ""
    _assert_one_line_error(err, False, match)
    assert _snapshot(tree) == before  # neither the table nor the rows written


def test_evaluate_from_json_writes_the_merged_rows(tree: Path, no_work, capsys) -> None:
    (tree / "a.json").write_text(json.dumps(_rows("jpeg")))
    (tree / "b.json").write_text(json.dumps(_rows("none")))
    code, out, err = _run(["evaluate", "--from-json", "a.json", "b.json", "--json", "merged.json"], cli, capsys)
    assert code == 0 and err == "" and "| jpeg |" in out
    assert json.loads((tree / "merged.json").read_text()) == _rows("none") + _rows("jpeg")  # the table's order
    code, out, err = _run(["evaluate", "--from-json", "merged.json", "--json", "-"], cli, capsys)
    assert code == 0 and json.loads(out) == _rows("none") + _rows("jpeg") and "| none |" in err
