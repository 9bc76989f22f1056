"""CLAP audio embeddings kept on disk, so that a clip is embedded once, not once per process.

The audio tower is the slow part of CLAP scores and CLAP labels (about 3 clips/s on a 2-core CPU):
scoring five systems of ``eval_real`` one ``lasskit score`` at a time would embed the same
mixtures five times. :class:`EmbeddingCache` keeps each embedding in one SQLite file
(``<lasskit cache>/clap_embeddings.sqlite``) under the key

    (weights, input path, device kind, version) + BLAKE2b-128 of the decoded float32 samples

where ``weights`` is the checkpoint's absolute path, size and modification time (new weights in
the same file are a new key), ``input path`` is ``paper`` or ``physical`` and the device kind is
``cpu`` or ``cuda`` (the two differ by float rounding, and an output is tied to what made it).
Stored values are the float32 embeddings bit for bit, so the same command again gives the same
bytes. A clip's embedding also depends, by float rounding, on the other clips of its tower batch
(up to 9e-8 on the CPU; see :func:`embed_missing`): a clip first embedded in another batch
(another ``--clap-batch``, or next to another system's estimates) reads back as it was embedded
then, so a score's last digits follow what the cache held (the summary says how many embeddings
were read from it); ``LASSKIT_NO_EMBEDDING_CACHE=1`` gives bytes that depend on the command alone.

A damaged or unwritable cache is never an error: it is set aside for the rest of the run (and
said once on stderr), and the embeddings are computed as if there were none. ``LASSKIT_CACHE``
moves the file with the rest of the cache; ``LASSKIT_NO_EMBEDDING_CACHE=1`` turns it off.

:func:`embed_missing` is how ``score`` and ``label --clap`` embed a list of files, on one process
or many (``--devices N``, torchrun, srun; :mod:`lasskit.distributed`): the files are hashed (each
rank reads its share), rank 0 takes what the cache holds and plans the rest into batches of
distinct contents in the files' order (as many clips of one sample rate a batch as the tower takes
windows, ``--clap-batch``: one tower call per batch for clips up to 10 s), batch
``i`` is embedded by rank ``i mod world`` and the results go back to rank 0 round by round, which
stores them. One process follows the same plan, so every clip is embedded in the batch it is in
on any number of processes: the same float32 bits (the tower's numbers depend on which windows
share its batch). A killed rank stops the group; the rounds already stored are cache hits when
the same command runs again.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

VERSION = 1
"""Bumped when what the tower computes changes, so old entries stop matching."""
FILE_NAME = "clap_embeddings.sqlite"
BATCH_CLIPS = 32
"""Clips per ``audio_embeddings`` call of :func:`embed_missing` for a model without an audio
batch size (a CLAP model's is its tower's: ``--clap-batch``); part of the plan, so of the bits."""


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


@dataclass
class Embedded:
    """What :func:`embed_missing` did (rank 0's view; the other ranks have ``digests`` only)."""

    digests: list = field(default_factory=list)
    """Per source: its content digest, or the one-line reason it could not be read (a str)."""
    cached: int = 0
    """Distinct contents read from the disk cache."""
    by_rank: list = field(default_factory=list)
    """Contents embedded by each rank."""

    @property
    def embedded(self) -> int:
        return sum(self.by_rank)


def _digest_of(read: Callable, source: Any) -> tuple[bytes, int] | str:
    from lasskit.errors import LasskitError

    try:
        wave, rate = read(source)
        return content_digest(wave, rate), int(rate)
    except LasskitError as exc:
        return str(exc)
    except Exception as exc:  # an odd file: still one line
        return f"{source}: {type(exc).__name__}: {exc}"


def plan_batches(firsts: list[int], rates: Sequence[int], size: int = BATCH_CLIPS) -> list[list[int]]:
    """``firsts`` (source indices, in order) cut into batches of at most ``size`` of one rate:
    a batch ends where the rate changes."""
    batches: list[list[int]] = []
    for k in firsts:
        if batches and len(batches[-1]) < size and rates[batches[-1][0]] == rates[k]:
            batches[-1].append(k)
        else:
            batches.append([k])
    return batches


def embed_missing(model, path: str, sources: Sequence[Any], read: Callable[[Any], tuple[np.ndarray, int]], *,
                  shard=None, known: Callable[[bytes], bool] | None = None,
                  found: Callable[[list[bytes], np.ndarray], None] | None = None, batch: int | None = None,
                  desc: str = "CLAP") -> Embedded:
    """Make every readable source's embedding known: ``found(digests, vectors)`` gets (on rank 0)
    those the disk cache holds and those embedded now, batch by batch; contents ``known`` says
    the caller has are skipped. ``read(source)`` gives ``(mono float32 samples, rate)``; a source
    that fails is a reason string in ``digests`` (the caller reports it). ``shard``: this
    process's place in a group (:class:`lasskit.distributed.Shard`; every rank calls this with
    the same sources). See the module doc for the plan."""
    from lasskit.distributed import ONE
    from lasskit.parallel import progress_bar

    shard = shard or ONE
    batch = batch or getattr(getattr(model, "audio", None), "batch_size", None) or BATCH_CLIPS
    n = len(sources)
    where = "" if shard.world == 1 else f" (rank {shard.rank} of {shard.world})"
    mine = []
    with progress_bar(len(range(shard.rank, n, shard.world)), f"{desc}: hashing{where}") as bar:
        for k in range(shard.rank, n, shard.world):
            mine.append(_digest_of(read, sources[k]))
            bar.update(1)
    parts = shard.gather(mine)
    keys: list = [None] * n
    for rank, part in enumerate(parts):
        keys[rank::shard.world] = part
    done = Embedded([k if isinstance(k, str) else k[0] for k in keys], 0, [0] * shard.world)
    rates = [0 if isinstance(k, str) else k[1] for k in keys]
    cache = cache_for(model, path) if getattr(model, "checkpoint", "") else EmbeddingCache("", enabled=False)
    plan = None
    if shard.lead:
        firsts: dict[bytes, int] = {}
        for k, d in enumerate(done.digests):
            if not isinstance(d, str) and d not in firsts and not (known and known(d)):
                firsts[d] = k
        todo = list(firsts)
        for start in range(0, len(todo), 500):  # what the cache holds, 500 at a time (memory stays flat)
            got = cache.get_many(todo[start:start + 500])
            if got:
                done.cached += len(got)
                if found:
                    found(list(got), np.stack(list(got.values())))
                for d in got:
                    del firsts[d]
        plan = plan_batches(list(firsts.values()), rates, batch)
    plan = shard.from_lead(plan)

    def keep(rank: int, vectors: np.ndarray) -> None:  # rank 0: store and hand over one rank's batch
        digests = [done.digests[k] for k in plan[start + rank]]
        cache.put_many(zip(digests, vectors))
        done.by_rank[rank] += len(digests)
        if found:
            found(digests, vectors)

    with progress_bar(len(shard.select(plan)), desc + where, unit="batch") as bar:
        for start in range(0, len(plan), shard.world):  # a round: one batch per rank
            vectors = None
            if start + shard.rank < len(plan):
                batch_sources = plan[start + shard.rank]
                waves = [read(sources[k])[0] for k in batch_sources]
                vectors = np.asarray(model.audio_embeddings(waves, rates[batch_sources[0]], path), dtype=np.float32)
                bar.update(1)
                if shard.lead:  # kept before waiting for the others: a rank killed now loses only its batch
                    keep(0, vectors)
            for rank, other in enumerate(shard.gather(None if shard.lead else vectors)):
                if shard.lead and rank > 0 and other is not None:
                    keep(rank, other)
    cache.close()
    return done
