"""``python -m recondefense.train``: command-line front end of :func:`recondefense.train.train`."""

from __future__ import annotations

import argparse
import logging
import sys

from .config import add_config_arguments, config_from_args
from .loop import TrainingInterrupted, train
from .setup import with_start_network


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(
        prog="recondefense train", description="Train a reconstructive defense (paper Algorithm 1)."
    )
    add_config_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    from tqdm.contrib.logging import logging_redirect_tqdm

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        with logging_redirect_tqdm():  # a line logged while a progress bar is drawn goes above it, not onto it
            final = train(with_start_network(config_from_args(args)))
    except TrainingInterrupted as err:
        print(err, file=sys.stderr)
        return 130
    except (FileNotFoundError, FileExistsError, PermissionError, ValueError, ImportError, FloatingPointError) as err:
        lines = (line.strip() for line in str(err).splitlines())
        print("error: " + " ".join(line for line in lines if line), file=sys.stderr)  # one line, whatever it holds
        return 2
    print(f"saved {final}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
