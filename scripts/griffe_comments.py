"""A Griffe extension for the docs build: the package's Sphinx habits, read as Markdown.

- ``#:`` comments above a module or class attribute are its docstring. The package documents its constants that
  way (``#: what it holds`` on the lines above the assignment), which Griffe does not read by itself; with this
  extension the API reference shows them, and ``scripts/docs_hooks.py`` counts them as documented. A string literal
  after the assignment still wins.
- Sphinx roles in docstrings (``:class:`~recondefense.Defended```, ``:func:`fit```) become inline code (``Defended``,
  ``fit``), as Sphinx would show them.

Loaded by ``mkdocs.yml`` (``extensions:`` of mkdocstrings' Python handler).
"""

from __future__ import annotations

import ast
import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|data|mod|obj|exc|const):`(~?)([^`]+)`")


def plain_roles(text: str) -> str:
    """``text`` with each Sphinx role as inline code: ``:class:`~a.b.C``` -> ```C```, ``:func:`a.f``` -> ```a.f```."""
    return _ROLE.sub(lambda m: "`" + (m.group(2).rsplit(".", 1)[-1] if m.group(1) else m.group(2)) + "`", text)


def comment_docstring(lines: list[str], lineno: int) -> str | None:
    """The ``#:`` comment lines right above line ``lineno`` (1-based) of ``lines``, without the marker, or None."""
    found: list[str] = []
    index = lineno - 2
    while index >= 0 and lines[index].lstrip().startswith("#:"):
        found.append(lines[index].lstrip()[2:].strip())
        index -= 1
    return "\n".join(reversed(found)) or None


class CommentDocstrings(griffe.Extension):
    """Give an attribute without a docstring the ``#:`` comment above its assignment; show Sphinx roles as code."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = plain_roles(obj.docstring.value)

    def on_attribute_instance(self, *, node: ast.AST | Any, attr: griffe.Attribute, **kwargs: Any) -> None:
        if attr.docstring is not None or not isinstance(node, ast.AST) or attr.lineno is None:
            return
        try:
            lines = attr.lines_collection[attr.filepath]
        except (KeyError, TypeError, AttributeError):
            return
        text = comment_docstring(lines, attr.lineno)
        if text:
            attr.docstring = griffe.Docstring(plain_roles(text), lineno=attr.lineno - 1, parent=attr)
