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

from ..arguments import check_device, positive_int
from .figures import CURVE_IMAGES, corruption_figure, eps_curve, save_figures
from .report import _row_problem, _rows_problem, _write_table, format_corruption_markdown, format_markdown
from .run import evaluate, evaluate_corruptions
from .tiers import ATTACK_NAMES, BASELINES, TIERS, Tier

__all__ = ["main"]

_JSON_KINDS = {dict: "object", str: "string", int: "number", float: "number", bool: "true/false"}


def _error(err: BaseException | str) -> int:
    """Print ``err`` as one ``error:`` line on stderr; the exit code 2."""
    print("error: " + " ".join(str(err).splitlines()), file=sys.stderr)
    return 2


def _read_rows(paths: list[str], corruption: bool) -> list[dict[str, Any]]:
    """The rows of the ``--from-json`` files, in order, each checked for the attack table or (``corruption``)
    the corruption table.

    Raises:
        ValueError: a file that is unreadable, empty, not JSON, not a list of rows, holds no rows, or has a row
            its table cannot show (the message names the file and the row's index), or rows that do not go
            together (a defense without its quality row, different corruption severities).
    """
    rows: list[dict[str, Any]] = []
    for path in paths:
        where = f"--from-json {path}"
        try:
            text = Path(path).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{where}: not UTF-8 text: expected the JSON rows an evaluate --json run writes") from None
        except OSError as err:
            raise ValueError(f"{where}: cannot read it ({err.strerror or err})") from None
        if not text.strip():
            raise ValueError(f"{where}: empty file: expected the JSON rows an evaluate --json run writes")
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(
                f"{where}: not JSON ({err.msg} at line {err.lineno} column {err.colno}): expected the rows an "
                "evaluate --json run writes"
            ) from None
        if not isinstance(loaded, list):
            kind = _JSON_KINDS.get(type(loaded), "null")
            raise ValueError(f"{where}: a JSON {kind}, expected a list of rows (what evaluate --json writes)")
        if not loaded:
            raise ValueError(f"{where}: the file holds no rows")
        for index, row in enumerate(loaded):
            problem = _row_problem(row, corruption)
            if problem:
                raise ValueError(f"{where}: row {index}: {problem}")
        rows.extend(loaded)
    problem = _rows_problem(rows, corruption)
    if problem:
        raise ValueError(f"--from-json {' '.join(paths)}: {problem}")
    return rows


def _classifier_problem(name: str | None, tier: Tier) -> str | None:
    """Why the registered classifier ``--classifier name`` cannot take the tier's images, from the registry's
    metadata (nothing loaded), or None; other specs are checked on a blank image of the tier's shape when loaded."""
    from ..classifiers import _CLASSIFIERS

    entry, target = _CLASSIFIERS.get(name or ""), _CLASSIFIERS.get(tier.classifier)
    if entry is None or target is None:
        return None
    dataset, expected = entry.meta.get("dataset"), target.meta.get("dataset")
    if dataset is None or expected is None or dataset == expected:
        return None
    shape = " x ".join(str(s) for s in tier.image_shape)
    return (
        f"--classifier {name} takes {dataset} images, but tier {tier.name!r} gives {shape} {expected} images "
        f"(channels x height x width): use a {expected} classifier, e.g. {tier.classifier}"
    )


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


def _ours(defenses: list[str]) -> list[str]:
    """Our defenses (weights) among ``defenses``: the figures show the first."""
    return [d for d in defenses if d not in BASELINES and d != "none"]


def _output_flag_problems(args: argparse.Namespace, defenses: list[str]) -> list[str]:
    """Flags that would do nothing here, said up front instead of silently ignored."""
    problems = []
    if args.from_json:
        given = [flag for flag in ("--figures", "--curve", "--no-table") if getattr(args, flag[2:].replace("-", "_"))]
        if given:
            problems.append(f"--from-json only tabulates saved rows: {', '.join(given)} need(s) an evaluation")
    if args.curve_defenses and not args.curve:
        problems.append("--curve-defenses without --curve: name the curve's PNG with --curve")
    if args.no_table:
        if not (args.figures or args.curve):
            problems.append("--no-table without --figures or --curve: nothing to do")
        written = [flag for flag, value in (("--json", args.json), ("--markdown", args.markdown)) if value]
        if written:
            problems.append(f"--no-table skips the table, so {' and '.join(written)} would write nothing")
    if args.cap and args.corruptions is not None:
        problems.append("--cap is for the attack table: the corruption table evaluates every defense on all images")
    if args.figures and not args.from_json and not _ours(defenses):
        problems.append(
            f"--figures shows one of our defenses (weights), and --defenses {','.join(defenses)} names none: "
            "add one (Figure 1 is the perturbation it leaves; with --corruptions, its outputs)"
        )
    return problems


