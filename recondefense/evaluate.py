"""The paper's Tables 2 and 3, with the adaptive columns a credible evaluation needs.

Rows are defenses (``none``, the baselines, named or local defense weights); columns are attacks:

- ``none``, ``fgsm``, ``pgd``, ``deepfool``: aimed at the classifier alone (the paper's
  defense-oblivious setting, Table 2), then passed through the defense;
- ``pgd-e2e``: the same PGD aimed at the whole defended pipeline: exact gradients through the AE,
  BPDA for non-differentiable baselines, EOT over ``eot_samples`` draws for randomized ones;
- ``autoattack``: torchattacks' AutoAttack through the defended pipeline (when installed).

Also PSNR and SSIM of the defended PGD image against the clean one, and a Table 3 mode
(``--transfer``: the defense trained with one classifier, attacked and evaluated with another).

    recondefense evaluate --tier fashionmnist --limit 500 --markdown table.md --json rows.json
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from . import baselines
from .attacks import FGSM, PGD, DeepFool, adaptive_model
from .classifiers import load_classifier
from .defense import ReconstructiveDefense
from .metrics import psnr, ssim, wilson_interval

__all__ = [
    "Tier",
    "TIERS",
    "BASELINES",
    "build_defense",
    "evaluate",
    "evaluate_corruptions",
    "format_markdown",
    "format_corruption_markdown",
    "main",
]

logger = logging.getLogger(__name__)

#: Baseline defenses by short name (class in :mod:`recondefense.baselines`).
BASELINES = {
    "pd": "PixelDeflection",
    "rrp": "RandomResizePad",
    "fd": "FeatureDistillation",
    "stl": "STL",
    "jpeg": "JPEG",
    "bitdepth": "BitDepth",
}
ATTACK_NAMES = {
    "none": "No attack",
    "fgsm": "FGSM",
    "pgd": "PGD",
    "deepfool": "DeepFool",
    "pgd-e2e": "PGD end-to-end",
    "autoattack": "AutoAttack e2e",
}
OBLIVIOUS = ("none", "fgsm", "pgd", "deepfool")
#: The held-out tier's crops per photo side: 4 x 4 crops of each of the 8 held-out photos = 128 crops.
HELDOUT_GRID = 4


@dataclass(frozen=True)
class Tier:
    """A benchmark: test data, target and transfer classifiers, and the attack parameters (one place).

    Attack parameters follow the paper's Table 1 rule: each attack cuts the target's validation
    accuracy by at least half, with a perturbation not obvious to the eye.
    """

    name: str
    dataset: str
    classifier: str
    transfer_classifier: str | None
    fgsm: dict[str, Any]
    pgd: dict[str, Any]
    deepfool: dict[str, Any]
    defenses: tuple[str, ...]
    notes: str = ""
    eot_samples: int = 8
    num_classes: int = 10
    #: images per batch; EOT attacks and DeepFool multiply it (memory), randomized baselines seed per batch
    batch_size: int = 250
    baseline_args: dict[str, dict[str, Any]] = field(default_factory=dict)

    def test_set(self, classifier: nn.Module | None = None) -> Dataset:
        """The tier's test images in [0, 1] with labels. ``heldout-photos`` has no labels of its own: they
        are ``classifier``'s clean predictions (accuracy there = agreement with the undefended classifier)."""
        from . import data

        if self.dataset == "fashionmnist":
            return data.fashion_mnist("test")
        if self.dataset == "imagenet-samples":
            return data.imagenet_samples()
        if self.dataset == "heldout-photos":
            if classifier is None:
                raise ValueError(f"tier {self.name!r} labels its photos with the classifier: pass classifier=")
            return data.label_with_classifier(data.heldout_photos(grid=HELDOUT_GRID), classifier)
        raise ValueError(f"tier {self.name!r}: unknown dataset {self.dataset!r}")

    def describe(self) -> str:
        """The attack parameters as one line, printed with every table."""
        candidates = f", top-{self.deepfool['candidates']} classes" if self.deepfool.get("candidates") else ""
        return (
            f"FGSM eps={self.fgsm['eps']}; PGD eps={self.pgd['eps']}, step={self.pgd['alpha']}, "
            f"{self.pgd['steps']} steps, no random start; DeepFool overshoot={self.deepfool['overshoot']}, "
            f"{self.deepfool['steps']} steps{candidates}, ground-truth labels; PGD e2e: the same PGD through the defended "
            f"pipeline (exact gradients through the AE, BPDA for non-differentiable defenses, EOT over "
            f"{self.eot_samples} draws for randomized ones). Pixel values in [0, 1]."
        )


