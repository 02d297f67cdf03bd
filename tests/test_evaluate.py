"""recondefense.evaluate and the shipped Fashion-MNIST weights, on real test images."""

from __future__ import annotations

import json
import re

import pytest
import torch
from conftest import needs_fashion_mnist

from recondefense import ReconstructiveDefense
from recondefense.baselines import PixelDeflection
from recondefense.evaluate import TIERS, build_defense, evaluate, format_markdown, main
from recondefense.metrics import wilson_interval
from recondefense.weights import get_weights, list_weights

TIER = TIERS["fashionmnist"]
SHIPPED = ["fashionmnist-smallcnn-fgsm", "fashionmnist-smallcnn-pgd", "fashionmnist-smallcnn-adaptive"]


def _table(rows: list[dict]) -> dict[tuple[str, str], dict]:
    return {(r["defense"], r["attack"]): r for r in rows}


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_weights_are_registered_and_load(name: str) -> None:
    assert name in list_weights()
    entry = get_weights(name)
    assert entry.classifier == TIER.classifier and entry.dataset == "fashionmnist"
    defense = ReconstructiveDefense.from_pretrained(name)  # checks the sha256
    assert defense.autoencoder.in_channels == 1
    out = defense(torch.rand(2, 1, 28, 28))
    assert out.shape == (2, 1, 28, 28) and 0 <= out.min() and out.max() <= 1


def test_build_defense_applies_the_tiers_baseline_arguments() -> None:
    pd = build_defense("pd", seed=3, tier=TIER)
    assert isinstance(pd, PixelDeflection)
    assert (pd.deflections, pd.window) == (3, 1)  # ImageNet's 200 / window 10 scaled to 28 x 28
    assert build_defense("none") is None
    with pytest.raises(ValueError, match="unknown attack"):
        evaluate(TIER, defenses=["none"], attacks=["cw"], limit=1)


@needs_fashion_mnist
def test_fast_evaluation_reproduces_the_defense_on_real_images() -> None:
    """A few hundred test images: the attack works, the shipped defense undoes it, caps are honoured."""
    rows = evaluate(
        TIER,
        defenses=["none", "bitdepth", "fashionmnist-smallcnn-pgd"],
        attacks=["none", "fgsm", "pgd", "pgd-e2e"],
        limit=300,
        caps={"bitdepth": 100},
        batch_size=100,
        progress=False,
    )
    t = _table(rows)
    clean, attacked = t["none", "none"]["accuracy"], t["none", "pgd"]["accuracy"]
    assert clean > 0.85 and attacked < clean / 2  # the Table 1 rule holds on these images too
    assert t["none", "pgd-e2e"]["accuracy"] == attacked  # nothing to adapt to: the same attack
    ours = {a: t["fashionmnist-smallcnn-pgd", a]["accuracy"] for a in ("none", "fgsm", "pgd", "pgd-e2e")}
    assert ours["none"] > clean - 0.05
    assert ours["pgd"] > 0.8 and ours["fgsm"] > 0.8
    assert ours["pgd-e2e"] < ours["pgd"]  # an attacker who knows the AE does much better
    for r in rows:
        assert r["n"] == (100 if r["defense"] == "bitdepth" else 300)
        if r["attack"] != "quality":  # the interval is the Wilson interval of this row's own count
            correct = round(r["accuracy"] * r["n"])
            assert r["ci95"] == pytest.approx(list(wilson_interval(correct, r["n"])))
    assert t["fashionmnist-smallcnn-pgd", "quality"]["psnr"] > 20
    table = format_markdown(rows, TIER)
    assert "300 test images" in table and "(n=100)" in table and "| fashionmnist-smallcnn-pgd |" in table


@needs_fashion_mnist
def test_cli_writes_json_and_merges_shards(tmp_path, capsys) -> None:
    a, b, md = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "t.md"
    assert (
        main(["--defenses", "jpeg", "--attacks", "none,fgsm", "--limit", "20", "--json", str(a), "--no-progress"]) == 0
    )
    assert (
        main(["--defenses", "none", "--attacks", "none,fgsm", "--limit", "20", "--json", str(b), "--no-progress"]) == 0
    )
    rows = json.loads(a.read_text())
    assert {r["defense"] for r in rows} == {"jpeg"} and all(r["n"] == 20 for r in rows)
    assert main(["--from-json", str(a), str(b), "--markdown", str(md)]) == 0
    lines = [line for line in md.read_text().splitlines() if line.startswith("| ")]
    assert [line.split("|")[1].strip() for line in lines[1:]] == ["none", "jpeg"]  # the tier's order
    assert main(["--defenses", "none", "--cap", "stl=5", "--limit", "2", "--no-progress"]) == 2
    assert "names neither" in capsys.readouterr().err


