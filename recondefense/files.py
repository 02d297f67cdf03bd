"""Checks on output locations, made before a command reads, computes or deletes anything."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["writable_folder_problem", "output_problem"]


def writable_folder_problem(folder: Path) -> str | None:
    """Why ``folder`` cannot be created or written into, or None: its nearest existing ancestor must be a
    writable folder (missing folders below it are created by the writer)."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    return None


def output_problem(flag: str, path: Path, folder: bool = False) -> str | None:
    """Why ``--flag path`` cannot be written, or None. A file needs an existing writable parent folder; a
    folder (created with its parents) needs its nearest existing ancestor to be a writable folder."""
    if path.is_dir() != folder and path.exists():
        return f"{flag} {path} is {'a file' if folder else 'a folder'}"
    if folder:
        problem = writable_folder_problem(path)
        return None if problem is None else f"{flag} {path}: {problem}"
    if not path.parent.is_dir():
        return f"{flag} {path}: {path.parent} is not an existing folder"
    if not os.access(path.parent, os.W_OK | os.X_OK):
        return f"{flag} {path}: {path.parent} is not writable"
    return None
