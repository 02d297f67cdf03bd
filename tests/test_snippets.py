"""Every ```python block of the README and of docs/ runs: one page at a time, its blocks in order in one namespace,
in a fresh temporary folder (CPU, offline: shipped weights and random tensors).

A block right after ``<!-- skip-snippet: reason -->`` is not run (used sparingly; the reason is required); one
right after ``<!-- snippet-needs: fashion-mnist -->`` runs when the Fashion-MNIST files are installed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from recondefense.data import FASHION_MNIST_DEBIAN_DIR

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
_FENCE = re.compile(r"^```python\s*$")
_MARK = re.compile(r"^<!--\s*(skip-snippet|snippet-needs):\s*(.*?)\s*-->\s*$")
#: What a ``snippet-needs`` mark may name, and whether it is there.
NEEDS = {"fashion-mnist": lambda: (FASHION_MNIST_DEBIAN_DIR / "t10k-images-idx3-ubyte.gz").is_file()}


@dataclass
class Snippet:
    page: Path
    line: int  # 1-based line of the first code line
    code: str
    mark: tuple[str, str] | None  # ("skip-snippet" | "snippet-needs", its text)


def snippets(page: Path) -> list[Snippet]:
    """The ```python blocks of ``page``, each with the mark on the line before its fence."""
    lines = page.read_text().splitlines()
    found, index = [], 0
    while index < len(lines):
        if _FENCE.match(lines[index]):
            end = next((j for j in range(index + 1, len(lines)) if lines[j].startswith("```")), None)
            assert end is not None, f"{page}:{index + 1}: unclosed ```python block"
            previous = lines[index - 1] if index else ""
            mark = _MARK.match(previous)
            found.append(Snippet(page, index + 2, "\n".join(lines[index + 1 : end]), mark.groups() if mark else None))
            index = end
        index += 1
    return found


PAGES_WITH_SNIPPETS = [p for p in PAGES if snippets(p)]


def test_the_readme_and_the_guides_have_snippets():
    names = {p.relative_to(REPO).as_posix() for p in PAGES_WITH_SNIPPETS}
    assert {"README.md", "docs/pipeline.md", "docs/training.md"} <= names


def test_marks_are_few_and_give_reasons():
    marks = [s for p in PAGES for s in snippets(p) if s.mark]
    for snippet in marks:
        kind, text = snippet.mark
        where = f"{snippet.page.relative_to(REPO)}:{snippet.line - 1}"
        if kind == "skip-snippet":
            assert len(text) > 10, f"{where}: say why the block cannot run"
        else:
            assert text.split()[0] in NEEDS, f"{where}: unknown need {text!r}; known: {sorted(NEEDS)}"
    assert sum(s.mark[0] == "skip-snippet" for s in marks) <= 3, "skip-snippet is for the rare block that cannot run"


@pytest.mark.parametrize("page", PAGES_WITH_SNIPPETS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_snippets_run(page: Path, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__snippet__"}
    ran = 0
    for snippet in snippets(page):
        if snippet.mark and snippet.mark[0] == "skip-snippet":
            continue
        if snippet.mark and not NEEDS[snippet.mark[1].split()[0]]():
            continue
        # padded so that a traceback points at the page's own line numbers
        code = compile("\n" * (snippet.line - 1) + snippet.code, str(page), "exec")
        exec(code, namespace)
        ran += 1
    capsys.readouterr()
    if not ran:
        pytest.skip(f"every block of {page.name} needs what is not installed")
