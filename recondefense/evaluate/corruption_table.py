"""Accuracy of ``classifier(defense(corrupt(x)))`` per ImageNet-C corruption and severity: :class:`CorruptionTable`
(per-image results of any range of images, merged into rows) and :func:`evaluate_corruptions`."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import torch

from .run import ShardedTable, check_cover, check_names, defended_model, hits, image_draws
from .tiers import Tier

__all__ = ["CorruptionTable", "evaluate_corruptions"]


class CorruptionTable(ShardedTable):
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
        corruptions: Sequence[str] | None = None,
        severities: Sequence[int] = (1, 2, 3, 4, 5),
        **common: Any,
    ) -> None:
        """``common``: what every table takes (:class:`~.run.ShardedTable`: ``defenses``, ``classifier``, ``limit``,
        ``batch_size``, ``device``, ``seed``)."""
        from ..corruptions import CORRUPTIONS, KNOWN_CORRUPTIONS

        super().__init__(tier, **common)
        names = check_names("corruptions", corruptions, f"all {len(CORRUPTIONS)}") or list(CORRUPTIONS)
        unknown = [n for n in names if n not in KNOWN_CORRUPTIONS]
        if unknown:
            raise ValueError(f"unknown corruptions {unknown}: expected some of {list(KNOWN_CORRUPTIONS)}")
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
        self.canonical = {name: k for k, name in enumerate(KNOWN_CORRUPTIONS)}  # the seeds' corruption index
        self._load(f"{len(names)} corruption(s) x {len(self.severities)} severities")

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
                        with image_draws(module, self.seed, f"corruption:{name}:{severity}", first, len(y)):
                            correct[d][name][s] += hits(defended_model(module, self.classifier), corrupted, y)
        return {"start": images.start, "stop": images.stop, "correct": correct}

    def rows(self, parts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """:func:`evaluate_corruptions`'s rows from the results of :meth:`images` on ranges covering all images
        once, in order.

        Raises:
            ValueError: ``parts`` that do not cover the images once each, in order.
        """
        check_cover(parts, self.total)
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
    corruptions: Sequence[str] | None = None,
    severities: Sequence[int] = (1, 2, 3, 4, 5),
    defenses: Sequence[str] | None = None,
    classifier: str | None = None,
    limit: int | None = None,
    batch_size: int | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Accuracy of ``classifier(defense(corrupt(x)))`` per ImageNet-C corruption, averaged over ``severities``.

    Every defense sees the same corrupted images: one generator per batch, corruption and severity, seeded
    from ``seed``, the batch, the corruption's index in :data:`~recondefense.corruptions.KNOWN_CORRUPTIONS` (not its
    place in ``corruptions``, so a corruption's images, and a deterministic defense's score on them, are the same
    whichever others are selected) and the severity. A randomized baseline (``rrp``, ``pd``) draws per image
    (:mod:`recondefense.seeding`), so its cells do not depend on the corruptions selected or their order either.

    Args:
        tier: a name of :data:`TIERS` or a :class:`Tier`.
        corruptions: names of :data:`~recondefense.corruptions.CORRUPTIONS` (or of its 4 validation corruptions,
            :data:`~recondefense.corruptions.VALIDATION_CORRUPTIONS`), each once (None: the 15; not empty).
        severities: distinct ints in 1..5.
        defenses, classifier, limit, batch_size, device, seed: as for :func:`~recondefense.evaluate.evaluate`.
        progress: show a progress bar.

    Returns:
        Rows ``{"defense", "attack": "corruption:<name>", "accuracy", "per_severity": [...], "n"}``, the accuracy
        at each of ``severities`` in ``per_severity``; when ``severities`` is not 1..5, each row also has
        ``"severities"`` (a row without it was evaluated at 1-5).

    Raises:
        ValueError: an empty ``defenses`` or ``corruptions``, an unknown or repeated corruption or severity, a
            non-positive ``limit`` or ``batch_size`` (before any data is loaded), a classifier that cannot take
            the tier's images, or bad data.
    """
    return CorruptionTable(
        tier, corruptions=corruptions, severities=severities, defenses=defenses, classifier=classifier, limit=limit,
        batch_size=batch_size, device=device, seed=seed,
    ).run(progress)  # fmt: skip