@pytest.mark.slow
@needs_fashion_mnist
def test_full_table2_for_the_shipped_pgd_weights() -> None:
    """The README's ours_PGD row on all 10,000 test images (minutes on a CPU)."""
    rows = evaluate(TIER, defenses=["none", "fashionmnist-smallcnn-pgd"], attacks=["none", "pgd"], progress=False)
    t = _table(rows)
    assert t["fashionmnist-smallcnn-pgd", "none"]["accuracy"] >= t["none", "none"]["accuracy"] - 0.03
    assert t["fashionmnist-smallcnn-pgd", "pgd"]["accuracy"] >= 0.9 * t["fashionmnist-smallcnn-pgd", "none"]["accuracy"]


@needs_fashion_mnist
def test_corruption_table_rows_markdown_and_cli(tmp_path, capsys):
    from recondefense.evaluate import evaluate_corruptions, format_corruption_markdown, main

    rows = evaluate_corruptions(
        "fashionmnist",
        defenses=["none", "jpeg"],
        corruptions=["gaussian_noise", "contrast"],
        limit=20,
        batch_size=20,
        progress=False,
    )
    assert len(rows) == 4 and all(len(r["per_severity"]) == 5 and r["n"] == 20 for r in rows)
    assert all(0 <= r["accuracy"] <= 1 for r in rows)
    noise = next(r for r in rows if r["defense"] == "none" and r["attack"] == "corruption:gaussian_noise")
    assert noise["per_severity"][0] >= noise["per_severity"][-1]  # severity 5 hurts at least as much as 1
    table = format_corruption_markdown(rows, TIERS["fashionmnist"], held_out=["contrast"])
    assert "| none |" in table and "rel. mCE" in table and "mean held-out" in table
    assert _mce_column(table)["none"] == "1.000"  # no defense relative to itself
    out = tmp_path / "c.json"
    code = main(
        ["--tier", "fashionmnist", "--defenses", "none", "--corruptions", "brightness", "--limit", "5"]
        + ["--json", str(out), "--no-progress"]
    )
    assert code == 0 and len(json.loads(out.read_text())) == 1
    jpeg, md = tmp_path / "jpeg.json", tmp_path / "c.md"
    code = main(
        ["--tier", "fashionmnist", "--defenses", "jpeg", "--corruptions", "brightness", "--limit", "5"]
        + ["--json", str(jpeg), "--no-progress"]
    )
    assert code == 0
    merge = ["--tier", "fashionmnist", "--corruptions", "--held-out-corruptions", "brightness"]
    assert main([*merge, "--from-json", str(jpeg), str(out), "--markdown", str(md)]) == 0
    merged = md.read_text()  # shards merge into the corruption table (rel. mCE needs the none row)
    assert "mean held-out" in merged and "rel. mCE" in merged
    lines = [line for line in merged.splitlines() if line.startswith("| ") and "---" not in line]
    assert [line.split("|")[1].strip() for line in lines[1:]] == ["none", "jpeg"]
    assert _mce_column(merged)["none"] == "1.000"


@needs_fashion_mnist
def test_corruption_figure_shows_every_corruption_before_and_after(tmp_path):
    from PIL import Image

    from recondefense.corruptions import CORRUPTIONS
    from recondefense.evaluate import corruption_figure, main

    records = corruption_figure(TIERS["fashionmnist"], "fashionmnist-smallcnn-pgd", tmp_path / "c.png")
    assert [r["corruption"] for r in records] == list(CORRUPTIONS)
    assert all(isinstance(r["corrupted_ok"], bool) and isinstance(r["defended_ok"], bool) for r in records)
    assert not all(r["corrupted_ok"] for r in records)  # severity 3 breaks the classifier on some corruption
    assert Image.open(tmp_path / "c.png").size[0] > 1000  # 15 columns
    code = main(
        ["--tier", "fashionmnist", "--defenses", "none,fashionmnist-smallcnn-pgd", "--corruptions", "fog"]
        + ["--limit", "4", "--figures", str(tmp_path / "figs"), "--no-progress", "--json", str(tmp_path / "r.json")]
    )
    assert code == 0 and (tmp_path / "figs" / "corruptions.png").is_file()


