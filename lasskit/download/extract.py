"""Archive extraction into the layout ``prepare`` expects: zip, split zip and 7z, safely, resumably.

- **zip and split zip**: read by :class:`ZipReader`, a small reader of the zip format's central
  directory (zip64 included) over :class:`PartsFile`, which presents FSD50K's
  ``FSD50K.dev_audio.z01 .. .z05`` + ``.zip`` as one stream (each member's offset is taken
  relative to the part it starts on), so no ``zip -s 0`` merge and no ``zip`` binary is needed.
  Stored and deflated members are supported (what the corpora use); each member's CRC-32 and size
  are checked as it is written.
- **7z**: py7zr, with a writer per member (:class:`_SevenZipWriter`) so that the same rules hold.

Rules for every archive:

- **zip slip**: a member named with an absolute path, a drive letter, ``..`` or a backslash
  path, or a symbolic link, is refused before anything is written;
- **zip bombs**: refused before anything is written when the declared sizes add up to more than
  :data:`MAX_RATIO` times the archive's size or :data:`MAX_TOTAL_BYTES`, or members overlap in
  the archive (the overlapping-file bomb); while writing, a member that inflates past its
  declared size stops the extraction;
- **resumable**: each member is written to a temporary name and renamed when complete
  (:mod:`lasskit.atomic`), so after an interruption the members already there (same size) are
  kept and only the rest is extracted; a finished archive is recorded in
  ``.lasskit-extracted.json`` in the destination, so a later run neither needs the archive nor
  opens it again;
- **layout**: ``folder`` names the top folder ``prepare`` expects (``development`` for Clotho's
  ``clotho_audio_development.7z``, ``FSD50K.dev_audio``): an archive whose members all sit in it
  is extracted as is, any other into a folder of that name.
"""

from __future__ import annotations

import json
import os
import stat
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from lasskit.errors import UsageError, WorkError

MAX_RATIO = 200
"""Declared uncompressed bytes may be at most this many times the archive's bytes."""
MAX_TOTAL_BYTES = 1 << 40
"""Declared uncompressed bytes of one archive: at most 1 TiB."""
MAX_MEMBERS = 2_000_000
DONE_NAME = ".lasskit-extracted.json"
CHUNK = 1 << 20


class ArchiveError(WorkError):
    """An archive that cannot or must not be extracted."""


@dataclass
class Member:
    """One file (or folder) of an archive."""

    name: str
    size: int
    """Uncompressed bytes."""
    compressed: int = 0
    method: int = 0
    crc: int = 0
    disk: int = 0
    offset: int = 0
    """Offset of the local header, relative to the start of part ``disk``."""
    is_dir: bool = False
    is_link: bool = False
    encrypted: bool = False


@dataclass
class ExtractReport:
    """What :func:`extract` did for one archive."""

    archive: str
    members: int = 0
    written: int = 0
    """Members written by this run."""
    kept: int = 0
    """Members an earlier, interrupted run had written (resumed extraction)."""
    bytes: int = 0
    already: bool = False
    """Recorded as extracted by an earlier run: nothing done."""
    into: str = ""
    files: dict[str, int] = field(default_factory=dict)
    """Each extracted file's path under the destination (posix) and size: a re-run checks they are there."""


# --- names ------------------------------------------------------------------------------------
def safe_name(name: str, archive: str) -> PurePosixPath:
    """``name`` as a relative path that stays inside the destination, else ArchiveError (zip slip)."""
    bad = (not name or "\x00" in name or name.startswith(("/", "\\")) or "\\" in name
           or (len(name) > 1 and name[1] == ":"))
    path = PurePosixPath(name)
    if bad or any(part == ".." for part in path.parts):
        raise ArchiveError(f"{archive}: member {name!r} points outside the destination folder (zip slip); refused, "
                           "nothing was extracted: get the archive from its publisher again")
    return path


# --- parts as one stream ------------------------------------------------------------------------
class PartsFile:
    """Read-only, seekable view of several files one after the other (a split zip's parts)."""

    def __init__(self, parts: list[Path]):
        self.parts = [Path(p) for p in parts]
        self.sizes = [p.stat().st_size for p in self.parts]
        self.starts = [0]
        for s in self.sizes:
            self.starts.append(self.starts[-1] + s)
        self.size = self.starts[-1]
        self._handles: dict[int, object] = {}
        self.pos = 0

    def _handle(self, i: int):
        if i not in self._handles:
            self._handles[i] = open(self.parts[i], "rb")
        return self._handles[i]

    def seek(self, pos: int) -> None:
        self.pos = pos

    def read(self, n: int) -> bytes:
        out = []
        while n > 0 and self.pos < self.size:
            i = _part_of(self.starts, self.pos)
            fh = self._handle(i)
            fh.seek(self.pos - self.starts[i])
            chunk = fh.read(min(n, self.starts[i + 1] - self.pos))
            if not chunk:
                break
            out.append(chunk)
            self.pos += len(chunk)
            n -= len(chunk)
        return b"".join(out)

    def close(self) -> None:
        for fh in self._handles.values():
            fh.close()
        self._handles.clear()


