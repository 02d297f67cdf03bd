"""MkDocs hooks of the docs build (``mkdocs.yml``: ``hooks:``), so that ``make docs`` fails on what it must not ship.

- The figures under ``results/`` are served as ``results/img/<path>`` (the generated results pages show them beside
  their tables) without copying them into ``docs/``.
- Every name in the ``__all__`` of the public modules (:data:`PUBLIC_MODULES`) must have a docstring (read by
  Griffe with ``scripts/griffe_comments.py``, so ``#:`` comments count) and an entry in the built API reference;
  otherwise the build fails, naming them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: The modules whose ``__all__`` is the public API the reference documents (one page each under docs/api/).
PUBLIC_MODULES = (
    "recondefense",
    "recondefense.train",
    "recondefense.classifiers",
    "recondefense.data",
    "recondefense.attacks",
    "recondefense.baselines",
    "recondefense.purifiers",
    "recondefense.routing",
    "recondefense.evaluate",
    "recondefense.certify",
    "recondefense.corruptions",
    "recondefense.errors",
    "recondefense.weights",
    "recondefense.metrics",
)
#: Where the results figures are served in the site.
FIGURES_URI = "results/img"

_anchors: set[str] = set()


def public_objects(root: Path = ROOT) -> dict[str, Any]:
    """``"module.name"`` -> the Griffe object of every exported name of :data:`PUBLIC_MODULES` (an exported
    function that shares its name with a submodule, such as ``recondefense.train.fit``, is the function)."""
    import griffe

    extensions = griffe.load_extensions(str(root / "scripts" / "griffe_comments.py") + ":CommentDocstrings")
    package = griffe.load("recondefense", search_paths=[str(root)], extensions=extensions)
    found: dict[str, Any] = {}
    for module_path in PUBLIC_MODULES:
        module = package if module_path == "recondefense" else package[module_path.removeprefix("recondefense.")]
        found[module_path] = module
        for name in module.exports or []:
            obj = module.members.get(name)
            if obj is not None and not obj.is_alias and obj.is_module and name in module.imports:
                # `from .fit import fit` in a package that has a submodule `fit`: the function, not the submodule
                target = module.imports[name]
                obj = package[target.removeprefix("recondefense.")] if target.startswith("recondefense.") else None
            found[f"{module_path}.{name}"] = obj
    return found


def undocumented(root: Path = ROOT) -> list[str]:
    """The public modules and exported names without a docstring (or that do not exist)."""
    missing = []
    for path, obj in public_objects(root).items():
        try:
            doc = obj.docstring if obj is not None else None
        except Exception:  # an alias whose target cannot be found
            doc = None
        if doc is None or not doc.value.strip():
            missing.append(path)
    return missing


def _canonical(obj: Any) -> str | None:
    try:
        return obj.target_path if obj.is_alias else obj.path
    except Exception:
        return None


def missing_from_reference(anchors: set[str], root: Path = ROOT) -> list[str]:
    """The public modules and exported names with no entry (HTML anchor) in the built API reference, by their
    public path or their defining one."""
    return [
        path
        for path, obj in public_objects(root).items()
        if path not in anchors and (obj is None or _canonical(obj) not in anchors)
    ]


# --- the hooks ------------------------------------------------------------------------------------------------


def on_files(files: Any, *, config: Any) -> Any:
    """Serve every PNG under results/ as ``results/img/<path under results>``."""
    from mkdocs.structure.files import File

    for png in sorted((ROOT / "results").rglob("*.png")):
        uri = f"{FIGURES_URI}/{png.relative_to(ROOT / 'results').as_posix()}"
        files.append(File.generated(config, uri, abs_src_path=str(png)))
    return files


def on_pre_build(*, config: Any) -> None:
    _anchors.clear()


def on_page_content(html: str, *, page: Any, config: Any, files: Any) -> str:
    """Collect the anchors of the API reference pages."""
    if page.file.src_uri.startswith("api/"):
        _anchors.update(re.findall(r'\bid="([^"]+)"', html))
    return html


def on_post_build(*, config: Any) -> None:
    """Fail the build when a public name has no docstring or no entry in the API reference."""
    from mkdocs.exceptions import PluginError

    problems = []
    missing = undocumented()
    if missing:
        problems.append("public names without a docstring: " + ", ".join(missing))
    absent = [p for p in missing_from_reference(_anchors) if p not in missing]
    if absent:
        problems.append("public names missing from the API reference (docs/api/*.md): " + ", ".join(absent))
    if problems:
        raise PluginError("; ".join(problems))
