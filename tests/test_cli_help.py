"""``recondefense --version`` and the help texts: every documented --data and --classifier form, plain text."""

from __future__ import annotations

import pytest

import recondefense
from recondefense.cli import main as cli


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = cli(argv)
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().out


def test_version_prints_the_package_version(capsys):
    assert _run(["--version"], capsys) == (0, f"recondefense {recondefense.__version__}\n")


def test_top_level_help_is_plain_text(capsys):
    code, out = _run(["--help"], capsys)
    assert code == 0 and "recondefense console script" in out and "``" not in out and "--version" in out


def test_train_help_names_every_data_and_classifier_form(capsys):
    code, out = _run(["train", "--help"], capsys)
    text = " ".join(out.split())  # argparse wraps lines
    assert code == 0
    for form in ("folder:PATH", "imagefolder:PATH", "photos[:N]", "fashionmnist"):
        assert form in text, form
    for form in ("timm:<name>", "torchvision:<arch>:<WEIGHTS>", "torchvision:<arch>", "package.module:factory"):
        assert form in text, form