@needs_fashion_mnist
def test_evaluate_leaves_global_state_alone():
    import matplotlib

    backend = matplotlib.get_backend()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    evaluate("fashionmnist", defenses=["none"], attacks=["none"], limit=4, progress=False)
    assert torch.equal(torch.rand(3), expected) and matplotlib.get_backend() == backend


def _corruption_rows(accuracies: dict[str, dict[str, float]]) -> list[dict]:
    return [
        {"defense": d, "attack": f"corruption:{c}", "accuracy": a, "per_severity": [a] * 5, "n": 10}
        for d, by_name in accuracies.items()
        for c, a in by_name.items()
    ]


def _column(table: str, name: str) -> dict[str, str]:
    """Defense -> its cell in the column headed ``name``."""
    lines = [line.strip(" |").split("|") for line in table.splitlines() if line.startswith("| ")]
    index = [cell.strip() for cell in lines[0]].index(name)
    return {cells[0].strip(): cells[index].strip() for cells in lines[1:]}


def _mce_column(table: str) -> dict[str, str]:
    return _column(table, "rel. mCE")


def test_worst_drop_is_the_largest_fall_below_no_defense_at_one_severity():
    from recondefense.evaluate import format_corruption_markdown

    rows = _corruption_rows(
        {"none": {"fog": 0.5, "snow": 0.4}, "jpeg": {"fog": 0.5, "snow": 0.6}, "ae": {"fog": 0.9, "snow": 0.4}}
    )
    rows[3]["per_severity"] = [0.6, 0.6, 0.6, 0.6, 0.333]  # jpeg on snow: better on average, 6.7 points worse at 5
    table = format_corruption_markdown(rows, TIER)
    assert _column(table, "worst drop") == {"none": "-", "jpeg": "6.7 (snow, 5)", "ae": "0.0"}
    assert "Worst drop: the largest fall below no defense" in table
    without_none = format_corruption_markdown(_corruption_rows({"jpeg": {"fog": 0.5}}), TIER)
    assert "worst drop" not in without_none and "Worst drop" not in without_none


def test_rel_mce_leaves_out_corruptions_without_undefended_error():
    from recondefense.evaluate import format_corruption_markdown

    rows = _corruption_rows(
        {"none": {"fog": 1.0, "contrast": 0.5, "snow": 0.8}, "jpeg": {"fog": 0.9, "contrast": 0.75, "snow": 0.6}}
    )
    table = format_corruption_markdown(rows, TIER)
    # none is 1 against itself; jpeg: (0.25 / 0.5 + 0.4 / 0.2) / 2 over contrast and snow, fog left out and said so
    assert _mce_column(table) == {"none": "1.000", "jpeg": "1.250"}
    assert "No undefended error on fog: left out of rel. mCE" in table and "averages the other 2" in table
    assert "| 0.900 |" in table  # fog keeps its accuracy column
    everything = _corruption_rows({"none": {"fog": 1.0}, "jpeg": {"fog": 0.5}})
    assert _mce_column(format_corruption_markdown(everything, TIER)) == {"none": "-", "jpeg": "-"}
    plain = format_corruption_markdown(_corruption_rows({"none": {"fog": 0.5}}), TIER)
    assert "left out" not in plain  # the committed tables' caption is unchanged when nothing is left out


def test_corruption_table_refuses_held_out_names_it_does_not_have():
    from recondefense.evaluate import format_corruption_markdown

    rows = _corruption_rows({"none": {"fog": 0.5, "snow": 0.4}})
    assert "mean held-out" in format_corruption_markdown(rows, TIER, held_out=["snow"])
    with pytest.raises(ValueError, match=r"\['contrast'\] are not in the table"):
        format_corruption_markdown(rows, TIER, held_out=["snow", "contrast"])
    with pytest.raises(ValueError, match="no corruption rows"):
        format_corruption_markdown([], TIER)


