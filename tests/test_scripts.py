"""The scripts/ helpers behind README figures: their pure parts, on tiny inputs."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import torch

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_perturbation_probe_repairs_are_the_oracle_edits_they_name():
    probe = load_script("perturbation_probe")
    torch.manual_seed(0)
    x, delta = torch.rand(2, 3, 16, 16), (torch.rand(2, 3, 16, 16) - 0.5) / 50
    rows = probe.repairs(cutoff=4, seed=0)
    names = list(rows)
    assert torch.equal(rows[names[0]](x, delta), x + delta)  # nothing removed
    torch.testing.assert_close(rows["90% of delta removed everywhere"](x, delta), x + 0.1 * delta)
    fine_removed = next(n for n in names if n.startswith("fine detail"))
    coarse_removed = next(n for n in names if n.startswith("coarse part"))
    # the two halves of the split add back up to the whole perturbation
    torch.testing.assert_close(rows[fine_removed](x, delta) + rows[coarse_removed](x, delta) - x, x + delta)
    constant = torch.full((1, 3, 16, 16), 0.3)
    torch.testing.assert_close(probe.low_pass(constant, 4), constant)  # a low-pass keeps what is already coarse
    noisy = rows["Gaussian noise sigma 0.03 added"](x, delta) - x - delta
    assert 0.02 < noisy.std() < 0.04
    again = probe.repairs(4, 0)["Gaussian noise sigma 0.03 added"](x, delta)
    torch.testing.assert_close(again, x + delta + noisy)  # seeded: the same draw in a new table
