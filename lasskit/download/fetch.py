"""HTTP downloads that can be left running: resume, retry, verify, several files at once.

:func:`fetch_file` streams one :class:`RemoteFile` into ``<target>.part`` and renames it into
place only after its size and checksums (MD5 and/or SHA-256, whichever are known) match, so a
file under its real name is always a checked one. What it does when things go wrong:

- a ``.part`` left by an earlier run (a dropped connection, Ctrl-C, a full disk) is continued
  with an HTTP ``Range`` request; a server that ignores ``Range`` (answers 200) makes the file
  start again from zero, said once per file; a 416 (range past the end) checks what is there;
- timeouts, dropped connections and 5xx answers are retried with exponential back-off
  (:data:`RETRIES` times, ``LASSKIT_DOWNLOAD_BACKOFF`` seconds first, doubling), each retry
  continuing from what arrived;
- a 4xx answer is one line: 404 names the URL and the ``--from`` fix, 401/403 say how to pass a
  token (``HF_TOKEN`` or ``--token``; sent only to the host that needs it, never on redirects);
- a full disk stops with one line naming the ``.part`` and how much arrived; the next run resumes;
- a size or checksum mismatch removes the download and fetches it again once; a second mismatch
  is an error (the file on the server changed, or the checksum we know is stale).

:func:`fetch_all` runs several downloads in threads under one rich progress display (bytes,
speed, ETA); Ctrl-C stops every thread at its next chunk and leaves each ``.part`` for the next
run. Verified files are remembered by ``(size, mtime_ns, inode)`` in ``<cache>/verified.json``
(:func:`verified_stamp`), so a second run does not hash 30 GB again.
"""

from __future__ import annotations

import errno
import http.client
import os
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from lasskit.download.verify import (  # noqa: F401 - re-exported: importable from here as before
    CHUNK_BYTES,
    VERIFIED_NAME,
    Cancelled,
    Hasher,
    RemoteFile,
    check_file,
    digests,
    forget_verified,
    move_verified,
    remember_verified,
    verified_stamp,
)
from lasskit.errors import UsageError, WorkError

RETRIES = 5
"""Attempts after the first one, for timeouts, dropped connections and 5xx answers."""
TIMEOUT_S = 60.0
TOKEN_HOSTS = ("huggingface.co",)
"""Hosts that get the ``HF_TOKEN``/``--token`` bearer token (gated hub files)."""


@dataclass
class FetchResult:
    """What :func:`fetch_file` did for one file."""

    path: Path
    downloaded: int = 0
    """Bytes that came over the network in this run."""
    resumed_from: int = 0
    """Bytes of an earlier ``.part`` that were kept (0: started from zero)."""
    restarted: bool = False
    """The server ignored ``Range``: an earlier ``.part`` was thrown away."""
    refetched: bool = False
    """A first download failed its check and was fetched again."""
    cached: bool = False
    """Already there and verified: nothing downloaded."""
    notes: list[str] = field(default_factory=list)


def backoff_seconds() -> float:
    """First back-off delay: ``$LASSKIT_DOWNLOAD_BACKOFF`` (tests set it small), else 2 s."""
    try:
        return max(0.0, float(os.environ.get("LASSKIT_DOWNLOAD_BACKOFF", "2")))
    except ValueError:
        return 2.0


# --- one file ------------------------------------------------------------------------------------
def _token_for(url: str, token: str | None) -> str | None:
    host = urllib.parse.urlsplit(url).hostname or ""
    if not any(host == h or host.endswith("." + h) for h in TOKEN_HOSTS):
        return None
    return token or os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")


def http_error_line(url: str, code: int, reason: str, target: Path) -> str:
    """The one line for a 4xx answer: what it means and the fix."""
    what = f"download of {url} refused: HTTP {code} {reason}".rstrip()
    by_hand = f"download the file by hand to {target} (or into a folder for `lasskit download --from DIR`)"
    if code in (401, 403):
        return (f"{what}; the file needs permission: for a gated hub file, accept its terms on the website and pass "
                f"a token (--token TOKEN, or set HF_TOKEN=TOKEN); or {by_hand}")
    if code == 404:
        return f"{what}; the file is not (or no longer) at this address: check it (or the record's page), or {by_hand}"
    if code == 429:
        return f"{what}; the server asks to slow down: wait a few minutes and run the same command again"
    return f"{what}; check the address, or {by_hand}"


