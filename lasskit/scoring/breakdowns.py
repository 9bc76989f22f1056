"""Breakdowns of per-row scores into bands (input SNR, label, query length) and paired comparisons."""

from __future__ import annotations

import math

import numpy as np

from lasskit.errors import UsageError
from lasskit.scoring.stats import summarize
from lasskit.scoring.types import (
    BREAKDOWNS,
    QUERY_LENGTH_EDGES,
    SNR_EDGES,
    Comparison,
    SplitScores,
)


def _check_breakdowns(split, by: tuple[str, ...]) -> None:
    for b in by:
        if b not in BREAKDOWNS:
            raise UsageError(f"--by {b}: unknown breakdown; use one of {', '.join(BREAKDOWNS)}")
        if b == "snr" and ("snr" not in split.frame.columns or (split.frame["snr"] == "").all()):
            raise UsageError(f"{split.csv_path}: --by snr needs an 'snr' column; this split has no input SNRs")
        if b == "label" and "source_labels" not in split.frame.columns:
            raise UsageError(f"{split.csv_path}: --by label needs a 'source_labels' column; this split has no labels")


def snr_band(snr: float) -> str:
    """The input-SNR band of ``snr`` dB: ``(-inf, -10)``, ``[-10, -5)``, ..., ``[10, inf)``."""
    edges = (-math.inf, *SNR_EDGES, math.inf)
    for lo, hi in zip(edges, edges[1:]):
        if lo <= snr < hi:
            return f"{'(' if lo == -math.inf else '['}{_fmt_edge(lo)}, {_fmt_edge(hi)})"
    return "unknown"


def _fmt_edge(x: float) -> str:
    return "inf" if x == math.inf else "-inf" if x == -math.inf else f"{x:g}"


def query_length_band(query: str) -> str:
    """The band of a query's length in words: ``1-5``, ``6-10``, ``11-15``, ``16-20``, ``21+``."""
    words = len(query.split())
    lo = 1
    for hi in QUERY_LENGTH_EDGES:
        if words <= hi:
            return f"{lo}-{hi}"
        lo = hi + 1
    return f"{lo}+"


def _band_order(by: str) -> list[str]:
    if by == "snr":
        return [snr_band(x) for x in (-math.inf, *SNR_EDGES)] + ["unknown"]
    lo, order = 1, []
    for hi in QUERY_LENGTH_EDGES:
        order.append(f"{lo}-{hi}")
        lo = hi + 1
    return order + [f"{lo}+"]


def breakdown(result: SplitScores, by: str, *, seed: int = 0, resamples: int = 1000) -> list[dict]:
    """Per-group rows ``{group, count, <metric>_mean, <metric>_ci95_low, <metric>_ci95_high}``.

    ``snr``: input-SNR bands (:data:`SNR_EDGES`); ``query_length``: words in the query
    (:data:`QUERY_LENGTH_EDGES`); ``label``: each of the source's labels (a mixture whose
    source has several labels counts in each; none: ``(no label)``), largest groups first.
    """
    groups: dict[str, list[int]] = {}
    if by == "snr":
        for i, s in enumerate(result.snrs):
            try:
                key = snr_band(float(s))
            except ValueError:
                key = "unknown"
            groups.setdefault(key, []).append(i)
        order = [g for g in _band_order("snr") if g in groups]
    elif by == "query_length":
        for i, q in enumerate(result.queries):
            groups.setdefault(query_length_band(q), []).append(i)
        order = [g for g in _band_order("query_length") if g in groups]
    elif by == "label":
        for i, labels in enumerate(result.labels or [[] for _ in result.names]):
            for label in (labels or ["(no label)"]):
                groups.setdefault(label, []).append(i)
        order = sorted(groups, key=lambda g: (-len(groups[g]), g))
    else:
        raise UsageError(f"--by {by}: unknown breakdown; use one of {', '.join(BREAKDOWNS)}")
    rows = []
    for g in order:
        idx = np.array(groups[g])
        row = {"group": g, "count": len(idx)}
        for m, v in result.values.items():
            s = summarize(v[idx], seed=seed, resamples=resamples)
            row[f"{m}_mean"] = s["mean"]
            row[f"{m}_ci95_low"], row[f"{m}_ci95_high"] = s["ci95"]
        rows.append(row)
    return rows


def compare_scores(a: SplitScores, b: SplitScores, *, seed: int = 0, resamples: int = 1000) -> Comparison:
    """Paired differences ``a - b`` on the mixtures both scored: mean, 95% bootstrap CI, share improved.

    ``improved`` is the share of mixtures where ``a`` is strictly better than ``b``.
    """
    pos_b = {n: i for i, n in enumerate(b.names)}
    ia = [i for i, n in enumerate(a.names) if n in pos_b]
    ib = [pos_b[a.names[i]] for i in ia]
    metrics = {}
    for m in a.values:
        if m not in b.values:
            continue
        d = a.values[m][ia] - b.values[m][ib]
        d = d[np.isfinite(d)]
        s = summarize(d, seed=seed, resamples=resamples)
        metrics[m] = {"mean": s["mean"], "ci95": s["ci95"], "improved": float(np.mean(d > 0)) if len(d) else math.nan,
                      "count": s["count"]}
    return Comparison(a.model, b.model, a.split, len(ia), metrics,
                      only_in_model=len(a.names) - len(ia), only_in_other=len(b.names) - len(ib))
