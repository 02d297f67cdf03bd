"""The ``recondefense evaluate`` command line (also ``python -m recondefense.evaluate``): checks every
argument before any data, classifier or defense is loaded, then runs :mod:`.run`, :mod:`.report` and
:mod:`.figures`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from .figures import corruption_figure, eps_curve, save_figures
from .report import _write_table, format_corruption_markdown, format_markdown
from .run import evaluate, evaluate_corruptions
from .tiers import ATTACK_NAMES, BASELINES, TIERS

__all__ = ["main"]


def _rows_or_error(run: Any, *args: Any, **kwargs: Any) -> list[dict[str, Any]] | None:
    """``run(*args, **kwargs)``'s rows, or None after printing a one-line error (bad data or classifier)."""
    try:
        return run(*args, **kwargs)
    except (ValueError, FileNotFoundError) as err:
        print("error: " + " ".join(str(err).splitlines()), file=sys.stderr)
        return None


def _held_out(args: argparse.Namespace) -> list[str]:
    """The corruptions of ``--held-out-corruptions`` (their own mean column)."""
    return [n for n in args.held_out_corruptions.split(",") if n]


def _corruption_problems(args: argparse.Namespace) -> list[str]:
    """What is wrong with ``--corruptions`` and ``--held-out-corruptions``: unknown or repeated names, held-out
    names without ``--corruptions`` or outside the evaluated ones."""
    from ..corruptions import CORRUPTIONS

    problems = []
    held_out = _held_out(args)
    if held_out and args.corruptions is None:
        problems.append("--held-out-corruptions needs --corruptions (it is a column of the corruption table)")
    names = None if args.corruptions in (None, "all") else args.corruptions.split(",")
    for flag, given in (("--corruptions", names or []), ("--held-out-corruptions", held_out)):
        unknown = [n for n in dict.fromkeys(given) if n not in CORRUPTIONS]
        if unknown:
            problems.append(f"{flag}: unknown corruption(s) {unknown}: expected some of {','.join(CORRUPTIONS)}")
        repeated = [n for n in dict.fromkeys(given) if given.count(n) > 1]
        if repeated:
            problems.append(f"{flag}: {repeated} given more than once: name each corruption once")
    if names and not args.from_json:
        outside = [n for n in dict.fromkeys(held_out) if n in CORRUPTIONS and n not in names]
        if outside:
            problems.append(f"--held-out-corruptions {outside} are not among the evaluated --corruptions {names}")
    return problems


def _device_problem(name: str) -> str | None:
    """Why ``--device`` cannot be used here (the same check as ``recondefense train --device``), or None."""
    from ..devices import check_device

    try:
        check_device(name)
    except ValueError as err:
        return str(err)
    return None


def main(argv: list[str] | None = None) -> int:
    """The ``recondefense evaluate`` command line. Returns the exit code: 2 for a bad argument, reported
    as one ``error:`` line before any data, classifier or defense is loaded."""
    import re

    from ..files import output_problem
    from ..weights import list_weights

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
    parser.add_argument("--device", default="cpu", help='"auto" (cuda when available), "cpu", "cuda" or "cuda:N"')
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--json", default=None, help="write the rows here ('-': to stdout, and the table to stderr instead)"
    )
    parser.add_argument("--markdown", default=None, help="write the table here")
    parser.add_argument(
        "--figures",
        default=None,
        help="write Figure 1 and the Figure 2 grid here (with --corruptions: corruptions.png, every corruption at severity 3)",
    )
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
        help="the corruption table instead of the attack table: 'all' or comma-separated ImageNet-C names, each once",
    )
    parser.add_argument(
        "--held-out-corruptions",
        default="",
        help="with --corruptions: comma-separated corruptions among those evaluated, reported in their own mean column",
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
    problems.extend(_corruption_problems(args))
    problems.append(_device_problem(args.device))
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
        if args.corruptions is not None:  # rows of earlier --corruptions runs: the corruption table
            try:
                table = format_corruption_markdown(rows, tier, classifier, _held_out(args))
            except ValueError as err:
                print(f"error: --from-json {' '.join(args.from_json)}: {err}", file=sys.stderr)
                return 2
        else:
            table = format_markdown(rows, tier, classifier)
        print(table)
        if args.markdown:
            Path(args.markdown).write_text(table)
        return 0
    device = args.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    common = {  # what the corruption table and the attack table run with
        "defenses": defenses,
        "classifier": classifier,
        "limit": args.limit,
        "batch_size": args.batch_size,
        "device": device,
        "seed": args.seed,
        "progress": not args.no_progress,
    }
    if args.corruptions is not None and not args.no_table:
        names = None if args.corruptions == "all" else args.corruptions.split(",")
        rows = _rows_or_error(evaluate_corruptions, tier, corruptions=names, **common)
        if rows is None:
            return 2
        table = format_corruption_markdown(rows, tier, classifier, _held_out(args))
        _write_table(rows, table, args.json, args.markdown, info)
        ours = [d for d in defenses if d not in BASELINES and d != "none"]
        if args.figures and ours:  # one image under every corruption, before and after our (first) defense
            Path(args.figures).mkdir(parents=True, exist_ok=True)
            path = Path(args.figures) / "corruptions.png"
            corruption_figure(tier, ours[0], path, seed=args.seed, device=device)
            print(f"wrote {path}", file=info)
        return 0
    if not args.no_table:
        rows = _rows_or_error(evaluate, tier, attacks=attacks, caps=caps, **common)
        if rows is None:
            return 2
        table = format_markdown(rows, tier, classifier)
        _write_table(rows, table, args.json, args.markdown, info)
    ours = [d for d in defenses if d not in BASELINES and d != "none"]
    if args.figures and ours:
        for path in save_figures(tier, defenses, ours[0], args.figures, device=device):
            print(f"wrote {path}", file=info)
    if args.curve:
        curve_defenses = curve_defenses or ours
        points = eps_curve(tier, curve_defenses, args.curve, device=device, progress=not args.no_progress)
        Path(args.curve).with_suffix(".json").write_text(json.dumps(points, indent=1))
        print(json.dumps(points), file=info)
    return 0
