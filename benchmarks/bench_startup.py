"""Benchmark start-up: `lasskit --help` must return in under 0.3 s (no torch/pandas at import)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

LASSKIT = Path(sys.executable).parent / "lasskit"


def timed(args: list[str], runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(args, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    bare = timed([sys.executable, "-c", "pass"])
    help_s = timed([str(LASSKIT), "--help"])
    sub_s = timed([str(LASSKIT), "score", "--help"])
    print(f"start-up (medians of 7): python -c pass {bare:.3f} s; lasskit --help {help_s:.3f} s "
          f"(floor 0.3 s: {'OK' if help_s < 0.3 else 'ABOVE FLOOR'}); lasskit score --help {sub_s:.3f} s")


if __name__ == "__main__":
    main()
