"""The ``recondefense`` console script: ``train``, ``evaluate``, ``purify``, ``weights``."""

from __future__ import annotations

import argparse
import sys


def _purify(args: argparse.Namespace) -> int:
    from pathlib import Path

    from torchvision.io import ImageReadMode, decode_image, write_png

    from .defense import ReconstructiveDefense

    defense = ReconstructiveDefense.from_pretrained(args.weights)
    mode = ImageReadMode.GRAY if defense.channels == 1 else ImageReadMode.RGB
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for path in args.images:
        image = decode_image(path, mode=mode)
        purified = (defense(image) * 255).round().byte()
        write_png(purified, str(out / (Path(path).stem + ".png")))
        print(f"{path} -> {out / (Path(path).stem + '.png')}")
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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="recondefense", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("train", help="train a defense (see recondefense train --help)", add_help=False)
    sub.add_parser("evaluate", help="the paper's tables (see recondefense evaluate --help)", add_help=False)
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
    args = parser.parse_args(argv)
    return {"purify": _purify, "weights": _weights}[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
