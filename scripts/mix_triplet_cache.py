"""Write the cache of a ``--attack "pgd+<corruptions>" --triplets cached`` run from a PGD cache of the same data.

A routed gate learns from cached triplets of two sources, the paper's PGD and the corruptions, drawn per batch and
classifier group. Attacking the images again costs about 1.3 s per 224 px image on 2 CPU cores; the PGD triplets of
the same images already exist in the purifier's cache (``recondefense train --attack pgd --triplets cached``). This
script replays the draws ``recondefense train`` would make (the same seed per batch, ``step_seed(seed, -1, i)``,
the same groups of ``image index mod classifier count``), copies the PGD rows from that cache for the groups that
draw PGD, and corrupts the cache's clean images for the others. The PGD attack of the training loop has no random
start, so a PGD row is what the training loop would attack again; a corrupted row is corrupted from the 8-bit clean
image (the training loop corrupts the decoded image before rounding: the inputs differ by at most half a grey level).

    python scripts/mix_triplet_cache.py --pgd ~/.cache/recondefense/runs/objects/triplets \\
        --out runs/realworld/gate --corruptions "corruption:gaussian_noise,fog@1-5" --batch-size 32 \\
        --classifier-count 2

Then ``recondefense train --out runs/realworld/gate --attack "pgd+corruption:gaussian_noise,fog@1-5"
--triplets cached --batch-size 32 ...`` finds the complete cache and trains on it.

``--sources-from`` takes each row's source from a mixed cache (its routes file) instead of replaying the draws:
its PGD rows are copied (``--pgd`` may then be that same mixed cache) and its corrupted rows corrupted anew with
``--corruptions`` (a cache of other corruptions without attacking anything again; the draws of the new corruptions
would otherwise shift which groups draw PGD). The clean images and labels
are hard-linked from the PGD cache (copied where links fail); x~ and the routes are new files.
"""

from __future__ import annotations

import argparse
import os
import shutil
from functools import partial
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from recondefense.files import write_atomic
from recondefense.train.attack_specs import attack_parts, corruption_spec
from recondefense.train.config import TrainConfig
from recondefense.train.triplets import (
    CACHED_CLEAN,
    CACHED_LABELS,
    CACHED_ROUTES,
    CACHED_TRIPLETS,
    TripletMaker,
    classifier_groups,
    source_route,
    step_seed,
)


def mix_cache(
    pgd: Path,
    out: Path,
    corruptions: str,
    batch_size: int,
    classifier_count: int,
    seed: int = 0,
    progress: bool = True,
    sources: np.ndarray | None = None,
) -> np.ndarray:
    """Write ``out``'s cache for ``--attack "pgd+<corruptions>"`` from the complete PGD cache in ``pgd``.

    Args:
        pgd: folder of a complete ``--attack pgd --triplets cached`` cache (clean, labels, x~).
        out: folder to write (created); its clean images and labels are those of ``pgd``.
        corruptions: the corruption part of ``--attack``, ``"corruption[:names][@severities]"``.
        batch_size, classifier_count, seed: those of the ``recondefense train`` run that will read the cache.
        sources: each row's route in a mixed cache (1: PGD, copied from ``pgd``; 2: corrupted here), instead of
            the replayed draws.

    Returns: the route of every row, ``(N,)`` uint8 (1: PGD, 2: corrupted; undecodable rows 0).
    """
    if corruption_spec(corruptions) is None or len(attack_parts(corruptions)) != 1:
        raise ValueError(f"corruptions must be one corruption spec, 'corruption[:names][@severities]': {corruptions!r}")
    if not all((pgd / name).is_file() for name in (CACHED_CLEAN, CACHED_LABELS, CACHED_TRIPLETS)):
        raise FileNotFoundError(f"{pgd} holds no complete triplet cache (clean images, labels and x~)")
    clean = np.load(pgd / CACHED_CLEAN, mmap_mode="r")
    labels = np.load(pgd / CACHED_LABELS)
    pgd_rows = np.load(pgd / CACHED_TRIPLETS, mmap_mode="r")
    mixed = TripletMaker(TrainConfig(attack=f"pgd+{corruptions}", seed=seed), classifiers=[])
    corrupting = TripletMaker(TrainConfig(attack=corruptions, seed=seed), classifiers=[])
    x_adv = np.zeros_like(pgd_rows)
    routes = np.zeros(len(labels), dtype=np.uint8)
    batches = -(-len(labels) // batch_size)
    for i in tqdm(range(batches), desc="mixing triplets", disable=not progress):
        rows = np.arange(i * batch_size, min(len(labels), (i + 1) * batch_size))
        index = torch.from_numpy(rows[labels[rows] >= 0])  # the batch's decodable images, as the loader gives them
        if not len(index):
            continue
        torch.manual_seed(step_seed(seed, -1, i))
        for _, positions in classifier_groups(index, classifier_count):
            group = index[positions].numpy()
            kind = mixed.kind() if sources is None else ("pgd" if sources[group[0]] == 1 else "corruption")
            if kind == "pgd":
                x_adv[group] = pgd_rows[group]
            else:
                x = torch.from_numpy(np.array(clean[group])).float().div(255)
                made = corrupting.make(x, torch.from_numpy(labels[group]))[0]
                x_adv[group] = (made * 255).round().to(torch.uint8).numpy()
            routes[group] = source_route(kind)
    out.mkdir(parents=True, exist_ok=True)
    for name in (CACHED_CLEAN, CACHED_LABELS):
        target = out / name
        if target.exists():
            target.unlink()
        try:
            os.link(pgd / name, target)
        except OSError:
            shutil.copyfile(pgd / name, target)
    write_atomic(out / CACHED_ROUTES, partial(np.save, arr=routes))
    write_atomic(out / CACHED_TRIPLETS, partial(np.save, arr=x_adv))  # last: a cache with x~ is complete
    return routes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pgd", type=Path, required=True, help="folder of a complete PGD triplet cache")
    parser.add_argument("--out", type=Path, required=True, help="folder of the run that will train on the mix")
    parser.add_argument("--corruptions", required=True, help="'corruption[:names][@severities]', as in --attack")
    parser.add_argument("--batch-size", type=int, default=32, help="the training run's --batch-size")
    parser.add_argument("--classifier-count", type=int, default=1, help="how many --classifier names it has")
    parser.add_argument("--seed", type=int, default=0, help="its --seed")
    parser.add_argument("--images", type=int, help="refuse a PGD cache of another size (the run's objects:N)")
    parser.add_argument(
        "--sources-from", type=Path, help="a mixed cache whose rows' sources (PGD or corrupted) this one keeps"
    )
    args = parser.parse_args()
    rows = len(np.load(args.pgd / CACHED_LABELS, mmap_mode="r")) if (args.pgd / CACHED_LABELS).is_file() else None
    if args.images is not None and rows != args.images:
        parser.error(f"{args.pgd} caches {rows} images, not --images {args.images}")
    sources = None if args.sources_from is None else np.load(args.sources_from / CACHED_ROUTES)
    routes = mix_cache(
        args.pgd, args.out, args.corruptions, args.batch_size, args.classifier_count, args.seed, sources=sources
    )
    print(f"wrote {args.out}: {int((routes == 1).sum())} PGD rows, {int((routes == 2).sum())} corrupted rows")


if __name__ == "__main__":
    main()
