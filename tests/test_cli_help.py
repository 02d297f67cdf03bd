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


def test_python_dash_m_recondefense_runs_the_console_script() -> None:
    """``python -m recondefense`` is the ``recondefense`` command (it failed: no ``__main__``)."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "recondefense", "--version"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"recondefense {recondefense.__version__}\n"


def _options(help_text: str) -> dict[str, str]:
    """``--flag`` -> its help text (joined, spaces normalized), from argparse's formatted ``--help``."""
    import re

    options: dict[str, str] = {}
    current = None
    for line in help_text.splitlines():
        found = re.match(r"^  ([-\w]\S*.*?)(?:\s{2,}(.*))?$", line)
        if found:
            current = re.findall(r"--[\w-]+", found.group(1))[-1] if "--" in found.group(1) else found.group(1)
            options[current] = found.group(2) or ""
        elif current and line.startswith(" " * 10):
            options[current] = (options[current] + " " + line.strip()).strip()
        elif not line.strip() or not line.startswith(" "):
            current = None
    return {flag: " ".join(text.split()) for flag, text in options.items()}


def test_train_help_shows_each_default_once_and_every_help_whole(capsys):
    code, out = _run(["train", "--help"], capsys)
    assert code == 0
    options = _options(out)
    for flag, text in options.items():
        assert text.count("default") <= 1, (flag, text)  # "(default 224) (default: None)" said it twice
    assert "--image-size" in options and "(default: None)" not in options["--image-size"]
    schedule = options["--lr-schedule"]
    assert "constant" in schedule and "cosine" in schedule and len(schedule) > 40, schedule  # was: 'or "cosine"'


def test_evaluate_help_explains_every_option_and_shows_defaults(capsys):
    code, out = _run(["evaluate", "--help"], capsys)
    assert code == 0
    options = _options(out)
    for flag in ("--tier", "--no-progress", "--attacks", "--limit", "--device", "--seed"):
        text = options[flag]
        assert text and not text.startswith("{"), (flag, text)  # not just the choices
    for flag, text in options.items():
        assert text, f"{flag} has no help"
    assert "default: fashionmnist" in options["--tier"]
    assert "default: cpu" in options["--device"] and "default: 0" in options["--seed"]


def test_finetune_example_help_explains_its_arguments(monkeypatch, capsys):
    import runpy
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "examples" / "finetune_python.py"
    monkeypatch.setattr(sys, "argv", ["finetune_python.py", "--help"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(script), run_name="__main__")
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    options = _options(out)
    for flag in ("--classifier", "--epochs", "--out"):
        assert options.get(flag) and "default" in options[flag], (flag, options.get(flag))
    assert "folder" in options and options["folder"], out  # the positional says what it wants
    assert "no labels" in " ".join(out.split())  # the description says what the script does
