"""Certified-accuracy tables and curves from :func:`~recondefense.certify.certify_dataset` rows, and the rows files
``recondefense certify --json`` writes and ``--from-json`` reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .smoothing import ABSTAIN

__all__ = ["certified_accuracy", "plot_certified_accuracy", "row_label", "print_table"]


def certified_accuracy(rows: list[dict[str, Any]], radius: float) -> float:
    """Share of images predicted correctly with a certified radius of at least ``radius`` (Cohen et al.'s metric)."""
    return sum(r["correct"] and r["radius"] >= radius for r in rows) / max(len(rows), 1)


def plot_certified_accuracy(curves: dict[str, list[dict[str, Any]]], path: str | Path, title: str = "") -> Path:
    """Certified accuracy against L2 radius, one line per defense, as a PNG (matplotlib object API)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 4), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    for name, rows in curves.items():
        top = max([r["radius"] for r in rows] + [0.0])
        radii = [top * i / 100 for i in range(101)] if top > 0 else [0.0]
        axes.plot(radii, [certified_accuracy(rows, r) for r in radii], label=name)
    axes.set(xlabel="L2 radius (pixels in [0, 1])", ylabel="certified accuracy", ylim=(0, 1.02), title=title)
    axes.legend()
    figure.savefig(path, dpi=100)
    return Path(path)


def row_label(row: dict[str, Any], default_classifier: str) -> str:
    """A table row's name: the defense, or the classifier's name for a bare classifier other than the tier's.

    ``row`` needs ``"defense"`` (``"none"``: a bare classifier) and may have ``"classifier"`` (default
    ``default_classifier``): ``recondefense certify`` adds both to :func:`certify_dataset`'s rows, which
    know neither.

    Raises:
        ValueError: ``row`` has no ``"defense"``.
    """
    if "defense" not in row:
        raise ValueError(
            "the row names no 'defense': certify_dataset's rows do not know what the model was; set "
            "row['defense'] (and row['classifier'] for another bare classifier), as `recondefense certify` does, "
            "or name the curves yourself for print_table and plot_certified_accuracy"
        )
    classifier = row.get("classifier", default_classifier)
    if row["defense"] == "none" and classifier != default_classifier:
        return classifier
    return row["defense"]


_TABLE_KEYS = ("prediction", "radius", "correct", "seconds", "n", "n0")


def print_table(curves: dict[str, list[dict[str, Any]]], radii: list[float]) -> None:
    """Certified accuracy at each radius, abstain rate, noise samples/s and minutes, one Markdown row per curve.

    Args:
        curves: name -> rows of :func:`certify_dataset` (``prediction``, ``radius``, ``correct``, ``seconds``,
            ``n`` and ``n0`` are used). Noise samples/s and minutes count the certifications' ``seconds``.
        radii: L2 radii of the accuracy columns.

    Raises:
        ValueError: a row lacks one of those keys.
    """
    for name, rows in curves.items():
        missing = sorted({key for row in rows for key in _TABLE_KEYS if key not in row})
        if missing:
            raise ValueError(f"rows of {name!r} lack {missing}: expected the rows of certify_dataset")
    print(f"| defense | {' | '.join(f'r={r}' for r in radii)} | abstain | noise samples/s | minutes |")
    print("|---|" + "---|" * (len(radii) + 3))
    for name, rows in curves.items():
        seconds = sum(r["seconds"] for r in rows)
        rate = sum(r["n"] + r["n0"] for r in rows) / max(seconds, 1e-9)
        abstain = sum(r["prediction"] == ABSTAIN for r in rows) / max(len(rows), 1)
        cells = " | ".join(f"{certified_accuracy(rows, r):.3f}" for r in radii)
        print(f"| {name} | {cells} | {abstain:.3f} | {rate:,.0f} | {seconds / 60:.1f} |")


#: Keys every rows file of ``recondefense certify --from-json`` must have in each row.
_ROW_KEYS = ("index", "defense", "sigma", "n", "n0", "alpha", *_TABLE_KEYS)


def read_rows(paths: list[str]) -> list[dict[str, Any]]:
    """The rows of ``paths``, in order. Raises ValueError naming a bad or empty file."""
    import json

    rows: list[dict[str, Any]] = []
    for path in paths:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as err:
            raise ValueError(f"--from-json {path}: {err}") from None
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise ValueError(f"--from-json {path}: expected a JSON list of rows (written by --json)")
        bad = next((r for r in data if any(k not in r for k in _ROW_KEYS)), None)
        if bad is not None:
            missing = [k for k in _ROW_KEYS if k not in bad]
            raise ValueError(f"--from-json {path}: a row lacks {missing}: expected rows written by --json")
        rows += data
    if not rows:
        files = f"the file {paths[0]} holds" if len(paths) == 1 else f"the files {' '.join(paths)} hold"
        raise ValueError(f"--from-json: {files} no rows: nothing to tabulate")
    return rows


def first_per_image(rows: list[dict[str, Any]], default_classifier: str) -> list[dict[str, Any]]:
    """The first row of each (curve, image index), in order: a file given twice or overlapping shards count
    each image once."""
    kept: dict[tuple[str, int], dict[str, Any]] = {}
    for row in rows:
        kept.setdefault((row_label(row, default_classifier), row["index"]), row)
    return list(kept.values())
