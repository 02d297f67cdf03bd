"""``python -m recondefense.evaluate``: the ``recondefense evaluate`` command line (:func:`.cli.main`)."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
