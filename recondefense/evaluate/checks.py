"""What ``recondefense evaluate`` checks in its arguments before any data, classifier or defense is loaded: each
function returns the problems it finds as one-line messages (none: an empty list or None)."""

from __future__ import annotations

import argparse

from ..arguments import check_device
from ..shards import Place
from .tiers import BASELINES, Tier

__all__ = [
    "classifier_problem",
    "corruption_problems",
    "device_problem",
    "held_out_names",
    "our_defenses",
    "output_flag_problems",
    "shard_problems",
]


def classifier_problem(name: str | None, tier: Tier) -> str | None:
    """Why the registered classifier ``--classifier name`` cannot take the tier's images, from the registry's
    metadata (nothing loaded), or None; other specs are checked on a blank image of the tier's shape when loaded."""
    from ..classifiers import CLASSIFIERS

    entry, target = CLASSIFIERS.get(name or ""), CLASSIFIERS.get(tier.classifier)
    if entry is None or target is None:
        return None
    dataset, expected = entry.dataset, target.dataset
    if dataset is None or expected is None or dataset == expected:
        return None
    shape = " x ".join(str(s) for s in tier.image_shape)
    return (
        f"--classifier {name} takes {dataset} images, but tier {tier.name!r} gives {shape} {expected} images "
        f"(channels x height x width): use a {expected} classifier, e.g. {tier.classifier}"
    )


def held_out_names(args: argparse.Namespace) -> list[str]:
    """The corruptions of ``--held-out-corruptions`` (their own mean column)."""
    return [n for n in args.held_out_corruptions.split(",") if n]


def corruption_problems(args: argparse.Namespace) -> list[str]:
    """What is wrong with ``--corruptions`` and ``--held-out-corruptions``: unknown or repeated names, held-out
    names without ``--corruptions`` or outside the evaluated ones."""
    from ..corruptions import KNOWN_CORRUPTIONS

    problems = []
    held_out = held_out_names(args)
    if held_out and args.corruptions is None:
        problems.append("--held-out-corruptions needs --corruptions (it is a column of the corruption table)")
    names = None if args.corruptions in (None, "all") else args.corruptions.split(",")
    for flag, given in (("--corruptions", names or []), ("--held-out-corruptions", held_out)):
        unknown = [n for n in dict.fromkeys(given) if n not in KNOWN_CORRUPTIONS]
        if unknown:
            problems.append(f"{flag}: unknown corruption(s) {unknown}: expected some of {','.join(KNOWN_CORRUPTIONS)}")
        repeated = [n for n in dict.fromkeys(given) if given.count(n) > 1]
        if repeated:
            problems.append(f"{flag}: {repeated} given more than once: name each corruption once")
    if names and not args.from_json:
        outside = [n for n in dict.fromkeys(held_out) if n in KNOWN_CORRUPTIONS and n not in names]
        if outside:
            problems.append(f"--held-out-corruptions {outside} are not among the evaluated --corruptions {names}")
    return problems


def our_defenses(defenses: list[str]) -> list[str]:
    """Our defenses (weights) among ``defenses``: the figures show the first."""
    return [d for d in defenses if d not in BASELINES and d != "none"]


def output_flag_problems(args: argparse.Namespace, defenses: list[str]) -> list[str]:
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
    if args.figures and not args.from_json and not our_defenses(defenses):
        problems.append(
            f"--figures shows one of our defenses (weights), and --defenses {','.join(defenses)} names none: "
            "add one (Figure 1 is the perturbation it leaves; with --corruptions, its outputs)"
        )
    return problems


def device_problem(name: str) -> str | None:
    """Why ``--device`` cannot be used here (the same check as ``recondefense train --device``), or None."""
    try:
        check_device(name)
    except ValueError as err:
        return str(err)
    return None


def shard_problems(args: argparse.Namespace, where: Place) -> list[str]:
    """What keeps ``--resume`` or a ``torchrun`` job from running: both keep their shards beside a ``--json`` file."""
    problems = []
    needs = [what for what, wanted in (("--resume", args.resume), ("torchrun", where.world > 1)) if wanted]
    if needs and (args.from_json or args.no_table):
        problems.append(f"{' and '.join(needs)}: {'--from-json' if args.from_json else '--no-table'} computes no table")
    elif needs and args.json in (None, "-"):
        problems.append(
            f"{' and '.join(needs)} need(s) --json FILE: the finished shards are kept in FILE.shards/ beside it"
        )
    return problems