def _open(url: str, start: int, timeout: float, token: str | None):
    request = urllib.request.Request(url, headers={"User-Agent": "lasskit", "Accept-Encoding": "identity"})
    if start:
        request.add_header("Range", f"bytes={start}-")
    bearer = _token_for(url, token)
    if bearer:
        request.add_unredirected_header("Authorization", f"Bearer {bearer}")
    return urllib.request.urlopen(request, timeout=timeout)


class _Transient(Exception):
    """A failure worth retrying (timeout, dropped connection, 5xx)."""


def _say_default(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def fetch_file(remote: RemoteFile, target: str | os.PathLike, *, progress=None, say=_say_default,
               token: str | None = None, timeout: float = TIMEOUT_S, retries: int = RETRIES,
               cancel: threading.Event | None = None) -> FetchResult:
    """Download ``remote`` to ``target`` (resuming ``<target>.part``), verified; see the module notes.

    ``progress`` is an object with ``start(name, total, done)`` -> task and ``advance(task, n)``
    / ``finish(task)`` (:class:`ByteProgress`), or None. ``say`` prints a note line.
    """
    target = Path(target)
    result = FetchResult(target)
    if target.is_file():
        why = check_file(target, remote, cancel)
        if why is None:
            result.cached = True
            return result
        say(f"{target}: {why}; downloading it again")
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    for attempt in (1, 2):
        hasher = Hasher(remote)
        _download(remote, target, result, progress, say, token, timeout, retries, cancel, hasher)
        part = target.with_name(target.name + ".part")
        why = check_file(part, remote, cancel, hasher)  # records the digests, so the next run trusts the file
        if why is None:
            os.replace(part, target)
            move_verified(part, target)
            if not remote.checked:
                result.notes.append(f"{target.name}: no published checksum (size only)")
            return result
        part.unlink()
        if attempt == 1:
            say(f"{target.name}: the download {why}; it was removed and is fetched again")
            result.refetched = True
        else:
            raise WorkError(f"{target.name}: downloaded twice and both times it {why}; the file on the server may "
                            f"have changed: check {remote.url}, or copy a good copy into a folder and pass --from DIR")
    raise AssertionError("unreachable")


def _download(remote: RemoteFile, target: Path, result: FetchResult, progress, say, token, timeout, retries,
              cancel, hasher: Hasher) -> None:
    """Fill ``<target>.part`` with the whole file (resuming it), retrying transient failures."""
    part = target.with_name(target.name + ".part")
    if part.is_symlink():  # never write through a link into someone else's file: start this one afresh
        say(f"{part}: a symbolic link, not a download lasskit left; it is removed and the file starts from zero")
        part.unlink()
    delay = backoff_seconds()
    failures = 0
    said_no_range = False
    task = None
    try:
        while True:
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            done = part.stat().st_size if part.is_file() else 0
            if remote.size is not None and done > remote.size:  # a stale .part longer than the file
                part.unlink()
                done = 0
            if remote.size is not None and done == remote.size and done > 0:
                return  # complete already: the caller checks it
            if not result.downloaded and not result.resumed_from:
                result.resumed_from = done
            try:
                response = _open(remote.url, done, timeout, token)
            except urllib.error.HTTPError as exc:
                if exc.code == 416 and done:  # range past the end: what is there may be the whole file
                    return
                if 500 <= exc.code < 600:
                    failures = _retry(failures, retries, delay, f"HTTP {exc.code}", remote, part, say, cancel)
                    delay *= 2
                    continue
                raise WorkError(http_error_line(remote.url, exc.code, exc.reason or "", target)) from None
            except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
                reason = getattr(exc, "reason", exc)
                failures = _retry(failures, retries, delay, str(reason), remote, part, say, cancel)
                delay *= 2
                continue
            with response:
                start = done
                if done and response.status != 206:
                    if not said_no_range:
                        say(f"{remote.name}: the server ignores HTTP ranges; the {done} bytes already there are "
                            "dropped and the file starts again from zero")
                        said_no_range = True
                    result.restarted = True
                    result.resumed_from = 0
                    start = 0
                elif done and response.status == 206:
                    first = _range_start(response.headers.get("Content-Range"))
                    if first is not None and first != done:
                        raise WorkError(f"download of {remote.url}: the server sent bytes from {first}, asked for "
                                        f"{done}; remove {part} and run the same command again")
                length = response.headers.get("Content-Length")
                total = remote.size if remote.size is not None else (
                    start + int(length) if length and length.isdigit() else None)
                if progress is not None:
                    if task is None:
                        task = progress.start(remote.name, total, start)
                    else:
                        progress.reset(task, total, start)
                if not start:
                    hasher.reset()
                try:
                    got = _stream(response, part, start, progress, task, cancel, hasher)
                except _Transient as exc:
                    result.downloaded += exc.args[1]
                    if exc.args[1]:
                        failures, delay = 0, backoff_seconds()  # progress was made: a fresh budget
                    failures = _retry(failures, retries, delay, str(exc.args[0]), remote, part, say, cancel)
                    delay *= 2
                    continue
                result.downloaded += got
                if length and length.isdigit() and got < int(length):  # the server closed early
                    if got:
                        failures, delay = 0, backoff_seconds()  # progress was made: a fresh budget
                    failures = _retry(failures, retries, delay, "connection closed early", remote, part, say, cancel)
                    delay *= 2
                    continue
                return
    finally:
        if progress is not None and task is not None:
            progress.finish(task)


def _range_start(header: str | None) -> int | None:
    """First byte of a ``Content-Range: bytes a-b/n`` header."""
    if not header or not header.startswith("bytes "):
        return None
    try:
        return int(header[6:].split("-", 1)[0])
    except ValueError:
        return None


def _retry(failures: int, retries: int, delay: float, why: str, remote: RemoteFile, part: Path, say, cancel) -> int:
    """Wait before the next attempt, or give up with one line (the ``.part`` stays)."""
    failures += 1
    if failures > retries:
        kept = part.stat().st_size if part.is_file() else 0
        resume = f"; {kept} bytes are kept in {part} and the download resumes from there" if kept else ""
        raise WorkError(f"cannot download {remote.url} ({why}; {failures} tries): check the network, then run the "
                        f"same command again{resume}")
    say(f"{remote.name}: {why}; retrying in {delay:g} s ({failures}/{retries})")
    if cancel is not None:
        if cancel.wait(delay):
            raise Cancelled()
    else:
        time.sleep(delay)
    return failures


def _stream(response, part: Path, start: int, progress, task, cancel, hasher: Hasher) -> int:
    """Write the response body into ``part`` from byte ``start``; bytes written.

    The file is written unbuffered, so the hasher's thread (:meth:`Hasher.follow`) can read each
    chunk back from the page cache as soon as it is reported; on a resume it hashes the bytes an
    earlier run left meanwhile.
    """
    try:
        out = open(part, "r+b" if start and part.exists() else "wb", buffering=0)
    except OSError as exc:
        raise _disk_error(exc, part, start) from None
    ok = False
    with out:
        if start:
            out.seek(start)
            out.truncate()
        hasher.follow(part, start)
        try:
            got = _copy(response, out, part, start, progress, task, cancel, hasher)
            ok = True
            return got
        except _Transient:
            ok = True  # what arrived is in the file: hash it, the retry continues from there
            raise
        finally:
            hasher.stop(abort=not ok)


def _copy(response, out, part: Path, start: int, progress, task, cancel, hasher: Hasher) -> int:
    """The copy loop of :func:`_stream`: socket -> file, each chunk reported to the hasher."""
    got = 0
    buf = bytearray(CHUNK_BYTES)
    view = memoryview(buf)
    while True:
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        try:
            n = response.readinto(buf)
        except (socket.timeout, TimeoutError, ConnectionError, http.client.HTTPException, OSError) as exc:
            raise _Transient(exc, got) from None
        if not n:
            break
        done = 0
        try:
            while done < n:  # an unbuffered write may take part of the chunk
                done += out.write(view[done:n]) or 0
        except OSError as exc:
            hasher.written(start + got + done)
            raise _disk_error(exc, part, start + got + done) from None
        got += n
        hasher.written(start + got)
        if progress is not None:
            progress.advance(task, n)
    return got


def _disk_error(exc: OSError, part: Path, have: int) -> WorkError | UsageError:
    """A full disk (or another write failure) while downloading: one line; the ``.part`` is kept."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return WorkError(f"{part}: no space left on the device after {have} bytes; free some space (or pass "
                         "--to DIR on another disk) and run the same command again: the download resumes from there")
    from lasskit.errors import os_error

    return os_error(exc, part)


# --- several files ---------------------------------------------------------------------------------
class ByteProgress:
    """A rich progress display: one row per file (bytes, speed, ETA) and a total; quiet when off.

    Shown on a terminal unless ``LASSKIT_PROGRESS=0`` (``LASSKIT_PROGRESS=1`` forces it).
    """

    def __init__(self, enabled: bool | None = None, total: int | None = None):
        if enabled is None:
            force = os.environ.get("LASSKIT_PROGRESS")
            enabled = (force != "0") if force is not None else sys.stderr.isatty()
        self.enabled = enabled
        self._lock = threading.Lock()
        self._rich = None
        self._overall = None
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self._rich = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                  TransferSpeedColumn(), TimeRemainingColumn(),
                                  console=Console(stderr=True), transient=True)
            if total:
                self._overall = self._rich.add_task("total", total=total)

    def __enter__(self):
        if self._rich is not None:
            self._rich.start()
        return self

    def __exit__(self, *exc):
        if self._rich is not None:
            self._rich.stop()

    def start(self, name: str, total: int | None, done: int):
        if self._rich is None:
            return None
        with self._lock:
            task = self._rich.add_task(name, total=total, completed=done)
            if self._overall is not None and done:
                self._rich.advance(self._overall, done)
            return task

    def reset(self, task, total: int | None, done: int) -> None:
        if self._rich is not None and task is not None:
            with self._lock:
                self._rich.reset(task, total=total, completed=done)

    def advance(self, task, n: int) -> None:
        if self._rich is not None and task is not None:
            self._rich.advance(task, n)
            if self._overall is not None:
                self._rich.advance(self._overall, n)

    def finish(self, task) -> None:
        if self._rich is not None and task is not None:
            with self._lock:
                self._rich.remove_task(task)


def fetch_all(jobs: list[tuple[RemoteFile, Path]], *, parallel: int = 4, progress: bool | None = None,
              say=_say_default, token: str | None = None, timeout: float = TIMEOUT_S,
              retries: int = RETRIES) -> list[FetchResult]:
    """Download several files, ``parallel`` at a time; results in the order given.

    A file that fails does not stop the others (a batch keeps going); when all are done, the
    first failure is raised, naming how many failed. Ctrl-C stops every download at its next chunk
    (their ``.part`` files stay for the next run) and raises :class:`KeyboardInterrupt`.
    """
    from concurrent.futures import ThreadPoolExecutor, wait

    if parallel < 1:
        raise UsageError(f"--parallel {parallel}: must be at least 1")
    if not jobs:
        return []
    cancel = threading.Event()
    total = sum(r.size or 0 for r, _ in jobs) if all(r.size is not None for r, _ in jobs) else None
    with ByteProgress(progress, total) as bar:
        pool = ThreadPoolExecutor(max_workers=min(parallel, len(jobs)), thread_name_prefix="lasskit-download")
        futures = [pool.submit(fetch_file, r, t, progress=bar, say=say, token=token, timeout=timeout,
                               retries=retries, cancel=cancel) for r, t in jobs]
        try:
            while wait(futures, timeout=0.2).not_done:
                pass
        except KeyboardInterrupt:
            cancel.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
    errors = [f.exception() for f in futures if f.exception() is not None]
    if errors:
        first = errors[0]
        if len(errors) > 1 and isinstance(first, (WorkError, UsageError)):
            raise type(first)(f"{first} ({len(errors) - 1} more file(s) failed too)")
        raise first
    return [f.result() for f in futures]