TIERS: dict[str, Tier] = {
    "fashionmnist": Tier(
        name="fashionmnist",
        dataset="fashionmnist",
        classifier="fashionmnist-smallcnn",
        transfer_classifier="fashionmnist-resnet8",
        # Chosen on the validation split (1,000 images): clean 0.924 -> FGSM 0.429, PGD 0.228 (Table 1 rule).
        fgsm={"eps": 0.04},
        pgd={"eps": 0.04, "alpha": 0.016, "steps": 10},
        deepfool={"steps": 50, "overshoot": 0.02},
        # Pixel deflection's ImageNet settings (200 deflections, window 10 at 224 px) scaled to 28 x 28 by
        # pixel count and side: unscaled, they overwrite a quarter of the image (clean accuracy 0.42).
        baseline_args={"pd": {"deflections": round(200 * 28 * 28 / 224**2), "window": max(1, round(10 * 28 / 224))}},
        defenses=(
            "none",
            *BASELINES,
            "fashionmnist-smallcnn-fgsm",
            "fashionmnist-smallcnn-pgd",
            "fashionmnist-smallcnn-adaptive",
        ),
        notes="Fashion-MNIST test set (10,000 images, never used for training or model selection).",
    ),
}
#: ImageNet tier: EfficientNet-Lite0 (target) and Lite2 (transfer), the paper's Table 1 attacks at 224 px.
#: EfficientNet-Lite1 is never trained against: ``--classifier imagenet-efficientnet_lite1`` is the unseen column.
_IMAGENET = {
    "classifier": "imagenet-efficientnet_lite0",
    "transfer_classifier": "imagenet-efficientnet_lite2",
    "fgsm": {"eps": 0.01},
    "pgd": {"eps": 0.01, "alpha": 0.004, "steps": 10},
    "deepfool": {"steps": 50, "overshoot": 0.02, "candidates": 10},
    "num_classes": 1000,
    "batch_size": 10,  # x 8 EOT draws x 224 px through Lite0 fits in a few GB
    "defenses": (
        "none",
        *BASELINES,
        "imagenet-efficientnet_lite0-fgsm",
        "imagenet-efficientnet_lite0-pgd",
        "imagenet-efficientnet_lite0_lite2-gated-pgd",
    ),
}
TIERS["imagenet-photos"] = Tier(
    name="imagenet-photos",
    dataset="imagenet-samples",
    notes="The 20 labelled ImageNet photos of foolbox at 224 px (test only): accuracy against their labels.",
    **_IMAGENET,
)
TIERS["imagenet-heldout"] = Tier(
    name="imagenet-heldout",
    dataset="heldout-photos",
    notes="Held-out sample photos of scikit-image, scikit-learn and matplotlib, 4 x 4 fixed crops at 224 px, "
    "never trained on: agreement with the evaluated classifier's clean prediction.",
    **_IMAGENET,
)