def test_evaluate_corruptions_refuses_repeats_before_loading_anything():
    from recondefense.evaluate import evaluate_corruptions

    with pytest.raises(ValueError, match=r"\['gaussian_noise'\] given more than once"):
        evaluate_corruptions(TIER, defenses=["none"], corruptions=["gaussian_noise", "fog", "gaussian_noise"])
    with pytest.raises(ValueError, match="severit"):
        evaluate_corruptions(TIER, defenses=["none"], corruptions=["fog"], severities=(1, 1))
    with pytest.raises(ValueError, match="severit"):
        evaluate_corruptions(TIER, defenses=["none"], corruptions=["fog"], severities=(0, 2.0))


@needs_fashion_mnist
def test_a_corruptions_score_does_not_depend_on_the_others_selected():
    from recondefense.evaluate import evaluate_corruptions

    def fog(names: list[str]) -> dict:
        rows = evaluate_corruptions(TIER, defenses=["none"], corruptions=names, limit=8, batch_size=4, progress=False)
        return next(r for r in rows if r["attack"] == "corruption:fog")

    alone = fog(["fog"])
    assert fog(["gaussian_noise", "fog"]) == alone and fog(["fog", "contrast", "snow"]) == alone


# --- figures and curve follow --limit, --classifier and --transfer ---------------------------------------------


def _record_figures(monkeypatch) -> dict[str, dict]:
    """Replace the CLI's figure functions by recorders of their keyword arguments (nothing is loaded)."""
    from recondefense.evaluate import cli as ev_cli

    calls: dict[str, dict] = {}

    def recorder(name, result):
        def record(*args, **kwargs):
            calls[name] = {"args": args, **kwargs}
            return result

        return record

    monkeypatch.setattr(ev_cli, "eps_curve", recorder("eps_curve", [{"eps": 0.0, "undefended": 1.0}]))
    monkeypatch.setattr(ev_cli, "save_figures", recorder("save_figures", []))
    monkeypatch.setattr(ev_cli, "corruption_figure", recorder("corruption_figure", []))
    monkeypatch.setattr(ev_cli, "CorruptionTable", _FakeCorruptionTable)
    return calls


class _FakeCorruptionTable:
    """Stands in for the CLI's corruption table: one image, fixed rows, nothing loaded."""

    def __init__(self, tier, **kwargs) -> None:
        self.total, self.settings = 1, {"kwargs": repr(kwargs)}

    def images(self, images: range, progress: bool = False) -> dict:
        return {"start": images.start, "stop": images.stop}

    def rows(self, parts: list[dict]) -> list[dict]:
        return _corruption_rows({"none": {"fog": 0.5}})


def test_cli_figures_and_curve_use_the_limit_and_the_evaluated_classifier(tmp_path, monkeypatch) -> None:
    calls = _record_figures(monkeypatch)
    curve, figures = str(tmp_path / "c.png"), str(tmp_path / "figs")
    base = ["--no-table", "--curve", curve, "--curve-defenses", "bitdepth", "--figures", figures, "--no-progress"]
    # the Makefile's form (no --limit, --classifier or --transfer): the committed curve's 1000 images, the target
    assert main([*base, "--defenses", "jpeg,fashionmnist-smallcnn-pgd"]) == 0
    assert calls["eps_curve"]["limit"] == 1000 and calls["eps_curve"]["classifier"] is None
    assert calls["eps_curve"]["args"][1] == ["bitdepth"] and calls["save_figures"]["classifier"] is None
    assert main([*base, "--limit", "8", "--transfer", "--seed", "3"]) == 0
    assert calls["eps_curve"]["limit"] == 8 and calls["eps_curve"]["classifier"] == TIER.transfer_classifier
    assert calls["eps_curve"]["seed"] == 3
    assert calls["save_figures"]["classifier"] == TIER.transfer_classifier and calls["save_figures"]["seed"] == 3
    assert main([*base, "--classifier", "fashionmnist-resnet8"]) == 0
    assert calls["eps_curve"]["classifier"] == calls["save_figures"]["classifier"] == "fashionmnist-resnet8"
    # with --corruptions: the corruption figure, after the table, for the evaluated classifier
    argv = ["--corruptions", "fog", "--figures", figures, "--transfer", "--defenses", "none,fashionmnist-smallcnn-pgd"]
    assert main([*argv, "--no-progress"]) == 0
    assert calls["corruption_figure"]["classifier"] == TIER.transfer_classifier