def _part_of(starts: list[int], pos: int) -> int:
    import bisect

    return bisect.bisect_right(starts, pos) - 1


def split_parts(zip_path: Path) -> list[Path]:
    """The parts of a (possibly split) zip: ``X.z01, X.z02, ...`` that sit beside ``X.zip``, then ``X.zip``."""
    zip_path = Path(zip_path)
    parts, i = [], 1
    while True:
        part = zip_path.with_suffix(f".z{i:02d}")
        if not part.is_file():
            break
        parts.append(part)
        i += 1
    return [*parts, zip_path]


# --- zip reading ------------------------------------------------------------------------------------
class ZipReader:
    """The members of a zip or split zip, and a stream of each one's bytes."""

    def __init__(self, parts: list[Path]):
        self.parts = [Path(p) for p in parts]
        self.name = self.parts[-1].name
        self.file = PartsFile(self.parts)
        try:
            self.members = self._central_directory()
        except BaseException:
            self.file.close()
            raise

    def close(self) -> None:
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _bad(self, why: str) -> ArchiveError:
        return ArchiveError(f"{self.name}: not a readable zip archive ({why}); download it again (delete it first)")

    def _central_directory(self) -> list[Member]:
        last = self.parts[-1]
        last_start = self.file.starts[-2]
        tail_len = min(self.file.sizes[-1], 65536 + 22)
        self.file.seek(last_start + self.file.sizes[-1] - tail_len)
        tail = self.file.read(tail_len)
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < 22:
            raise self._bad(f"no end-of-archive record in {last.name}; an incomplete download?")
        (_, disk_no, cd_disk, _, count, cd_size, cd_offset, _) = struct.unpack("<IHHHHIIH", tail[at:at + 22])
        eocd_pos = last_start + self.file.sizes[-1] - tail_len + at
        if at >= 20 and tail[at - 20:at - 16] == b"PK\x06\x07":  # zip64
            _, z64_disk, z64_off, total_disks = struct.unpack("<IIQI", tail[at - 20:at])
            self.file.seek(self.file.starts[min(z64_disk, len(self.parts) - 1)] + z64_off)
            rec = self.file.read(56)
            if rec[:4] != b"PK\x06\x06":
                raise self._bad("broken zip64 end record")
            (_, _, _, _, disk_no, cd_disk, _, count, cd_size, cd_offset) = struct.unpack("<IQHHIIQQQQ", rec)
            disks = total_disks
        else:
            disks = disk_no + 1
        del eocd_pos
        if disks != len(self.parts):
            have = ", ".join(p.name for p in self.parts)
            gone = self.parts[-1].with_suffix(f".z{len(self.parts):02d}").name if disks > len(self.parts) else None
            missing = f": {gone} is missing; download it" if gone else "; download the missing .zNN parts"
            raise ArchiveError(f"{self.name}: the archive has {disks} parts but {len(self.parts)} are here ({have})"
                               f"{missing} into the same folder")
        if count > MAX_MEMBERS:
            raise ArchiveError(f"{self.name}: {count} members (more than {MAX_MEMBERS}); refused as a zip bomb")
        self.file.seek(self.file.starts[cd_disk] + cd_offset)
        raw = self.file.read(cd_size)
        if len(raw) != cd_size:
            raise self._bad("the central directory is cut short")
        members, pos = [], 0
        for _ in range(count):
            if raw[pos:pos + 4] != b"PK\x01\x02":
                raise self._bad("broken central directory")
            (_, made_by, _, flags, method, _, _, crc, csize, usize, nlen, elen, clen, disk, _, ext_attr,
             offset) = struct.unpack("<IHHHHHHIIIHHHHHII", raw[pos:pos + 46])
            name_bytes = raw[pos + 46:pos + 46 + nlen]
            extra = raw[pos + 46 + nlen:pos + 46 + nlen + elen]
            pos += 46 + nlen + elen + clen
            name = name_bytes.decode("utf-8" if flags & 0x800 else "cp437")
            usize, csize, offset, disk = _zip64_fields(extra, usize, csize, offset, disk)
            mode = ext_attr >> 16 if made_by >> 8 == 3 else 0
            members.append(Member(name=name, size=usize, compressed=csize, method=method, crc=crc, disk=disk,
                                  offset=offset, is_dir=name.endswith("/"), is_link=stat.S_ISLNK(mode),
                                  encrypted=bool(flags & 1)))
        return members

    def global_offset(self, m: Member) -> int:
        if m.disk >= len(self.parts):
            raise self._bad(f"member {m.name!r} starts on part {m.disk + 1}, which is missing")
        return self.file.starts[m.disk] + m.offset

    def check_overlaps(self) -> None:
        """Members whose data overlap (the overlapping-file zip bomb): refused."""
        spans = sorted(((self.global_offset(m), m) for m in self.members if not m.is_dir), key=lambda s: s[0])
        for (start, m), (nxt, other) in zip(spans, spans[1:]):
            if start + 30 + m.compressed > nxt:
                raise ArchiveError(f"{self.name}: members {m.name!r} and {other.name!r} overlap in the archive "
                                   "(a zip bomb); refused, nothing was extracted")

    def stream(self, m: Member):
        """Yield the uncompressed bytes of member ``m``; checks its size and CRC-32 at the end."""
        if m.encrypted:
            raise ArchiveError(f"{self.name}: member {m.name!r} is encrypted; lasskit cannot extract it")
        if m.method not in (0, 8):
            raise ArchiveError(f"{self.name}: member {m.name!r} uses compression method {m.method} (only stored and "
                               "deflate are supported); extract it with 7z")
        self.file.seek(self.global_offset(m))
        head = self.file.read(30)
        if head[:4] != b"PK\x03\x04":
            raise self._bad(f"no local header for {m.name!r}")
        nlen, elen = struct.unpack("<HH", head[26:30])
        self.file.seek(self.global_offset(m) + 30 + nlen + elen)
        left = m.compressed
        inflate = zlib.decompressobj(-15) if m.method == 8 else None
        crc, out = 0, 0
        while left > 0:
            chunk = self.file.read(min(CHUNK, left))
            if not chunk:
                raise self._bad(f"{m.name!r} is cut short")
            left -= len(chunk)
            data = inflate.decompress(chunk, m.size - out + 1) if inflate is not None else chunk
            while True:
                out += len(data)
                if out > m.size:
                    raise ArchiveError(f"{self.name}: member {m.name!r} inflates past its declared {m.size} bytes "
                                       "(a zip bomb); extraction stopped")
                crc = zlib.crc32(data, crc)
                if data:
                    yield data
                if inflate is None or not inflate.unconsumed_tail:
                    break
                data = inflate.decompress(inflate.unconsumed_tail, m.size - out + 1)
        if inflate is not None:
            data = inflate.flush()
            out += len(data)
            if out > m.size:
                raise ArchiveError(f"{self.name}: member {m.name!r} inflates past its declared size (a zip bomb)")
            crc = zlib.crc32(data, crc)
            if data:
                yield data
        if out != m.size or crc != m.crc:
            raise ArchiveError(f"{self.name}: member {m.name!r} is damaged (size {out} of {m.size}, CRC "
                               f"{crc:08x} vs {m.crc:08x}); download the archive again (delete it first)")


