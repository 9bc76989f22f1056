"""One writer per download folder: a second ``lasskit download`` into the same folder waits.

Two runs of the same download (two terminals, a retry started while the first still runs, several
processes fetching a model's weights on first use) would otherwise write the same ``.part`` files
and extract the same archives at once, and fail on each other's renames. :func:`hold` takes an
exclusive ``flock`` on ``<folder>/.lasskit-download.lock`` (the file holds the holder's pid); a
second run says once that it waits for that pid, then goes on and finds the files there and
verified. The lock goes with the process (kill -9 included); the small file stays. Weight files
may go into any folder (a model's first use): their lock lives in the cache instead
(:func:`cache_lock`), so nothing is left beside them.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

LOCK_NAME = ".lasskit-download.lock"


@contextmanager
def hold(folder: Path, say, at: Path | None = None):
    """Hold the download lock of ``folder`` (the file ``at``, default ``<folder>/.lasskit-download.lock``,
    created if needed), waiting for another holder."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows): one run at a time is the user's to keep
        yield
        return
    path = Path(at) if at is not None else Path(folder) / LOCK_NAME
    try:
        fd = _open(path)
    except OSError:  # a read-only shared copy (nothing to write, nobody else writes either), or the
        yield       # folder cannot be made: the work itself then says so, in its own line
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            say(f"{folder}: another lasskit download (pid {holder}) is writing here; waiting for it to finish "
                "(Ctrl-C stops waiting)")
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def _open(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)


def cache_lock(folder: Path) -> Path:
    """The lock file of ``folder`` kept in the cache (``<cache>/locks/``), one per folder."""
    import hashlib

    from lasskit.download.cache import cache_dir

    key = hashlib.sha256(os.fsencode(Path(folder).resolve())).hexdigest()[:20]
    return cache_dir() / "locks" / f"{key}.lock"