@needs_fashion_mnist
def test_eps_curve_uses_its_limit_and_classifier(tmp_path) -> None:
    from recondefense.evaluate import eps_curve
    from recondefense.evaluate.run import count_correct, load_checked_classifier

    points = eps_curve(
        TIER, ["bitdepth"], tmp_path / "c.png", eps_values=(0.0,), limit=6, classifier="fashionmnist-resnet8"
    )
    resnet = load_checked_classifier(TIER, "fashionmnist-resnet8", "cpu")
    x, y = zip(*(TIER.test_set()[i] for i in range(6)))
    assert points[0]["undefended"] == count_correct(resnet, torch.stack(x), torch.tensor(y)) / 6
    assert (tmp_path / "c.png").is_file()
    with pytest.raises(ValueError, match="limit must be a positive number"):
        eps_curve(TIER, ["bitdepth"], tmp_path / "d.png", limit=0)


# --- the Python API refuses what it would misread ----------------------------------------------------------------


@pytest.fixture
def nothing_loaded(monkeypatch) -> None:
    """Fail the test if a classifier or defense is loaded."""
    from recondefense.evaluate import run as ev_run

    def boom(*args, **kwargs):
        raise AssertionError("loaded something before refusing its arguments")

    monkeypatch.setattr(ev_run, "load_classifier", boom)
    monkeypatch.setattr(ev_run, "build_defense", boom)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"limit": 0}, "limit must be a positive number of images, or None for all test images; got 0"),
        ({"limit": -5}, "got -5"),
        ({"limit": 2.5}, "got 2.5"),
        ({"limit": True}, "got True"),
        ({"batch_size": 0}, "batch_size must be a positive number"),
        ({"defenses": []}, "defenses is empty: name at least one, or pass None for every defense of the tier"),
    ],
)
def test_evaluate_refuses_empty_or_non_positive_arguments(nothing_loaded, kwargs, match) -> None:
    from recondefense.evaluate import evaluate_corruptions

    with pytest.raises(ValueError, match=re.escape(match)):
        evaluate(TIER, **{"defenses": ["none"], **kwargs})
    with pytest.raises(ValueError, match=re.escape(match)):
        evaluate_corruptions(TIER, **{"defenses": ["none"], "corruptions": ["fog"], **kwargs})


def test_evaluate_corruptions_refuses_an_empty_corruption_list(nothing_loaded) -> None:
    from recondefense.evaluate import evaluate_corruptions

    with pytest.raises(ValueError, match="corruptions is empty: name at least one, or pass None for all 15"):
        evaluate_corruptions(TIER, defenses=["none"], corruptions=[])


# --- a classifier that cannot take the tier's images: one clear error ---------------------------------------------