def _zip64_fields(extra: bytes, usize: int, csize: int, offset: int, disk: int) -> tuple[int, int, int, int]:
    pos = 0
    while pos + 4 <= len(extra):
        tag, size = struct.unpack("<HH", extra[pos:pos + 4])
        body = extra[pos + 4:pos + 4 + size]
        if tag == 1:
            i = 0
            if usize == 0xFFFFFFFF:
                usize = struct.unpack("<Q", body[i:i + 8])[0]
                i += 8
            if csize == 0xFFFFFFFF:
                csize = struct.unpack("<Q", body[i:i + 8])[0]
                i += 8
            if offset == 0xFFFFFFFF:
                offset = struct.unpack("<Q", body[i:i + 8])[0]
                i += 8
            if disk == 0xFFFF:
                disk = struct.unpack("<I", body[i:i + 4])[0]
        pos += 4 + size
    return usize, csize, offset, disk


# --- the common rules ---------------------------------------------------------------------------
def _check_members(archive: str, members: list[Member], archive_bytes: int) -> None:
    for m in members:
        safe_name(m.name, archive)
        if m.is_link:
            raise ArchiveError(f"{archive}: member {m.name!r} is a symbolic link; refused (it could point outside "
                               "the destination), nothing was extracted")
    declared = sum(m.size for m in members if not m.is_dir)
    if declared > MAX_TOTAL_BYTES or declared > MAX_RATIO * max(archive_bytes, 1) + (1 << 20):
        raise ArchiveError(f"{archive}: declares {declared} bytes from a {archive_bytes}-byte archive (more than "
                           f"{MAX_RATIO}x); refused as a zip bomb, nothing was extracted")