def _device_problem(name: str) -> str | None:
    """Why ``--device`` cannot be used here (the same check as ``recondefense train --device``), or None."""
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

    parser = argparse.ArgumentParser(
        prog="recondefense evaluate", description="The paper's tables (defenses x attacks)."
    )
    parser.add_argument("--tier", default="fashionmnist", choices=sorted(TIERS))
    parser.add_argument("--defenses", default=None, help="comma-separated (default: every defense of the tier)")
    parser.add_argument(
        "--attacks",
        default="none,fgsm,pgd,deepfool,pgd-e2e",
        help=f"comma-separated of {','.join(ATTACK_NAMES)} (default: %(default)s). A randomized baseline's cells "
        "(rrp, pd) depend on which attacks are given, in which order, and on --batch-size and --cap: its generator is "
        "seeded once per run and every call advances it; the Makefile's commands fix all of them",
    )
    parser.add_argument(
        "--classifier", default=None, help="attacked and evaluated classifier (default: the tier's target)"
    )
    parser.add_argument(
        "--transfer", action="store_true", help="Table 3: attack and evaluate the tier's transfer classifier"
    )
    parser.add_argument(
        "--limit",
        type=positive_int,
        default=None,
        help=f"first N test images (default: all; for --curve, the first {CURVE_IMAGES})",
    )
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
        help="images per batch (default: the tier's; 250, ImageNet tiers 10); changes randomized baselines' cells",
    )
    parser.add_argument("--device", default="cpu", help='"auto" (cuda when available), "cpu", "cuda" or "cuda:N"')
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seeds the randomized baselines' generators (once per run) and the global RNG (per batch)",
    )
    parser.add_argument(
        "--json",
        default=None,
        help="write the rows here ('-': to stdout, and the table to stderr instead); with --from-json, the merged rows",
    )
    parser.add_argument("--markdown", default=None, help="write the table here")
    parser.add_argument(
        "--figures",
        default=None,
        help="write Figure 1 and the Figure 2 grid here (with --corruptions: corruptions.png, every corruption at "
        "severity 3), for the first of our defenses (weights) in --defenses, attacked and classified by the "
        "evaluated classifier",
    )
    parser.add_argument(
        "--curve",
        default=None,
        help=f"write the accuracy-vs-eps PNG here (and its points as .json beside it): the first {CURVE_IMAGES} test "
        "images or --limit, the evaluated classifier",
    )
    parser.add_argument(
        "--curve-defenses", default=None, help="comma-separated defenses of the curve (default: the evaluated weights)"
    )
    parser.add_argument(
        "--from-json",
        nargs="+",
        default=None,
        metavar="PATH",
        help="no evaluation: print (and --markdown, --json) the table of rows saved by earlier --json runs, in order",
    )
    parser.add_argument(
        "--no-table", action="store_true", help="skip the table: only --figures and/or --curve (one is needed)"
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
    if args.transfer and args.classifier:
        problems.append(
            f"--transfer evaluates the tier's transfer classifier {tier.transfer_classifier}: drop --classifier"
        )
    if args.transfer and tier.transfer_classifier is None:
        problems.append(f"--transfer: tier {tier.name!r} has no transfer classifier")
    problems.append(_classifier_problem(args.classifier, tier))
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
    problems.extend(_output_flag_problems(args, defenses))
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
        try:
            rows = _read_rows(args.from_json, corruption=args.corruptions is not None)
        except ValueError as err:
            return _error(err)
        order = {d: i for i, d in enumerate(tier.defenses)}
        rows.sort(key=lambda r: order.get(r["defense"], len(order)))  # stable: unknown defenses keep their place
        if args.corruptions is not None:  # rows of earlier --corruptions runs: the corruption table
            try:
                table = format_corruption_markdown(rows, tier, classifier, _held_out(args))
            except ValueError as err:
                return _error(f"--from-json {' '.join(args.from_json)}: {err}")
        else:
            table = format_markdown(rows, tier, classifier)
        _write_table(rows, table, args.json, args.markdown, info)
        return 0
    device = args.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:  # a classifier that cannot take the tier's images, bad data: one error line
        _evaluate_and_draw(args, tier, classifier, defenses, attacks, caps, curve_defenses, device, info)
    except (ValueError, FileNotFoundError) as err:
        return _error(err)
    return 0


def _evaluate_and_draw(
    args: argparse.Namespace,
    tier: Tier,
    classifier: str | None,
    defenses: list[str],
    attacks: list[str],
    caps: dict[str, int],
    curve_defenses: list[str] | None,
    device: str,
    info: Any,
) -> None:
    """The attack or corruption table (unless ``--no-table``), then ``--figures`` and ``--curve``, all for the
    evaluated ``classifier`` (None: the tier's target).

    Raises:
        ValueError, FileNotFoundError: bad data, or a classifier or defense that cannot be loaded or used.
    """
    common = {  # what the corruption table and the attack table run with
        "defenses": defenses,
        "classifier": classifier,
        "limit": args.limit,
        "batch_size": args.batch_size,
        "device": device,
        "seed": args.seed,
        "progress": not args.no_progress,
    }
    if not args.no_table:
        if args.corruptions is not None:
            names = None if args.corruptions == "all" else args.corruptions.split(",")
            rows = evaluate_corruptions(tier, corruptions=names, **common)
            table = format_corruption_markdown(rows, tier, classifier, _held_out(args))
        else:
            rows = evaluate(tier, attacks=attacks, caps=caps, **common)
            table = format_markdown(rows, tier, classifier)
        _write_table(rows, table, args.json, args.markdown, info)
    ours = _ours(defenses)
    if args.figures and args.corruptions is not None:  # one image under every corruption, before and after ours
        Path(args.figures).mkdir(parents=True, exist_ok=True)
        path = Path(args.figures) / "corruptions.png"
        corruption_figure(tier, ours[0], path, classifier=classifier, seed=args.seed, device=device)
        print(f"wrote {path}", file=info)
    elif args.figures:
        paths = save_figures(
            tier, defenses, ours[0], args.figures, classifier=classifier, seed=args.seed, device=device
        )
        for path in paths:
            print(f"wrote {path}", file=info)
    if args.curve:
        points = eps_curve(
            tier,
            curve_defenses or ours,
            args.curve,
            limit=args.limit or CURVE_IMAGES,
            classifier=classifier,
            seed=args.seed,
            device=device,
            progress=not args.no_progress,
        )
        Path(args.curve).with_suffix(".json").write_text(json.dumps(points, indent=1))
        print(json.dumps(points), file=info)
