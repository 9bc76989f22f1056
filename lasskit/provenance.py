"""Fingerprints: what made each output, so a re-run redoes exactly what changed, and says why.

Every stage (``prepare``, ``mix``, ``separate``) records, per output, what made it:

- **input**: a content digest of each input file (:func:`file_digest`: BLAKE2b-128 of the file's
  bytes). A :class:`DigestCache` remembers ``(size, mtime_ns, inode) -> digest`` per file, so an
  unchanged file is not read again on a re-run (only ``stat``-ed); a file whose size, mtime or
  inode changed is hashed again, and only then.
- **settings**: every setting that changes the output's bytes (resampler, format, seed and spec,
  model name, checkpoint digest, options, the lasskit version where the arithmetic may change
  with it), as a dict; :func:`settings_id` is the BLAKE2b-64 of its canonical JSON.
- **output**: the written file's size and ``mtime_ns``, so an output changed or replaced by hand
  is noticed with a ``stat`` and redone.

A :class:`Ledger` (``<output folder>/provenance.json``) holds those records by output name and
the settings dicts by id. :meth:`Ledger.check` says why an output must be redone (``None`` when
it is current): ``"new"``, ``"output missing"``, ``"output changed on disk"``, ``"input
changed"`` or ``"settings changed: <keys>"``. A stage counts these reasons and prints them
(``redid 12 of 3000: input changed 12``).

A re-run of an unchanged, complete stage therefore costs one ``stat`` per input and output and
one JSON read, never a decode.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LEDGER_FILE = "provenance.json"
DIGEST_CACHE_FILE = "digests.json"
_CHUNK = 1 << 20


def digest_bytes(data: bytes | memoryview) -> str:
    """BLAKE2b-128 hex digest of ``data``."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def text_digest(text: str) -> str:
    """BLAKE2b-128 of ``text`` as UTF-8: how a per-row text input (a query) enters a record."""
    return digest_bytes(str(text).encode("utf-8"))


def file_digest(path: str | os.PathLike) -> str:
    """BLAKE2b-128 hex digest of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        while True:
            block = fh.read(_CHUNK)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def canonical_json(value: Any) -> str:
    """Sorted-key compact JSON (paths and other objects as ``str``): the same settings, the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def settings_id(settings: dict) -> str:
    """BLAKE2b-64 hex of the canonical JSON of ``settings``."""
    return hashlib.blake2b(canonical_json(settings).encode("utf-8"), digest_size=8).hexdigest()


def fingerprint(input_digest: str, settings: dict) -> str:
    """One string for "this input made with these settings" (stored e.g. in a manifest's ``fingerprint``)."""
    return f"{input_digest[:16]}-{settings_id(settings)}"


def _stat_key(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ino]


class DigestCache:
    """``path -> digest`` remembered by ``(size, mtime_ns, inode)``; persisted as JSON.

    Keys are absolute paths, so stages that share a cache file (``separate`` and ``score`` both
    use ``<exp folder>/digests.json``) reuse each other's digests.

    Thread-safe enough for the stages' use (dict updates are atomic in CPython). ``path=None``
    keeps the cache in memory only.
    """

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else None
        self.entries: dict[str, list] = {}
        self.hashed = 0
        if self.path is not None and self.path.is_file():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                if isinstance(data, dict) and isinstance(data.get("files"), dict):
                    self.entries = data["files"]
            except (OSError, ValueError):
                self.entries = {}  # a damaged cache only costs re-hashing
        self._dirty = False

    def digest(self, file: str | os.PathLike, st: os.stat_result | None = None) -> str:
        """The file's content digest, hashed only if it changed since it was last seen."""
        key = os.path.abspath(file)
        st = st if st is not None else os.stat(file)
        sk = _stat_key(st)
        hit = self.entries.get(key)
        if hit is not None and hit[:3] == sk:
            return hit[3]
        d = file_digest(file)
        self.entries[key] = [*sk, d]
        self.hashed += 1
        self._dirty = True
        return d

    def remember(self, file: str | os.PathLike, digest: str) -> None:
        """Record the digest of a file this process just wrote (no need to read it back)."""
        st = os.stat(file)
        self.entries[os.path.abspath(file)] = [*_stat_key(st), digest]
        self._dirty = True

    def save(self) -> None:
        if self.path is None or not self._dirty:
            return
        from lasskit.atomic import write_text

        write_text(self.path, json.dumps({"version": 1, "files": self.entries}, separators=(",", ":")))
        self._dirty = False


@dataclass
class Record:
    """What made one output: its inputs' digest, the settings' id, and the output's stat."""

    input: str
    settings: str
    size: int = -1
    mtime_ns: int = -1
    extra: dict | None = None

    def to_json(self) -> list:
        return [self.input, self.settings, self.size, self.mtime_ns, self.extra or {}]

    @classmethod
    def from_json(cls, value: list) -> "Record":
        return cls(str(value[0]), str(value[1]), int(value[2]), int(value[3]), dict(value[4]) if len(value) > 4 else {})


def settings_diff(old: dict | None, new: dict) -> list[str]:
    """Keys whose values differ between two settings dicts (sorted)."""
    if old is None:
        return ["(unknown)"]
    keys = set(old) | set(new)
    return sorted(k for k in keys if canonical_json(old.get(k)) != canonical_json(new.get(k)))