def _layout(members: list[Member], folder: str | None) -> PurePosixPath:
    """Where members go under the destination: as they are if they all sit in ``folder``, else in it."""
    if not folder:
        return PurePosixPath()
    files = [m for m in members if not m.is_dir]
    if files and all(PurePosixPath(m.name).parts[0] == folder for m in files):
        return PurePosixPath()
    return PurePosixPath(folder)


def _read_done(dest: Path) -> dict:
    try:
        data = json.loads((dest / DONE_NAME).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def is_extracted(dest: Path, archive_name: str) -> bool:
    """True when ``archive_name`` was extracted into ``dest`` completely by an earlier run and its files
    are still there with their sizes (a deleted or cut file makes the next run extract it again)."""
    dest = Path(dest)
    entry = _read_done(dest).get(archive_name)
    if not isinstance(entry, dict):
        return entry is not None
    files = entry.get("files")
    if not isinstance(files, dict):  # recorded before the file lists were kept
        return True
    key = (str(dest), archive_name, _done_stamp(dest))
    if key not in _CHECKED:
        _CHECKED[key] = all(_kept(dest / rel, size) for rel, size in files.items())
    return _CHECKED[key]


_CHECKED: dict[tuple, bool] = {}
"""is_extracted's answers, per state of the record file (a run asks several times per archive);
:func:`forget_checks` empties it when a run starts."""


def forget_checks() -> None:
    _CHECKED.clear()


def _done_stamp(dest: Path) -> tuple[int, int]:
    try:
        st = (dest / DONE_NAME).stat()
        return st.st_mtime_ns, st.st_size
    except OSError:
        return 0, 0


def _mark_done(dest: Path, archive_name: str, report: ExtractReport) -> None:
    from lasskit.atomic import write_text

    done = _read_done(dest)
    done[archive_name] = {"members": report.members, "bytes": report.bytes, "into": report.into,
                          "files": report.files}
    write_text(dest / DONE_NAME, json.dumps(done, indent=1, sort_keys=True))


def _write_member(target: Path, chunks, size: int) -> int:
    """Write ``chunks`` to ``target`` atomically; bytes written."""
    from lasskit.atomic import atomic_path

    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with atomic_path(target) as tmp, open(tmp, "wb") as out:
        for data in chunks:
            out.write(data)
            written += len(data)
    return written


def _kept(target: Path, size: int) -> bool:
    try:
        return target.is_file() and target.stat().st_size == size
    except OSError:
        return False


def extract(archive: str | os.PathLike, dest: str | os.PathLike, folder: str | None = None,
            cancel=None) -> ExtractReport:
    """Extract ``archive`` (``.zip`` with any ``.zNN`` parts beside it, or ``.7z``) into ``dest``.

    See the module notes for the rules; ``cancel`` (a ``threading.Event``) stops between members.
    """
    archive, dest = Path(archive), Path(dest)
    report = ExtractReport(archive.name)
    if is_extracted(dest, archive.name):
        report.already = True
        return report
    dest.mkdir(parents=True, exist_ok=True)
    if archive.suffix.lower() == ".7z":
        _extract_7z(archive, dest, folder, report, cancel)
    elif archive.suffix.lower() == ".zip":
        _extract_zip(archive, dest, folder, report, cancel)
    else:
        raise UsageError(f"{archive}: not an archive lasskit extracts (.zip or .7z)")
    _mark_done(dest, archive.name, report)
    return report


def _extract_zip(archive: Path, dest: Path, folder: str | None, report: ExtractReport, cancel) -> None:
    parts = split_parts(archive)
    with ZipReader(parts) as zf:
        members = zf.members
        _check_members(archive.name, members, zf.file.size)
        zf.check_overlaps()
        base = _layout(members, folder)
        report.into = str(base)
        for m in members:
            if cancel is not None and cancel.is_set():
                raise KeyboardInterrupt
            target = dest / base / safe_name(m.name, archive.name)
            if m.is_dir:
                target.mkdir(parents=True, exist_ok=True)
                continue
            report.files[(base / safe_name(m.name, archive.name)).as_posix()] = m.size
            report.members += 1
            report.bytes += m.size
            if _kept(target, m.size):
                report.kept += 1
                continue
            _write_member(target, zf.stream(m), m.size)
            report.written += 1


def _extract_7z(archive: Path, dest: Path, folder: str | None, report: ExtractReport, cancel) -> None:
    try:
        import py7zr
        import py7zr.exceptions
    except ImportError:
        raise WorkError(f"{archive}: extracting .7z needs py7zr: pip install py7zr") from None
    try:
        with py7zr.SevenZipFile(archive, "r") as z:
            infos = z.list()
    except (py7zr.exceptions.Bad7zFile, py7zr.exceptions.ArchiveError, EOFError, ValueError) as exc:
        raise ArchiveError(f"{archive.name}: not a readable 7z archive ({exc}); download it again (delete it first)")
    members = [Member(name=i.filename, size=int(i.uncompressed or 0), is_dir=bool(i.is_directory),
                      is_link=bool(getattr(i, "is_symlink", False))) for i in infos]
    _check_members(archive.name, members, archive.stat().st_size)
    base = _layout(members, folder)
    report.into = str(base)
    files = {m.name: m for m in members if not m.is_dir}
    report.members = len(files)
    report.bytes = sum(m.size for m in files.values())
    todo = []
    for m in files.values():
        target = dest / base / safe_name(m.name, archive.name)
        report.files[(base / safe_name(m.name, archive.name)).as_posix()] = m.size
        if _kept(target, m.size):
            report.kept += 1
        else:
            todo.append(m.name)
    for m in members:
        if m.is_dir:
            (dest / base / safe_name(m.name, archive.name)).mkdir(parents=True, exist_ok=True)
    if not todo:
        return
    root = dest / base
    factory = _SevenZipFactory(root, files, archive.name, cancel)
    try:
        with py7zr.SevenZipFile(archive, "r") as z:
            z.extract(path=root, targets=todo, factory=factory)
    except (ArchiveError, KeyboardInterrupt):
        raise
    except Exception as exc:
        if isinstance(exc, OSError):
            raise
        raise ArchiveError(f"{archive.name}: extraction failed ({type(exc).__name__}: {exc}); download the archive "
                           "again (delete it first)") from None
    finally:
        factory.abandon()
    if factory.done != len(todo):
        raise ArchiveError(f"{archive.name}: {len(todo) - factory.done} member(s) were not extracted; download the "
                           "archive again (delete it first)")
    report.written = factory.done


class _SevenZipFactory:
    """py7zr writer factory: each member goes to a temporary file renamed into place when complete."""

    def __init__(self, root: Path, files: dict, archive: str, cancel):
        self.root, self.files, self.archive, self.cancel = root, files, archive, cancel
        self.done = 0
        self.open: list[_SevenZipWriter] = []

    def create(self, filename: str):
        from py7zr.io import Py7zIO

        rel = Path(filename).resolve().relative_to(self.root.resolve()).as_posix() \
            if Path(filename).is_absolute() else filename
        m = self.files.get(rel)
        if m is None:
            raise ArchiveError(f"{self.archive}: unexpected member {rel!r} during extraction")
        if self.cancel is not None and self.cancel.is_set():
            raise KeyboardInterrupt
        writer = type("SevenZipWriter", (_SevenZipWriter, Py7zIO), {})(self, self.root / safe_name(rel, self.archive), m)
        self.open.append(writer)
        return writer

    def abandon(self) -> None:
        for w in self.open:
            w.discard()
        self.open.clear()


class _SevenZipWriter:
    """Counts and writes one 7z member; renames on close when its size is the declared one."""

    def __init__(self, factory: _SevenZipFactory, target: Path, member: Member):
        from lasskit.atomic import TMP_SUFFIX

        self.factory, self.target, self.member = factory, target, member
        target.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = target.with_name(f".{target.name}.{os.urandom(4).hex()}{TMP_SUFFIX}")
        self.fh = open(self.tmp, "wb")
        self.n = 0

    def write(self, data) -> int:
        self.n += len(data)
        if self.n > self.member.size:
            raise ArchiveError(f"{self.factory.archive}: member {self.member.name!r} inflates past its declared "
                               f"{self.member.size} bytes (a zip bomb); extraction stopped")
        self.fh.write(data)
        return len(data)

    def read(self, size=None) -> bytes:
        return b""

    def seek(self, offset, whence=0) -> int:
        return self.fh.seek(offset, whence)

    def flush(self) -> None:
        self.fh.flush()

    def size(self) -> int:
        return self.n

    def close(self) -> None:
        if self.fh is None:
            return
        self.fh.close()
        self.fh = None
        if self.n == self.member.size:
            os.replace(self.tmp, self.target)
            self.factory.done += 1
        else:
            self.tmp.unlink(missing_ok=True)
        if self in self.factory.open:
            self.factory.open.remove(self)

    def discard(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None
        self.tmp.unlink(missing_ok=True)
