"""What the evaluation tables share: the defense and attack factories, the checked classifier and test data, the
per-image seeding of randomized defenses, and :class:`ShardedTable`, the base of :class:`~.attack_table.AttackTable`
(accuracy per defense and attack) and :class:`~.corruption_table.CorruptionTable` (per ImageNet-C corruption). The
tables compute per-image results of any range of images (a shard of :mod:`recondefense.shards`) and merge them into
rows."""

from __future__ import annotations

import contextlib
import inspect
import logging
import numbers
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from .. import baselines
from ..attacks import FGSM, PGD, DeepFool
from ..baselines._random import RandomizedDefense
from ..classifiers import load_classifier
from ..defense import ReconstructiveDefense
from ..seeding import image_seed
from .tiers import ATTACK_NAMES, BASELINES, TIERS, Tier

__all__ = [
    "ShardedTable",
    "build_attack",
    "build_defense",
    "check_count",
    "check_cover",
    "check_names",
    "count_correct",
    "defended_model",
    "gate_of",
    "hits",
    "image_draws",
    "keeps_global_rng",
    "load_checked_classifier",
    "log_scope",
    "run_attack",
]

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


def gate_of(defense: nn.Module | None) -> Any:
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


def check_names(name: str, values: Sequence[str] | None, none_means: str) -> list[str] | None:
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


def log_scope(tier: Tier, total: int, defenses: Sequence[str], columns: str, limit: int | None) -> None:
    """Say what is about to run (logged at INFO): the images, defenses and columns, and, without a ``limit``,
    that the whole test set can take hours (``recondefense evaluate`` with no options is the README's table)."""
    whole = (
        ""
        if limit is not None
        else " (every test image: this can take hours on a CPU; limit=100 / --limit 100 is a quick look)"
    )
    logger.info("evaluate %s: %d test images x %d defense(s) x %s%s", tier.name, total, len(defenses), columns, whole)


def keeps_global_rng(function: Any) -> Any:
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


def image_draws(module: nn.Module | None, seed: int, stream: str, first: int, count: int) -> Any:
    """The block in which a randomized baseline draws per image for images ``first .. first + count - 1`` of the
    cell ``stream`` (:mod:`recondefense.seeding`); nothing for other defenses."""
    if not isinstance(module, RandomizedDefense):
        return contextlib.nullcontext()
    return module.per_image([image_seed(seed, first + j, stream) for j in range(count)])


@torch.no_grad()
def hits(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[int]:
    """1 for each image of ``x`` that ``model`` classifies as ``y``, else 0."""
    return (model(x).argmax(1) == y).int().tolist()


def check_cover(parts: Sequence[dict[str, Any]], total: int) -> None:
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


class ShardedTable:
    """What both tables share: the checks of their arguments, the classifier, defenses and test images loaded once,
    and the batches of a range of images."""

    kind = ""

    def __init__(
        self,
        tier: str | Tier = "fashionmnist",
        *,
        defenses: Sequence[str] | None = None,
        classifier: str | None = None,
        limit: int | None = None,
        batch_size: int | None = None,
        device: str | torch.device = "cpu",
        seed: int = 0,
    ) -> None:
        """The arguments every table takes (see :func:`~.attack_table.evaluate`); nothing is loaded yet.

        Raises:
            ValueError: an empty ``defenses``, a non-positive ``limit`` or ``batch_size``.
        """
        self.tier = TIERS[tier] if isinstance(tier, str) else tier
        self.device = torch.device(device)
        check_count("limit", limit, "all test images")
        check_count("batch_size", batch_size, f"the tier's ({self.tier.batch_size})")
        self.defenses = check_names("defenses", defenses, "every defense of the tier") or list(self.tier.defenses)
        self.classifier_name = classifier
        self.limit = limit
        self.batch_size = batch_size or self.tier.batch_size
        self.seed = seed

    def run(self, progress: bool = True) -> list[dict[str, Any]]:
        """The table's rows, computed on all images in one go (:meth:`images` of them all, then :meth:`rows`)."""
        return self.rows([self.images(range(self.total), progress=progress)])

    def images(self, images: range, progress: bool = False) -> dict[str, Any]:
        """The per-image results of ``images``, a range starting at a multiple of the batch size (the subclass's)."""
        raise NotImplementedError

    def rows(self, parts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows from the results of :meth:`images` on ranges covering all images once, in order."""
        raise NotImplementedError

    def _load(self, columns: str) -> None:
        """Load the classifier, defenses and test set, then log the scope (:func:`log_scope`) with ``columns``."""
        self.classifier, self.modules, self.data, self.total = _setup(
            self.tier, self.defenses, self.classifier_name, self.seed, self.device, self.limit
        )
        log_scope(self.tier, self.total, self.defenses, columns, self.limit)

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
