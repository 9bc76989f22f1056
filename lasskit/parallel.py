"""Run a function over many items on several processes, in order, with a progress bar.

Every batch command uses :func:`run_parallel`: results come back in input order whatever the
number of jobs (so outputs do not depend on ``--jobs``), and a failing item becomes an
:class:`Outcome` with its error message instead of stopping the batch.

Each worker process runs its math libraries (BLAS/OpenMP via threadpoolctl, and torch if it is
loaded) on **one thread**: ``jobs`` workers on ``jobs`` cores, never ``jobs x cores`` threads
fighting over them (:func:`limit_worker_threads`), and keeps freed memory for reuse
(:func:`lasskit.allocator.keep_freed_memory`, as does this process when it works alone). Workers ignore Ctrl-C; the main process
cancels the pending work and stops the workers before ``KeyboardInterrupt`` reaches the caller.
A worker's ``OSError`` (a full disk) becomes a one-line reason naming the file.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

from lasskit.errors import LasskitError


def default_jobs() -> int:
    """Number of cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def resolve_jobs(jobs: int | None) -> int:
    """``None`` or 0 means all cores; a negative number is a usage error upstream."""
    return default_jobs() if not jobs or jobs <= 0 else jobs


@dataclass
class Outcome:
    """The result of one item: ``value`` on success, else ``error`` (a one-line message)."""

    index: int
    value: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, LasskitError):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno is not None:  # a full disk, a permission: name the file
        from lasskit.errors import os_error

        return str(os_error(exc))
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}".rstrip(": ")


WORKER_THREADS = 1
"""Math-library threads per worker process."""


def limit_worker_threads(threads: int = WORKER_THREADS) -> None:
    """Cap BLAS/OpenMP (and torch, if loaded) threads in this process; the pools' initializer."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        pass
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            torch.set_num_threads(threads)
        except RuntimeError:  # pragma: no cover
            pass


class _sigint_blocked:
    """Block SIGINT in this thread while the pool forks its workers (the first ``submit``): a
    Ctrl-C that lands between a worker's fork and its initializer would otherwise print a
    KeyboardInterrupt traceback from the worker. The workers start with SIGINT blocked and
    :func:`init_worker` ignores it, then unblocks; here a pending Ctrl-C arrives on exit."""

    def __enter__(self):
        import signal

        self.old = None
        if hasattr(signal, "pthread_sigmask"):
            self.old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        return self

    def __exit__(self, *exc):
        import signal

        if self.old is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, self.old)
        return False


def init_worker(threads: int = WORKER_THREADS) -> None:
    """The pools' initializer: one math-library thread (:func:`limit_worker_threads`), and Ctrl-C
    ignored, so that a Ctrl-C at the terminal (sent to every process of the group) reaches only
    the main process, which stops the workers itself (:func:`stop_pool`) and says so in one line.
    On Linux a worker also asks the kernel for SIGTERM when its parent dies, so a ``kill -9`` of
    the main process alone leaves no orphaned worker behind; on SIGTERM a worker removes the
    temporary file it was writing before it exits."""
    import signal

    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, _stop_worker)
    except ValueError:  # pragma: no cover - not the main thread
        pass
    if hasattr(signal, "pthread_sigmask"):  # forked with SIGINT blocked (_sigint_blocked): ignored now
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    _die_with_parent()
    limit_worker_threads(threads)
    from lasskit.allocator import keep_freed_memory

    keep_freed_memory()  # per-file buffers reused instead of fresh zero-filled pages each time


def _stop_worker(signum, frame) -> None:  # pragma: no cover - runs in a worker being stopped
    """SIGTERM in a worker (:func:`stop_pool`, or the parent died): remove the temporary file it
    was writing, so a stopped run leaves no fragment, then exit at once."""
    from lasskit.atomic import remove_open_temporaries

    remove_open_temporaries()
    os._exit(128 + signum)


def _die_with_parent() -> None:
    """``prctl(PR_SET_PDEATHSIG, SIGTERM)`` where available (Linux); nothing elsewhere."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        import multiprocessing

        parent = multiprocessing.parent_process()
        if parent is not None and parent.pid != os.getppid():  # the parent died before the call
            os._exit(1)
    except (OSError, AttributeError):  # pragma: no cover - no libc prctl
        pass


def worker_threads() -> int:
    """The BLAS threads this process would use now (for tests: 1 inside a worker)."""
    from threadpoolctl import threadpool_info

    counts = [i.get("num_threads", 1) for i in threadpool_info() if i.get("user_api") == "blas"]
    return max(counts) if counts else 1


