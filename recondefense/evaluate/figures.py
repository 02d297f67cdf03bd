"""Figures as PNGs, drawn on matplotlib ``Figure`` objects (no pyplot state): the paper's Figures 1 and 2
(:func:`save_figures`), the accuracy-vs-eps curve (:func:`eps_curve`) and one image under every corruption,
before and after a defense (:func:`corruption_figure`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Subset
from tqdm.auto import tqdm

from ..attacks import PGD, adaptive_model
from ..corruptions import CORRUPTIONS, corrupt
from .run import (
    build_attack,
    build_defense,
    check_count,
    count_correct,
    defended_model,
    load_checked_classifier,
    run_attack,
)
from .tiers import BASELINES, Tier

__all__ = ["amplified", "corruption_figure", "eps_curve", "figure_label", "save_figures", "short_name"]

#: Test images of the accuracy-vs-eps curve when no limit is given (the committed curves' setting).
CURVE_IMAGES = 1000


def short_name(defense: str) -> str:
    """Key of the eps curve's points: ``ours_<attack>`` for weights named ``<dataset>-<classifier>-<attack>`` (the
    figures name the weights in full: :func:`figure_label`)."""
    if defense in BASELINES or defense == "none" or "-" not in defense or "/" in defense:
        return defense
    return "ours_" + defense.rsplit("-", 1)[1]


def figure_label(defense: str, width: int = 22) -> str:
    """A defense's name as a figure shows it: in full (weights names are what users load), broken after hyphens
    into lines of about ``width`` characters."""
    lines: list[str] = []
    for part in defense.split("-"):
        if lines and len(lines[-1]) + len(part) + 1 <= width:
            lines[-1] += "-" + part
        else:
            if lines:
                lines[-1] += "-"
            lines.append(part)
    return "\n".join(lines)


def amplified(difference: torch.Tensor, quantile: float = 0.99) -> tuple[torch.Tensor, float]:
    """``|difference|`` scaled so that its ``quantile`` is white (at most 1% of the pixels saturate), clamped to
    [0, 1], and the factor, for a panel labelled ``(xFACTOR)``. A scale fixed for the attack's eps turned a
    defense's larger reconstruction error into a solid white panel."""
    magnitude = difference.abs()
    top = float(torch.quantile(magnitude.flatten().float(), quantile))
    factor = 1.0 / max(top, 1e-8)
    return (magnitude * factor).clamp(0, 1), factor


