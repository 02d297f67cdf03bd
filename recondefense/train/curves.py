"""Training curves: loss per step and validation agreement per epoch, drawn from ``metrics.jsonl``."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["plot_curves"]


def plot_curves(metrics: str | Path, out: str | Path | None = None) -> Path:
    """Draw ``metrics.jsonl`` (written by :func:`recondefense.train.train`) as a PNG beside it.

    Left: training loss per logged step (warm-up and joint phases marked). Right: validation accuracy of the
    defended classifier on clean and attacked images per epoch, with the undefended attacked accuracy.
    Torn lines (a crash mid-write) are skipped. Uses matplotlib's object API: no global state changes.

    Returns:
        The PNG's path (default ``curves.png`` beside ``metrics``).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    metrics = Path(metrics)
    records = []
    for line in metrics.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    steps = [r for r in records if "loss" in r and "step" in r]
    epochs = [r for r in records if "validation" in r and "epoch" in r]
    figure = Figure(figsize=(10, 4), layout="constrained")
    FigureCanvasAgg(figure)
    loss_ax, val_ax = figure.subplots(1, 2)
    for phase, colour in (("warmup", "tab:gray"), ("joint", "tab:blue")):
        points = [(r["step"], r["loss"]) for r in steps if r.get("phase") == phase]
        if points:
            loss_ax.plot(*zip(*points), ".-", color=colour, label=phase, markersize=3)
    loss_ax.set(xlabel="step", ylabel="training loss", title="loss")
    loss_ax.legend()
    for key, label, style in (
        ("clean_acc", "defended, clean", "o-"),
        ("attacked_acc", "defended, attacked", "s-"),
        ("attacked_acc_undefended", "undefended, attacked", "x--"),
    ):
        points = [(r["epoch"], r["validation"][key]) for r in epochs if key in r["validation"]]
        if points:
            val_ax.plot(*zip(*points), style, label=label)
    val_ax.set(xlabel="epoch", ylabel="validation accuracy (agreement)", ylim=(0, 1.02), title="validation")
    val_ax.legend()
    path = Path(out) if out is not None else metrics.with_name("curves.png")
    figure.savefig(path, dpi=100)
    return path
