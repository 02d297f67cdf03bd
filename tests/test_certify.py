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
    certify_dataset,
    lower_confidence_bound,
    predict,
    print_table,
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


# ------------------------------------------------------------------------------------- argument checks


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def test_garbage_images_and_logits_get_no_certificate():
    image = torch.full((1, 2, 2), 0.9)
    nan_pixel = image.clone()
    nan_pixel[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        certify(Linear2(), nan_pixel, 0.25, n0=10, n=100)
    with pytest.raises(ValueError, match="NaN"):
        predict(Linear2(), nan_pixel, 0.25, 100, 0.001)
    with pytest.raises(ValueError, match=r"NaN or Inf logits"):
        certify(lambda x: torch.full((x.shape[0], 3), float("nan")), image, 0.25, n0=10, n=100)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):  # 0..255 floats are not clamped to white and certified
        certify(Linear2(), image * 255, 0.25, n0=10, n=100)
    with pytest.raises(ValueError, match=r"\(N, K\) logits|logits for"):
        certify(lambda x: x.flatten(), image, 0.25, n0=10, n=100)
    # uint8 is pixels in [0, 255], like everywhere in the library: the same certificate as the float image
    as_uint8 = (image * 255).round().to(torch.uint8)
    assert certify(Linear2(), as_uint8, 0.25, n0=10, n=100, generator=_gen()) == certify(
        Linear2(), as_uint8.float() / 255, 0.25, n0=10, n=100, generator=_gen()
    )


@pytest.mark.parametrize("batch_size", [0, -3, 2.5])
def test_batch_size_must_be_a_positive_int(batch_size):
    image = torch.full((1, 2, 2), 0.9)
    with pytest.raises(ValueError, match="batch_size"):
        certify(Linear2(), image, 0.25, n0=10, n=100, batch_size=batch_size)
    with pytest.raises(ValueError, match="batch_size"):
        predict(Linear2(), image, 0.25, 100, 0.001, batch_size=batch_size)
    with pytest.raises(ValueError, match="batch_size"):
        sample_counts(Linear2(), image, 0.25, 100, batch_size=batch_size)


def test_sigma_must_be_positive_and_finite_and_radius_is_a_float():
    image = torch.full((1, 2, 2), 0.9)
    for sigma in (float("nan"), float("inf"), -0.1, 0, "0.25", torch.tensor([0.25])):
        with pytest.raises(ValueError, match="sigma"):
            certify(Linear2(), image, sigma, n0=10, n=100)
    as_tensor = certify(Linear2(), image, torch.tensor(0.25), n0=10, n=100, generator=_gen())
    assert type(as_tensor.radius) is float and as_tensor == certify(
        Linear2(), image, 0.25, n0=10, n=100, generator=_gen()
    )


def test_predict_certify_and_the_bound_check_their_arguments():
    image = torch.full((1, 2, 2), 0.9)
    with pytest.raises(ValueError, match="alpha"):
        predict(Linear2(), image, 0.25, 100, 2)
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        predict(Linear2(), image, 0.25, 0, 0.01)
    assert predict(lambda x: torch.zeros(x.shape[0], 1), image, 0.25, 100, 0.01) == 0  # 1 class: no runner-up
    for n0, n in ((10.0, 100), (10, 1e2)):
        with pytest.raises(ValueError, match="must be an int"):
            certify(Linear2(), image, 0.25, n0=n0, n=n)
    with pytest.raises(ValueError, match="at most trials"):
        lower_confidence_bound(10, 5, 0.001)
    with pytest.raises(ValueError, match="limit"):
        certify_dataset(Linear2(), [(image, 1)], 0.25, limit=-1)
    with pytest.raises(TypeError, match="nn.Module"):
        certify(42, image, 0.25)
    # a float64 image through a float32 module: cast to the module's dtype
    torch.manual_seed(0)
    module = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    assert certify(module, image.double(), 0.25, n0=10, n=100, generator=_gen()) == certify(
        module, image, 0.25, n0=10, n=100, generator=_gen()
    )
    # any callable: a plain function certifies like the module it calls
    rows = certify_dataset(lambda x: Linear2()(x), [(image, 1)], 0.25, n0=10, n=100, progress=False)
    assert rows[0]["prediction"] == 1


def test_print_table_and_row_label_take_certify_dataset_rows(capsys):
    data = [(torch.full((1, 2, 2), v), 1) for v in (0.9, 0.95, 0.2)]
    rows = certify_dataset(Linear2(), data, 0.25, n0=10, n=100, progress=False)
    assert {"sigma", "n0", "n", "alpha"} <= set(rows[0]) and rows[0]["n0"] == 10
    print_table({"linear": rows}, [0.0, 0.25])
    out = capsys.readouterr().out
    assert "| linear | 0.667 |" in out
    with pytest.raises(ValueError, match="names no 'defense'"):
        row_label(rows[0], "fm")
    assert row_label(dict(rows[0], defense="none"), "fm") == "none"
    with pytest.raises(ValueError, match=r"lack \['n0'\]"):
        print_table({"old": [{k: v for k, v in rows[0].items() if k != "n0"}]}, [0.0])


