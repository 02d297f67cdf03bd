"""``python -m recondefense.certify`` (and ``torchrun -m recondefense.certify``): the ``recondefense certify`` command
line (:func:`.cli.main`)."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