def test_a_classifier_that_cannot_take_the_tiers_images_is_named(monkeypatch, capsys) -> None:
    from torch import nn

    from recondefense.evaluate import run as ev_run

    # a registered classifier of another dataset: refused up front (see test_cli_safety), here the first use
    with pytest.raises(ValueError, match=r"'torchvision:resnet18' cannot classify the images of tier 'fashionmnist' "):
        evaluate(TIER, defenses=["none"], attacks=["none"], classifier="torchvision:resnet18", limit=1)
    try:
        evaluate(TIER, defenses=["none"], attacks=["none"], classifier="torchvision:resnet18", limit=1)
    except ValueError as err:
        assert "(1 x 28 x 28, channels x height x width)" in str(err) and "3 channels" in str(err)
    monkeypatch.setattr(ev_run, "load_classifier", lambda name: nn.Sequential(nn.Flatten(), nn.Linear(784, 3)))
    with pytest.raises(ValueError, match=re.escape("it returns (1, 3), expected logits of shape (N, 10)")):
        evaluate(TIER, defenses=["none"], attacks=["none"], classifier="three-classes", limit=1)
    # the command line: one error line, rc 2 (nothing loaded before the classifier)
    assert main(["--classifier", "three-classes", "--defenses", "none", "--attacks", "none", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: classifier 'three-classes' cannot classify"), err


def test_the_tiers_image_shape_is_what_their_classifiers_take() -> None:
    assert TIER.image_shape == (1, 28, 28)
    assert TIERS["imagenet-photos"].image_shape == TIERS["imagenet-heldout"].image_shape == (3, 224, 224)


@needs_fashion_mnist
def test_the_fashionmnist_images_have_the_tiers_shape() -> None:
    assert tuple(TIER.test_set()[0][0].shape) == TIER.image_shape


# --- the corruption caption names the severities evaluated ---------------------------------------------------------


@pytest.mark.parametrize(
    ("severities", "text"),
    [
        (None, "corruptions at severities 1-5 (accuracy averaged over severities). rel. mCE"),
        ([2, 3], "corruptions at severities 2-3 (accuracy averaged over severities)."),
        ([3], "corruptions at severity 3. rel. mCE"),
        ([1, 3, 5], "corruptions at severities 1, 3, 5 (accuracy averaged over severities)."),
    ],
)
def test_corruption_caption_names_the_severities(severities, text) -> None:
    from recondefense.evaluate import format_corruption_markdown

    rows = _corruption_rows({"none": {"fog": 0.5}, "jpeg": {"fog": 0.6}})
    if severities is not None:
        rows = [{**r, "per_severity": [r["accuracy"]] * len(severities), "severities": severities} for r in rows]
    assert text in format_corruption_markdown(rows, TIER)


def test_corruption_table_refuses_rows_of_different_severities() -> None:
    from recondefense.evaluate import format_corruption_markdown

    rows = _corruption_rows({"none": {"fog": 0.5}, "jpeg": {"fog": 0.6}})
    rows[1] = {**rows[1], "per_severity": [0.6], "severities": [3]}
    with pytest.raises(ValueError, match=r"different severities \(1, 2, 3, 4, 5; 3\)"):
        format_corruption_markdown(rows, TIER)


def test_committed_corruption_captions_are_unchanged() -> None:
    """The committed corruption tables (severities 1-5), regenerated from their JSON as `--from-json` does."""
    from pathlib import Path

    from recondefense.evaluate import format_corruption_markdown

    results = Path(__file__).resolve().parents[1] / "results"
    held_out = ["impulse_noise", "motion_blur", "frost", "pixelate"]
    for tier, table, shards in (
        ("fashionmnist", "fashionmnist/corruptions", ["fashionmnist/corruptions"]),
        ("fashionmnist", "fashionmnist/corruptions-realworld", ["fashionmnist/corruptions-realworld"]),
        (
            "imagenet-photos",
            "imagenet/corruptions",
            [f"imagenet/corruptions-{s}" for s in ("baselines", "pd", "realworld")],
        ),
    ):
        rows = [row for shard in shards for row in json.loads((results / f"{shard}.json").read_text())]
        caption = format_corruption_markdown(rows, TIERS[tier], held_out=held_out).splitlines()[0]
        assert caption == (results / f"{table}.md").read_text().splitlines()[0]


@needs_fashion_mnist
def test_evaluate_corruptions_records_other_severities() -> None:
    from recondefense.evaluate import evaluate_corruptions, format_corruption_markdown

    kwargs = {"defenses": ["none"], "corruptions": ["fog"], "limit": 4, "progress": False}
    (row,) = evaluate_corruptions(TIER, severities=(2, 4), **kwargs)
    assert row["severities"] == [2, 4] and len(row["per_severity"]) == 2
    assert "at severities 2, 4 (accuracy" in format_corruption_markdown([row], TIER)
    (row,) = evaluate_corruptions(TIER, **kwargs)
    assert "severities" not in row  # the default 1-5: rows as committed


# --- what is run is what is asked, and what the caption says ----------------------------------------------------


@needs_fashion_mnist
def test_attacks_without_pgd_run_no_pgd_and_the_caption_describes_only_what_ran(monkeypatch) -> None:
    """``--attacks none,fgsm`` used to run PGD on every batch for the PSNR/SSIM (PGD) columns, and the caption
    described PGD, DeepFool and end-to-end settings that were not run."""
    from recondefense.evaluate import run as ev_run

    def no_pgd(*args, **kwargs):
        raise AssertionError("PGD ran although --attacks has no PGD")

    monkeypatch.setattr(ev_run, "PGD", no_pgd)
    rows = evaluate(TIER, defenses=["none", "jpeg"], attacks=["none", "fgsm"], limit=8, progress=False)
    assert {r["attack"] for r in rows} == {"none", "fgsm"}  # no quality row: it needs PGD images
    table = format_markdown(rows, TIER)
    caption, _, head = table.splitlines()[:3]
    assert "FGSM eps=0.04" in caption
    for absent in ("PGD", "DeepFool", "e2e", "end-to-end"):
        assert absent not in caption and absent not in head, (absent, caption, head)
    assert head == "| Defense | No attack | FGSM |"


@needs_fashion_mnist
def test_rows_with_and_without_quality_rows_tabulate(tmp_path) -> None:
    """PSNR/SSIM columns come with PGD; rows files of runs without PGD still merge and tabulate."""
    rows = evaluate(TIER, defenses=["none"], attacks=["pgd"], limit=4, progress=False)
    assert {r["attack"] for r in rows} == {"pgd", "quality"}
    table = format_markdown(rows, TIER)
    assert "PSNR (PGD)" in table and "DeepFool" not in table.splitlines()[0]
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(evaluate(TIER, defenses=["none"], attacks=["fgsm"], limit=4, progress=False)))
    assert main(["--from-json", str(path)]) == 0


def test_an_imagenet_tier_without_the_imagenet_extra_is_one_error_line(monkeypatch, capsys) -> None:
    """It printed a 37-line traceback (ImportError) where every other CLI error is one ``error:`` line."""
    import sys

    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)  # the extra is not installed
    code = main(
        ["--tier", "imagenet-photos", "--limit", "1", "--defenses", "none", "--attacks", "none", "--no-progress"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ") and "pip install recondefense[imagenet]" in err[0], err


@needs_fashion_mnist
def test_evaluate_without_a_limit_says_how_long_it_runs(monkeypatch, caplog) -> None:
    """``recondefense evaluate`` with no options is the whole table (hours on a CPU): it says so before starting."""
    import logging

    from recondefense.evaluate import run as ev_run

    real_setup = ev_run._setup

    def two_images(tier, defenses, classifier, seed, device, limit, *rest):  # (the run itself: 2 images)
        return real_setup(tier, defenses, classifier, seed, device, 2, *rest)

    monkeypatch.setattr(ev_run, "_setup", two_images)
    with caplog.at_level(logging.INFO, logger="recondefense.evaluate.run"):
        assert main(["--defenses", "none", "--attacks", "none", "--no-progress"]) == 0
    said = " ".join(caplog.text.split())
    assert "every test image" in said and "hours" in said and "--limit" in said, said
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="recondefense.evaluate.run"):
        assert main(["--defenses", "none", "--attacks", "none", "--no-progress", "--limit", "2"]) == 0
    assert "hours" not in caplog.text and "2 test images x 1 defense(s) x 1 attack(s)" in caplog.text


@needs_fashion_mnist
def test_figure1_shows_what_the_defense_left_and_names_its_weights(tmp_path, monkeypatch):
    """demo-output/figure1.png: the '|ours - x| (x50)' panel was almost solid white (the defense's reconstruction
    error, scaled for the attack's eps, saturates), and 'ours_pgd' was not the name of the weights used."""
    from matplotlib.figure import Figure
    from torch import nn

    from recondefense.evaluate import figures as ev_figures
    from recondefense.evaluate import save_figures

    class Blurry(nn.Module):  # changes the image more than the attack does, as the ImageNet weights do
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
            return (x + 0.1 * noise).clamp(0, 1)

    saved = []
    monkeypatch.setattr(Figure, "savefig", lambda self, *args, **kwargs: saved.append(self))
    monkeypatch.setattr(ev_figures, "build_defense", lambda name, seed=0, tier=None: Blurry())
    weights = "imagenet-efficientnet_lite0_lite2-gated2-pgd"  # (a long name, as the demo's)
    save_figures(TIER, ["none", "jpeg", weights], weights, tmp_path)
    figure1, figure2 = saved
    panel = figure1.axes[2].images[0].get_array()
    assert float((panel >= 0.999).mean()) < 0.05  # not saturated
    texts = [ax.get_title() for ax in figure1.axes] + [figure1.get_suptitle()]
    assert any(weights in text for text in texts) and not any("ours_" in text for text in texts), texts
    grid = " ".join(ax.get_title().replace("\n", "") for ax in figure2.axes)
    assert weights in grid and "ours_" not in grid, grid
