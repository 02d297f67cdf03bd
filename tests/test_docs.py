"""The docs: generated results pages and README summary up to date with the rows, the README's shape, every public
name documented, and (when the docs extra is installed) the strict site build."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import re
import shutil
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


@pytest.fixture(scope="module")
def pages() -> ModuleType:
    return load_script("results_pages")


def _copy_inputs(root: Path) -> None:
    """What the generator reads, in ``root``: the rows, the weights folders, mkdocs.yml and the README."""
    shutil.copytree(REPO / "results", root / "results")
    (root / "weights").symlink_to(REPO / "weights")
    for name in ("mkdocs.yml", "README.md"):
        shutil.copy(REPO / name, root / name)


def test_results_pages_and_readme_summary_are_generated_from_the_rows(pages, tmp_path):
    """Regenerated into a copy of the repository's inputs, every generated file equals the committed one: nobody
    edits the pages, the nav or the README summary by hand (run `make results-pages` after new rows)."""
    _copy_inputs(tmp_path)
    wanted = pages.render(tmp_path)
    stale = [path for path, text in wanted.items() if (REPO / path).read_text() != text]
    assert not stale, f"stale generated files (run `make results-pages`): {stale}"
    generated = {p.relative_to(REPO).as_posix() for p in (REPO / pages.PAGES_DIR).glob("*.md")}
    assert generated <= set(wanted), f"results pages no table makes: {sorted(generated - set(wanted))}"
    assert pages.stale(REPO) == []


def test_the_objects_tier_appears_when_its_rows_exist(pages, tmp_path):
    """The placeholder imagenet-objects page is skipped without rows files, and appears with its nav entry and summary
    rows once its rows files exist (what `make imagenet-objects-first-look` and `make imagenet-objects-tables` write)."""
    _copy_inputs(tmp_path)
    for pattern in ("objects-*.json", "gate-open*.json"):
        for committed in (tmp_path / "results/imagenet").glob(pattern):
            committed.unlink()
    before = pages.render(tmp_path)
    assert "docs/results/imagenet-objects.md" not in before
    assert "results/imagenet-objects.md" not in before["mkdocs.yml"]
    rows = json.loads((REPO / "results/imagenet/photos-default.json").read_text())
    none = json.loads((REPO / "results/imagenet/photos-baselines.json").read_text())
    rows = [r for r in none if r["defense"] == "none"] + [r | {"defense": pages.DEFAULT} for r in rows]
    (tmp_path / "results/imagenet/objects-ours.json").write_text(json.dumps(rows))
    (tmp_path / "results/imagenet/objects-first-look.json").write_text(json.dumps(rows))
    after = pages.render(tmp_path)
    page = after["docs/results/imagenet-objects.md"]
    assert "Classifier `imagenet-efficientnet_lite0`" in page and "**Threat model.**" in page
    assert "`results/imagenet/objects-ours.json`" in page
    assert "unseen classifier" not in page  # the Lite1 table needs its own rows file
    assert "results/imagenet-objects.md" in after["mkdocs.yml"]
    assert "[imagenet-objects](docs/results/imagenet-objects.md)" in after["README.md"]


def test_the_gate_table_has_a_column_per_gated_defense(pages, tmp_path):
    rows = [
        {"set": "clean crops", "n": 690, "opened": 0, "open": 0.0, "wilson95": [0.0, 0.0056], "mean_gate": 0.02},
        {"set": "noisy crops", "n": 690, "opened": 690, "open": 1.0, "wilson95": [0.9945, 1.0], "mean_gate": 1.0},
    ]
    for name, kept in (("a", rows), ("b", rows[:1])):
        (tmp_path / f"gate-open-{name}.json").write_text(json.dumps({"weights": name, "command": "x", "rows": kept}))
    text = pages._gate_table(sorted(tmp_path.glob("gate-open-*.json")))
    cells = pages.Cells(text)
    assert cells["clean crops/`a`"] == "0.000 ±0.003 (0/690)" and cells["noisy crops/`b`"] == "-"
    assert cells.value["noisy crops/`a`"] == "1.000"


def test_every_table_states_its_threat_model_sample_size_and_rows(pages):
    for page in pages.PAGES:
        text_file = REPO / pages.PAGES_DIR / f"{page.slug}.md"
        if not text_file.is_file():
            continue
        text = text_file.read_text()
        sections = text.split("\n## ")[1:]
        tables = [s for s in sections if "|---|" in s and "**Threat model.**" in s]
        assert len(tables) >= len([t for t in page.tables if pages.rows_files(REPO, t.rows)]), page.slug
        for section in tables:
            assert re.search(r"\d+ test images|first [\d,]+ test images", section), section[:80]
            assert "±" in section, f"{page.slug}: {section[:60]!r} gives no interval"
            assert "Rows: `results/" in section and "made by `" in section


def test_figures_sit_beside_their_tables_and_exist(pages):
    for page in pages.PAGES:
        for table in page.tables:
            for figure, _caption in table.figures:
                assert (REPO / "results" / figure).is_file(), figure


def test_the_summary_names_the_current_default(pages):
    from recondefense.defense import DEFAULT_IMAGENET_WEIGHTS

    assert pages.DEFAULT == DEFAULT_IMAGENET_WEIGHTS


def test_notes_that_quote_a_missing_cell_fail_loudly(pages):
    cells = {"t": pages.Cells("| Defense | PGD |\n|---|---|\n| none | 0.225 ±0.008 |\n")}
    assert pages._fill("{t[none/PGD]} and {t.value[none/PGD]}", cells, "x") == "0.225 ±0.008 and 0.225"
    with pytest.raises(ValueError, match="no cell 'ours/PGD'"):
        pages._fill("{t[ours/PGD]}", cells, "x")


def test_readme_is_a_front_door():
    """At most 250 lines; the two commands and the quick start's Defended( in the first 60."""
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 250
    head = "\n".join(lines[:60])
    assert "make test" in head and "make demo" in head and "Defended(" in head


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
    pytest.importorskip("griffe", reason="the docs extra (pip install recondefense[docs]; make docs installs it)")
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


def test_the_readme_quick_start_states_the_input_convention() -> None:
    """A new user reads the input convention before the first example: normalized by default, or input="pixels"."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    first = re.search(r"^```python\n(.*?)^```", text, flags=re.S | re.M)
    before = text[: first.start()]
    assert "normalized" in before and 'input="pixels"' in before and "[0, 1]" in before
    assert 'input="pixels"' in first.group(1) and "normalize(" in first.group(1)
