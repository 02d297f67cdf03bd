"""A reader for Qt binary resource files (``.rcc``, as ``rcc --binary`` writes them), formats 1 to 3.

GCompris ships its activities' pictures inside such files (``/usr/share/gcompris-qt/rcc/<activity>.rcc``). The
layout, all integers big-endian (Qt's ``qresource.cpp``):

- header: magic ``b"qres"``, version (u32), offsets of the tree, data and names sections (u32 each), and from
  version 3 on the flags of the compression algorithms used (u32);
- tree: fixed-size nodes (14 bytes; 22 from version 2 on, with a u64 modification time), node 0 the root:
  name offset (u32), flags (u16: 1 zlib, 2 directory, 4 zstd), then for a directory the child count and the
  index of its first child (u32 each), for a file its locale (u16 country, u16 language) and data offset (u32);
- names: per name, its length in UTF-16 units (u16), a hash (u32) and the UTF-16BE text;
- data: per file, its size (u32) and its bytes; zlib entries hold ``qCompress`` output (the uncompressed size as
  u32, then a zlib stream), zstd entries a zstd frame.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["QtResource", "QtResourceError", "read_qt_resource"]

_COMPRESSED_ZLIB = 0x01
_DIRECTORY = 0x02
_COMPRESSED_ZSTD = 0x04


class QtResourceError(ValueError):
    """A file that is not a well-formed Qt binary resource."""


@dataclass(frozen=True)
class _Entry:
    path: str
    flags: int
    data_offset: int


class QtResource:
    """The files of one ``.rcc``: ``paths()`` lists them (``"/dir/name.webp"``), ``read(path)`` gives the bytes.

    Raises:
        QtResourceError: not a Qt resource (bad magic, version, or offsets outside the file).
    """

    def __init__(self, blob: bytes, source: str = "<bytes>") -> None:
        self.source = source
        self._blob = blob
        if len(blob) < 20 or blob[:4] != b"qres":
            raise QtResourceError(f"{source}: not a Qt resource file (no 'qres' magic)")
        version, self._tree, self._data, self._names = struct.unpack_from(">IIII", blob, 4)
        if version not in (1, 2, 3):
            raise QtResourceError(f"{source}: unsupported Qt resource version {version} (expected 1, 2 or 3)")
        if max(self._tree, self._data, self._names) >= len(blob):
            raise QtResourceError(f"{source}: section offsets past the end of the file ({len(blob)} bytes)")
        self._node_size = 14 if version == 1 else 22
        self._entries = {entry.path: entry for entry in self._walk(0, "")}

    def _u16(self, offset: int) -> int:
        return struct.unpack_from(">H", self._blob, offset)[0]

    def _u32(self, offset: int) -> int:
        return struct.unpack_from(">I", self._blob, offset)[0]

    def _name(self, offset: int) -> str:
        start = self._names + offset
        length = self._u16(start)
        return self._blob[start + 6 : start + 6 + 2 * length].decode("utf-16-be")

    def _walk(self, node: int, prefix: str, depth: int = 0) -> Iterator[_Entry]:
        if depth > 64:
            raise QtResourceError(f"{self.source}: resource tree deeper than 64 levels (a cycle?)")
        offset = self._tree + node * self._node_size
        if offset + self._node_size > len(self._blob):
            raise QtResourceError(f"{self.source}: tree node {node} past the end of the file")
        flags = self._u16(offset + 4)
        name = "" if node == 0 else self._name(self._u32(offset))
        path = f"{prefix}/{name}" if node else ""
        if flags & _DIRECTORY:
            count, first = self._u32(offset + 6), self._u32(offset + 10)
            for child in range(first, first + count):
                yield from self._walk(child, path, depth + 1)
        else:
            yield _Entry(path, flags, self._u32(offset + 10))

    def paths(self) -> list[str]:
        """Every file's path, sorted (``"/activity/resource/name.webp"``)."""
        return sorted(self._entries)

    def read(self, path: str) -> bytes:
        """The uncompressed bytes of the file at ``path``.

        Raises:
            KeyError: no such file. QtResourceError: a damaged or zstd entry without the ``zstandard`` module.
        """
        entry = self._entries[path]
        start = self._data + entry.data_offset
        size = self._u32(start)
        payload = self._blob[start + 4 : start + 4 + size]
        if len(payload) != size:
            raise QtResourceError(f"{self.source}: {path} runs past the end of the file")
        if entry.flags & _COMPRESSED_ZLIB:
            expected = self._u32(start + 4)
            data = zlib.decompress(payload[4:])
            if len(data) != expected:
                raise QtResourceError(f"{self.source}: {path} inflates to {len(data)} bytes, {expected} expected")
            return data
        if entry.flags & _COMPRESSED_ZSTD:
            try:
                import zstandard
            except ImportError as error:
                raise QtResourceError(f"{self.source}: {path} is zstd-compressed: `pip install zstandard`") from error
            return zstandard.ZstdDecompressor().decompress(payload)
        return payload


def read_qt_resource(path: str | Path) -> QtResource:
    """Open a ``.rcc`` file (read whole: GCompris' are a few MB)."""
    return QtResource(Path(path).read_bytes(), str(path))
