"""What a downloaded file is checked against, and the memory of files already checked.

:class:`RemoteFile` carries a file's expected size, MD5 and SHA-256; :class:`Hasher` computes the
digests as bytes arrive (in a thread of its own while streaming) or over what an earlier run left;
:func:`check_file` says why a file does not match, or None. Files that passed are remembered in
``<cache>/verified.json`` by absolute path and ``(size, mtime_ns, inode)``, so a second run does
not hash 30 GB again, and nothing is ever written beside a user's file.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path

CHUNK_BYTES = 1 << 20
VERIFIED_NAME = "verified.json"
"""In the cache folder: absolute path -> [size, mtime_ns, inode, md5, sha256] of verified files."""


@dataclass(frozen=True)
class RemoteFile:
    """One file to download: where from, what it is called on disk, how to check it."""

    name: str
    """File name on disk (the publisher's name)."""
    url: str
    size: int | None = None
    md5: str | None = None
    sha256: str | None = None
    source: str = ""
    """Where the checks come from (``Zenodo record 4783391 (API)``, ``known MD5``), for messages."""

    @property
    def checked(self) -> bool:
        return bool(self.md5 or self.sha256)


class Cancelled(Exception):
    """Raised inside a download thread when the user pressed Ctrl-C."""


# --- verified-file memory ---------------------------------------------------------------------
_verified_lock = threading.Lock()


def _stamp(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _store() -> Path:
    from lasskit.download.cache import cache_dir

    return cache_dir() / VERIFIED_NAME


def _read_verified() -> dict:
    try:
        data = json.loads(_store().read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_verified(known: dict) -> None:
    from lasskit.atomic import write_text

    try:
        write_text(_store(), json.dumps(known, indent=0, sort_keys=True))
    except OSError:
        pass  # only costs hashing again next time


def verified_stamp(path: Path, remote: RemoteFile) -> bool:
    """True when ``path`` was verified against ``remote``'s checks and has not changed since."""
    hit = _read_verified().get(str(Path(path).resolve()))
    if not isinstance(hit, list) or len(hit) != 5:
        return False
    try:
        if hit[:3] != _stamp(path):
            return False
    except OSError:
        return False
    return (not remote.md5 or hit[3] == remote.md5.lower()) and (not remote.sha256 or hit[4] == remote.sha256.lower()) \
        and (remote.size is None or hit[0] == remote.size)


def remember_verified(path: Path, md5: str, sha256: str) -> None:
    """Record (in ``<cache>/verified.json``, by absolute path) that ``path``, as it is now,
    has these digests; nothing is written beside the file (a ``--from`` folder is never modified)."""
    with _verified_lock:
        known = _read_verified()
        known[str(Path(path).resolve())] = [*_stamp(path), md5, sha256]
        _write_verified(known)


def forget_verified(path: Path) -> None:
    with _verified_lock:
        known = _read_verified()
        if known.pop(str(Path(path).resolve()), None) is not None:
            _write_verified(known)


class Hasher:
    """Digests of a file computed while it is written (no second pass over a 20 GB file): MD5
    and/or SHA-256, those the remote is checked with (both when it has neither, to record them).

    While downloading, :meth:`follow` starts a thread that reads the file behind the writer (the
    bytes are still in the page cache) up to what the writer reported with :meth:`written`. On a
    resume it first hashes what an earlier run left, *while* the rest downloads, so resuming costs
    the larger of the two, not their sum; memory stays flat (no chunk is queued).
    """

    def __init__(self, remote: RemoteFile | None = None, md5: bool | None = None, sha256: bool | None = None):
        unchecked = remote is None or not remote.checked
        self.want_md5 = md5 if md5 is not None else bool(remote and remote.md5) or unchecked
        self.want_sha = sha256 if sha256 is not None else bool(remote and remote.sha256) or unchecked
        self._thread = None
        self.reset()

    def reset(self) -> None:
        self.stop(abort=True)
        self.md5 = hashlib.md5(usedforsecurity=False) if self.want_md5 else None
        self.sha = hashlib.sha256() if self.want_sha else None
        self.upto = 0
        """Bytes hashed so far (-1: unknown, after an aborted thread)."""

    def update(self, data) -> None:
        if self.md5 is not None:
            self.md5.update(data)
        if self.sha is not None:
            self.sha.update(data)
        self.upto += len(data)

    # --- following a file being written -----------------------------------------------------------
    def follow(self, path: Path, written: int) -> None:
        """Hash ``path`` in a thread, from :attr:`upto` up to what is written (``written`` now)."""
        self.stop(abort=False)
        if self.upto < 0 or self.upto > written:
            self.reset()
        self._limit, self._closing, self._abort, self._error = written, False, False, None
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, args=(Path(path),), daemon=True, name="lasskit-hash")
        self._thread.start()

    def written(self, n: int) -> None:
        """The writer has ``n`` bytes in the file (flushed to the OS)."""
        with self._cond:
            self._limit = n
            self._cond.notify()

    def _run(self, path: Path) -> None:
        buf = bytearray(CHUNK_BYTES * 4)
        view = memoryview(buf)
        try:
            with open(path, "rb", buffering=0) as fh:
                fh.seek(self.upto)
                while True:
                    with self._cond:
                        while self.upto >= self._limit and not self._closing and not self._abort:
                            self._cond.wait()
                        if self._abort or (self._closing and self.upto >= self._limit):
                            return
                        want = self._limit - self.upto
                    n = fh.readinto(view[:min(len(buf), want)])
                    if not n:
                        raise OSError(f"{path} is shorter than the bytes written to it")
                    self.update(view[:n])
        except BaseException as exc:  # noqa: BLE001 - handed to the thread that waits
            self._error = exc

    def stop(self, abort: bool = False) -> None:
        """Wait until everything written is hashed (``abort``: stop at once; the digests are then unknown)."""
        if self._thread is None:
            return
        with self._cond:
            self._closing = True
            self._abort = abort
            self._cond.notify()
        self._thread.join()
        self._thread = None
        if abort or self._error is not None:
            self.upto = -1

    # --- whole files -------------------------------------------------------------------------------------
    def catch_up(self, path: Path, upto: int, cancel: threading.Event | None = None) -> None:
        """Hash the first ``upto`` bytes of ``path`` in this thread, unless already done."""
        self.stop()
        if self.upto == upto:
            return
        self.reset()
        buf = bytearray(CHUNK_BYTES * 4)
        view = memoryview(buf)
        with open(path, "rb", buffering=0) as fh:
            while self.upto < upto and (n := fh.readinto(buf)):
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
                self.update(view[:min(n, upto - self.upto)])

    def hexdigests(self) -> tuple[str, str]:
        self.stop()
        return (self.md5.hexdigest() if self.md5 is not None else "",
                self.sha.hexdigest() if self.sha is not None else "")


def digests(path: Path, cancel: threading.Event | None = None, md5: bool = True, sha256: bool = True) -> tuple[str, str]:
    """(MD5, SHA-256) of a file in one pass; ``""`` for one not asked for."""
    hasher = Hasher(md5=md5, sha256=sha256)
    hasher.catch_up(Path(path), Path(path).stat().st_size, cancel)
    return hasher.hexdigests()


def check_file(path: Path, remote: RemoteFile, cancel: threading.Event | None = None,
               hasher: Hasher | None = None) -> str | None:
    """None if ``path`` matches ``remote``'s size and checksums, else why not (one phrase).

    A file verified before and unchanged since is not hashed again, nor one whose bytes
    ``hasher`` saw arrive.
    """
    size = path.stat().st_size
    if remote.size is not None and size != remote.size:
        return f"has {size} bytes, expected {remote.size}"
    if verified_stamp(path, remote):
        return None
    if hasher is None or hasher.upto != size:
        hasher = Hasher(remote)
        hasher.catch_up(path, size, cancel)
    md5, sha = hasher.hexdigests()
    if remote.md5 and md5 != remote.md5.lower():
        return f"has MD5 {md5}, expected {remote.md5} ({remote.source or 'known checksum'})"
    if remote.sha256 and sha != remote.sha256.lower():
        return f"has SHA-256 {sha}, expected {remote.sha256} ({remote.source or 'known checksum'})"
    remember_verified(path, md5, sha)
    return None


def move_verified(part: Path, target: Path) -> None:
    """The verified record of ``<target>.part`` now belongs to ``target`` (same inode, same mtime)."""
    with _verified_lock:
        known = _read_verified()
        hit = known.pop(str(part.resolve()), None)
        if hit is not None:
            known[str(target.resolve())] = hit
            _write_verified(known)
