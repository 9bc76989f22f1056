"""Clip activity for ``mix`` and ``train``: each clip decoded once and its 0.1 s frames marked
active or not (:func:`analyse_clip`), the disk cache that keeps that (and the file's digest)
between runs (:class:`ActivityCache`), and the parallel scan over a pool (:func:`scan_clips`)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lasskit import audio
from lasskit.errors import AudioError
from lasskit.mixing.pool import Candidate
from lasskit.mixing.segments import SILENCE_DB, frame_activity

@dataclass(frozen=True)
class ClipActivity:
    """A clip's length (samples at 16 kHz), per-frame activity and file digest (where computed)."""

    num_samples: int
    active: np.ndarray
    digest: str = ""

def analyse_clip(path: str | os.PathLike, silence_db: float = SILENCE_DB, with_digest: bool = False) -> ClipActivity:
    """Decode a clip (16 kHz mono) and mark its active frames; ``with_digest``: also its file's digest."""
    digest = ""
    if with_digest:
        from lasskit.provenance import file_digest

        digest = file_digest(path)
    from lasskit.audible import audible

    x = audio.load(path)
    return ClipActivity(len(x), frame_activity(audible(x), silence_db), digest)  # what can be heard

# --- the activity cache: one file per corpus folder, kept in a cache folder ---------------------------

AUDIBLE_TAG = "/audible-frame-mean-hp20"
"""Part of a cache entry's level key: activity measured on :func:`lasskit.audible.audible` (entries of
an earlier lasskit, measured on the raw signal or on the frame mean alone, are not used)."""

ACTIVITY_CACHE = ".cache"
"""``lasskit mix`` keeps its activity cache in ``<split folder>/../.cache`` (``data/splits/.cache``)."""

class ActivityCache:
    """Activity and file digests of clips, kept across runs in ``folder`` (None: in memory only).

    One JSON file per corpus folder (``activity-<hash of its path>.json``): clip path ->
    (size, mtime_ns, inode, digest, samples, active frames per threshold); an entry is used only
    while the file's size, mtime and inode are unchanged. Nothing is written into the corpus
    folders (they are inputs). A damaged or unwritable cache only costs a new scan
    (:attr:`unsaved` counts files it could not write).
    """

    def __init__(self, silence_db: float, folder: str | os.PathLike | None = None):
        self.level = repr(float(silence_db)) + AUDIBLE_TAG
        self.folder = Path(folder) if folder is not None else None
        self.files: dict[str, dict] = {}  # corpus folder -> {"corpus", "clips": {...}}
        self.dirty: set[str] = set()
        self.unsaved = 0

    def _path(self, corpus: str) -> Path | None:
        from lasskit.provenance import digest_bytes

        return None if self.folder is None else self.folder / f"activity-{digest_bytes(os.fsencode(corpus))[:16]}.json"

    def _file_for(self, c: Candidate) -> tuple[str, str]:
        root = str(Path(c.manifest).parent if c.manifest else c.path.parent)
        if root not in self.files:
            data = {}
            path = self._path(root)
            if path is not None:
                try:
                    data = json.loads(path.read_text(encoding="utf-8"))
                    if not isinstance(data, dict) or data.get("version") != 1 or data.get("corpus") != root \
                            or not isinstance(data.get("clips"), dict):
                        data = {}
                except (OSError, ValueError):
                    data = {}
            self.files[root] = data or {"version": 1, "corpus": root, "clips": {}}
        try:
            rel = str(c.path.relative_to(root))
        except ValueError:
            rel = str(c.path)
        return root, rel

    def get(self, c: Candidate) -> ClipActivity | None:
        root, rel = self._file_for(c)
        hit = self.files[root]["clips"].get(rel)
        if not hit:
            return None
        try:
            st = os.stat(c.path)
        except OSError:
            return None
        if hit.get("stat") != [st.st_size, st.st_mtime_ns, st.st_ino]:
            return None
        bits = hit.get("active", {}).get(self.level)
        if bits is None:
            return None
        frames = int(hit["frames"])
        active = np.unpackbits(np.frombuffer(bytes.fromhex(bits), dtype=np.uint8), count=frames).astype(bool)
        return ClipActivity(int(hit["samples"]), active, str(hit.get("digest", "")))

    def put(self, c: Candidate, a: ClipActivity, st) -> None:
        root, rel = self._file_for(c)
        stat = [st.st_size, st.st_mtime_ns, st.st_ino]
        clips = self.files[root]["clips"]
        old = clips.get(rel)
        entry = old if old and old.get("stat") == stat and old.get("digest") == a.digest else \
            {"stat": stat, "digest": a.digest, "samples": a.num_samples, "frames": len(a.active), "active": {}}
        entry["active"][self.level] = np.packbits(a.active).tobytes().hex()
        clips[rel] = entry
        self.dirty.add(root)

    def save(self) -> None:
        from lasskit.atomic import remove_leftovers, write_text

        if self.folder is not None and self.dirty:
            remove_leftovers(self.folder, recursive=False)
        for root in sorted(self.dirty):
            path = self._path(root)
            if path is None:
                continue
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                write_text(path, json.dumps(self.files[root], separators=(",", ":"), sort_keys=True))
            except OSError:
                self.unsaved += 1
        self.dirty.clear()

def _scan_one(path: str, silence_db: float) -> tuple[ClipActivity, list[int]]:
    st = os.stat(path)
    a = analyse_clip(path, silence_db, with_digest=True)
    st2 = os.stat(path)
    if (st.st_size, st.st_mtime_ns) != (st2.st_size, st2.st_mtime_ns):
        raise AudioError(f"{path}: changed while it was read; run the command again")
    return a, [st.st_size, st.st_mtime_ns, st.st_ino]

def scan_clips(clips: Sequence[Candidate], silence_db: float, jobs: int | None = None,
               cache: ActivityCache | None = None) -> dict[str, ClipActivity | str]:
    """Activity (and file digest) of every clip: from ``cache`` where current, else decoded.

    Returns clip key -> :class:`ClipActivity`, or the error message of an unreadable clip.
    """
    from functools import partial

    from lasskit.parallel import run_parallel

    out: dict[str, ClipActivity | str] = {}
    todo: list[Candidate] = []
    for c in clips:
        hit = cache.get(c) if cache is not None else None
        if hit is not None:
            out[c.key] = hit
        else:
            todo.append(c)
    if todo:
        outcomes = run_parallel(partial(_scan_one, silence_db=silence_db), [str(c.path) for c in todo],
                                jobs if len(todo) >= 32 else 1, desc="mix: scan clips")
        for c, o in zip(todo, outcomes):
            if not o.ok:
                out[c.key] = o.error
                continue
            a, st = o.value
            out[c.key] = a
            if cache is not None:
                cache.put(c, a, _Stat(*st))
    if cache is not None:
        cache.save()
    return out

class _Stat:
    """The three stat fields the cache keys on."""

    def __init__(self, size: int, mtime_ns: int, ino: int):
        self.st_size, self.st_mtime_ns, self.st_ino = size, mtime_ns, ino
