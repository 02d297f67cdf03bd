"""``recondefense certify`` (also ``python -m recondefense.certify``, and ``torchrun -m recondefense.certify`` in
several processes): certificates of a tier's classifier, bare or behind defenses, as a table, rows and a curve,
computed in shards (:mod:`recondefense.shards`); or the same from rows files (``--from-json``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from .dataset import certify_dataset
from .report import first_per_image, plot_certified_accuracy, print_table, read_rows, row_label
from .smoothing import PRECISIONS, base_classifier, check_alpha, check_sigma, max_certifiable_radius

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Certified accuracy of the tier's classifier, bare or behind each defense (randomized smoothing)."""
    import argparse
    import json
    import logging
    import sys

    from ..arguments import check_device, positive_int
    from ..evaluate import TIERS
    from ..files import write_atomic
    from ..shards import place, process_group, rank_device, remove_work

    def positive_float(text: str) -> float:
        try:
            return check_sigma(float(text))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}") from None

    def probability(text: str) -> float:
        try:
            return check_alpha(float(text))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}") from None

    def radius_list(text: str) -> list[float]:
        try:
            radii = [float(r) for r in text.split(",")]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated radii such as 0,0.25,0.5, got {text!r}"
            ) from None
        if not all(math.isfinite(r) and r >= 0 for r in radii):
            raise argparse.ArgumentTypeError(f"expected finite radii >= 0, got {text!r}")
        return radii

    parser = argparse.ArgumentParser(
        prog="recondefense certify", description=main.__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--tier", default="fashionmnist", choices=sorted(TIERS), help="test set and classifier")
    parser.add_argument("--defenses", default="none", help="comma-separated: none (bare classifier) or weights")
    parser.add_argument("--classifier", default=None, help="the base classifier; None: the tier's target")
    parser.add_argument(
        "--sigma", type=positive_float, default=None, help="noise level, > 0 (required unless --from-json)"
    )
    parser.add_argument("--n0", type=positive_int, default=100, help="noise samples selecting the top class")
    parser.add_argument(
        "--n",
        "--samples",
        type=positive_int,
        default=100_000,
        help="noise samples bounding its probability (under torchrun write --samples: torchrun reads --n as an "
        "abbreviation of its own options)",
    )
    parser.add_argument("--alpha", type=probability, default=0.001, help="failure probability of each certificate")
    parser.add_argument("--limit", type=positive_int, default=None, help="first N test images; None: all")
    parser.add_argument("--batch-size", type=positive_int, default=1000, help="noise samples per forward pass")
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="noise seed, per image (image i uses seed * 1000003 + i: recondefense.seeding)",
    )
    parser.add_argument(
        "--device",
        default="cpu",
        help='"auto" (cuda when available), "cpu", "cuda" or "cuda:N"; under torchrun, auto and cuda mean each '
        "process's local GPU (cuda:LOCAL_RANK)",
    )
    parser.add_argument(
        "--precision", default="float32", choices=sorted(PRECISIONS), help="base classifier's arithmetic"
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the base classifier (faster on long runs; compiled before timing starts)",
    )
    parser.add_argument("--radii", type=radius_list, default="0,0.25,0.5,0.75,1.0", help="radii of the printed table")
    parser.add_argument("--json", default=None, help="write the rows here")
    parser.add_argument(
        "--shard-size",
        type=positive_int,
        default=100,
        help="images per shard: the unit of work of each process under torchrun, written to JSON.shards/ as it "
        "finishes (with --json)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the shards of JSON.shards/ that an interrupted run of the same settings finished; compute the rest",
    )
    parser.add_argument("--from-json", nargs="+", default=None, help="certify nothing: table and plot from rows files")
    parser.add_argument("--plot", default=None, help="write the certified-accuracy curve (PNG) here")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.from_json is None and args.sigma is None:
        parser.error("--sigma is required (or --from-json to tabulate rows already certified)")
    if args.seed < 0:
        parser.error(f"argument --seed: expected an integer >= 0, got {args.seed}")
    try:
        check_device(args.device)
    except ValueError as err:
        parser.error(str(err))
    for target in (args.json, args.plot):
        if target and not Path(target).resolve().parent.is_dir():
            parser.error(f"the folder of {target} does not exist")
    where = place()
    needs = [what for what, wanted in (("--resume", args.resume), ("torchrun", where.world > 1)) if wanted]
    if needs and args.from_json is not None:
        parser.error(f"{' and '.join(needs)}: --from-json certifies nothing")
    if needs and not args.json:
        parser.error(
            f"{' and '.join(needs)} need(s) --json FILE: the finished shards are kept in FILE.shards/ beside it"
        )
    tier = TIERS[args.tier]
    radii = args.radii
    if args.from_json is not None:
        try:
            all_rows = read_rows(args.from_json)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        settings = {(r["sigma"], r["n"], r["n0"], r["alpha"], r.get("precision", "float32")) for r in all_rows}
        if len(settings) != 1:
            print(f"error: the rows mix settings (sigma, n, n0, alpha, precision): {sorted(settings)}", file=sys.stderr)
            return 2
        sigma, n, _, alpha, precision = settings.pop()
        kept = first_per_image(all_rows, tier.classifier)
        if len(kept) < len(all_rows):
            repeats = len(all_rows) - len(kept)
            print(f"note: {repeats} repeated row(s) (same curve and image) left out, the first kept", file=sys.stderr)
        all_rows = kept
    else:
        logging.basicConfig(level=logging.INFO, format="%(message)s")  # (the shards' progress lines)
        device = rank_device(args.device, where)
        with process_group(where, device):
            all_rows = _certify_shards(args, tier, device, where)
        if all_rows is None:  # another rank: rank 0 writes the results
            return 0
        if isinstance(all_rows, str):
            print(f"error: {all_rows}", file=sys.stderr)
            return 2
        sigma, n, alpha, precision = args.sigma, args.n, args.alpha, args.precision
    curves: dict[str, list[dict[str, Any]]] = {}
    for row in all_rows:
        curves.setdefault(row_label(row, tier.classifier), []).append(row)
    images = max(len(rows) for rows in curves.values())
    print(f"{tier.name}: sigma {sigma}, n {n}, alpha {alpha}, {precision}, {images} images")
    print_table(curves, radii)
    reach = max_certifiable_radius(sigma, n, alpha)
    beyond = [r for r in radii if r > reach]
    if beyond:
        print(
            f"note: n={n} and alpha={alpha} certify no radius above {reach:.3f} (sigma * Phi^-1(alpha^(1/n)), all n "
            f"noise samples on the top class), so the columns {', '.join(f'r={r}' for r in beyond)} are 0 by "
            "construction; raise --n to certify them"
        )
    if args.from_json is None and args.compile:
        print("(--compile: the compilation, before the first image, is not counted in noise samples/s or minutes)")
    if args.json:
        write_atomic(Path(args.json), json.dumps(all_rows, indent=1).encode())
    if args.plot:
        title = f"{tier.name}, sigma={sigma}, n={n}, alpha={alpha}" + (
            "" if precision == "float32" else f", {precision}"
        )
        plot_certified_accuracy(curves, args.plot, title)
    if args.from_json is None and args.json:
        remove_work(Path(args.json + ".shards"), _settings(args, tier, device))
    return 0


