"""The ``recondefense`` console script: ``train``, ``evaluate``, ``certify``, ``purify``, ``weights``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .files import writable_folder_problem

if TYPE_CHECKING:
    from torchvision.io import ImageReadMode


class _UsageError(Exception):
    """A bad command line or input, reported as one ``error:`` line on stderr (exit code 2)."""


def _purify_plan(inputs: dict[Path, str], out: Path) -> list[tuple[Path, Path]]:
    """``(input, output)`` pairs for ``inputs`` (existing absolute paths -> as typed): each output keeps
    its input's path relative to the inputs' common folder, under ``out``, as ``.png``. Raises
    :class:`_UsageError` when ``out`` is that folder, is a file or is not writable, two inputs would
    share an output, or an output would overwrite an input (same path, symlink or hard link)."""
    try:
        root = Path(os.path.commonpath([p.parent for p in inputs]))
    except ValueError as err:  # different drives
        raise _UsageError(f"inputs have no common folder: {err}") from None
    if out.exists() and not out.is_dir():
        raise _UsageError(f"--out {out} is a file, not a folder")
    if out.resolve() == root.resolve():
        raise _UsageError(f"--out {out} is the input folder {root}: pick another folder (inputs are never overwritten)")
    plan = [(p, out / p.relative_to(root).with_suffix(".png")) for p in inputs]
    by_output: dict[Path, list[Path]] = {}
    for src, dst in plan:
        by_output.setdefault(dst.resolve(), []).append(src)
    clashes = [" and ".join(inputs[src] for src in srcs) for srcs in by_output.values() if len(srcs) > 1]
    if clashes:
        raise _UsageError(f"inputs would be written to the same output: {'; '.join(clashes)}")
    sources = {src.resolve(): src for src, _ in plan}
    stats = {}
    for src in inputs:
        st = src.stat()
        stats[st.st_dev, st.st_ino] = src
    for _, dst in plan:
        same = sources.get(dst.resolve())
        if same is None and dst.is_file():  # a hard link to an input
            st = dst.stat()
            same = stats.get((st.st_dev, st.st_ino))
        if same is not None:
            raise _UsageError(f"{dst} would overwrite the input {inputs[same]}: pick another --out")
        if dst.is_dir():
            raise _UsageError(f"output {dst} is an existing folder")
    for folder in dict.fromkeys(dst.parent for _, dst in plan):
        problem = writable_folder_problem(folder)
        if problem:
            raise _UsageError(f"cannot write to --out {out}: {problem}")
    return plan


def _read_images(paths: dict[Path, str], mode: ImageReadMode) -> list[bytes]:
    """Every file's bytes (``paths``: absolute -> as typed), each checked to decode in ``mode``; raises :class:`_UsageError` naming every
    missing, unreadable or undecodable file."""
    import torch
    from torchvision.io import decode_image

    contents, bad = [], []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as err:
            bad.append(f"{paths[path]} ({(err.strerror or str(err)).lower()})")
            continue
        if not data:
            bad.append(f"{paths[path]} (empty file)")
            continue
        try:
            decode_image(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=mode)
        except (RuntimeError, ValueError):
            bad.append(f"{paths[path]} (not a decodable PNG, JPEG, WebP or GIF image)")
            continue
        contents.append(data)
    if bad:
        raise _UsageError(f"{len(bad)} of {len(paths)} input(s) cannot be read, nothing written: {', '.join(bad)}")
    return contents


def _purify(args: argparse.Namespace) -> int:
    """Purify every input into ``--out`` (same relative layout, PNG). Every check runs before anything
    is written: the weights, every input's decoding, then the output paths (no input is ever overwritten)."""
    import torch
    from torchvision.io import ImageReadMode, decode_image, write_png

    from .defense import ReconstructiveDefense

    given: dict[Path, str] = {}  # absolute path -> as typed; a file given twice is purified once
    for path in args.images:
        given.setdefault(Path(os.path.abspath(path)), path)
    try:
        try:
            defense = ReconstructiveDefense.from_pretrained(args.weights)
        except (OSError, ValueError) as err:
            raise _UsageError(f"--weights {args.weights}: {err}") from None
        mode = ImageReadMode.GRAY if defense.channels == 1 else ImageReadMode.RGB
        contents = _read_images(given, mode)
        plan = _purify_plan(given, Path(args.out))
    except _UsageError as err:
        print("error: " + " ".join(str(err).splitlines()), file=sys.stderr)
        return 2
    for (src, dst), data in zip(plan, contents):
        image = decode_image(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=mode)
        purified = (defense(image) * 255).round().byte()
        dst.parent.mkdir(parents=True, exist_ok=True)
        write_png(purified, str(dst))
        print(f"{given[src]} -> {dst}")
    return 0


def _weights(args: argparse.Namespace) -> int:
    from .weights import get_weights, list_weights

    for name in list_weights():
        meta = get_weights(name).meta
        print(
            f"{name}: {meta.get('dataset', '?')}, classifier {meta.get('classifier', '?')}, attack {meta.get('attack', '?')}"
        )
    if not list_weights():
        print("no weights shipped")
    return 0


#: ``recondefense --help``'s description (the module docstring is reStructuredText, shown here as plain text).
DESCRIPTION = "The recondefense console script: train, evaluate, certify, purify, weights."


def main(argv: list[str] | None = None) -> int:
    from . import __version__

    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="recondefense", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"recondefense {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("train", help="train a defense (see recondefense train --help)", add_help=False)
    sub.add_parser("evaluate", help="the paper's tables (see recondefense evaluate --help)", add_help=False)
    sub.add_parser(
        "certify", help="randomized-smoothing certificates (see recondefense certify --help)", add_help=False
    )
    purify = sub.add_parser("purify", help="purify image files with a defense, writing PNGs")
    purify.add_argument("images", nargs="+")
    purify.add_argument("--weights", required=True, help="registered name, hub repo id or folder")
    purify.add_argument("--out", default="purified")
    sub.add_parser("weights", help="list the shipped weights")
    if argv and argv[0] == "train":
        from .train.__main__ import main as train_main

        return train_main(argv[1:])
    if argv and argv[0] == "evaluate":
        from .evaluate import main as evaluate_main

        return evaluate_main(argv[1:])
    if argv and argv[0] == "certify":
        from .certify import main as certify_main

        return certify_main(argv[1:])
    args = parser.parse_args(argv)
    return {"purify": _purify, "weights": _weights}[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
