"""Randomized smoothing against cases known in closed form (Cohen et al. 2019)."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import needs_fashion_mnist
from scipy.stats import beta, norm
from torch import nn

from recondefense.certify import (
    ABSTAIN,
    base_classifier,
    certify,
    lower_confidence_bound,
    predict,
    row_label,
    sample_counts,
)


class Linear2(nn.Module):
    """Two-class linear classifier on one pixel value: class 1 iff w * (x - 0.5) > 0 (w = +1)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = x.flatten(1).mean(1) - 0.5
        return torch.stack([-score, score], dim=1)


def test_lower_confidence_bound_is_clopper_pearson():
    assert lower_confidence_bound(990, 1000, 0.001) == pytest.approx(beta.ppf(0.001, 990, 11))
    assert lower_confidence_bound(0, 1000, 0.001) == 0.0
    assert lower_confidence_bound(1000, 1000, 0.001) == pytest.approx(0.001 ** (1 / 1000))


def test_certified_radius_of_a_linear_classifier_matches_the_closed_form():
    """On a 1x1x1 image at x, f = [x > 0.5]; the smoothed classifier's true pA is Phi((x - 0.5) / sigma) (clamping
    to [0, 1] does not move the decision boundary at 0.5), so the exact radius is |x - 0.5|; the certificate is
    sigma * Phi^-1(pA_lower) <= that, and close to it for large n."""
    sigma, x = 0.25, 0.7
    image = torch.full((1, 1, 1), x)
    result = certify(
        Linear2(), image, sigma, n0=100, n=200_000, alpha=0.001, generator=torch.Generator().manual_seed(0)
    )
    assert result.prediction == 1
    exact = x - 0.5
    assert result.radius <= exact + 1e-9
    assert result.radius == pytest.approx(exact, abs=0.01)
    assert result.radius == pytest.approx(sigma * norm.ppf(result.p_a_lower))


def test_abstains_near_the_boundary_and_predict_matches():
    image = torch.full((1, 1, 1), 0.5 + 1e-4)  # pA is about 1/2: no certificate
    gen = torch.Generator().manual_seed(1)
    result = certify(Linear2(), image, 0.25, n0=100, n=2_000, alpha=0.001, generator=gen)
    assert result.prediction == ABSTAIN and result.radius == 0.0
    assert predict(Linear2(), image, 0.25, n=2_000, alpha=0.001, generator=gen) == ABSTAIN
    far = torch.full((1, 1, 1), 0.95)
    assert predict(Linear2(), far, 0.25, n=2_000, alpha=0.001, generator=gen) == 1


def test_sample_counts_batches_and_sums():
    counts = sample_counts(Linear2(), torch.full((1, 2, 2), 0.9), 0.1, 2_500, batch_size=1000)
    assert counts.sum() == 2_500 and counts[1] == 2_500
    with pytest.raises(ValueError, match="one image"):
        sample_counts(Linear2(), torch.rand(2, 1, 2, 2), 0.1, 10)
    with pytest.raises(ValueError, match="sigma"):
        certify(Linear2(), torch.rand(1, 2, 2), 0.0)
    assert math.isfinite(certify(Linear2(), torch.full((1, 2, 2), 0.9), 0.1, n0=10, n=100).radius)


@needs_fashion_mnist
def test_certify_cli_writes_rows_and_the_curve(tmp_path, capsys):
    from recondefense.cli import main

    rows_path, plot = tmp_path / "rows.json", tmp_path / "curve.png"
    code = main(
        ["certify", "--tier", "fashionmnist", "--defenses", "none,fashionmnist-smallcnn-pgd", "--sigma", "0.25"]
        + ["--n", "100", "--n0", "10", "--limit", "2", "--json", str(rows_path), "--plot", str(plot), "--no-progress"]
    )
    assert code == 0 and plot.stat().st_size > 1000
    import json

    rows = json.loads(rows_path.read_text())
    assert len(rows) == 4 and {r["defense"] for r in rows} == {"none", "fashionmnist-smallcnn-pgd"}
    assert "| none |" in capsys.readouterr().out
    # the rows tabulate again without certifying anything; rows of another setting are refused
    assert main(["certify", "--from-json", str(rows_path), "--plot", str(tmp_path / "again.png")]) == 0
    table = capsys.readouterr().out
    assert "| fashionmnist-smallcnn-pgd |" in table and (tmp_path / "again.png").exists()
    other = tmp_path / "other.json"
    other.write_text(json.dumps([dict(rows[0], sigma=0.5)]))
    assert main(["certify", "--from-json", str(rows_path), str(other)]) == 2
    assert "mix settings" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["certify", "--sigma", "-1"])


def test_base_classifier_chains_the_denoiser_and_returns_float32_logits_in_bfloat16():
    torch.manual_seed(0)
    classifier, denoiser = nn.Sequential(nn.Flatten(), nn.Linear(16, 3)), nn.Conv2d(1, 1, 1)
    x = torch.rand(64, 1, 4, 4)
    exact = base_classifier(classifier, denoiser)
    assert torch.equal(exact(x), classifier(denoiser(x))) and not exact.training
    half = base_classifier(classifier, denoiser, precision="bfloat16")
    logits = half(x)
    assert logits.dtype == torch.float32 and not torch.equal(logits, exact(x))
    torch.testing.assert_close(logits, exact(x), atol=0.05, rtol=0.05)
    with pytest.raises(ValueError, match="precision"):
        base_classifier(classifier, precision="float16x")


def _can_compile_on_cpu() -> bool:
    """torch.compile's CPU backend builds C++ against Python's headers."""
    import os
    import shutil
    import sysconfig

    return shutil.which("g++") is not None and os.path.exists(
        os.path.join(sysconfig.get_paths()["include"], "Python.h")
    )


@pytest.mark.skipif(not _can_compile_on_cpu(), reason="torch.compile on CPU needs a C++ compiler and Python's headers")
def test_compiled_base_classifier_counts_the_same_classes():
    classifier = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    image = torch.rand(1, 4, 4)
    counts = [
        sample_counts(
            base_classifier(classifier, compile=compiled), image, 0.5, 300, generator=torch.Generator().manual_seed(1)
        )
        for compiled in (False, True)
    ]
    assert torch.equal(counts[0], counts[1]) and int(counts[0].sum()) == 300


def test_rows_of_another_bare_classifier_are_named_after_it():
    assert row_label({"defense": "none", "classifier": "fm-noise"}, "fm") == "fm-noise"
    assert row_label({"defense": "none", "classifier": "fm"}, "fm") == "none"
    assert row_label({"defense": "ours"}, "fm") == "ours"
