"""Table output: the rows of :func:`~recondefense.evaluate.evaluate` as the README's markdown tables,
and the JSON / markdown files the command line writes."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .tiers import ATTACK_NAMES, Tier

__all__ = ["format_corruption_markdown", "format_markdown"]


def format_corruption_markdown(
    rows: list[dict[str, Any]], tier: Tier, classifier: str | None = None, held_out: Sequence[str] = ()
) -> str:
    """The corruption table: accuracy per corruption (mean over severities), their mean, and the relative mean
    corruption error (rel. mCE) against no defense: the mean over corruptions of error(defense) / error(none)
    (< 1: the defense helps; needs the ``none`` rows).

    A corruption on which ``none`` makes no error leaves the ratio undefined (0 / 0 or x / 0): it is left out of
    every row's rel. mCE, and the caption names it (the accuracy columns and means keep it). Merged shards:
    the first row of a (defense, corruption) cell wins.

    Args:
        rows: rows of :func:`~recondefense.evaluate.evaluate_corruptions` (``attack``: ``"corruption:<name>"``).
        held_out: corruptions never trained on, given their own mean column; each must be among the rows'.

    Raises:
        ValueError: no rows, or a ``held_out`` name that is not a corruption of the rows.
    """
    if not rows:
        raise ValueError("no corruption rows to tabulate")
    defenses = list(dict.fromkeys(r["defense"] for r in rows))
    names = list(dict.fromkeys(r["attack"].removeprefix("corruption:") for r in rows))
    missing = [c for c in dict.fromkeys(held_out) if c not in names]
    if missing:
        raise ValueError(
            f"held-out corruption(s) {missing} are not in the table: expected some of its corruptions {names}"
        )
    acc: dict[tuple[str, str], float] = {}
    for r in rows:
        acc.setdefault((r["defense"], r["attack"].removeprefix("corruption:")), r["accuracy"])
    n = max((r["n"] for r in rows), default=0)
    head = ["Defense", *names, "mean"] + (["mean held-out"] if held_out else []) + ["rel. mCE"]
    has_none = all(("none", c) in acc for c in names)
    unrated = [c for c in names if has_none and 1 - acc["none", c] <= 0]  # no undefended error: no ratio
    rated = [c for c in names if c not in unrated]
    caption = (
        f"Classifier `{classifier or tier.classifier}`, {n} test images, each of the {len(names)} ImageNet-C "
        "corruptions at severities 1-5 (accuracy averaged over severities). rel. mCE: mean over corruptions of "
        "the defended error divided by the undefended error (below 1: the defense helps)."
    )
    if unrated:
        caption += (
            f" No undefended error on {', '.join(unrated)}: left out of rel. mCE (the ratio is undefined), "
            f"which averages the other {len(rated)}."
        )
    lines = [caption, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for d in defenses:
        values = [acc[d, c] for c in names]
        cells = [f"{v:.3f}" for v in values] + [f"{sum(values) / len(values):.3f}"]
        if held_out:
            kept = [acc[d, c] for c in names if c in held_out]
            cells.append(f"{sum(kept) / len(kept):.3f}" if kept else "-")
        if has_none and rated:
            ratios = [(1 - acc[d, c]) / (1 - acc["none", c]) for c in rated]
            cells.append(f"{sum(ratios) / len(ratios):.3f}")
        else:
            cells.append("-")
        lines.append(f"| {d} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def format_markdown(rows: list[dict[str, Any]], tier: Tier, classifier: str | None = None) -> str:
    """The rows as the README's table: one line per defense, one column per attack, plus PSNR/SSIM."""
    defenses = list(dict.fromkeys(r["defense"] for r in rows))
    attacks = list(dict.fromkeys(r["attack"] for r in rows if r["attack"] != "quality"))
    by_key: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:  # merged shards: the first row of a cell wins
        by_key.setdefault((r["defense"], r["attack"]), r)
    n = max((r["n"] for r in rows), default=0)
    clean_psnr = any(r.get("psnr_clean") is not None for r in rows if r["attack"] == "quality")
    head = ["Defense", *(ATTACK_NAMES[a] for a in attacks), "PSNR (PGD)", "SSIM (PGD)"]
    head += ["PSNR (clean)"] if clean_psnr else []
    lines = [
        f"Classifier `{classifier or tier.classifier}`, {n} test images (cells marked n=... used the first n). "
        f"Accuracy ± half-width of the 95% Wilson interval. {tier.describe()}",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for d in defenses:
        cells = []
        for a in attacks:
            r = by_key.get((d, a))
            if r is None:  # not evaluated for this defense
                cells.append("-")
                continue
            note = f" (n={r['n']})" if r["n"] != n else ""
            cells.append(f"{r['accuracy']:.3f} ±{(r['ci95'][1] - r['ci95'][0]) / 2:.3f}{note}")
        q = by_key[d, "quality"]
        note = f" (n={q['n']})" if q["n"] != n else ""
        extra = ""
        if clean_psnr:
            extra = " - |" if q.get("psnr_clean") is None else f" {q['psnr_clean']:.1f} |"
        lines.append(f"| {d} | " + " | ".join(cells) + f" | {q['psnr']:.1f}{note} | {q['ssim']:.3f} |" + extra)
    return "\n".join(lines) + "\n"


def _write_table(
    rows: list[dict[str, Any]], table: str, json_path: str | None, markdown: str | None, info: Any
) -> None:
    """Print the table (to ``info``), and write the rows as JSON (``"-"``: to stdout) and the table as markdown."""
    print(table, file=info)
    if json_path == "-":
        sys.stdout.write(json.dumps(rows, indent=1) + "\n")
    elif json_path:
        Path(json_path).write_text(json.dumps(rows, indent=1))
    if markdown:
        Path(markdown).write_text(table)