def test_warmup_runs_every_batch_shape_before_the_first_timed_image():
    seen: list[int] = []

    def model(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.shape[0])
        return Linear2()(x)

    data = [(torch.full((1, 2, 2), 0.9), 1)]
    rows = certify_dataset(model, data, 0.25, n0=30, n=250, batch_size=100, warmup=True, progress=False)
    assert seen[:3] == [30, 100, 50]  # the shapes certify uses, once each, in its order, untimed
    assert seen[3:] == [30, 100, 100, 50]  # then the certification itself
    plain = certify_dataset(Linear2(), data, 0.25, n0=30, n=250, batch_size=100, progress=False)
    assert [r["radius"] for r in rows] == [r["radius"] for r in plain]  # the noise draws are untouched


def _rows_file(path, rows):
    import json

    path.write_text(json.dumps(rows))
    return str(path)


def _rows(defense="none", sigma=0.25, n0=100, count=3):
    base = {"sigma": sigma, "n": 1000, "n0": n0, "alpha": 0.001, "seconds": 1.0, "label": 1}
    return [
        dict(base, index=i, defense=defense, prediction=1, radius=0.3 * (i + 1), correct=True) for i in range(count)
    ]


def test_certify_from_json_drops_repeated_rows_and_checks_n0(tmp_path, capsys):
    from recondefense.certify import main

    rows = _rows_file(tmp_path / "c.json", _rows())
    assert main(["--from-json", rows]) == 0
    once = capsys.readouterr().out
    assert main(["--from-json", rows, rows]) == 0
    captured = capsys.readouterr()
    assert captured.out == once and "3 images" in once  # not 6
    assert "3 repeated row(s)" in captured.err
    # overlapping shards: images 0-2 and 1-3 make 4 images, the first file's rows kept
    shard = _rows()[1:] + [dict(_rows()[0], index=3)]
    shard[0]["radius"] = 0.0
    assert main(["--from-json", rows, _rows_file(tmp_path / "d.json", shard), "--radii", "0.3"]) == 0
    assert "4 images" in capsys.readouterr().out
    other = _rows_file(tmp_path / "e.json", _rows(defense="ours", n0=10))
    assert main(["--from-json", rows, other]) == 2
    assert "mix settings (sigma, n, n0, alpha, precision)" in capsys.readouterr().err


def test_certify_cli_errors_are_one_line(tmp_path, capsys):
    from recondefense.certify import main

    empty = _rows_file(tmp_path / "empty.json", [])
    assert main(["--from-json", empty]) == 2
    assert "holds no rows" in capsys.readouterr().err
    for argv, message in (
        (["--radii", "abc"], "argument --radii"),
        (["--sigma", "nan"], "argument --sigma"),
        (["--sigma", "0.25", "--batch-size", "0"], "argument --batch-size"),
        (["--sigma", "0.25", "--n", "1.5"], "argument --n"),
        (["--sigma", "0.25", "--alpha", "1"], "argument --alpha"),
        (["--sigma", "0.25", "--device", "tpu"], "--device 'tpu'"),
        (["--sigma", "0.25", "--seed", "-1"], "--seed"),
    ):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2 and message in capsys.readouterr().err, argv


def test_certify_help_shows_defaults(capsys):
    from recondefense.certify import main

    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: 100000)" in text and "(default: 0,0.25,0.5,0.75,1.0)" in text and "--seed" in text


def test_certify_dataset_rows_of_a_shard_equal_those_of_the_whole_set():
    from recondefense.baselines import RandomResizePad

    data = [(torch.full((1, 16, 16), v), 1) for v in (0.9, 0.55, 0.6, 0.52)]
    model = nn.Sequential(RandomResizePad(seed=0), Linear2())  # a randomized defense: seeded per image too

    def strip(rows):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]

    whole = certify_dataset(model, data, 0.25, n0=10, n=200, batch_size=64, progress=False)
    shard = certify_dataset(model, data, 0.25, n0=10, n=200, batch_size=64, indices=range(2, 4), progress=False)
    assert [r["index"] for r in shard] == [2, 3] and strip(shard) == strip(whole[2:])
    with pytest.raises(ValueError, match="limit or indices"):
        certify_dataset(model, data, 0.25, n0=10, n=20, limit=2, indices=[0], progress=False)
    with pytest.raises(ValueError, match="outside the dataset's 4 images"):
        certify_dataset(model, data, 0.25, n0=10, n=20, indices=[4], progress=False)


def test_the_largest_certifiable_radius_is_bounded_by_n():
    from recondefense.certify import max_certifiable_radius

    for sigma, n, alpha in ((0.25, 100, 0.001), (0.5, 10_000, 0.001), (0.25, 1000, 0.01)):
        expected = sigma * norm.ppf(alpha ** (1 / n))  # all n samples on the top class
        assert max_certifiable_radius(sigma, n, alpha) == pytest.approx(expected, rel=1e-6)
    assert max_certifiable_radius(0.25, 1, 0.001) == 0.0  # one sample cannot certify anything


def test_certify_says_that_n_bounds_the_radius(tmp_path, capsys):
    """At small n the larger radii's columns are zeros by construction: the table says so (it did not)."""
    from recondefense.certify import main

    small = _rows_file(tmp_path / "small.json", [dict(r, n=100) for r in _rows()])
    assert main(["--from-json", small]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "n=100 and alpha=0.001 certify no radius above 0.375" in out, out
    assert "r=0.5, r=0.75, r=1.0" in out and "--n" in out
    assert main(["--from-json", _rows_file(tmp_path / "large.json", [dict(r, n=1_000_000) for r in _rows()])]) == 0
    assert "certify no radius above" not in capsys.readouterr().out
