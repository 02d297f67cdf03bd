"""recondefense.evaluate and the shipped Fashion-MNIST weights, on real test images."""

from __future__ import annotations

import json

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
    assert entry.meta["classifier"] == TIER.classifier and entry.meta["dataset"] == "fashionmnist"
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
    none_line = next(line for line in table.splitlines() if line.startswith("| none |"))
    assert none_line.rstrip(" |").endswith("1.000")  # no defense relative to itself
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
    assert lines[1].rstrip(" |").endswith("1.000")


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


def _mce_column(table: str) -> dict[str, str]:
    return {
        line.split("|")[1].strip(): line.rstrip(" |").rsplit("|", 1)[1].strip()
        for line in table.splitlines()
        if line.startswith("| ") and "---" not in line and "Defense" not in line
    }


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
