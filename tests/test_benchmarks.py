"""The benchmarks/ scripts still run (tiny settings; the timings themselves are not asserted, only that each prints
its ratio as a number)."""

from __future__ import annotations

import re
import runpy
import sys
from pathlib import Path

import pytest
import torch
from conftest import needs_fashion_mnist

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _run(script: str, args: list[str], monkeypatch, capsys) -> str:
    threads = torch.get_num_threads()
    monkeypatch.setattr(sys, "argv", [script, *args])
    try:
        runpy.run_path(str(BENCHMARKS / script), run_name="__main__")
    finally:
        torch.set_num_threads(threads)  # the scripts set their own thread count
    return capsys.readouterr().out


@pytest.mark.parametrize(
    "args",
    [
        ["--width", "4", "--arch", "gated", "--detail-depth", "1"],  # an untrained gated purifier, sized by flags
        [],  # the shipped default of Defended(model)
        ["--inputs", "photos"],  # clean traffic: the foolbox photos
        ["--inputs", "attacked"],  # attacked traffic: the photos perturbed, the gate open
    ],
)
def test_inference_benchmark_prints_a_ratio_per_batch(args, monkeypatch, capsys):
    from recondefense.data import foolbox_data_dir

    inputs = args[1] if args[:1] == ["--inputs"] else "noise"
    if inputs != "noise" and foolbox_data_dir() is None:
        pytest.skip("foolbox not installed (pip install recondefense[imagenet])")
    out = _run(
        "inference.py",
        [*args, "--repeats", "1", "--batches", "1", "--devices", "cpu", "--threads", "1"],
        monkeypatch,
        capsys,
    )
    rows = [line.split() for line in out.splitlines() if line.startswith("cpu ")]
    assert len(rows) == 1 and rows[0][1] == "1"
    assert float(rows[0][-1]) > 0  # Defended / bare
    assert ("gated width 4" in out) == ("--width" in args)
    assert f"inputs: {inputs}" in out
    opened = re.search(r"^cpu: the gate opens \(above 0.5\) on (\d+) of 20 inputs$", out, re.MULTILINE)
    assert (opened is None) == (inputs == "noise" or "--width" in args), out
    if inputs == "attacked":  # the default's gate flags the perturbed photos, not the clean ones
        assert opened is not None and int(opened.group(1)) >= 15, out


@needs_fashion_mnist
def test_corruption_benchmark_prints_its_ratio_to_pgd(monkeypatch, capsys):
    out = _run("corruptions.py", ["--images", "2", "--repeats", "1", "--threads", "1"], monkeypatch, capsys)
    ratio = re.search(r"^ratio .*: (\d+\.\d+)$", out, re.MULTILINE)
    assert ratio and float(ratio.group(1)) > 0, out


@needs_fashion_mnist
def test_certify_benchmark_prints_its_throughput_ratio(monkeypatch, capsys):
    out = _run(
        "certify.py", ["--images", "1", "--n", "200", "--batch-size", "100", "--threads", "1"], monkeypatch, capsys
    )
    ratio = re.search(r"^ratio .*: (\d+\.\d+)$", out, re.MULTILINE)
    assert ratio and float(ratio.group(1)) > 0, out
    assert "1,000 images x 10,100 samples" in out


@needs_fashion_mnist
def test_evaluate_ranks_benchmark_prints_its_ratio_and_the_same_accuracies(monkeypatch, capsys):
    out = _run("evaluate_ranks.py", ["--images", "20", "--shard-size", "10", "--threads", "2"], monkeypatch, capsys)
    ratio = re.search(r"^ratio .*: (\d+\.\d+)$", out, re.MULTILINE)
    assert ratio and float(ratio.group(1)) > 0, out
    assert "same accuracies and n: True" in out


def test_training_scripts_tune_malloc_as_the_benchmark_does():
    """scripts/tuned_malloc.sh (sourced by the CPU training scripts) exports the benchmark's TUNED_MALLOC values, and
    a value already in the environment wins."""
    import subprocess

    namespace = runpy.run_path(str(BENCHMARKS / "inference.py"), run_name="not_main")
    sourced = BENCHMARKS.parent / "scripts" / "tuned_malloc.sh"
    names = " ".join(f"${name}" for name in namespace["TUNED_MALLOC"])
    script = f'source "{sourced}"; echo {names}'
    printed = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env={}, check=True).stdout
    assert printed.split() == list(namespace["TUNED_MALLOC"].values())
    kept = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env={"MALLOC_TOP_PAD_": "7"}, check=True
    ).stdout
    assert kept.split()[-1] == "7" and list(namespace["TUNED_MALLOC"])[-1] == "MALLOC_TOP_PAD_"
    for training in ("train_imagenet_default.sh", "train_imagenet_realworld.sh"):
        assert 'source "$(dirname "$0")/tuned_malloc.sh"' in (sourced.parent / training).read_text()


def test_bfloat16_training_benchmark_prints_both_runs_losses_and_its_ratio(tmp_path, monkeypatch, capsys):
    from PIL import Image

    gen = torch.Generator().manual_seed(0)
    for split in ("train", "val"):
        for c in range(2):
            folder = tmp_path / split / f"class{c}"
            folder.mkdir(parents=True)
            for i in range(4):
                pixels = (torch.rand(16, 16, 3, generator=gen) * 128 + 100 * c).byte().numpy()
                Image.fromarray(pixels).save(folder / f"{i}.png")
    args = ["--data", str(tmp_path), "--image-size", "16", "--classifier", "tiny_models:tiny_classifier"]
    args += ["--widths", "4,4", "--init-from", "", "--batch-size", "2", "--steps", "1", "--rounds", "1"]
    out = _run("train_bfloat16.py", args, monkeypatch, capsys)
    fp32 = re.search(r"^losses float32: +(.+)$", out, re.MULTILINE)
    bf16 = re.search(r"^losses bfloat16: +(.+)$", out, re.MULTILINE)
    assert fp32 and bf16, out
    first32, first16 = float(fp32.group(1).split()[0]), float(bf16.group(1).split()[0])
    assert len(fp32.group(1).split()) == 2 and abs(first16 - first32) <= 0.05 * abs(first32), out  # the same batch
    ratio = re.search(r"^cpu: float32 \d+ ms/step, bfloat16 \d+ ms/step, ratio (\d+\.\d+|n/a .+)$", out, re.MULTILINE)
    assert ratio, out  # at this size the steps may be shorter than what metrics.jsonl resolves
