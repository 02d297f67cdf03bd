"""``python -m recondefense``: the ``recondefense`` console script (:func:`recondefense.cli.main`)."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
