"""Output files: checks on output locations, made before a command reads, computes or deletes anything, the
one way files are written whole or not at all (:func:`write_atomic`), and the cache folder (:func:`cache_dir`)."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["cache_dir", "writable_folder_problem", "output_problem", "write_atomic", "new_file_mode"]


def cache_dir() -> Path:
    """Where recondefense keeps what it can compute again (``$RECONDEFENSE_CACHE``, default ``~/.cache/recondefense``)."""
    return Path(os.environ.get("RECONDEFENSE_CACHE", Path.home() / ".cache" / "recondefense"))


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


def new_file_mode() -> int:
    """The permissions a new file gets under the current umask (``0o666 & ~umask``)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomic(path: Path, data: bytes | Callable[[BinaryIO], None], mode: int | None = None) -> None:
    """Write ``path`` whole or not at all: into a temporary file in the same folder, fsynced, then renamed over
    ``path`` (a symlink at ``path`` is replaced, its target never written; the folder is fsynced too).

    Args:
        path: the file to write; its folder must exist.
        data: the bytes (their size on disk is checked: a write that loses bytes silently is caught), or a
            function writing into the binary file it is given (``torch.save``, ``np.save``: no copy in memory).
        mode: the file's permissions (default: a new file's under the current umask, :func:`new_file_mode`).

    Raises:
        OSError: disk full, a short write, permissions; the temporary file is removed (also on Ctrl-C).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if callable(data):
            with os.fdopen(fd, "wb") as file:
                data(file)
                file.flush()
                os.fsync(file.fileno())
        else:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
                size = os.fstat(fd).st_size
            finally:
                os.close(fd)
            if size != len(data):
                raise OSError(errno.EIO, f"short write: {size} of {len(data)} bytes reached the disk")
        os.chmod(tmp, new_file_mode() if mode is None else mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename durable too; the file is complete either way
        with contextlib.suppress(OSError):
            folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