def _settings(args: Any, tier: Any, device: torch.device) -> dict[str, Any]:
    """Everything the rows depend on, as JSON values (the fingerprint of the run's shards)."""
    from .. import __version__

    keys = (
        "defenses",
        "sigma",
        "n0",
        "n",
        "alpha",
        "limit",
        "batch_size",
        "seed",
        "precision",
        "compile",
        "shard_size",
    )
    return {
        "table": "certify",
        "version": __version__,
        "tier": tier.name,
        "classifier": args.classifier or tier.classifier,
        **{key: getattr(args, key) for key in keys},
        "device": device.type,
    }


def _certify_shards(args: Any, tier: Any, device: torch.device, where: Any) -> list[dict[str, Any]] | str | None:
    """The rows of every defense on every image, computed shard by shard by each rank (:mod:`recondefense.shards`):
    on rank 0, defense by defense in image order; None on the other ranks; an error message for a classifier or
    defense that cannot be loaded."""
    from ..classifiers import load_classifier
    from ..evaluate import build_defense
    from ..shards import run_shards

    try:
        classifier = load_classifier(args.classifier or tier.classifier).to(device)
        defenses = {name: build_defense(name, tier=tier) for name in args.defenses.split(",")}
    except (ValueError, FileNotFoundError, ImportError) as err:
        return str(err)
    data = tier.test_set(classifier)
    models = {}
    for name, defense in defenses.items():
        if defense is not None:
            defense.to(device)
        models[name] = base_classifier(classifier, defense, precision=args.precision, compile=args.compile)
    warmed: set[str] = set()

    def compute(images: range) -> dict[str, Any]:
        rows = {}
        for name, model in models.items():
            rows[name] = certify_dataset(
                model,
                data,
                args.sigma,
                n0=args.n0,
                n=args.n,
                alpha=args.alpha,
                indices=images,
                batch_size=args.batch_size,
                seed=args.seed,
                device=device,
                warmup=args.compile and name not in warmed,
                progress=not args.no_progress and where.main,
            )
            warmed.add(name)
            for row in rows[name]:  # certify_dataset's rows hold sigma, n0, n and alpha already
                row.update(defense=name, classifier=args.classifier or tier.classifier, precision=args.precision)
        return {"start": images.start, "stop": images.stop, "rows": rows}

    total = len(data) if args.limit is None else min(args.limit, len(data))
    work = Path(args.json + ".shards") if args.json else None
    settings = _settings(args, tier, device)
    parts = run_shards(compute, total, args.shard_size, settings=settings, work=work, resume=args.resume, where=where)
    if parts is None:
        return None
    return [row for name in models for part in parts for row in part["rows"][name]]


if __name__ == "__main__":
    raise SystemExit(main())