def build_defense(name: str, seed: int = 0, tier: Tier | None = None) -> nn.Module | None:
    """A defense by name: ``none`` (None), a baseline short name (with the tier's ``baseline_args``),
    or weights for ``from_pretrained`` (a registered name, hub repo id or local folder)."""
    if name == "none":
        return None
    if name in BASELINES:
        cls = getattr(baselines, BASELINES[name], None)
        if cls is None:
            raise ValueError(f"baseline {name!r} ({BASELINES[name]}) is not available in this install")
        kwargs = dict(tier.baseline_args.get(name, {})) if tier is not None else {}
        if "seed" in inspect.signature(cls).parameters:
            kwargs["seed"] = seed
        return cls(**kwargs)
    return ReconstructiveDefense.from_pretrained(name)


def _attack(name: str, model: nn.Module, tier: Tier):
    if name == "fgsm":
        return FGSM(model, **tier.fgsm)
    if name in ("pgd", "pgd-e2e"):
        return PGD(model, **tier.pgd)
    if name == "deepfool":
        return DeepFool(model, **tier.deepfool)
    if name == "autoattack":
        import torchattacks

        return torchattacks.AutoAttack(model, norm="Linf", eps=tier.pgd["eps"], n_classes=tier.num_classes, seed=0)
    raise ValueError(f"unknown attack {name!r}: expected one of {sorted(ATTACK_NAMES)}")


