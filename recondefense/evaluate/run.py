"""The evaluation loops: accuracy of ``classifier(defense(attack(x)))`` per defense and attack
(:func:`evaluate`, :class:`AttackTable`), or per ImageNet-C corruption (:func:`evaluate_corruptions`,
:class:`CorruptionTable`), and the defense factory. The tables compute per-image results of any range of images
(a shard of :mod:`recondefense.shards`) and merge them into rows."""

from __future__ import annotations

import contextlib
import inspect
import logging
import math
import numbers
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from .. import baselines
from ..attacks import FGSM, PGD, DeepFool, adaptive_model
from ..baselines._random import RandomizedDefense
from ..classifiers import load_classifier
from ..defense import ReconstructiveDefense
from ..metrics import psnr, ssim, wilson_interval
from ..seeding import image_seed
from .tiers import ATTACK_NAMES, BASELINES, DEFAULT_ATTACKS, OBLIVIOUS, TIERS, Tier

__all__ = ["AttackTable", "CorruptionTable", "build_defense", "evaluate", "evaluate_corruptions"]

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


def build_attack(name: str, model: nn.Module, tier: Tier):
    """The attack ``name`` (fgsm, pgd, pgd-e2e, deepfool, ...) on ``model`` with the tier's parameters."""
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


def run_attack(attack: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The adversarial batch of ``attack(x, y)`` (the first item when the attack returns a tuple)."""
    out = attack(x, y)
    return out[0] if isinstance(out, tuple) else out


def _gate(defense: nn.Module | None) -> Any:
    """The per-image gate value function of a gated purifier's defense (``(N, C, H, W)`` -> ``(N,)``), else None."""
    return getattr(getattr(defense, "autoencoder", None), "gate_value", None)


def defended_model(defense: nn.Module | None, classifier: nn.Module) -> nn.Module:
    """``classifier`` behind ``defense`` (``None``: the classifier alone)."""
    return classifier if defense is None else nn.Sequential(defense, classifier)


@torch.no_grad()
def count_correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """How many of ``x`` ``model`` classifies as ``y``."""
    return int((model(x).argmax(1) == y).sum())


def check_count(name: str, value: Any, none_means: str) -> None:
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


def load_checked_classifier(tier: Tier, classifier: str | None, device: torch.device | str) -> nn.Module:
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
    tier: Tier, defenses: Sequence[str], classifier: str | None, seed: int, device: torch.device, limit: int | None
) -> tuple[nn.Module, dict[str, nn.Module | None], Dataset, int]:
    """The classifier, the defenses by name (on ``device``), the test set and the count of its first ``limit``
    images: what every table starts from."""
    clf = load_checked_classifier(tier, classifier, device)
    modules = {d: build_defense(d, seed, tier) for d in defenses}
    for m in modules.values():
        if m is not None:
            m.to(device)
    data = tier.test_set(clf)
    total = min(limit or len(data), len(data))  # (limit: None or positive, checked by the callers)
    return clf, modules, data, total


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
    caller's global random state is left as it was (the randomized baselines' draws are not global state: see
    :mod:`recondefense.seeding`)."""
    import functools

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        device = torch.device(kwargs.get("device", "cpu"))
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            return function(*args, **kwargs)

    return wrapper


def _image_draws(module: nn.Module | None, seed: int, stream: str, first: int, count: int) -> Any:
    """The block in which a randomized baseline draws per image for images ``first .. first + count - 1`` of the
    cell ``stream`` (:mod:`recondefense.seeding`); nothing for other defenses."""
    if not isinstance(module, RandomizedDefense):
        return contextlib.nullcontext()
    return module.per_image([image_seed(seed, first + j, stream) for j in range(count)])


@torch.no_grad()
def _hits(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[int]:
    """1 for each image of ``x`` that ``model`` classifies as ``y``, else 0."""
    return (model(x).argmax(1) == y).int().tolist()


def _check_cover(parts: Sequence[dict[str, Any]], total: int) -> None:
    """Refuse ``parts`` (results of :meth:`AttackTable.images` or :meth:`CorruptionTable.images`) that do not cover
    images ``0 .. total - 1`` once each, in order."""
    ranges = [(p["start"], p["stop"]) for p in parts]
    expected = 0
    for start, stop in ranges:
        if start != expected:
            break
        expected = stop
    if expected != total or len({r for r in ranges}) != len(ranges):
        raise ValueError(f"the parts cover images {ranges}, expected 0-{total - 1} once each, in order")


class _Table:
    """What both tables share: the checks of their arguments, the classifier, defenses and test images loaded once,
    and the batches of a range of images."""

    kind = ""

    def __init__(
        self,
        tier: str | Tier,
        defenses: Sequence[str] | None,
        classifier: str | None,
        limit: int | None,
        batch_size: int | None,
        device: str | torch.device,
        seed: int,
    ) -> None:
        self.tier = TIERS[tier] if isinstance(tier, str) else tier
        self.device = torch.device(device)
        check_count("limit", limit, "all test images")
        check_count("batch_size", batch_size, f"the tier's ({self.tier.batch_size})")
        self.defenses = _check_names("defenses", defenses, "every defense of the tier") or list(self.tier.defenses)
        self.classifier_name = classifier
        self.limit = limit
        self.batch_size = batch_size or self.tier.batch_size
        self.seed = seed

    def _load(self) -> None:
        self.classifier, self.modules, self.data, self.total = _setup(
            self.tier, self.defenses, self.classifier_name, self.seed, self.device, self.limit
        )

    @property
    def settings(self) -> dict[str, Any]:
        """Everything the results depend on, as JSON values (a sharded run's fingerprint)."""
        from .. import __version__

        return {
            "table": self.kind,
            "version": __version__,
            "tier": self.tier.name,
            "classifier": self.classifier_name or self.tier.classifier,
            "defenses": list(self.defenses),
            "images": self.total,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "device": self.device.type,
        }

    def _batches(self, images: range, progress: bool) -> Any:
        """``(first index, x, y)`` of each batch of ``images`` (which start on a batch boundary), on the device."""
        if images.step != 1 or images.start % self.batch_size or not 0 <= images.start <= images.stop <= self.total:
            raise ValueError(
                f"expected a range of images within 0-{self.total} starting at a multiple of the batch size "
                f"{self.batch_size}, got {images}"
            )
        loader = DataLoader(Subset(self.data, images), batch_size=self.batch_size, shuffle=False)
        bar = tqdm(loader, desc=f"{self.kind} {self.tier.name}", disable=not progress)
        for j, (x, y) in enumerate(bar):
            first = images.start + j * self.batch_size
            yield first, x.to(self.device), y.to(self.device)
            bar.set_postfix(images=first + len(y))


class AttackTable(_Table):
    """The attack table of one configuration (the arguments of :func:`evaluate`): :meth:`images` gives the
    per-image results of a range of images (one shard), :meth:`rows` merges those of all images, in any ranges,
    into exactly :func:`evaluate`'s rows. The classifier, defenses and test images are loaded once.

    Raises:
        ValueError: as :func:`evaluate`.
    """

    kind = "evaluate"

    def __init__(
        self,
        tier: str | Tier = "fashionmnist",
        *,
        defenses: Sequence[str] | None = None,
        attacks: Sequence[str] = DEFAULT_ATTACKS,
        classifier: str | None = None,
        limit: int | None = None,
        caps: dict[str, int] | None = None,
        batch_size: int | None = None,
        device: str | torch.device = "cpu",
        seed: int = 0,
    ) -> None:
        super().__init__(tier, defenses, classifier, limit, batch_size, device, seed)
        self.attacks = list(attacks)
        self.caps = dict(caps or {})
        for a in self.attacks:
            if a not in ATTACK_NAMES:
                raise ValueError(f"unknown attack {a!r}: expected some of {list(ATTACK_NAMES)}")
        for key, value in self.caps.items():
            if key not in self.defenses and key not in self.attacks:
                raise ValueError(
                    f"cap {key!r} names neither an evaluated defense {self.defenses} nor an attack {self.attacks}"
                )
            if value < 1:
                raise ValueError(f"cap {key}={value}: expected a positive number of images")
        self._load()
        caps, total = self.caps, self.total
        # PSNR/SSIM of the purified PGD image: measured only when PGD is among the attacks (it reuses its images)
        self.measured = (*self.attacks, "quality") if "pgd" in self.attacks else tuple(self.attacks)
        self.cap = {
            (d, a): min(caps.get(d, total), caps.get(a, total), total) for d in self.defenses for a in self.measured
        }
        _log_scope(self.tier, total, self.defenses, f"{len(self.attacks)} attack(s)", limit)

    @property
    def settings(self) -> dict[str, Any]:
        return {**super().settings, "attacks": self.attacks, "caps": self.caps}

    def images(self, images: range, progress: bool = False) -> dict[str, Any]:
        """The per-image results of ``images`` (a range starting at a multiple of the batch size): for each defense
        and attack, 1 or 0 per image within the cell's cap (``correct``), and the PSNR and SSIM of each image
        (``quality``); JSON values. The caller's global random state is left as it was."""
        correct: dict[str, dict[str, list[int]]] = {d: {a: [] for a in self.attacks} for d in self.defenses}
        quality = {
            d: {"psnr": [], "ssim": [], "psnr_clean": None if m is None else []} for d, m in self.modules.items()
        }
        for d in self.modules:
            if _gate(self.modules[d]) is not None:  # a gated purifier: did its gate open (value > 0.5), per image
                quality[d] |= {"gate_clean": [], "gate_pgd": []}
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            for first, x, y in self._batches(images, progress):
                self._batch(first, x, y, correct, quality)
        return {"start": images.start, "stop": images.stop, "correct": correct, "quality": quality}

    def _batch(
        self, first: int, x: torch.Tensor, y: torch.Tensor, correct: dict[str, Any], quality: dict[str, Any]
    ) -> None:
        """Add the results of the batch ``x, y`` (images ``first ..``) to ``correct`` and ``quality``."""
        tier, clf, attacks, device, seed = self.tier, self.classifier, self.attacks, self.device, self.seed
        take = {cell: max(0, min(len(y), cap - first)) for cell, cap in self.cap.items()}  # images a cell takes here
        need = {a: max(take[d, a] for d in self.defenses) for a in self.measured}
        torch.manual_seed(seed * 100_003 + first // self.batch_size)
        adv = {}
        for a in attacks:
            if a in OBLIVIOUS and need[a]:
                k = need[a]
                adv[a] = x[:k] if a == "none" else run_attack(build_attack(a, clf, tier), x[:k], y[:k])
        if need.get("quality", 0) > len(adv.get("pgd", ())):
            k = need["quality"]
            adv["pgd"] = run_attack(build_attack("pgd", clf, tier), x[:k], y[:k])
        for d, module in self.modules.items():
            pipeline = defended_model(module, clf)
            for a in attacks:
                k = take[d, a]
                if not k:
                    continue
                with _image_draws(module, seed, a, first, k):
                    if a in OBLIVIOUS or (module is None and a == "pgd-e2e" and "pgd" in adv):
                        # (no defense: end-to-end PGD is the same attack as oblivious PGD)
                        x_adv = adv["pgd" if a == "pgd-e2e" else a][:k]
                    else:
                        target = clf if module is None else adaptive_model(module, clf, eot_samples=tier.eot_samples)
                        x_adv = run_attack(build_attack(a, target, tier), x[:k], y[:k])
                    correct[d][a] += _hits(pipeline, x_adv, y[:k])
            k = take.get((d, "quality"), 0)
            if k:
                with torch.no_grad():
                    with _image_draws(module, seed, "quality", first, k):
                        purified = adv["pgd"][:k] if module is None else module(adv["pgd"][:k])
                    with (
                        _image_draws(module, seed, "quality-clean", first, k),
                        torch.random.fork_rng(devices=[device] if device.type == "cuda" else []),
                    ):
                        purified_clean = x[:k] if module is None else module(x[:k])
                quality[d]["psnr"] += psnr(purified, x[:k]).tolist()
                quality[d]["ssim"] += ssim(purified, x[:k]).tolist()
                if module is not None:
                    quality[d]["psnr_clean"] += psnr(purified_clean, x[:k]).tolist()
                gate = _gate(module)
                if gate is not None:
                    with torch.no_grad():
                        quality[d]["gate_clean"] += (gate(x[:k]) > 0.5).int().tolist()
                        quality[d]["gate_pgd"] += (gate(adv["pgd"][:k]) > 0.5).int().tolist()

    def rows(self, parts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """:func:`evaluate`'s rows from the results of :meth:`images` on ranges covering all images once, in order
        (sums over images in their order: the same numbers whatever the ranges).

        Raises:
            ValueError: ``parts`` that do not cover the images once each, in order.
        """
        _check_cover(parts, self.total)
        rows: list[dict[str, Any]] = []
        dropped = getattr(self.data, "dropped", None)  # a consensus-labelled tier's crops the classifiers disagree on
        for d in self.defenses:
            for a in self.attacks:
                hits = [h for p in parts for h in p["correct"][d][a]]
                n = len(hits)
                low, high = wilson_interval(sum(hits), n)
                rows.append({"defense": d, "attack": a, "accuracy": sum(hits) / n, "n": n, "ci95": [low, high]})
                if dropped is not None:
                    rows[-1]["dropped"] = dropped
            if "quality" not in self.measured:
                continue
            values = {key: [v for p in parts for v in p["quality"][d][key]] for key in ("psnr", "ssim")}
            clean = None if self.modules[d] is None else [v for p in parts for v in p["quality"][d]["psnr_clean"]]
            n = len(values["psnr"])
            rows.append(
                {
                    "defense": d,
                    "attack": "quality",
                    "psnr": math.fsum(values["psnr"]) / n,
                    "ssim": math.fsum(values["ssim"]) / n,
                    "psnr_clean": None if clean is None else math.fsum(clean) / n,
                    "n": n,
                }
            )
            if "gate_clean" in parts[0]["quality"][d]:  # share of images whose gate opened
                for key in ("clean", "pgd"):
                    opened = [v for p in parts for v in p["quality"][d][f"gate_{key}"]]
                    rows[-1][f"gate_open_{key}"] = sum(opened) / len(opened)
        return rows


@_keeps_global_rng
def evaluate(
    tier: str | Tier = "fashionmnist",
    *,
    defenses: Sequence[str] | None = None,
    attacks: Sequence[str] = DEFAULT_ATTACKS,
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

    Randomness: the randomized baselines (``rrp``, ``pd``) draw per image (:mod:`recondefense.seeding`), so their
    cells depend on ``seed``, not on the attacks given or their order, ``batch_size``, ``caps`` or the other
    defenses; the deterministic defenses draw nothing. The global torch RNG is reseeded at every batch
    (``seed * 100_003 + batch index``) and left as it was for the caller. ``recondefense evaluate`` runs the same
    table in shards (:class:`AttackTable`, :mod:`recondefense.shards`), in one process or under ``torchrun``.

    Args:
        defenses: names for :func:`build_defense` (None: every defense of the tier; not empty).
        limit: evaluate the first ``limit`` test images (None: all; else positive).
        batch_size: images per batch (None: the tier's, ``Tier.batch_size``; else positive).
        caps: ``{defense or attack name: N}``: cells of that defense (row) or attack (column) use only
            the first N images, for defenses or attacks too slow for the whole set; each row says its n.

    Returns:
        Rows ``{"defense", "attack", "accuracy", "n", "ci95": [low, high]}`` (and ``dropped``, the crops a
        consensus-labelled tier dropped), plus, when ``"pgd"`` is among ``attacks``, rows with attack ``"quality"``
        holding ``psnr`` and ``ssim`` (defended PGD image vs clean image, means, ``n``), ``psnr_clean`` (defended clean
        image vs clean image; None without a defense) and, for a gated purifier, ``gate_open_clean`` /
        ``gate_open_pgd`` (share of clean / PGD images whose gate opened, value > 0.5).

    Raises:
        ValueError: an empty ``defenses``, a non-positive ``limit`` or ``batch_size``, an unknown attack, a bad
            cap (before any data is loaded), a classifier that cannot take the tier's images, or bad data.
    """
    table = AttackTable(
        tier,
        defenses=defenses,
        attacks=attacks,
        classifier=classifier,
        limit=limit,
        caps=caps,
        batch_size=batch_size,
        device=device,
        seed=seed,
    )
    return table.rows([table.images(range(table.total), progress=progress)])


class CorruptionTable(_Table):
    """The corruption table of one configuration (the arguments of :func:`evaluate_corruptions`): :meth:`images`
    gives the per-image results of a range of images (one shard), :meth:`rows` merges those of all images into
    exactly :func:`evaluate_corruptions`'s rows.

    Raises:
        ValueError: as :func:`evaluate_corruptions`.
    """

    kind = "corruptions"

    def __init__(
        self,
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
    ) -> None:
        from ..corruptions import CORRUPTIONS

        super().__init__(tier, defenses, classifier, limit, batch_size, device, seed)
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
        self.names = names
        self.severities = [int(s) for s in severities]
        self.canonical = {name: k for k, name in enumerate(CORRUPTIONS)}  # the seeds' corruption index
        self._load()
        columns = f"{len(names)} corruption(s) x {len(self.severities)} severities"
        _log_scope(self.tier, self.total, self.defenses, columns, limit)

    @property
    def settings(self) -> dict[str, Any]:
        return {**super().settings, "corruptions": self.names, "severities": self.severities}

    @torch.no_grad()
    def images(self, images: range, progress: bool = False) -> dict[str, Any]:
        """The per-image results of ``images`` (a range starting at a multiple of the batch size): for each
        defense and corruption, one list per severity of 1 or 0 per image (``correct``); JSON values."""
        from ..corruptions import corrupt

        correct = {d: {c: [[] for _ in self.severities] for c in self.names} for d in self.defenses}
        for first, x, y in self._batches(images, progress):
            i = first // self.batch_size  # the batch's place in the whole test set
            for name in self.names:
                j = self.canonical[name]
                for s, severity in enumerate(self.severities):
                    seed = self.seed * 1_000_003 + i * 1009 + j * 7 + severity
                    corrupted = corrupt(x, name, severity, generator=torch.Generator(device=x.device).manual_seed(seed))
                    for d, module in self.modules.items():
                        with _image_draws(module, self.seed, f"corruption:{name}:{severity}", first, len(y)):
                            correct[d][name][s] += _hits(defended_model(module, self.classifier), corrupted, y)
        return {"start": images.start, "stop": images.stop, "correct": correct}

    def rows(self, parts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """:func:`evaluate_corruptions`'s rows from the results of :meth:`images` on ranges covering all images
        once, in order.

        Raises:
            ValueError: ``parts`` that do not cover the images once each, in order.
        """
        _check_cover(parts, self.total)
        rows = []
        for d in self.defenses:
            for name in self.names:
                per = [
                    sum(h for p in parts for h in p["correct"][d][name][s]) / self.total
                    for s in range(len(self.severities))
                ]
                row = {
                    "defense": d,
                    "attack": f"corruption:{name}",
                    "accuracy": sum(per) / len(per),
                    "per_severity": per,
                }
                if self.severities != [1, 2, 3, 4, 5]:  # (rows without the key: 1-5, as every row written before it)
                    row["severities"] = list(self.severities)
                rows.append({**row, "n": self.total})
        return rows


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
    whichever others are selected) and the severity. A randomized baseline (``rrp``, ``pd``) draws per image
    (:mod:`recondefense.seeding`), so its cells do not depend on the corruptions selected or their order either.

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
    table = CorruptionTable(
        tier,
        defenses=defenses,
        corruptions=corruptions,
        severities=severities,
        classifier=classifier,
        limit=limit,
        batch_size=batch_size,
        device=device,
        seed=seed,
    )
    return table.rows([table.images(range(table.total), progress=progress)])
