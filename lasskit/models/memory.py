"""Memory for inference on the CPU: keep glibc from handing big buffers back, and how much is free.

**The allocator.** :func:`keep_freed_memory` (:mod:`lasskit.allocator`, re-exported here).

**Free memory.** :func:`available_bytes` is what a single pass may use: on the CPU
``MemAvailable`` of ``/proc/meminfo``, lowered to the cgroup's ``memory.max - memory.current``
when a container sets a limit; on CUDA ``torch.cuda.mem_get_info``. None when unknown.
"""

from __future__ import annotations

import os

from lasskit.allocator import (  # noqa: F401  (re-exported: the models' allocator tuning)
    M_MMAP_MAX,
    M_MMAP_THRESHOLD,
    M_TRIM_THRESHOLD,
    MMAP_THRESHOLD_BYTES,
    TRIM_THRESHOLD_BYTES,
    keep_freed_memory,
)


def _read_int(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as fh:
            text = fh.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def available_bytes(device: str = "cpu") -> int | None:
    """Bytes a computation on ``device`` may still use (see the module doc); None when unknown."""
    if str(device).startswith("cuda"):
        try:
            import torch

            free, _ = torch.cuda.mem_get_info(torch.device(device))
            return int(free)
        except Exception:  # noqa: BLE001 - no CUDA, or a driver that cannot say
            return None
    free = None
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    free = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        free = None
    limit = _read_int("/sys/fs/cgroup/memory.max")
    used = _read_int("/sys/fs/cgroup/memory.current")
    if limit is not None and used is not None:
        room = max(0, limit - used)
        free = room if free is None else min(free, room)
    if free is None and hasattr(os, "sysconf"):
        try:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError):
            free = None
    return free
