"""The installed package: shipped weights load from a non-editable install, and the AE's cost budget."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models import resnet50

from recondefense import ReconAutoencoder

REPO = Path(__file__).resolve().parents[1]


def test_shipped_weights_load_from_a_non_editable_install(tmp_path):
    """Build a wheel, install it into a bare folder and load every shipped name from there (no network)."""
    pytest.importorskip("setuptools", reason="building the wheel without network needs setuptools in the venv")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    env = {**os.environ, "PIP_NO_INDEX": "1"}
    source = tmp_path / "source"  # a copy, so the build leaves no build/ or egg-info in the checkout
    source.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    for name in ("recondefense", "weights"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    wheel_cmd = [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)]
    subprocess.run(wheel_cmd, check=True, env=env, cwd=tmp_path)
    (wheel,) = wheels.glob("recondefense-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True, env=env)
    script = textwrap.dedent(
        f"""
        import recondefense
        import recondefense.classifiers, recondefense.corruptions, recondefense.data, recondefense.evaluate  # subpackages listed in setup.cfg
        from recondefense import ReconstructiveDefense, list_weights
        from recondefense.classifiers import list_classifiers, load_classifier
        assert recondefense.__file__.startswith({str(site)!r}), recondefense.__file__
        names = list_weights()
        assert names, "no shipped weights in the wheel"
        for name in names:
            ReconstructiveDefense.from_pretrained(name)
        for name in list_classifiers():
            if name.startswith("fashionmnist"):
                load_classifier(name)
        print("loaded", len(names))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("loaded")


def _gflops(model: torch.nn.Module, x: torch.Tensor) -> float:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() / 1e9


def test_default_autoencoder_costs_at_most_a_quarter_of_resnet50():
    x = torch.rand(1, 3, 224, 224)
    ae = _gflops(ReconAutoencoder().eval(), x)
    r50 = _gflops(resnet50().eval(), x)
    assert abs(r50 - 8.18) < 0.05  # 4.09 G multiply-adds: the counter counts what the docstring quotes
    assert abs(ae - 0.33) < 0.01 and ae / r50 <= 0.25
    assert sum(p.numel() for p in ReconAutoencoder().parameters()) < 20_000