def _run_attack(attack: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    out = attack(x, y)
    return out[0] if isinstance(out, tuple) else out


def _defended(defense: nn.Module | None, classifier: nn.Module) -> nn.Module:
    return classifier if defense is None else nn.Sequential(defense, classifier)


@torch.no_grad()
def _correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    return int((model(x).argmax(1) == y).sum())


def _setup(
    tier: Tier,
    defenses: Sequence[str],
    classifier: str | None,
    seed: int,
    device: torch.device,
    limit: int | None,
    batch_size: int,
) -> tuple[nn.Module, dict[str, nn.Module | None], DataLoader, int]:
    """The classifier, the defenses by name (on ``device``), a loader over the first ``limit`` test images,
    and their count: what every table starts from."""
    clf = load_classifier(classifier or tier.classifier).to(device)
    modules = {d: build_defense(d, seed, tier) for d in defenses}
    for m in modules.values():
        if m is not None:
            m.to(device)
    data = tier.test_set(clf)
    total = min(limit or len(data), len(data))
    return clf, modules, DataLoader(Subset(data, range(total)), batch_size=batch_size, shuffle=False), total


def _keeps_global_rng(function: Any) -> Any:
    """Run ``function`` inside ``torch.random.fork_rng``: it seeds per batch for reproducible tables, and the
    caller's random state is left as it was."""
    import functools

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        device = torch.device(kwargs.get("device", "cpu"))
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            return function(*args, **kwargs)

    return wrapper


@_keeps_global_rng
def evaluate(
    tier: str | Tier = "fashionmnist",
    *,
    defenses: Sequence[str] | None = None,
    attacks: Sequence[str] = ("none", "fgsm", "pgd", "deepfool", "pgd-e2e"),
    classifier: str | None = None,
    limit: int | None = None,
    caps: dict[str, int] | None = None,
    batch_size: int | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Accuracy of ``classifier(defense(attack(x)))`` for every defense and attack on the tier's test set.

    Oblivious attacks are computed once per batch against the classifier alone and shared by all
    defenses; end-to-end attacks are run per defense through :func:`recondefense.attacks.adaptive_model`.

    Args:
        limit: evaluate the first ``limit`` test images (default: all).
        batch_size: images per batch (default: the tier's, ``Tier.batch_size``).
        caps: ``{defense or attack name: N}``: cells of that defense (row) or attack (column) use only
            the first N images, for defenses or attacks too slow for the whole set; each row says its n.

    Returns:
        Rows ``{"defense", "attack", "accuracy", "n", "ci95": [low, high]}``, plus rows with attack
        ``"quality"`` holding ``psnr`` and ``ssim`` (defended PGD image vs clean image, means, ``n``) and
        ``psnr_clean`` (defended clean image vs clean image; None without a defense).
    """
    tier = TIERS[tier] if isinstance(tier, str) else tier
    device = torch.device(device)
    defenses = list(defenses or tier.defenses)
    caps = dict(caps or {})
    batch_size = batch_size or tier.batch_size
    for a in attacks:
        if a not in ATTACK_NAMES:
            raise ValueError(f"unknown attack {a!r}: expected some of {list(ATTACK_NAMES)}")
    for key, value in caps.items():
        if key not in defenses and key not in attacks:
            raise ValueError(f"cap {key!r} names neither an evaluated defense {defenses} nor an attack {list(attacks)}")
        if value < 1:
            raise ValueError(f"cap {key}={value}: expected a positive number of images")
    clf, modules, loader, total = _setup(tier, defenses, classifier, seed, device, limit, batch_size)
    cap = {(d, a): min(caps.get(d, total), caps.get(a, total), total) for d in defenses for a in (*attacks, "quality")}
    correct = dict.fromkeys(cap, 0)
    seen = dict.fromkeys(cap, 0)
    quality = {d: [0.0, 0.0, 0.0] for d in defenses}  # PSNR, SSIM of the purified PGD image; PSNR of purified clean
    bar = tqdm(loader, desc=f"evaluate {tier.name}", disable=not progress)
    for i, (x, y) in enumerate(bar):
        x, y = x.to(device), y.to(device)
        start = i * batch_size
        take = {cell: max(0, min(len(y), cap[cell] - start)) for cell in cap}  # images this batch gives a cell
        need = {a: max(take[d, a] for d in defenses) for a in (*attacks, "quality")}
        torch.manual_seed(seed * 100_003 + i)
        adv = {}
        for a in attacks:
            if a in OBLIVIOUS and need[a]:
                k = need[a]
                adv[a] = x[:k] if a == "none" else _run_attack(_attack(a, clf, tier), x[:k], y[:k])
        if need["quality"] > len(adv.get("pgd", ())):
            k = need["quality"]
            adv["pgd"] = _run_attack(_attack("pgd", clf, tier), x[:k], y[:k])
        for d, module in modules.items():
            pipeline = _defended(module, clf)
            for a in attacks:
                k = take[d, a]
                if not k:
                    continue
                if a in OBLIVIOUS or (module is None and a == "pgd-e2e" and "pgd" in adv):
                    # (no defense: end-to-end PGD is the same attack as oblivious PGD)
                    x_adv = adv["pgd" if a == "pgd-e2e" else a][:k]
                else:
                    target = clf if module is None else adaptive_model(module, clf, eot_samples=tier.eot_samples)
                    x_adv = _run_attack(_attack(a, target, tier), x[:k], y[:k])
                correct[d, a] += _correct(pipeline, x_adv, y[:k])
                seen[d, a] += k
            k = take[d, "quality"]
            if k:
                with torch.no_grad():
                    purified = adv["pgd"][:k] if module is None else module(adv["pgd"][:k])
                    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                        # (its own random state: randomized rows stay as they were without this column)
                        purified_clean = x[:k] if module is None else module(x[:k])
                quality[d][0] += psnr(purified, x[:k]).sum().item()
                quality[d][1] += ssim(purified, x[:k]).sum().item()
                if module is not None:
                    quality[d][2] += psnr(purified_clean, x[:k]).sum().item()
                seen[d, "quality"] += k
        bar.set_postfix(images=start + len(y))
    rows: list[dict[str, Any]] = []
    for d in defenses:
        for a in attacks:
            n = seen[d, a]
            low, high = wilson_interval(correct[d, a], n)
            rows.append({"defense": d, "attack": a, "accuracy": correct[d, a] / n, "n": n, "ci95": [low, high]})
        n = seen[d, "quality"]
        rows.append(
            {
                "defense": d,
                "attack": "quality",
                "psnr": quality[d][0] / n,
                "ssim": quality[d][1] / n,
                "psnr_clean": None if modules[d] is None else quality[d][2] / n,
                "n": n,
            }
        )
    return rows


@torch.no_grad()
def evaluate_corruptions(
    tier: str | Tier = "fashionmnist",
    *,
    defenses: Sequence[str] | None = None,
    corruptions: Sequence[str] | None = None,
    severities: Sequence[int] = (1, 2, 3, 4, 5),
    classifier: str | None = None,
    limit: int | None = None,
    batch_size: int | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Accuracy of ``classifier(defense(corrupt(x)))`` per ImageNet-C corruption, averaged over ``severities``.

    Every defense sees the same corrupted images (one generator seeded per batch, corruption and severity).

    Returns:
        Rows ``{"defense", "attack": "corruption:<name>", "accuracy", "per_severity": [...], "n"}``.
    """
    from .corruptions import CORRUPTIONS, corrupt

    tier = TIERS[tier] if isinstance(tier, str) else tier
    device = torch.device(device)
    defenses = list(defenses or tier.defenses)
    names = list(corruptions or CORRUPTIONS)
    unknown = [n for n in names if n not in CORRUPTIONS]
    if unknown:
        raise ValueError(f"unknown corruptions {unknown}: expected some of {sorted(CORRUPTIONS)}")
    clf, modules, loader, total = _setup(tier, defenses, classifier, seed, device, limit, batch_size or tier.batch_size)
    correct = {(d, c, s): 0 for d in defenses for c in names for s in severities}
    bar = tqdm(loader, desc=f"corruptions {tier.name}", disable=not progress)
    for i, (x, y) in enumerate(bar):
        x, y = x.to(device), y.to(device)
        for j, name in enumerate(names):
            for severity in severities:
                generator = torch.Generator(device=x.device).manual_seed(seed * 1_000_003 + i * 1009 + j * 7 + severity)
                corrupted = corrupt(x, name, severity, generator=generator)
                for d, module in modules.items():
                    correct[d, name, severity] += _correct(_defended(module, clf), corrupted, y)
    rows = []
    for d in defenses:
        for name in names:
            per = [correct[d, name, s] / total for s in severities]
            rows.append(
                {
                    "defense": d,
                    "attack": f"corruption:{name}",
                    "accuracy": sum(per) / len(per),
                    "per_severity": per,
                    "n": total,
                }
            )
    return rows


def format_corruption_markdown(
    rows: list[dict[str, Any]], tier: Tier, classifier: str | None = None, held_out: Sequence[str] = ()
) -> str:
    """The corruption table: accuracy per corruption (mean over severities), their mean, and the mean
    corruption error relative to no defense (mean over corruptions of error(defense) / error(none); < 1 helps).
    ``held_out`` corruptions (never trained on) get their own mean column."""
    defenses = list(dict.fromkeys(r["defense"] for r in rows))
    names = list(dict.fromkeys(r["attack"].removeprefix("corruption:") for r in rows))
    acc = {(r["defense"], r["attack"].removeprefix("corruption:")): r["accuracy"] for r in rows}
    n = max((r["n"] for r in rows), default=0)
    head = ["Defense", *names, "mean"] + (["mean held-out"] if held_out else []) + ["rel. mCE"]
    lines = [
        f"Classifier `{classifier or tier.classifier}`, {n} test images, each of the {len(names)} ImageNet-C "
        "corruptions at severities 1-5 (accuracy averaged over severities). rel. mCE: mean over corruptions of "
        "the defended error divided by the undefended error (below 1: the defense helps).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for d in defenses:
        values = [acc[d, c] for c in names]
        cells = [f"{v:.3f}" for v in values] + [f"{sum(values) / len(values):.3f}"]
        if held_out:
            kept = [acc[d, c] for c in names if c in held_out]
            cells.append(f"{sum(kept) / len(kept):.3f}" if kept else "-")
        if ("none", names[0]) in acc:
            ratios = [(1 - acc[d, c]) / max(1 - acc["none", c], 1e-9) for c in names]
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


def short_name(defense: str) -> str:
    """Label for figures: ``ours_<attack>`` for weights named ``<dataset>-<classifier>-<attack>``."""
    if defense in BASELINES or defense == "none" or "-" not in defense or "/" in defense:
        return defense
    return "ours_" + defense.rsplit("-", 1)[1]


def save_figures(
    tier: Tier, defenses: Sequence[str], ours: str, folder: str | Path, *, index: int = 0, device: str = "cpu"
) -> list[Path]:
    """The paper's Figure 1 (original, PGD perturbation, perturbation left after ``ours``) and a
    Figure 2-style grid of every defense on the same PGD image, as PNGs in ``folder``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    clf = load_classifier(tier.classifier).to(device)
    x, y = tier.test_set(clf)[index]
    x, y = x.unsqueeze(0).to(device), torch.tensor([y], device=device)
    x_adv = _run_attack(_attack("pgd", clf, tier), x, y)
    ours_module = build_defense(ours, tier=tier).to(device)
    with torch.no_grad():
        x_hat = ours_module(x_adv)

    def show(ax, img: torch.Tensor, title: str) -> None:
        img = img[0].detach().cpu()
        ax.imshow(img.permute(1, 2, 0).squeeze(-1), cmap="gray" if img.shape[0] == 1 else None, vmin=0, vmax=1)
        ax.set_title(title, fontsize=8)
        ax.axis("off")

    fig = Figure(figsize=(7.5, 2.8))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    scale = 1 / max(tier.pgd["eps"] * 2, 1e-8)
    show(axes[0], x, "original")
    show(axes[1], ((x_adv - x).abs() * scale).clamp(0, 1), f"|PGD - x| (x{scale:.0f})")
    show(axes[2], ((x_hat - x).abs() * scale).clamp(0, 1), f"|{short_name(ours)}(PGD) - x| (x{scale:.0f})")
    fig.tight_layout()
    paths = [folder / "figure1.png"]
    fig.savefig(paths[0], dpi=150)

    names = [d for d in defenses if d != "none"]
    fig = Figure(figsize=(1.6 * (len(names) + 2), 2.2))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(names) + 2)
    show(axes[0], x, "original")
    show(axes[1], x_adv, "PGD")
    for ax, d in zip(axes[2:], names):
        module = build_defense(d, tier=tier).to(device)
        with torch.no_grad():
            out = module(x_adv)
        pred = int(clf(out).argmax(1))
        show(ax, out, f"{short_name(d)}\n{'ok' if pred == int(y) else 'wrong'}")
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
    limit: int = 1000,
    device: str = "cpu",
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Accuracy against PGD eps on the first ``limit`` test images, as a PNG: the undefended
    classifier, and each defense under oblivious PGD and under end-to-end PGD (the tier's steps,
    step size proportional to eps).

    Returns:
        One point per eps: ``{"eps", "undefended", "<defense> oblivious", "<defense> end-to-end", ...}``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    clf = load_classifier(tier.classifier).to(device)
    modules = {d: build_defense(d, tier=tier).to(device) for d in defenses}
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
        point = {"eps": eps, "undefended": _correct(clf, x_obl, y) / limit}
        for d, module in modules.items():
            pipeline = _defended(module, clf)
            target = adaptive_model(module, clf, eot_samples=tier.eot_samples)
            x_e2e = x if eps == 0 else PGD(target, **attack)(x, y)
            point[f"{short_name(d)} oblivious"] = _correct(pipeline, x_obl, y) / limit
            point[f"{short_name(d)} end-to-end"] = _correct(pipeline, x_e2e, y) / limit
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
    ax.set_title(f"{tier.name}: first {limit} test images, {tier.pgd['steps']}-step PGD", fontsize=9)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    return points


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


def main(argv: list[str] | None = None) -> int:
    """The ``recondefense evaluate`` command line. Returns the exit code: 2 for a bad argument, reported
    as one ``error:`` line before any data, classifier or defense is loaded."""
    import re

    from .files import output_problem
    from .weights import list_weights

    def positive_int(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
        return value

    parser = argparse.ArgumentParser(
        prog="recondefense evaluate", description="The paper's tables (defenses x attacks)."
    )
    parser.add_argument("--tier", default="fashionmnist", choices=sorted(TIERS))
    parser.add_argument("--defenses", default=None, help="comma-separated (default: every defense of the tier)")
    parser.add_argument(
        "--attacks", default="none,fgsm,pgd,deepfool,pgd-e2e", help=f"comma-separated of {','.join(ATTACK_NAMES)}"
    )
    parser.add_argument(
        "--classifier", default=None, help="attacked and evaluated classifier (default: the tier's target)"
    )
    parser.add_argument(
        "--transfer", action="store_true", help="Table 3: attack and evaluate the tier's transfer classifier"
    )
    parser.add_argument("--limit", type=positive_int, default=None, help="first N test images (default: all)")
    parser.add_argument(
        "--cap",
        action="append",
        default=[],
        metavar="NAME=N",
        help="evaluate defense or attack NAME on the first N images only (repeatable; the table marks its n)",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        help="images per batch (default: the tier's; 250, ImageNet tiers 10)",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--json", default=None, help="write the rows here ('-': to stdout, and the table to stderr instead)"
    )
    parser.add_argument("--markdown", default=None, help="write the table here")
    parser.add_argument("--figures", default=None, help="write Figure 1 and the Figure 2 grid here")
    parser.add_argument(
        "--curve", default=None, help="write the accuracy-vs-eps PNG here (and its points as .json beside it)"
    )
    parser.add_argument(
        "--curve-defenses", default=None, help="comma-separated defenses of the curve (default: the evaluated weights)"
    )
    parser.add_argument(
        "--from-json",
        nargs="+",
        default=None,
        metavar="PATH",
        help="no evaluation: print (and --markdown) the table of rows saved by earlier --json runs, in order",
    )
    parser.add_argument(
        "--no-table", action="store_true", help="skip the table: only --figures and/or --curve for --defenses"
    )
    parser.add_argument(
        "--corruptions",
        nargs="?",
        const="all",
        default=None,
        help="the corruption table instead of the attack table: 'all' or comma-separated ImageNet-C names",
    )
    parser.add_argument(
        "--held-out-corruptions", default="", help="comma-separated corruptions reported in their own mean column"
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    tier = TIERS[args.tier]
    classifier = tier.transfer_classifier if args.transfer else args.classifier
    defenses = args.defenses.split(",") if args.defenses else list(tier.defenses)
    attacks = args.attacks.split(",")
    curve_defenses = args.curve_defenses.split(",") if args.curve_defenses else None
    try:
        caps = {key: int(value) for key, _, value in (c.partition("=") for c in args.cap)}
    except ValueError:
        parser.error(f"--cap expects NAME=N with an integer N, got {args.cap}")

    def known_defense(name: str) -> bool:
        if not name:  # (Path("") is the current folder)
            return False
        hub_id = re.fullmatch(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*", name) is not None
        return name == "none" or name in BASELINES or name in list_weights() or Path(name).is_dir() or hub_id

    problems: list[str | None] = []
    unknown = [d for d in dict.fromkeys([*defenses, *(curve_defenses or [])]) if not known_defense(d)]
    if unknown:
        problems.append(
            f"unknown defense(s) {unknown}: expected 'none', a baseline ({', '.join(BASELINES)}), registered "
            f"weights ({', '.join(list_weights()) or 'none shipped'}), a weights folder or a hub repo id 'owner/name'"
        )
    if curve_defenses and "none" in curve_defenses:
        problems.append("--curve-defenses none: the curve always has the undefended classifier; name defenses")
    unknown = [a for a in dict.fromkeys(attacks) if a not in ATTACK_NAMES]
    if unknown:
        problems.append(f"unknown attack(s) {unknown}: expected some of {','.join(ATTACK_NAMES)}")
    for path in args.from_json or []:
        if not Path(path).is_file():
            problems.append(f"--from-json {path}: no such file")
    wanted = {
        "--json": None if args.json == "-" else args.json,
        "--markdown": args.markdown,
        "--curve": args.curve,
        "--curve (points)": Path(args.curve).with_suffix(".json") if args.curve else None,
    }
    outputs = {flag: Path(path) for flag, path in wanted.items() if path}
    found = {flag: output_problem(flag, path) for flag, path in outputs.items()}
    if found.get("--curve"):
        found.pop("--curve (points)", None)  # the same folder: said once
    problems.extend(found.values())
    if args.figures:
        problems.append(output_problem("--figures", Path(args.figures), folder=True))
    claimed: dict[Path, str] = {Path(p).resolve(): "--from-json" for p in args.from_json or []}
    for flag, path in outputs.items():
        other = claimed.setdefault(path.resolve(), flag)
        if other != flag:
            problems.append(f"{flag} {path} is also the {other} file: it would be overwritten")
    problems = [p for p in problems if p]
    if problems:
        print("error: " + "; ".join(problems), file=sys.stderr)
        return 2

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    info = sys.stderr if args.json == "-" else sys.stdout  # keep stdout for the JSON rows
    if args.from_json:
        rows = [row for path in args.from_json for row in json.loads(Path(path).read_text())]
        order = {d: i for i, d in enumerate(tier.defenses)}
        rows.sort(key=lambda r: order.get(r["defense"], len(order)))  # stable: unknown defenses keep their place
        table = format_markdown(rows, tier, classifier)
        print(table)
        if args.markdown:
            Path(args.markdown).write_text(table)
        return 0
    if args.corruptions is not None and not args.no_table:
        names = None if args.corruptions == "all" else args.corruptions.split(",")
        try:
            rows = evaluate_corruptions(
                tier,
                defenses=defenses,
                corruptions=names,
                classifier=classifier,
                limit=args.limit,
                batch_size=args.batch_size,
                device=args.device,
                seed=args.seed,
                progress=not args.no_progress,
            )
        except (ValueError, FileNotFoundError) as err:
            print("error: " + " ".join(str(err).splitlines()), file=sys.stderr)
            return 2
        held_out = [n for n in args.held_out_corruptions.split(",") if n]
        table = format_corruption_markdown(rows, tier, classifier, held_out)
        _write_table(rows, table, args.json, args.markdown, info)
        return 0
    if not args.no_table:
        try:
            rows = evaluate(
                tier,
                defenses=defenses,
                attacks=attacks,
                classifier=classifier,
                limit=args.limit,
                caps=caps,
                batch_size=args.batch_size,
                device=args.device,
                seed=args.seed,
                progress=not args.no_progress,
            )
        except (ValueError, FileNotFoundError) as err:
            print("error: " + " ".join(str(err).splitlines()), file=sys.stderr)
            return 2
        table = format_markdown(rows, tier, classifier)
        _write_table(rows, table, args.json, args.markdown, info)
    ours = [d for d in defenses if d not in BASELINES and d != "none"]
    if args.figures and ours:
        for path in save_figures(tier, defenses, ours[0], args.figures, device=args.device):
            print(f"wrote {path}", file=info)
    if args.curve:
        curve_defenses = curve_defenses or ours
        points = eps_curve(tier, curve_defenses, args.curve, device=args.device, progress=not args.no_progress)
        Path(args.curve).with_suffix(".json").write_text(json.dumps(points, indent=1))
        print(json.dumps(points), file=info)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