def save_figures(
    tier: Tier,
    defenses: Sequence[str],
    ours: str,
    folder: str | Path,
    *,
    index: int = 0,
    classifier: str | None = None,
    seed: int = 0,
    device: str = "cpu",
) -> list[Path]:
    """The paper's Figure 1 (original, PGD perturbation, what ``ours`` changed, each difference amplified to its own
    range: :func:`amplified`) and a Figure 2-style grid of every defense on the same PGD image, each named in full
    (:func:`figure_label`), as PNGs in ``folder``: test image ``index``,
    attacked and classified by ``classifier`` (None: the tier's target); ``seed`` seeds randomized baselines."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    clf = load_checked_classifier(tier, classifier, device)  # (before the folder: a bad classifier writes nothing)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    x, y = tier.test_set(clf)[index]
    x, y = x.unsqueeze(0).to(device), torch.tensor([y], device=device)
    x_adv = run_attack(build_attack("pgd", clf, tier), x, y)
    ours_module = build_defense(ours, seed, tier=tier).to(device)
    with torch.no_grad():
        x_hat = ours_module(x_adv)

    def show(ax, img: torch.Tensor, title: str) -> None:
        img = img[0].detach().cpu()
        ax.imshow(img.permute(1, 2, 0).squeeze(-1), cmap="gray" if img.shape[0] == 1 else None, vmin=0, vmax=1)
        ax.set_title(title, fontsize=8)
        ax.axis("off")

    fig = Figure(figsize=(7.5, 3.0))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    show(axes[0], x, "original")
    perturbation, factor = amplified(x_adv - x)
    show(axes[1], perturbation, f"|PGD - x| (x{factor:.0f})")
    left, factor = amplified(x_hat - x)
    show(axes[2], left, f"|defense(PGD) - x| (x{factor:.0f})")
    fig.suptitle(f"defense: {ours}", fontsize=9)
    fig.tight_layout()
    paths = [folder / "figure1.png"]
    fig.savefig(paths[0], dpi=150)

    names = [d for d in defenses if d != "none"]
    lines = max([figure_label(d).count("\n") + 1 for d in names] + [1])
    fig = Figure(figsize=(1.6 * (len(names) + 2), 2.0 + 0.15 * (lines + 1)))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(names) + 2)
    show(axes[0], x, "original")
    show(axes[1], x_adv, "PGD")
    for ax, d in zip(axes[2:], names):
        module = build_defense(d, seed, tier=tier).to(device)
        with torch.no_grad():
            out = module(x_adv)
        pred = int(clf(out).argmax(1))
        show(ax, out, f"{figure_label(d)}\n{'ok' if pred == int(y) else 'wrong'}")
    fig.tight_layout()
    paths.append(folder / "figure2.png")
    fig.savefig(paths[1], dpi=150)
    return paths


def eps_curve(
    tier: Tier,
    defenses: Sequence[str],
    path: str | Path,
    *,
    eps_values: Sequence[float] = (0.0, 0.01, 0.02, 0.04, 0.08, 0.12, 0.16),
    limit: int = CURVE_IMAGES,
    classifier: str | None = None,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Accuracy against PGD eps on the first ``limit`` test images (one batch), as a PNG: the undefended
    classifier, and each defense under oblivious PGD and under end-to-end PGD (the tier's steps,
    step size proportional to eps).

    Args:
        limit: positive; more than the test set means all of it.
        classifier: attacked and evaluated (None: the tier's target); the title names it when given.
        seed: seed of the randomized baselines' private generators.

    Returns:
        One point per eps: ``{"eps", "undefended", "<defense> oblivious", "<defense> end-to-end", ...}``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    check_count("limit", limit, f"the default ({CURVE_IMAGES})")
    if limit is None:  # (the check allows None)
        limit = CURVE_IMAGES
    clf = load_checked_classifier(tier, classifier, device)
    modules = {d: build_defense(d, seed, tier=tier).to(device) for d in defenses}
    test = tier.test_set(clf)
    limit = min(limit, len(test))
    data = Subset(test, range(limit))
    x, y = next(iter(DataLoader(data, batch_size=limit)))
    x, y = x.to(device), y.to(device)
    ratio = tier.pgd["alpha"] / tier.pgd["eps"]
    points = []
    for eps in tqdm(eps_values, desc="eps curve", disable=not progress):
        attack = {"eps": eps, "alpha": eps * ratio, "steps": tier.pgd["steps"]}
        x_obl = x if eps == 0 else PGD(clf, **attack)(x, y)
        point = {"eps": eps, "undefended": count_correct(clf, x_obl, y) / limit}
        for d, module in modules.items():
            pipeline = defended_model(module, clf)
            target = adaptive_model(module, clf, eot_samples=tier.eot_samples)
            x_e2e = x if eps == 0 else PGD(target, **attack)(x, y)
            point[f"{short_name(d)} oblivious"] = count_correct(pipeline, x_obl, y) / limit
            point[f"{short_name(d)} end-to-end"] = count_correct(pipeline, x_e2e, y) / limit
        points.append(point)
    fig = Figure(figsize=(6, 4))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for key in points[0]:
        if key != "eps":
            style = "--" if key.endswith("end-to-end") else "-"
            ax.plot([p["eps"] for p in points], [p[key] for p in points], style, marker="o", label=key)
    ax.set_xlabel("PGD eps (L-inf, pixels in [0, 1])")
    ax.set_ylabel("accuracy")
    against = f", classifier {classifier}" if classifier and classifier != tier.classifier else ""
    ax.set_title(f"{tier.name}: first {limit} test images, {tier.pgd['steps']}-step PGD{against}", fontsize=9)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    return points


def corruption_figure(
    tier: Tier,
    defense: str,
    path: str | Path,
    *,
    index: int = 0,
    severity: int = 3,
    classifier: str | None = None,
    seed: int = 0,
    device: str = "cpu",
) -> list[dict[str, Any]]:
    """Test image ``index`` under each of the 15 corruptions at ``severity``: the corrupted image (top row) and
    ``defense``'s output (bottom row), each titled with whether ``classifier`` (None: the tier's target) keeps
    the clean label; a PNG.

    Returns:
        One record per corruption: ``{"corruption", "corrupted_ok", "defended_ok"}``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    clf = load_checked_classifier(tier, classifier, device)
    x, y = tier.test_set(clf)[index]
    x = x.unsqueeze(0).to(device)
    module = build_defense(defense, tier=tier).to(device)
    names = list(CORRUPTIONS)
    fig = Figure(figsize=(1.3 * len(names), 3.0))
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, len(names))
    records = []
    for column, name in enumerate(names):
        corrupted = corrupt(x, name, severity, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            defended = module(corrupted)
            ok = [int(clf(img).argmax(1)) == int(y) for img in (corrupted, defended)]
        records.append({"corruption": name, "corrupted_ok": ok[0], "defended_ok": ok[1]})
        for row, (img, good) in enumerate(zip((corrupted, defended), ok)):
            ax = axes[row, column]
            img = img[0].detach().cpu()
            ax.imshow(img.permute(1, 2, 0).squeeze(-1), cmap="gray" if img.shape[0] == 1 else None, vmin=0, vmax=1)
            label = name.replace("_", " ") if row == 0 else "defended"
            ax.set_title(f"{label}\n{'ok' if good else 'wrong'}", fontsize=6)
            ax.axis("off")
    fig.suptitle(
        f"{tier.name}: test image {index}, severity {severity}; top: corrupted, bottom: defended by {defense}",
        fontsize=8,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    return records
