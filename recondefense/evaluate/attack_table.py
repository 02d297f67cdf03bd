"""Accuracy of ``classifier(defense(attack(x)))`` per defense and attack: :class:`AttackTable` (per-image results of
any range of images, merged into rows) and :func:`evaluate` (the whole table in one call)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from ..attacks import adaptive_model
from ..metrics import psnr, ssim, wilson_interval
from .run import (
    ShardedTable,
    build_attack,
    check_cover,
    defended_model,
    gate_of,
    hits,
    image_draws,
    keeps_global_rng,
    run_attack,
)
from .tiers import ATTACK_NAMES, DEFAULT_ATTACKS, OBLIVIOUS, Tier

__all__ = ["AttackTable", "evaluate"]


class AttackTable(ShardedTable):
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
        attacks: Sequence[str] = DEFAULT_ATTACKS,
        caps: dict[str, int] | None = None,
        **common: Any,
    ) -> None:
        """``common``: what every table takes (:class:`~.run.ShardedTable`: ``defenses``, ``classifier``, ``limit``,
        ``batch_size``, ``device``, ``seed``)."""
        super().__init__(tier, **common)
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
        self._load(f"{len(self.attacks)} attack(s)")
        caps, total = self.caps, self.total
        # PSNR/SSIM of the purified PGD image: measured only when PGD is among the attacks (it reuses its images)
        self.measured = (*self.attacks, "quality") if "pgd" in self.attacks else tuple(self.attacks)
        self.cap = {
            (d, a): min(caps.get(d, total), caps.get(a, total), total) for d in self.defenses for a in self.measured
        }

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
            if gate_of(self.modules[d]) is not None:  # a gated purifier: did its gate open (value > 0.5), per image
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
                with image_draws(module, seed, a, first, k):
                    if a in OBLIVIOUS or (module is None and a == "pgd-e2e" and "pgd" in adv):
                        # (no defense: end-to-end PGD is the same attack as oblivious PGD)
                        x_adv = adv["pgd" if a == "pgd-e2e" else a][:k]
                    else:
                        target = clf if module is None else adaptive_model(module, clf, eot_samples=tier.eot_samples)
                        x_adv = run_attack(build_attack(a, target, tier), x[:k], y[:k])
                    correct[d][a] += hits(pipeline, x_adv, y[:k])
            k = take.get((d, "quality"), 0)
            if k:
                with torch.no_grad():
                    with image_draws(module, seed, "quality", first, k):
                        purified = adv["pgd"][:k] if module is None else module(adv["pgd"][:k])
                    with (
                        image_draws(module, seed, "quality-clean", first, k),
                        torch.random.fork_rng(devices=[device] if device.type == "cuda" else []),
                    ):
                        purified_clean = x[:k] if module is None else module(x[:k])
                quality[d]["psnr"] += psnr(purified, x[:k]).tolist()
                quality[d]["ssim"] += ssim(purified, x[:k]).tolist()
                if module is not None:
                    quality[d]["psnr_clean"] += psnr(purified_clean, x[:k]).tolist()
                gate = gate_of(module)
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
        check_cover(parts, self.total)
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


@keeps_global_rng
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
        tier: a name of :data:`TIERS` or a :class:`Tier`.
        defenses: names for :func:`build_defense` (None: every defense of the tier; not empty).
        attacks: names of :data:`ATTACK_NAMES` (default: :data:`DEFAULT_ATTACKS`).
        classifier: the evaluated classifier, a :func:`~recondefense.classifiers.load_classifier` spec (None: the
            tier's target).
        limit: evaluate the first ``limit`` test images (None: all; else positive).
        caps: ``{defense or attack name: N}``: cells of that defense (row) or attack (column) use only the first N
            images, for defenses or attacks too slow for the whole set; each row says its n.
        batch_size: images per batch (None: the tier's, ``Tier.batch_size``; else positive).
        device: where to run; seed: the attacks' and randomized defenses' seed.
        progress: show a progress bar.

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
    return AttackTable(
        tier, defenses=defenses, attacks=attacks, classifier=classifier, limit=limit, caps=caps,
        batch_size=batch_size, device=device, seed=seed,
    ).run(progress)  # fmt: skip