def _run_chunk(fn: Callable, chunk: list[tuple[int, Any]]) -> list[Outcome]:
    out = []
    for index, item in chunk:
        try:
            out.append(Outcome(index, fn(item)))
        except Exception as exc:  # one bad item must not stop the batch
            out.append(Outcome(index, error=_describe(exc)))
    return out


def progress_bar(total: int, desc: str, unit: str = "file"):
    """A tqdm bar on stderr, shown only on a terminal (or with LASSKIT_PROGRESS=1)."""
    from tqdm import tqdm

    force = os.environ.get("LASSKIT_PROGRESS")
    disable = (force == "0") if force is not None else not sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit=unit, disable=disable, dynamic_ncols=True, leave=False)


def _chunks(indexed: list, jobs: int, chunk_size: int | None) -> list[list]:
    """``chunk_size`` items a chunk; by default guided: each chunk a quarter of the remaining
    items' share per worker (at most 32, at least 1), so chunks shrink towards the end and no
    worker waits long for the last one (the slowest worker finishes about one item after the
    others)."""
    if chunk_size:
        return [indexed[i:i + chunk_size] for i in range(0, len(indexed), chunk_size)]
    chunks, start = [], 0
    while start < len(indexed):
        size = max(1, min(32, -(-(len(indexed) - start) // (jobs * 4))))
        chunks.append(indexed[start:start + size])
        start += size
    return chunks


def run_parallel(
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    jobs: int | None = None,
    desc: str = "working",
    unit: str = "file",
    chunk_size: int | None = None,
) -> list[Outcome]:
    """Apply ``fn`` to every item on ``jobs`` processes; one :class:`Outcome` per item, in order.

    ``fn`` must be picklable (a module-level function or a ``functools.partial`` of one).
    With one job (or one item) everything runs in this process.
    """
    n = len(items)
    # never more workers than items, nor than 4 per core (an absurd --jobs must not fork hundreds)
    jobs = max(1, min(resolve_jobs(jobs), n, 4 * default_jobs()))
    indexed = list(enumerate(items))
    results: list[Outcome | None] = [None] * n
    with progress_bar(n, desc, unit) as bar:
        if jobs == 1 or n <= 1:
            from lasskit.allocator import keep_freed_memory

            keep_freed_memory()  # as the workers do (lasskit.allocator)
            for index, item in indexed:
                (outcome,) = _run_chunk(fn, [(index, item)])
                results[index] = outcome
                bar.update(1)
        else:
            chunks = _chunks(indexed, jobs, chunk_size)
            pool = ProcessPoolExecutor(max_workers=jobs, initializer=init_worker)
            try:
                with _sigint_blocked():  # the workers are forked here: none may see Ctrl-C before it ignores it
                    futures = [pool.submit(_run_chunk, fn, chunk) for chunk in chunks[:1]]
                futures += [pool.submit(_run_chunk, fn, chunk) for chunk in chunks[1:]]
                for future in as_completed(futures):
                    chunk_outcomes = future.result()
                    for outcome in chunk_outcomes:
                        results[outcome.index] = outcome
                    bar.update(len(chunk_outcomes))
                pool.shutdown(wait=True)  # inside the try: a Ctrl-C while the workers exit stops them too
            except BaseException:
                stop_pool(pool)
                raise
    return results  # type: ignore[return-value]


def stop_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel what has not started and stop the workers now (Ctrl-C, a fatal error)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    manager = getattr(pool, "_executor_manager_thread", None)  # shutdown() forgets it
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        try:
            proc.terminate()
        except Exception:  # pragma: no cover - already gone
            pass
    for proc in procs:
        proc.join(timeout=10)  # a busy machine may take a while to run a worker's clean-up
    _finish_manager(manager)


def _finish_manager(thread) -> None:
    """Wait for the pool's manager thread to end (it closes its wake-up pipe on the way out) and
    forget its wake-up handle. Otherwise the interpreter's exit hook of concurrent.futures can
    write to that pipe while the thread closes it, and a Ctrl-C ends with a 15-line
    "Exception ignored ... OSError: [Errno 9] Bad file descriptor" after the one error line
    (CPython < 3.12 checks ``_closed`` and writes without a lock)."""
    import concurrent.futures.process as futures_process

    if thread is None:
        return
    thread.join(timeout=10)
    if not thread.is_alive():
        getattr(futures_process, "_threads_wakeups", {}).pop(thread, None)
