"""Table output: the rows of :func:`~recondefense.evaluate.evaluate` as the README's markdown tables,
and the JSON / markdown files the command line writes."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..files import write_atomic
from .tiers import ATTACK_NAMES, Tier

__all__ = ["format_corruption_markdown", "format_markdown"]

_DEFAULT_SEVERITIES = [1, 2, 3, 4, 5]


def _severities(rows: list[dict[str, Any]]) -> list[int] | None:
    """The severities the corruption ``rows`` were evaluated at: their ``severities`` key, else 1-5 (rows carry
    the key only for other severities); None when rows without it have other than 5 ``per_severity`` values.

    Raises:
        ValueError: rows evaluated at different severities (their means are not comparable).
    """

    def of(row: dict[str, Any]) -> tuple[int, ...] | None:
        if "severities" in row:
            return tuple(row["severities"])
        return tuple(_DEFAULT_SEVERITIES) if len(row.get("per_severity", _DEFAULT_SEVERITIES)) == 5 else None

    found = {of(r) for r in rows}
    if len(found) > 1:
        settings = sorted(", ".join(map(str, key)) if key else "unrecorded" for key in found)
        raise ValueError(f"rows evaluated at different severities ({'; '.join(settings)}): merge rows of one setting")
    (key,) = found
    return None if key is None else list(key)


def _severity_text(severities: list[int] | None, count: int) -> str:
    """The caption's ``"at severities 1-5 (accuracy averaged over severities)"``, ``"at severity 3"``,
    ``"at severities 1, 3, 5 (...)"``, or for ``count`` unrecorded ones ``"at 2 severities (...)"``."""
    if count == 1 or (severities is not None and len(severities) == 1):
        return f"at severity {severities[0]}" if severities else "at 1 severity"
    if severities is None:
        named = f"{count} severities"
    elif sorted(severities) == list(range(min(severities), max(severities) + 1)):
        named = f"severities {min(severities)}-{max(severities)}"
    else:
        named = "severities " + ", ".join(map(str, severities))
    return f"at {named} (accuracy averaged over severities)"


def _worst_drop(
    by_severity: dict[tuple[str, str], list[float]], defense: str, names: list[str], severities: Sequence[int]
) -> str:
    """``defense``'s largest accuracy drop below ``none`` on one corruption at one severity, in points, with where:
    ``"3.3 (frost, 3)"``; ``"0.0"`` when it is nowhere below; ``"-"`` without per-severity accuracies."""
    drops = [
        (100 * (base - mine), name, severity)
        for name in names
        for severity, base, mine in zip(severities, by_severity["none", name], by_severity.get((defense, name), []))
    ]
    if not drops:
        return "-"
    points, name, severity = max(drops, key=lambda d: d[0])
    return f"{points:.1f} ({name}, {severity})" if points >= 0.05 else "0.0"


def format_corruption_markdown(
    rows: list[dict[str, Any]], tier: Tier, classifier: str | None = None, held_out: Sequence[str] = ()
) -> str:
    """The corruption table: accuracy per corruption (mean over severities), their mean, and the relative mean
    corruption error (rel. mCE) against no defense: the mean over corruptions of error(defense) / error(none)
    (< 1: the defense helps; needs the ``none`` rows).

    A corruption on which ``none`` makes no error leaves the ratio undefined (0 / 0 or x / 0): it is left out of
    every row's rel. mCE, and the caption names it (the accuracy columns and means keep it). Merged shards:
    the first row of a (defense, corruption) cell wins. The caption names the severities the rows were
    evaluated at (their ``severities``; rows without it: 1-5).

    Args:
        rows: rows of :func:`~recondefense.evaluate.evaluate_corruptions` (``attack``: ``"corruption:<name>"``).
        held_out: corruptions never trained on, given their own mean column; each must be among the rows'.

    Raises:
        ValueError: no rows, rows of different severities, or a ``held_out`` name that is not a corruption of the rows.
    """
    if not rows:
        raise ValueError("no corruption rows to tabulate")
    severities = _severities(rows)
    defenses = list(dict.fromkeys(r["defense"] for r in rows))
    names = list(dict.fromkeys(r["attack"].removeprefix("corruption:") for r in rows))
    missing = [c for c in dict.fromkeys(held_out) if c not in names]
    if missing:
        raise ValueError(
            f"held-out corruption(s) {missing} are not in the table: expected some of its corruptions {names}"
        )
    acc: dict[tuple[str, str], float] = {}
    by_severity: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        key = (r["defense"], r["attack"].removeprefix("corruption:"))
        acc.setdefault(key, r["accuracy"])
        by_severity.setdefault(key, r.get("per_severity") or [])
    n = max((r["n"] for r in rows), default=0)
    has_none = all(("none", c) in acc for c in names)
    head = ["Defense", *names, "mean"] + (["mean held-out"] if held_out else []) + ["rel. mCE"]
    head += ["worst drop"] if has_none else []
    unrated = [c for c in names if has_none and 1 - acc["none", c] <= 0]  # no undefended error: no ratio
    rated = [c for c in names if c not in unrated]
    caption = (
        f"Classifier `{classifier or tier.classifier}`, {n} test images, each of the {len(names)} ImageNet-C "
        f"corruptions {_severity_text(severities, len(rows[0].get('per_severity', [])))}. rel. mCE: mean over "
        "corruptions of the defended error divided by the undefended error (below 1: the defense helps)."
        + (
            " Worst drop: the largest fall below no defense's accuracy on one corruption at one severity, in points "
            "(that corruption, severity)."
            if has_none
            else ""
        )
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
        if has_none:
            cells.append("-" if d == "none" else _worst_drop(by_severity, d, names, severities or range(1, 100)))
        lines.append(f"| {d} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def format_markdown(rows: list[dict[str, Any]], tier: Tier, classifier: str | None = None) -> str:
    """The rows as the README's table: one line per defense, one column per attack, plus PSNR/SSIM when the rows
    hold them (runs with PGD); the caption describes the attacks of the rows only."""
    defenses = list(dict.fromkeys(r["defense"] for r in rows))
    attacks = list(dict.fromkeys(r["attack"] for r in rows if r["attack"] != "quality"))
    by_key: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:  # merged shards: the first row of a cell wins
        by_key.setdefault((r["defense"], r["attack"]), r)
    n = max((r["n"] for r in rows), default=0)
    quality = any(r["attack"] == "quality" for r in rows)
    clean_psnr = any(r.get("psnr_clean") is not None for r in rows if r["attack"] == "quality")
    head = ["Defense", *(ATTACK_NAMES[a] for a in attacks)] + (["PSNR (PGD)", "SSIM (PGD)"] if quality else [])
    head += ["PSNR (clean)"] if clean_psnr else []
    gated = any(r.get("gate_open_clean") is not None for r in rows if r["attack"] == "quality")
    head += ["Gate open (clean / PGD)"] if gated else []
    dropped = next((r["dropped"] for r in rows if isinstance(r.get("dropped"), int)), None)
    agreed = "" if dropped is None else f" (where the labelling classifiers agree; {dropped} other crops dropped)"
    lines = [
        f"Classifier `{classifier or tier.classifier}`, {n} test images{agreed} (cells marked n=... used the first "
        f"n). Accuracy ± half-width of the 95% Wilson interval. {tier.describe(attacks)}",
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
        q = by_key.get((d, "quality"))
        if quality and q is None:  # this defense ran without PGD
            cells += ["-", "-"] + (["-"] if clean_psnr else []) + (["-"] if gated else [])
        elif quality:
            note = f" (n={q['n']})" if q["n"] != n else ""
            cells += [f"{q['psnr']:.1f}{note}", f"{q['ssim']:.3f}"]
            if clean_psnr:
                cells.append("-" if q.get("psnr_clean") is None else f"{q['psnr_clean']:.1f}")
            if gated:
                opened = q.get("gate_open_clean")
                cells.append("-" if opened is None else f"{opened:.3f} / {q['gate_open_pgd']:.3f}")
        lines.append(f"| {d} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_numbers(value: Any, length: int | None = None) -> bool:
    """A non-empty JSON list of numbers (of ``length`` when given)."""
    if not isinstance(value, list) or not value or (length is not None and len(value) != length):
        return False
    return all(map(_is_number, value))


def _row_problem(row: Any, corruption: bool) -> str | None:
    """What keeps ``row`` (one JSON row of an earlier ``--json`` run) out of the attack table (``corruption``
    False) or the corruption table, or None."""
    if not isinstance(row, dict):
        return f"expected an object with 'defense' and 'attack', got {type(row).__name__}"
    missing = [key for key in ("defense", "attack") if not isinstance(row.get(key), str)]
    if missing:
        return f"no {' or '.join(repr(k) for k in missing)} name"
    attack = row["attack"]
    if attack.startswith("corruption:") != corruption:
        if corruption:
            return f"attack {attack!r} is an attack-table row: drop --corruptions (or pass rows of --corruptions runs)"
        return f"attack {attack!r} is a corruption-table row: add --corruptions to tabulate it"
    needed: dict[str, Any] = {"n": _is_count}
    if corruption:
        needed.update(accuracy=_is_number, per_severity=_is_numbers)
        if "severities" in row:
            count = len(row["per_severity"]) if _is_numbers(row.get("per_severity")) else -1
            needed["severities"] = lambda v: (
                isinstance(v, list) and len(v) == count and all(_is_count(s) and 1 <= s <= 5 for s in v)
            )
    elif attack == "quality":
        needed.update(psnr=_is_number, ssim=_is_number)
        if row.get("psnr_clean") is not None:
            needed["psnr_clean"] = _is_number
    elif attack in ATTACK_NAMES:
        needed.update(accuracy=_is_number, ci95=lambda v: _is_numbers(v, 2))
    else:
        return f"unknown attack {attack!r}: expected 'quality' or one of {', '.join(ATTACK_NAMES)}"
    bad = [key for key, ok in needed.items() if not ok(row.get(key))]
    if bad:
        return f"(defense {row['defense']!r}, attack {attack!r}) lacks a valid {', '.join(bad)}"
    return None


def _rows_problem(rows: list[dict[str, Any]], corruption: bool) -> str | None:
    """What keeps valid rows (:func:`_row_problem`) of one or more files out of their table together, or None."""
    if corruption:
        try:
            _severities(rows)
        except ValueError as err:
            return str(err)
        return None
    quality = {r["defense"] for r in rows if r["attack"] == "quality"}
    lacking = [d for d in dict.fromkeys(r["defense"] for r in rows if r["attack"] == "pgd") if d not in quality]
    if lacking:
        return (
            f"defense(s) {lacking} have PGD rows but no 'quality' row (PSNR/SSIM), which every evaluate --json run "
            "with PGD writes beside them: pass the file that has it"
        )
    return None


def write_table(rows: list[dict[str, Any]], table: str, json_path: str | None, markdown: str | None, info: Any) -> None:
    """Print the table (to ``info``), and write the rows as JSON (``"-"``: to stdout) and the table as markdown."""
    print(table, file=info)
    if json_path == "-":
        sys.stdout.write(json.dumps(rows, indent=1) + "\n")
    elif json_path:
        write_atomic(Path(json_path), json.dumps(rows, indent=1).encode())
    if markdown:
        write_atomic(Path(markdown), table.encode())


#: JSON type names for the message about a rows file that holds another JSON value.
_JSON_KINDS = {dict: "object", str: "string", int: "number", float: "number", bool: "true/false"}


def read_rows(paths: list[str], corruption: bool) -> list[dict[str, Any]]:
    """The rows of the ``--from-json`` files, in order, each checked for the attack table or (``corruption``)
    the corruption table.

    Raises:
        ValueError: a file that is unreadable, empty, not JSON, not a list of rows, holds no rows, or has a row
            its table cannot show (the message names the file and the row's index), or rows that do not go
            together (a defense without its quality row, different corruption severities).
    """
    rows: list[dict[str, Any]] = []
    for path in paths:
        where = f"--from-json {path}"
        try:
            text = Path(path).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{where}: not UTF-8 text: expected the JSON rows an evaluate --json run writes") from None
        except OSError as err:
            raise ValueError(f"{where}: cannot read it ({err.strerror or err})") from None
        if not text.strip():
            raise ValueError(f"{where}: empty file: expected the JSON rows an evaluate --json run writes")
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(
                f"{where}: not JSON ({err.msg} at line {err.lineno} column {err.colno}): expected the rows an "
                "evaluate --json run writes"
            ) from None
        if not isinstance(loaded, list):
            kind = _JSON_KINDS.get(type(loaded), "null")
            raise ValueError(f"{where}: a JSON {kind}, expected a list of rows (what evaluate --json writes)")
        if not loaded:
            raise ValueError(f"{where}: the file holds no rows")
        for index, row in enumerate(loaded):
            problem = _row_problem(row, corruption)
            if problem:
                raise ValueError(f"{where}: row {index}: {problem}")
        rows.extend(loaded)
    problem = _rows_problem(rows, corruption)
    if problem:
        raise ValueError(f"--from-json {' '.join(paths)}: {problem}")
    return rows