class Ledger:
    """The records of one output folder (``<folder>/provenance.json``): output name -> :class:`Record`."""

    def __init__(self, folder: str | os.PathLike, file: str = LEDGER_FILE):
        self.folder = Path(folder)
        self.path = self.folder / file
        self.records: dict[str, Record] = {}
        self.settings: dict[str, dict] = {}
        if self.path.is_file():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                self.settings = {str(k): dict(v) for k, v in data.get("settings", {}).items()}
                self.records = {str(k): Record.from_json(v) for k, v in data.get("outputs", {}).items()}
            except (OSError, ValueError, TypeError, IndexError, AttributeError):
                # an unreadable ledger means nothing can be trusted: everything is redone
                self.records, self.settings = {}, {}
        self._dirty = False

    def check(self, name: str, output: str | os.PathLike, input_digest: str, settings: dict) -> str | None:
        """Why ``output`` (recorded as ``name``) must be made again; None when it is current."""
        rec = self.records.get(name)
        if rec is None:
            return "new"
        try:
            st = os.stat(output)
        except OSError:
            return "output missing"
        if st.st_size != rec.size or st.st_mtime_ns != rec.mtime_ns:
            return "output changed on disk"
        if rec.input != input_digest:
            return "input changed"
        sid = settings_id(settings)
        if rec.settings != sid:
            return "settings changed: " + ", ".join(settings_diff(self.settings.get(rec.settings), settings))
        return None

    def record(self, name: str, output: str | os.PathLike, input_digest: str, settings: dict,
               extra: dict | None = None) -> None:
        """Remember that ``output`` was just written from ``input_digest`` with ``settings``."""
        sid = settings_id(settings)
        self.settings.setdefault(sid, json.loads(canonical_json(settings)))
        st = os.stat(output)
        self.records[name] = Record(input_digest, sid, st.st_size, st.st_mtime_ns, extra)
        self._dirty = True

    def forget(self, name: str) -> None:
        if self.records.pop(name, None) is not None:
            self._dirty = True

    def get(self, name: str) -> Record | None:
        return self.records.get(name)

    def settings_of(self, name: str) -> dict | None:
        rec = self.records.get(name)
        return None if rec is None else self.settings.get(rec.settings)

    def settings_in_use(self, names: list[str] | None = None) -> dict[str, int]:
        """settings id -> how many of ``names`` (default: all recorded outputs) were made with it."""
        recs = self.records.values() if names is None else (self.records[n] for n in names if n in self.records)
        return dict(Counter(r.settings for r in recs))

    def save(self) -> None:
        """Write the ledger atomically (unused settings dropped)."""
        if not self._dirty and self.path.is_file():
            return
        from lasskit.atomic import write_text

        used = {r.settings for r in self.records.values()}
        data = {
            "version": 1,
            "settings": {k: v for k, v in sorted(self.settings.items()) if k in used},
            "outputs": {k: self.records[k].to_json() for k in sorted(self.records)},
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        write_text(self.path, json.dumps(data, ensure_ascii=False, separators=(",", ":")))
        self._dirty = False


def summarize_reasons(reasons: Counter | dict, total: int) -> str:
    """``"redid 12 of 3000: input changed 12"``, or ``""`` when nothing was redone."""
    done = sum(reasons.values())
    if not done:
        return ""
    parts = ", ".join(f"{why} {n}" for why, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"made {done} of {total}: {parts}"


def _crc_and_size(path: str) -> str:
    """``<crc32 hex>\t<size>`` of a file's bytes (1 MiB blocks; zlib releases the GIL on them)."""
    import zlib

    crc, size = 0, 0
    with open(path, "rb") as fh:
        while True:
            block = fh.read(_CHUNK)
            if not block:
                break
            crc = zlib.crc32(block, crc)
            size += len(block)
    return f"{crc:08x}\t{size}"


def files_digest(folder: str | os.PathLike, names: list[str], jobs: int | None = None) -> str:
    """One BLAKE2b-128 over a set of files: ``name``, the file's CRC-32 and its size per line, names sorted.

    Ties a result to exactly these files: ``score`` writes it into ``summary.json`` for the
    estimates it scored, ``package`` recomputes it before reporting those scores (a re-separated
    output, an added or a missing one changes it). CRC-32 and size, as a zip compares its
    entries, because the files are read whole: CRC-32 runs about 4x faster than BLAKE2b, and 3000
    outputs of 10 s are 1.9 GB. Files are read on ``jobs`` threads (default: the cores, at most 8)."""
    from concurrent.futures import ThreadPoolExecutor

    names = sorted(names)
    paths = [os.path.join(os.fspath(folder), n) for n in names]
    jobs = min(8, os.cpu_count() or 1) if jobs is None else jobs
    if len(paths) > 1 and jobs > 1:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            sums = list(pool.map(_crc_and_size, paths))
    else:
        sums = [_crc_and_size(p) for p in paths]
    return digest_bytes("".join(f"{n}\t{d}\n" for n, d in zip(names, sums)).encode("utf-8"))
