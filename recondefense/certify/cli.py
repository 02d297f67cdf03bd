"""``recondefense certify``: certificates of a tier's classifier, bare or behind defenses, as a table, rows and a
curve; or the same from rows files (``--from-json``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from .dataset import certify_dataset
from .report import _first_per_image, _read_rows, plot_certified_accuracy, print_table, row_label
from .smoothing import PRECISIONS, _check_alpha, _check_sigma, base_classifier, max_certifiable_radius

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """``recondefense certify``: certified accuracy of the tier's classifier, bare or behind each defense."""
    import argparse
    import json
    import sys

    from ..arguments import check_device, positive_int
    from ..classifiers import load_classifier
    from ..evaluate import TIERS, build_defense
    from ..files import write_atomic

    def positive_float(text: str) -> float:
        try:
            return _check_sigma(float(text))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}") from None

    def probability(text: str) -> float:
        try:
            return _check_alpha(float(text))
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
    parser.add_argument("--n", type=positive_int, default=100_000, help="noise samples bounding its probability")
    parser.add_argument("--alpha", type=probability, default=0.001, help="failure probability of each certificate")
    parser.add_argument("--limit", type=positive_int, default=None, help="first N test images; None: all")
    parser.add_argument("--batch-size", type=positive_int, default=1000, help="noise samples per forward pass")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (image i uses seed * 1000003 + i)")
    parser.add_argument("--device", default="cpu", help='"auto" (cuda when available), "cpu", "cuda" or "cuda:N"')
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
    tier = TIERS[args.tier]
    radii = args.radii
    if args.from_json is not None:
        try:
            all_rows = _read_rows(args.from_json)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        settings = {(r["sigma"], r["n"], r["n0"], r["alpha"], r.get("precision", "float32")) for r in all_rows}
        if len(settings) != 1:
            print(f"error: the rows mix settings (sigma, n, n0, alpha, precision): {sorted(settings)}", file=sys.stderr)
            return 2
        sigma, n, _, alpha, precision = settings.pop()
        kept = _first_per_image(all_rows, tier.classifier)
        if len(kept) < len(all_rows):
            repeats = len(all_rows) - len(kept)
            print(f"note: {repeats} repeated row(s) (same curve and image) left out, the first kept", file=sys.stderr)
        all_rows = kept
    else:
        device = args.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            classifier = load_classifier(args.classifier or tier.classifier).to(device)
            defenses = {name: build_defense(name, tier=tier) for name in args.defenses.split(",")}
        except (ValueError, FileNotFoundError, ImportError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        data = tier.test_set(classifier)
        sigma, n, alpha, precision = args.sigma, args.n, args.alpha, args.precision
        all_rows = []
        for name, defense in defenses.items():
            if defense is not None:
                defense.to(device)
            model = base_classifier(classifier, defense, precision=precision, compile=args.compile)
            rows = certify_dataset(
                model,
                data,
                sigma,
                n0=args.n0,
                n=n,
                alpha=alpha,
                limit=args.limit,
                batch_size=args.batch_size,
                seed=args.seed,
                device=device,
                warmup=args.compile,
                progress=not args.no_progress,
            )
            for row in rows:  # certify_dataset's rows hold sigma, n0, n and alpha already
                row.update(defense=name, classifier=args.classifier or tier.classifier, precision=precision)
            all_rows += rows
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
