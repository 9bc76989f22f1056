"""Summary statistics: mean, median, std and a seeded percentile-bootstrap interval of the mean.

The interval resamples the rows ``resamples`` times with replacement (numpy ``default_rng(seed)``),
so the same inputs always give the same interval."""

from __future__ import annotations

import functools
import math

import numpy as np


def bootstrap_means(values, *, seed: int = 0, resamples: int = 1000) -> np.ndarray:
    """Means of ``resamples`` resamplings (with replacement, same size) of ``values``; vectorised.

    ``numpy.random.default_rng(seed)`` draws a ``(resamples, n)`` index table (in blocks, to bound
    memory), so the same values, seed and count always give the same means.
    """
    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    means = np.empty(resamples)
    if n == 0:
        means.fill(np.nan)
        return means
    for start, idx in _index_blocks(n, seed, resamples):
        means[start:start + len(idx)] = x[idx].mean(axis=1)
    return means


@functools.lru_cache(maxsize=4)
def _index_blocks(n: int, seed: int, resamples: int) -> tuple[tuple[int, np.ndarray], ...]:
    """The bootstrap's index table for ``n`` values, in blocks of at most ~4M entries (cached:
    every metric of a split is resampled with the same draws)."""
    rng = np.random.default_rng(seed)
    block = max(1, 4_000_000 // n)
    out = []
    for start in range(0, resamples, block):
        idx = rng.integers(0, n, size=(min(block, resamples - start), n))
        idx.flags.writeable = False
        out.append((start, idx))
    return tuple(out)


def bootstrap_ci(values, *, seed: int = 0, resamples: int = 1000, level: float = 0.95) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean: the (1-level)/2 and (1+level)/2 quantiles."""
    if len(values) == 0:
        return (math.nan, math.nan)
    means = bootstrap_means(values, seed=seed, resamples=resamples)
    lo, hi = np.percentile(means, [50 * (1 - level), 50 * (1 + level)])
    return (float(lo), float(hi))


def summarize(values, *, seed: int = 0, resamples: int = 1000) -> dict:
    """``{mean, median, std (ddof=1), ci95 [lo, hi], count}`` of the finite values (dB)."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return {"mean": math.nan, "median": math.nan, "std": math.nan, "ci95": [math.nan, math.nan], "count": 0}
    return {
        "mean": float(np.mean(x)),
        "median": float(np.median(x)),
        "std": float(np.std(x, ddof=1)) if n > 1 else 0.0,
        "ci95": list(bootstrap_ci(x, seed=seed, resamples=resamples)),
        "count": n,
    }
