"""glibc's allocator tuned to keep freed memory: no page-fault storm on big per-item buffers.

A 10 s clip through the baseline's ResUNet30 allocates and frees activation
buffers of up to ~64 MB at every layer. glibc serves anything above its mmap threshold (128 KiB
to 32 MiB, adjusted dynamically) with a fresh ``mmap`` and returns it with ``munmap`` when freed,
so the kernel zero-fills every page again on the next layer: about 1 M page faults per forward
pass (12 M over a run), and half the CPU time of the separator went to the kernel.
:func:`keep_freed_memory` raises the mmap threshold to 1 GiB and the trim threshold to 2 GiB
(``mallopt(M_MMAP_THRESHOLD)`` / ``mallopt(M_TRIM_THRESHOLD)``, what the environment variables
``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` do, set from inside the process), so
freed buffers stay in the heap and are reused: about 8 k page faults per pass. The cost is
memory the process keeps after freeing it, at most the largest working set it reached plus the
trim threshold; measured on a 10 s clip through the baseline (``benchmarks/bench_baseline.py``,
2-core CPU, two runs): +86 to +168 MiB peak resident memory over glibc's default, with the
baseline's in-place activations (+0.26 GB without them), for about 0.8 M fewer page faults and a
quarter to a third less CPU time per pass (4.9 s against 6.6-7.0 s). Where glibc refuses the threshold (older versions cap it at 32 MiB), mmap
is turned off for the process instead (``M_MMAP_MAX = 0``), which has the same effect. It is a
no-op off glibc (macOS, musl), and it applies to the whole process, once. ``LASSKIT_MALLOC=default``
leaves glibc as it is (for comparisons: ``benchmarks/bench_baseline.py``).

Batch commands call it too: every worker of :func:`lasskit.parallel.run_parallel` (and the
process itself when it works alone), since decoding, resampling and writing a 10 s file frees
and reallocates buffers of 0.3-2 MB per file (``prepare``: 4.4 against 8.8 ms a file on one core,
``benchmarks/bench_prepare.py``). :mod:`lasskit.models.memory` re-exports it for the models.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_MMAP_MAX = -4
MMAP_THRESHOLD_BYTES = 1 << 30
TRIM_THRESHOLD_BYTES = 2 << 30

_done: str | None = None


def keep_freed_memory() -> str:
    """Tune glibc's allocator once for this process (see the module doc); returns what was done.

    ``"threshold"`` (mmap threshold 1 GiB, trim 2 GiB), ``"no-mmap"`` (mmap off, trim 2 GiB),
    ``"unsupported"`` (not glibc), ``"refused"`` (glibc said no to both) or ``"disabled"``
    (``LASSKIT_MALLOC=default``).
    """
    global _done
    if _done is not None:
        return _done
    if os.environ.get("LASSKIT_MALLOC", "").strip().lower() == "default":
        _done = "disabled"
        return _done
    _done = "unsupported"
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 - only glibc has it
    except (OSError, AttributeError):
        return _done
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    trimmed = mallopt(M_TRIM_THRESHOLD, min(TRIM_THRESHOLD_BYTES, 2**31 - 1))
    if mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES):
        _done = "threshold" if trimmed else "refused"
    elif mallopt(M_MMAP_MAX, 0):
        _done = "no-mmap" if trimmed else "refused"
    else:
        _done = "refused"
    return _done
