"""The docs: every public name documented, and (when the docs extra is installed) the strict site build."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


# --- the API reference ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hooks() -> ModuleType:
    return load_script("docs_hooks")


def _api_directives() -> set[str]:
    found = set()
    for page in (REPO / "docs" / "api").glob("*.md"):
        found |= set(re.findall(r"^::: ([\w.]+)", page.read_text(), re.MULTILINE))
    return found


def test_every_public_module_has_an_api_page_and_every_export_a_docstring(hooks):
    """Without the docs tools: each public module is rendered by a `::: module` directive, and each exported class
    or function has a docstring (constants are checked by the docs build, which reads their `#:` comments)."""
    directives = _api_directives()
    missing = [m for m in hooks.PUBLIC_MODULES if m not in directives]
    assert not missing, f"public modules without an API page: {missing}"
    undocumented = []
    for module_name in hooks.PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        if not (module.__doc__ or "").strip():
            undocumented.append(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if (inspect.isclass(obj) or inspect.isroutine(obj)) and not (obj.__doc__ or "").strip():
                undocumented.append(f"{module_name}.{name}")
    assert not undocumented


def test_griffe_sees_a_docstring_for_every_public_name(hooks):
    pytest.importorskip("griffe", reason="the docs extra (pip install recondefense[docs]; make docs installs it)")
    assert hooks.undocumented(REPO) == []


def test_griffe_comment_extension_reads_hash_colon_comments():
    module = load_script("griffe_comments")
    lines = ["x = 1", "#: first line", "#: second line", "CONSTANT = 2"]
    assert module.comment_docstring(lines, 4) == "first line\nsecond line"
    assert module.comment_docstring(lines, 1) is None
    assert module.plain_roles("see :class:`~recondefense.Defended` and :func:`fit`") == "see `Defended` and `fit`"


def test_docs_build_strict_and_the_reference_names_the_api(tmp_path):
    """`mkdocs build --strict` (what `make docs` runs) into a temporary folder: no warning, and the API reference
    documents Defended, ReconstructiveDefense and fit."""
    pytest.importorskip("mkdocs", reason="the docs extra (pip install recondefense[docs]; make docs installs it)")
    pytest.importorskip("mkdocstrings_handlers.python", reason="the docs extra")
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    top = (site / "api" / "index.html").read_text()
    assert 'id="recondefense.Defended"' in top and 'id="recondefense.ReconstructiveDefense"' in top
    assert 'id="recondefense.train.fit.fit"' in (site / "api" / "train" / "index.html").read_text()
    assert (site / "results" / "img" / "fashionmnist" / "figure1.png").is_file()
