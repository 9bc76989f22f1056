"""CLAP audio embeddings kept on disk, so that a clip is embedded once, not once per process.

The audio tower is the slow part of CLAP scores and CLAP labels (about 3 clips/s on a 2-core CPU):
scoring five systems of ``eval_real`` one ``lasskit score`` at a time would embed the same
mixtures five times. :class:`EmbeddingCache` keeps each embedding in one SQLite file
(``<lasskit cache>/clap_embeddings.sqlite``) under the key

    (weights, input path, device kind, version) + BLAKE2b-128 of the decoded float32 samples

where ``weights`` is the checkpoint's absolute path, size and modification time (new weights in
the same file are a new key), ``input path`` is ``paper`` or ``physical`` and the device kind is
``cpu`` or ``cuda`` (the two differ by float rounding, and an output is tied to what made it).
Stored values are the float32 embeddings bit for bit, so a cached score equals a fresh one.

A damaged or unwritable cache is never an error: it is set aside for the rest of the run (and
said once on stderr), and the embeddings are computed as if there were none. ``LASSKIT_CACHE``
moves the file with the rest of the cache; ``LASSKIT_NO_EMBEDDING_CACHE=1`` turns it off.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

VERSION = 1
"""Bumped when what the tower computes changes, so old entries stop matching."""
FILE_NAME = "clap_embeddings.sqlite"


def weights_id(checkpoint: str | os.PathLike) -> str:
    """``<absolute path>|<size>|<mtime_ns>`` of a weights file (its path alone if it cannot be read)."""
    path = os.path.abspath(os.fspath(checkpoint))
    try:
        st = os.stat(path)
    except OSError:
        return path
    return f"{path}|{st.st_size}|{st.st_mtime_ns}"


class EmbeddingCache:
    """Embeddings by ``(model key, content digest)``; see the module doc. ``path=None``: the
    lasskit cache folder's file; ``enabled=False`` (or the environment variable): a no-op."""

    def __init__(self, model_key: str, path: str | os.PathLike | None = None, enabled: bool = True):
        self.model_key = f"{model_key}|v{VERSION}"
        self.hits = 0
        self.stored = 0
        self._db: sqlite3.Connection | None = None
        self._off = not enabled or os.environ.get("LASSKIT_NO_EMBEDDING_CACHE", "") not in ("", "0")
        if path is None and not self._off:
            from lasskit.weights import cache_dir

            path = cache_dir() / FILE_NAME
        self.path = Path(path) if path is not None else None

    def _connect(self) -> sqlite3.Connection | None:
        if self._off or self.path is None:
            return None
        if self._db is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.path, timeout=30)
                db.execute("CREATE TABLE IF NOT EXISTS embeddings (model TEXT NOT NULL, digest BLOB NOT NULL, "
                           "dim INTEGER NOT NULL, value BLOB NOT NULL, PRIMARY KEY (model, digest))")
                db.commit()
                self._db = db
            except (sqlite3.Error, OSError) as exc:
                self._give_up(exc)
        return self._db

    def _give_up(self, exc: BaseException) -> None:
        self._off = True
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
            self._db = None
        print(f"warning: {self.path}: embedding cache not used ({type(exc).__name__}: {exc}); embeddings are "
              "computed afresh (delete the file to start a new cache)", file=sys.stderr)

    def get_many(self, digests: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        """The cached embeddings among ``digests`` (float32 vectors)."""
        db = self._connect()
        if db is None or not digests:
            return {}
        found: dict[bytes, np.ndarray] = {}
        try:
            unique = list(dict.fromkeys(digests))
            for start in range(0, len(unique), 500):
                part = unique[start:start + 500]
                marks = ",".join("?" * len(part))
                for digest, dim, value in db.execute(
                        f"SELECT digest, dim, value FROM embeddings WHERE model = ? AND digest IN ({marks})",
                        [self.model_key, *part]):
                    vector = np.frombuffer(value, dtype=np.float32)
                    if vector.size == dim:
                        found[bytes(digest)] = vector.copy()
        except sqlite3.Error as exc:
            self._give_up(exc)
            return {}
        self.hits += len(found)
        return found

    def put_many(self, items: Iterable[tuple[bytes, np.ndarray]]) -> None:
        """Store embeddings (float32), one transaction."""
        db = self._connect()
        if db is None:
            return
        rows = [(self.model_key, digest, int(np.asarray(v).size), np.ascontiguousarray(v, dtype=np.float32).tobytes())
                for digest, v in items]
        if not rows:
            return
        try:
            with db:
                db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?)", rows)
            self.stored += len(rows)
        except sqlite3.Error as exc:
            self._give_up(exc)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def cache_for(model, path: str) -> EmbeddingCache:
    """The cache of ``model``'s audio embeddings by input ``path``: keyed by its weights file
    (:func:`weights_id`), the path and the device kind (cpu/cuda) of its audio tower."""
    device = getattr(getattr(model, "audio", None), "device", None)
    kind = getattr(device, "type", None) or str(device or "cpu")
    return EmbeddingCache(f"{weights_id(getattr(model, 'checkpoint', '') or '')}|{path}|{kind}")


def content_digest(waveform: np.ndarray, sample_rate: int) -> bytes:
    """The cache's content key: BLAKE2b-128 of the float32 samples (and the rate when it is not
    16 kHz), the same key ``lasskit score`` uses for its 16 kHz clips."""
    import hashlib

    h = hashlib.blake2b(np.ascontiguousarray(waveform, dtype=np.float32).tobytes(), digest_size=16)
    if int(sample_rate) != 16000:
        h.update(f"|{int(sample_rate)}".encode())
    return h.digest()


def cached_audio_embeddings(model, waveforms: Sequence[np.ndarray], sample_rate: int, path: str) -> np.ndarray:
    """``model.audio_embeddings(waveforms, sample_rate, path)`` (``(n, dim)`` float32), reading
    what the disk cache has and storing what it computes (same key as ``lasskit score``)."""
    if not len(waveforms):
        return np.asarray(model.audio_embeddings([], sample_rate, path), dtype=np.float32)
    cache = cache_for(model, path)
    digests = [content_digest(w, sample_rate) for w in waveforms]
    found = cache.get_many(digests)
    todo = [k for k, d in enumerate(digests) if d not in found]
    if todo:
        computed = np.asarray(model.audio_embeddings([waveforms[k] for k in todo], sample_rate, path),
                              dtype=np.float32)
        cache.put_many((digests[k], computed[j]) for j, k in enumerate(todo))
        found.update((digests[k], computed[j]) for j, k in enumerate(todo))
    cache.close()
    return np.stack([found[d] for d in digests])
