"""Deterministic ZIP writing: sorted entries, DEFLATE level 1, fixed timestamp and attributes."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from lasskit.errors import WorkError

AUDIO_FORMATS = ("pcm16", "float")


ZIP_LEVEL = 1
"""zlib level of the DEFLATE entries: audio barely compresses (about 0.9 of its size at any
level), and level 6 saves under 2% more than level 1 for 1.5x the time."""


ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)


# ---------------------------------------------------------------------------------------------
# deterministic zip writing
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ZipEntry:
    """One compressed entry: its name, CRC-32, uncompressed size (bytes) and raw DEFLATE data."""

    name: str
    crc: int
    size: int
    data: bytes
    method: int = 8  # 8 = DEFLATE, 0 = stored


def deflate_entry(name: str, payload: bytes, level: int = ZIP_LEVEL) -> ZipEntry:
    """Compress ``payload`` as a raw DEFLATE stream (as ZIP stores it)."""
    comp = zlib.compressobj(level, zlib.DEFLATED, -15)
    return ZipEntry(name, zlib.crc32(payload) & 0xFFFFFFFF, len(payload), comp.compress(payload) + comp.flush())


class DeterministicZipWriter:
    """Writes a plain ZIP from precompressed entries: fixed time, fixed attributes, no extras.

    Entries are written in the order given (callers sort them). Refuses what would need ZIP64.
    """

    _DOS_TIME = (ZIP_DATE_TIME[3] << 11) | (ZIP_DATE_TIME[4] << 5) | (ZIP_DATE_TIME[5] // 2)
    _DOS_DATE = ((ZIP_DATE_TIME[0] - 1980) << 9) | (ZIP_DATE_TIME[1] << 5) | ZIP_DATE_TIME[2]
    _LIMIT = 0xFFFFFFFF

    def __init__(self, fileobj, where: str) -> None:
        self._f = fileobj
        self._where = where
        self._offset = 0
        self._central: list[bytes] = []
        self._names: set[str] = set()

    def add(self, entry: ZipEntry) -> None:
        if entry.name in self._names:
            raise WorkError(f"{self._where}: two entries named {entry.name}; names must be unique")
        self._names.add(entry.name)
        name = entry.name.encode("utf-8")
        flags = 0x800 if not entry.name.isascii() else 0
        if max(entry.size, len(entry.data), self._offset) >= self._LIMIT or len(self._names) >= 0xFFFF:
            raise WorkError(f"{self._where}: too large for a plain ZIP (4 GiB / 65535 entries); "
                            "use --audio-format pcm16 or fewer files")
        local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, flags, entry.method, self._DOS_TIME,
                            self._DOS_DATE, entry.crc, len(entry.data), entry.size, len(name), 0)
        central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, (3 << 8) | 20, 20, flags, entry.method,
                              self._DOS_TIME, self._DOS_DATE, entry.crc, len(entry.data), entry.size,
                              len(name), 0, 0, 0, 0, (0o100644 << 16), self._offset)
        self._central.append(central + name)
        self._f.write(local + name)
        self._f.write(entry.data)
        self._offset += len(local) + len(name) + len(entry.data)

    def close(self) -> None:
        start = self._offset
        size = 0
        for record in self._central:
            self._f.write(record)
            size += len(record)
        if start + size >= self._LIMIT:
            raise WorkError(f"{self._where}: too large for a plain ZIP (4 GiB)")
        n = len(self._central)
        self._f.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, size, start, 0))


def write_zip(path: Path, entries: list[ZipEntry]) -> Path:
    """Write ``entries`` (sorted by name here) as a deterministic zip at ``path``, atomically."""
    from lasskit.atomic import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        writer = DeterministicZipWriter(f, str(path))
        for entry in sorted(entries, key=lambda e: e.name):
            writer.add(entry)
        writer.close()
    return path
