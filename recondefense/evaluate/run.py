"""The evaluation loops: accuracy of ``classifier(defense(attack(x)))`` per defense and attack
(:func:`evaluate`), or per ImageNet-C corruption (:func:`evaluate_corruptions`), and the defense factory."""

from __future__ import annotations

import inspect
import logging
import numbers
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset
from tqdm.auto import tqdm

from .. import baselines
from ..attacks import FGSM, PGD, DeepFool, adaptive_model
from ..classifiers import load_classifier
from ..defense import ReconstructiveDefense
from ..metrics import psnr, ssim, wilson_interval
from .tiers import ATTACK_NAMES, BASELINES, OBLIVIOUS, TIERS, Tier

__all__ = ["build_defense", "evaluate", "evaluate_corruptions"]

logger = logging.getLogger(__name__)


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


def _check_count(name: str, value: Any, none_means: str) -> None:
    """Refuse ``value`` unless it is None (``none_means``) or a positive int (a number of images)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1):
        raise ValueError(f"{name} must be a positive number of images, or None for {none_means}; got {value!r}")


def _check_names(name: str, values: Sequence[str] | None, none_means: str) -> list[str] | None:
    """``values`` as a list (None stays None: ``none_means``); an empty sequence is refused, not read as None."""
    if values is None:
        return None
    values = list(values)
    if not values:
        raise ValueError(f"{name} is empty: name at least one, or pass None for {none_means}")
    return values


def _load_checked_classifier(tier: Tier, classifier: str | None, device: torch.device | str) -> nn.Module:
    """The evaluated classifier (``classifier`` or the tier's target) on ``device``, checked on one blank
    ``(1, *tier.image_shape)`` image before any data: its first use on the tier's images would fail otherwise.

    Raises:
        ValueError: the classifier cannot take the tier's images, or returns other than ``tier.num_classes`` logits.
    """
    name = classifier or tier.classifier
    clf = load_classifier(name).to(device)
    shape = " x ".join(str(s) for s in tier.image_shape)
    what = f"classifier {name!r} cannot classify the images of tier {tier.name!r} ({shape}, channels x height x width)"
    try:
        with torch.no_grad():
            logits = clf(torch.zeros(1, *tier.image_shape, device=device))
    except RuntimeError as err:  # e.g. a conv's channels or kernel size larger than the image
        raise ValueError(f"{what}: {str(err).splitlines()[0] if str(err) else type(err).__name__}") from err
    if not isinstance(logits, torch.Tensor) or logits.shape != (1, tier.num_classes):
        got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"{what}: it returns {got}, expected logits of shape (N, {tier.num_classes})")
    return clf


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
    clf = _load_checked_classifier(tier, classifier, device)
    modules = {d: build_defense(d, seed, tier) for d in defenses}
    for m in modules.values():
        if m is not None:
            m.to(device)
    data = tier.test_set(clf)
    total = min(limit or len(data), len(data))  # (limit: None or positive, checked by the callers)
    return clf, modules, DataLoader(Subset(data, range(total)), batch_size=batch_size, shuffle=False), total


def _log_scope(tier: Tier, total: int, defenses: Sequence[str], columns: str, limit: int | None) -> None:
    """Say what is about to run (logged at INFO): the images, defenses and columns, and, without a ``limit``,
    that the whole test set can take hours (``recondefense evaluate`` with no options is the README's table)."""
    whole = (
        ""
        if limit is not None
        else " (every test image: this can take hours on a CPU; limit=100 / --limit 100 is a quick look)"
    )
    logger.info("evaluate %s: %d test images x %d defense(s) x %s%s", tier.name, total, len(defenses), columns, whole)


def _keeps_global_rng(function: Any) -> Any:
    """Run ``function`` inside ``torch.random.fork_rng``: it reseeds the global torch RNG at every batch, and the
    caller's global random state is left as it was (the randomized baselines' private generators are not global
    state: see :func:`evaluate`)."""
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

    Randomness: the global torch RNG is reseeded at every batch (``seed * 100_003 + batch index``). The
    randomized baselines (``rrp``, ``pd``) do not draw from it: each is built with a private generator seeded
    once with ``seed`` for the whole call, and every call of the defense advances it: per batch, each attack
    column in the order of ``attacks`` (the end-to-end ones call it ``eot_samples`` times per PGD step, then
    once to score), then the quality column (the PGD and the clean images). So a randomized defense's cells
    depend on ``seed``, on which ``attacks`` are given and in which order, on ``batch_size`` and on ``caps``
    (rrp's "No attack" cell changes when ``"fgsm"`` is added before or after ``"none"``); the same arguments
    give the same numbers, and the Makefile's commands fix them. A seeded baseline's row does not depend on
    the other defenses evaluated (each has its own generator); the deterministic defenses draw nothing.

    Args:
        defenses: names for :func:`build_defense` (None: every defense of the tier; not empty).
        limit: evaluate the first ``limit`` test images (None: all; else positive).
        batch_size: images per batch (None: the tier's, ``Tier.batch_size``; else positive).
        caps: ``{defense or attack name: N}``: cells of that defense (row) or attack (column) use only
            the first N images, for defenses or attacks too slow for the whole set; each row says its n.

    Returns:
        Rows ``{"defense", "attack", "accuracy", "n", "ci95": [low, high]}``, plus, when ``"pgd"`` is among
        ``attacks``, rows with attack ``"quality"`` holding ``psnr`` and ``ssim`` (defended PGD image vs clean image,
        means, ``n``) and ``psnr_clean`` (defended clean image vs clean image; None without a defense).

    Raises:
        ValueError: an empty ``defenses``, a non-positive ``limit`` or ``batch_size``, an unknown attack, a bad
            cap (before any data is loaded), a classifier that cannot take the tier's images, or bad data.
    """
    tier = TIERS[tier] if isinstance(tier, str) else tier
    device = torch.device(device)
    _check_count("limit", limit, "all test images")
    _check_count("batch_size", batch_size, f"the tier's ({tier.batch_size})")
    defenses = _check_names("defenses", defenses, "every defense of the tier") or list(tier.defenses)
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
    # PSNR/SSIM of the purified PGD image: measured only when PGD is among the attacks (it reuses its images)
    measured = (*attacks, "quality") if "pgd" in attacks else tuple(attacks)
    _log_scope(tier, total, defenses, f"{len(attacks)} attack(s)", limit)
    cap = {(d, a): min(caps.get(d, total), caps.get(a, total), total) for d in defenses for a in measured}
    correct = dict.fromkeys(cap, 0)
    seen = dict.fromkeys(cap, 0)
    quality = {d: [0.0, 0.0, 0.0] for d in defenses}  # PSNR, SSIM of the purified PGD image; PSNR of purified clean
    bar = tqdm(loader, desc=f"evaluate {tier.name}", disable=not progress)
    for i, (x, y) in enumerate(bar):
        x, y = x.to(device), y.to(device)
        start = i * batch_size
        take = {cell: max(0, min(len(y), cap[cell] - start)) for cell in cap}  # images this batch gives a cell
        need = {a: max(take[d, a] for d in defenses) for a in measured}
        torch.manual_seed(seed * 100_003 + i)
        adv = {}
        for a in attacks:
            if a in OBLIVIOUS and need[a]:
                k = need[a]
                adv[a] = x[:k] if a == "none" else _run_attack(_attack(a, clf, tier), x[:k], y[:k])
        if need.get("quality", 0) > len(adv.get("pgd", ())):
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
            k = take.get((d, "quality"), 0)
            if k:
                with torch.no_grad():
                    purified = adv["pgd"][:k] if module is None else module(adv["pgd"][:k])
                    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                        # (keeps the global RNG only: a randomized baseline's private generator still advances,
                        # so its next batch's draws, and cells, differ from those of a run without this column)
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
        if "quality" not in measured:
            continue
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

    Every defense sees the same corrupted images: one generator per batch, corruption and severity, seeded
    from ``seed``, the batch, the corruption's index in :data:`~recondefense.corruptions.CORRUPTIONS` (not its
    place in ``corruptions``, so a corruption's images, and a deterministic defense's score on them, are the same
    whichever others are selected) and the severity. A randomized baseline (``rrp``, ``pd``) draws from a private
    generator seeded once with ``seed`` and advanced by every call (per batch: corruption by corruption in the
    order given, severity by severity), so its cells also depend on the corruptions selected, their order,
    ``severities`` and ``batch_size``.

    Args:
        defenses: names for :func:`build_defense` (None: every defense of the tier; not empty).
        corruptions: names of :data:`~recondefense.corruptions.CORRUPTIONS`, each once (None: all 15; not empty).
        severities: distinct ints in 1..5.
        limit: the first ``limit`` test images (None: all; else positive).
        batch_size: images per batch (None: the tier's; else positive).

    Returns:
        Rows ``{"defense", "attack": "corruption:<name>", "accuracy", "per_severity": [...], "n"}``, the accuracy
        at each of ``severities`` in ``per_severity``; when ``severities`` is not 1..5, each row also has
        ``"severities"`` (a row without it was evaluated at 1-5).

    Raises:
        ValueError: an empty ``defenses`` or ``corruptions``, an unknown or repeated corruption or severity, a
            non-positive ``limit`` or ``batch_size`` (before any data is loaded), a classifier that cannot take
            the tier's images, or bad data.
    """
    from ..corruptions import CORRUPTIONS, corrupt

    tier = TIERS[tier] if isinstance(tier, str) else tier
    device = torch.device(device)
    _check_count("limit", limit, "all test images")
    _check_count("batch_size", batch_size, f"the tier's ({tier.batch_size})")
    defenses = _check_names("defenses", defenses, "every defense of the tier") or list(tier.defenses)
    names = _check_names("corruptions", corruptions, f"all {len(CORRUPTIONS)}") or list(CORRUPTIONS)
    unknown = [n for n in names if n not in CORRUPTIONS]
    if unknown:
        raise ValueError(f"unknown corruptions {unknown}: expected some of {list(CORRUPTIONS)}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"corruptions {repeated} given more than once: name each once")
    severities = list(severities)
    if not severities or any(
        isinstance(s, bool) or not isinstance(s, numbers.Integral) or not 1 <= s <= 5 for s in severities
    ):
        raise ValueError(f"severities must be ints in 1..5, got {severities}")
    if len(set(severities)) != len(severities):
        raise ValueError(f"severities {severities} repeat a severity: name each once")
    canonical = {name: k for k, name in enumerate(CORRUPTIONS)}  # the seeds' corruption index
    clf, modules, loader, total = _setup(tier, defenses, classifier, seed, device, limit, batch_size or tier.batch_size)
    _log_scope(tier, total, defenses, f"{len(names)} corruption(s) x {len(severities)} severities", limit)
    correct = {(d, c, s): 0 for d in defenses for c in names for s in severities}
    bar = tqdm(loader, desc=f"corruptions {tier.name}", disable=not progress)
    for i, (x, y) in enumerate(bar):
        x, y = x.to(device), y.to(device)
        for name in names:
            j = canonical[name]
            for severity in severities:
                generator = torch.Generator(device=x.device).manual_seed(seed * 1_000_003 + i * 1009 + j * 7 + severity)
                corrupted = corrupt(x, name, severity, generator=generator)
                for d, module in modules.items():
                    correct[d, name, severity] += _correct(_defended(module, clf), corrupted, y)
    rows = []
    for d in defenses:
        for name in names:
            per = [correct[d, name, s] / total for s in severities]
            row = {"defense": d, "attack": f"corruption:{name}", "accuracy": sum(per) / len(per), "per_severity": per}
            if severities != [1, 2, 3, 4, 5]:  # (rows without the key: 1-5, as every row written before it)
                row["severities"] = [int(s) for s in severities]
            rows.append({**row, "n": total})
    return rows
