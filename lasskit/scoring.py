"""Scoring separated outputs against a split's references (``lasskit score``).

For a split ``data/splits/<split>`` with references and a folder of estimates (by default
``exp/<model>/<split>``), every mixture ``name`` is scored from three files read at 16 kHz:
the mixture ``mixture/<name>``, the reference (the ``source`` column, relative to the split
folder) and the estimate ``<estimates>/<name>`` (same file name as the mixture). The metrics are
:mod:`lasskit.metrics`'s, with the organizers' SI-SDR epsilon (float32's, 1.19e-7).

Decisions (documented, not left to chance):

- estimates are matched to mixtures by exact file name; a mixture without an estimate, or an
  audio file matching no mixture, is an error listing the names (``allow_missing`` scores what
  exists and reports how many were missing; extra files are always an error);
- a file at a rate other than 16 kHz, unreadable, empty, truncated or holding NaN/inf samples is a
  failure of that row naming the file; the batch goes on, failures go to ``score_failures.csv``
  and the run exits non-zero;
- different lengths (estimate, reference, mixture) fail the row unless ``trim``: then all three
  are cut to the shortest and the row is counted in ``trimmed``;
- multi-channel files are averaged to mono (what the organizers' ``librosa.load(mono=True)`` does);
- silent references/estimates are scored by the formulas (see :mod:`lasskit.metrics`) and counted
  in the notes; bss_eval SDR is NaN for them and its summary covers finite values only.

Summary statistics: mean, median, sample standard deviation (ddof=1; 0 for one row) and a 95%
percentile-bootstrap interval of the mean (``resamples`` resamplings of the rows with
replacement, numpy ``default_rng(seed)``, seed 0 and 1000 resamples by default), so the same
inputs give the same interval. Outputs, in the output folder (``exp/<model>/<split>``, or the
estimates folder itself when scoring an arbitrary ``estimates`` folder, or ``out``):

- ``scores.csv``: mixture, query, snr, sdr, sdri, si_sdr[, bss_sdr] (dB, full precision);
- ``summary.json``: model, split, count, metrics {mean, median, std, ci95, count}, missing,
  trimmed, failed, bootstrap {seed, resamples};
- ``scores_by_<snr|label|query_length>.csv`` for each breakdown asked for;
- ``compare_<other>.json`` with ``compare``: paired differences (this model minus the other);
- ``sdri_hist.png`` and ``sdri_vs_snr.png`` with ``plot``.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lasskit import SAMPLE_RATE
from lasskit.atomic import atomic_path, write_text_if_changed
from lasskit.failures import write_failures
from lasskit.errors import AudioError, LasskitError, UsageError
from lasskit.metrics import ORGANIZERS_EPS, PairScorer

METRICS = ("sdr", "sdri", "si_sdr")
BSS_METRIC = "bss_sdr"
BREAKDOWNS = ("snr", "label", "query_length")
SNR_EDGES = (-10.0, -5.0, 0.0, 5.0, 10.0)
"""Input-SNR bands (dB): (-inf, -10), [-10, -5), [-5, 0), [0, 5), [5, 10), [10, inf)."""
QUERY_LENGTH_EDGES = (5, 10, 15, 20)
"""Query-length bands in words: 1-5, 6-10, 11-15, 16-20, 21+."""
CHUNK = 50  # rows per task: few enough tasks to keep overhead low, enough for a smooth progress bar


@dataclass(frozen=True)
class ScoreOptions:
    """How to score: bss_eval on/off, trimming, missing estimates, breakdowns, plots, bootstrap."""

    bss_eval: bool = False
    trim: bool = False
    allow_missing: bool = False
    by: tuple[str, ...] = ()
    plot: bool = False
    jobs: int | None = None
    seed: int = 0
    resamples: int = 1000


@dataclass
class Target:
    """One thing to score: ``model``'s estimates in ``estimates_dir`` for split ``split_dir``."""

    model: str
    split_dir: Path
    estimates_dir: Path
    out_dir: Path

    @property
    def split(self) -> str:
        return self.split_dir.name


@dataclass
class SplitScores:
    """The scores of one model on one split: per-row values (dB), their summary and notes."""

    model: str
    split: str
    estimates_dir: Path
    out_dir: Path | None
    names: list[str]
    queries: list[str]
    snrs: list[str]
    labels: list[list[str]] | None
    values: dict[str, np.ndarray]
    summary: dict
    missing: list[str] = field(default_factory=list)
    trimmed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    breakdowns: dict[str, list[dict]] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def count(self) -> int:
        return len(self.names)

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(self.values)


@dataclass
class Comparison:
    """Paired differences ``model - other`` per mixture on one split, per metric (dB)."""

    model: str
    other: str
    split: str
    count: int
    metrics: dict[str, dict]
    only_in_model: int = 0
    only_in_other: int = 0
    path: Path | None = None


@dataclass
class ScoreRun:
    """Everything one ``lasskit score`` did: results, comparisons, skipped things, errors."""

    results: list[SplitScores] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[tuple[str, str, LasskitError]] = field(default_factory=list)
    targets: int = 0

    @property
    def failed_rows(self) -> int:
        return sum(len(r.failures) for r in self.results)


# --- statistics -----------------------------------------------------------------------------

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


# --- matching estimates to mixtures ---------------------------------------------------------

def _name_list(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" (and {len(names) - limit} more)" if len(names) > limit else "")


def match_estimates(names: list[str], estimates_dir: Path, split: str, allow_missing: bool) -> tuple[list[bool], list[str]]:
    """Which mixtures have an estimate (same file name) and which are missing.

    Audio files in ``estimates_dir`` (top level) that match no mixture are an error; so are
    missing estimates unless ``allow_missing``.
    """
    from lasskit.audio import AUDIO_EXTENSIONS

    if not estimates_dir.is_dir():
        raise UsageError(f"{estimates_dir}: no such folder of estimates; run `lasskit separate` first or fix --estimates")
    with os.scandir(estimates_dir) as entries:  # scandir: no stat per file for thousands of outputs
        present = {
            e.name for e in entries
            if os.path.splitext(e.name)[1].lower() in AUDIO_EXTENSIONS and not e.name.startswith(".") and e.is_file()
        }
    wanted = set(names)
    extra = sorted(present - wanted)
    if extra:
        raise UsageError(f"{estimates_dir}: {len(extra)} audio file(s) match no mixture of split {split}: "
                         f"{_name_list(extra)}; remove them or score the right --split")
    has = [n in present for n in names]
    missing = [n for n, ok in zip(names, has) if not ok]
    if missing and not allow_missing:
        if len(missing) == len(names):
            raise UsageError(f"{estimates_dir}: no estimates for split {split} (expected files named like "
                             f"{names[0]}); run `lasskit separate` first")
        raise UsageError(f"{estimates_dir}: {len(missing)} of {len(names)} mixture(s) of split {split} have no "
                         f"estimate: {_name_list(missing)}; finish `lasskit separate` or pass --allow-missing")
    return has, missing


# --- reading and scoring ----------------------------------------------------------------------

class _Reader:
    """Per-thread float32 read buffers and a :class:`PairScorer` (nothing allocated per file)."""

    def __init__(self) -> None:
        self.buffers = [np.empty(0, np.float32) for _ in range(3)]
        self.scorer = PairScorer(ORGANIZERS_EPS)

    def read(self, path: str, slot: int) -> np.ndarray:
        """Decode ``path`` (16 kHz, any channels -> mono) into buffer ``slot``; float32 view."""
        try:
            with _open(path) as f:
                rate, frames, channels = int(f.samplerate), int(f.frames), int(f.channels)
                if rate != SAMPLE_RATE:
                    raise AudioError(f"{path}: sample rate {rate} Hz, expected {SAMPLE_RATE} Hz; "
                                     "write outputs at 16 kHz (resample the file)")
                if frames <= 0:
                    raise AudioError(f"{path}: empty audio file (0 samples)")
                if channels == 1:
                    if len(self.buffers[slot]) < frames:
                        self.buffers[slot] = np.empty(frames, np.float32)
                    data = f.read(dtype="float32", out=self.buffers[slot][:frames])
                else:
                    data = f.read(dtype="float32", always_2d=True).mean(axis=1, dtype=np.float32)
        except LasskitError:
            raise
        except Exception as exc:
            text = str(exc).strip().splitlines()
            raise AudioError(f"{path}: unreadable audio ({text[-1] if text else type(exc).__name__})") from exc
        if len(data) < frames:
            raise AudioError(f"{path}: truncated audio ({len(data)} of {frames} samples)")
        return data


def _open(path: str):
    import soundfile as sf

    try:
        return sf.SoundFile(path)
    except Exception:
        if not os.path.isfile(path):
            raise AudioError(f"{path}: no such audio file") from None
        raise


_local = threading.local()


def _score_row(paths: tuple[str, str, str], trim: bool) -> tuple:
    """``(sdr, sdri, si_sdr, trimmed, ref_silent, est_silent)`` of one row; raises naming the file."""
    reader = getattr(_local, "reader", None)
    if reader is None:
        reader = _local.reader = _Reader()
    mixture_path, reference_path, estimate_path = paths
    ref = reader.read(reference_path, 0)
    est = reader.read(estimate_path, 1)
    mix = reader.read(mixture_path, 2)
    n = min(len(ref), len(est), len(mix))
    trimmed = not (len(ref) == len(est) == len(mix))
    if trimmed and not trim:
        raise AudioError(f"{estimate_path}: {len(est)} samples, but the reference {os.path.basename(reference_path)} has "
                         f"{len(ref)} and the mixture {len(mix)}; pass --trim to cut all to the shortest")
    sums = reader.scorer(ref[:n], est[:n], mix[:n])
    if not sums.is_finite():
        for path, x in ((estimate_path, est), (reference_path, ref), (mixture_path, mix)):
            if not np.isfinite(x[:n]).all():
                raise AudioError(f"{path}: holds NaN or infinite samples; fix or re-create the file")
    return (float(sums.sdr), float(sums.sdri), float(sums.si_sdr), trimmed,
            bool(sums.ref_energy == 0), bool(sums.est_energy == 0))


def _score_chunk(chunk: list[tuple[str, str, str]], trim: bool) -> list:
    out = []
    for paths in chunk:
        try:
            out.append(_score_row(paths, trim))
        except LasskitError as exc:
            out.append(str(exc))
        except Exception as exc:  # a bug or an odd file: still one line, still the batch goes on
            out.append(f"{paths[1]}: {type(exc).__name__}: {exc}")
    return out


def _bss_row(paths: tuple[str, str], trim: bool = False) -> float:
    """bss_eval v3 SDR of one (reference, estimate) pair (runs in a worker process)."""
    from lasskit.audio import read, to_mono
    from lasskit.metrics import bss_sdr

    ref = to_mono(read(paths[0], dtype="float64")[0])
    est = to_mono(read(paths[1], dtype="float64")[0])
    n = min(len(ref), len(est)) if trim else len(ref)
    return float(bss_sdr(ref[:n], est[:n]))


def _score_rows(rows: list[tuple[str, str, str]], trim: bool, jobs: int | None, desc: str) -> list:
    """Score rows in chunks on ``jobs`` processes (run_parallel keeps the order): per row a result
    tuple or an error string. Processes, not threads: under load, threads lose time to the GIL."""
    from functools import partial

    from lasskit.parallel import run_parallel

    chunks = [rows[i:i + CHUNK] for i in range(0, len(rows), CHUNK)]
    outcomes = run_parallel(partial(_score_chunk, trim=trim), chunks, jobs, desc=desc, unit="chunk", chunk_size=1)
    results: list = []
    for chunk, outcome in zip(chunks, outcomes):
        results.extend(outcome.value if outcome.ok else [outcome.error] * len(chunk))
    return results


def _labels_of(frame) -> list[list[str]] | None:
    if "source_labels" not in frame.columns:
        return None
    out = []
    for value in frame["source_labels"]:
        try:
            labels = json.loads(value) if value else []
        except ValueError:
            labels = [value]
        out.append([str(x) for x in labels] if isinstance(labels, list) else [str(labels)])
    return out


def score_estimates(
    split_dir: str | os.PathLike,
    estimates_dir: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    *,
    model: str | None = None,
    options: ScoreOptions = ScoreOptions(),
    write: bool = True,
) -> SplitScores:
    """Score the estimates in ``estimates_dir`` against split ``split_dir``; write the results.

    ``out_dir`` (default: ``estimates_dir``) receives scores.csv, summary.json and the asked-for
    breakdowns and plots, unless ``write`` is false. ``model`` defaults to the folder's name.
    Raises :class:`UsageError` for a split without references or missing/extra estimates; rows
    that fail (unreadable, wrong rate, NaN, lengths) are in ``result.failures``.
    """
    from lasskit.splits import read_split

    start = time.perf_counter()
    split = read_split(split_dir)
    estimates_dir = Path(estimates_dir)
    model = model or estimates_dir.name
    if not split.has_references:
        raise UsageError(f"{split.csv_path}: split {split.name} has no references (no 'source' column); "
                         "only splits with references (e.g. val_synth) can be scored")
    _check_breakdowns(split, options.by)
    frame = split.frame
    names, sources, queries = (frame[c].tolist() for c in ("mixture", "source", "query"))
    has, missing = match_estimates(names, estimates_dir, split.name, options.allow_missing)
    keep = [i for i, ok in enumerate(has) if ok]
    # plain strings: 9000 pathlib joins cost more than reading the files' headers
    root, est_root = str(split.root), str(estimates_dir)
    rows = [(os.path.join(root, "mixture", names[i]), os.path.join(root, sources[i]), os.path.join(est_root, names[i]))
            for i in keep]
    results = _score_rows(rows, options.trim, options.jobs, f"score {model}/{split.name}")

    labels_all = _labels_of(frame)
    ok_idx, ok_rows, vals, failures, trimmed, silent_ref, silent_est = [], [], [], [], 0, 0, 0
    for i, row, res in zip(keep, rows, results):
        if isinstance(res, str):
            failures.append((names[i], res))
            continue
        ok_idx.append(i)
        ok_rows.append(row)
        vals.append(res[:3])
        trimmed += res[3]
        silent_ref += res[4]
        silent_est += res[5]
    arr = np.array(vals, dtype=np.float64).reshape(-1, 3)
    values = {m: arr[:, k] for k, m in enumerate(METRICS)}
    notes = []
    if options.bss_eval and ok_idx:
        values[BSS_METRIC], bss_errors = _bss_values(ok_rows, options, model, split.name)
        undefined = int(np.sum(~np.isfinite(values[BSS_METRIC]))) - len(bss_errors)
        if undefined:
            notes.append(f"bss_sdr undefined (silent reference or estimate) for {undefined} mixture(s); "
                         "its summary covers the others")
        if bss_errors:
            notes.append(f"bss_eval failed for {len(bss_errors)} mixture(s) (bss_sdr left empty), first: {bss_errors[0]}")
    elif options.bss_eval:
        values[BSS_METRIC] = np.empty(0)
    if missing:
        notes.append(f"{len(missing)} of {len(names)} mixture(s) have no estimate (--allow-missing): "
                     f"{_name_list(missing, 5)}")
    if trimmed:
        notes.append(f"{trimmed} mixture(s) had files of different lengths, trimmed to the shortest (--trim)")
    if silent_ref:
        notes.append(f"{silent_ref} silent reference(s): scored with the 1e-10 SDR floor (see lasskit.metrics)")
    if silent_est:
        notes.append(f"{silent_est} silent estimate(s): scored by the formulas (0 dB SDR and SI-SDR against a "
                     "non-silent reference)")

    snr_col = frame["snr"].tolist() if "snr" in frame.columns else [""] * len(frame)
    result = SplitScores(
        model=model, split=split.name, estimates_dir=estimates_dir,
        out_dir=Path(out_dir) if out_dir is not None else estimates_dir,
        names=[names[i] for i in ok_idx], queries=[queries[i] for i in ok_idx],
        snrs=[snr_col[i] for i in ok_idx],
        labels=[labels_all[i] for i in ok_idx] if labels_all is not None else None,
        values=values, summary={}, missing=missing, trimmed=trimmed, failures=failures, notes=notes,
    )
    result.summary = _summary(result, options)
    for by in options.by:
        result.breakdowns[by] = breakdown(result, by, seed=options.seed, resamples=options.resamples)
    if write:
        write_results(result, options)
    else:
        result.out_dir = None
    result.seconds = time.perf_counter() - start
    return result


def _bss_values(rows, options: ScoreOptions, model: str, split: str) -> tuple[np.ndarray, list[str]]:
    """bss_eval SDR of each (mixture, reference, estimate) row on ``jobs`` processes; NaN where undefined."""
    from functools import partial

    from lasskit.parallel import run_parallel

    outcomes = run_parallel(partial(_bss_row, trim=options.trim), [(r[1], r[2]) for r in rows], options.jobs,
                            desc=f"bss_eval {model}/{split}", chunk_size=4)
    errors = [o.error for o in outcomes if not o.ok]
    return np.array([o.value if o.ok else math.nan for o in outcomes], dtype=np.float64), errors


def _check_breakdowns(split, by: tuple[str, ...]) -> None:
    for b in by:
        if b not in BREAKDOWNS:
            raise UsageError(f"--by {b}: unknown breakdown; use one of {', '.join(BREAKDOWNS)}")
        if b == "snr" and ("snr" not in split.frame.columns or (split.frame["snr"] == "").all()):
            raise UsageError(f"{split.csv_path}: --by snr needs an 'snr' column; this split has no input SNRs")
        if b == "label" and "source_labels" not in split.frame.columns:
            raise UsageError(f"{split.csv_path}: --by label needs a 'source_labels' column; this split has no labels")


def _summary(result: SplitScores, options: ScoreOptions) -> dict:
    return {
        "model": result.model,
        "split": result.split,
        "count": result.count,
        "metrics": {m: summarize(v, seed=options.seed, resamples=options.resamples) for m, v in result.values.items()},
        "missing": len(result.missing),
        "trimmed": result.trimmed,
        "failed": len(result.failures),
        "bootstrap": {"seed": options.seed, "resamples": options.resamples, "method": "percentile"},
    }


# --- breakdowns -------------------------------------------------------------------------------

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


# --- comparison -------------------------------------------------------------------------------

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


# --- writing ----------------------------------------------------------------------------------

def _num(x: float) -> str:
    return repr(float(x)) if math.isfinite(x) else ""


def _json_safe(obj):
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def scores_csv(result: SplitScores) -> str:
    """scores.csv text: mixture, query, snr, sdr, sdri, si_sdr[, bss_sdr] (dB, round-trip floats)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    metrics = list(result.values)
    w.writerow(["mixture", "query", "snr", *metrics])
    for i, name in enumerate(result.names):
        w.writerow([name, result.queries[i], result.snrs[i], *(_num(result.values[m][i]) for m in metrics)])
    return buf.getvalue()


def _rows_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: _num(v) if isinstance(v, float) else v for k, v in r.items()})
    return buf.getvalue()


def write_results(result: SplitScores, options: ScoreOptions) -> None:
    """Write scores.csv, summary.json, breakdown CSVs, failures and plots into ``result.out_dir``."""
    out = result.out_dir
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "scores.csv", out / "summary.json"]
    write_text_if_changed(files[0], scores_csv(result))
    write_text_if_changed(files[1], json.dumps(_json_safe(result.summary), indent=2) + "\n")
    for by, rows in result.breakdowns.items():
        path = out / f"scores_by_{by}.csv"
        write_text_if_changed(path, _rows_csv(rows))
        files.append(path)
    failures_path = write_failures(out / "score_failures.csv", result.failures, first_column="mixture")
    if failures_path:
        files.append(failures_path)
    if options.plot:
        files += plot_scores(result, out)
    result.files = files


def write_comparison(comparison: Comparison, out_dir: Path, options: ScoreOptions) -> Path:
    """``compare_<other>.json`` in ``out_dir``."""
    path = out_dir / f"compare_{comparison.other}.json"
    data = {
        "model": comparison.model, "other": comparison.other, "split": comparison.split,
        "count": comparison.count, "difference": "model - other (dB), paired per mixture",
        "metrics": comparison.metrics, "only_in_model": comparison.only_in_model,
        "only_in_other": comparison.only_in_other,
        "bootstrap": {"seed": options.seed, "resamples": options.resamples, "method": "percentile"},
    }
    write_text_if_changed(path, json.dumps(_json_safe(data), indent=2) + "\n")
    comparison.path = path
    return path


def plot_scores(result: SplitScores, out_dir: Path) -> list[Path]:
    """``sdri_hist.png`` (SDRi histogram) and ``sdri_vs_snr.png`` (SDRi against input SNR)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    sdri = result.values["sdri"]
    title = f"{result.model} on {result.split} ({result.count} mixtures)"
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.hist(sdri, bins=40, color="tab:blue", alpha=0.8)
    if len(sdri):
        ax.axvline(float(np.mean(sdri)), color="k", linestyle="--", label=f"mean {np.mean(sdri):.2f} dB")
        ax.legend()
    ax.set(xlabel="SDRi (dB)", ylabel="mixtures", title=title)
    written.append(_save(fig, out_dir / "sdri_hist.png"))
    plt.close(fig)
    snr = np.array([float(s) if _is_number(s) else math.nan for s in result.snrs])
    if np.isfinite(snr).any():
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.scatter(snr, sdri, s=12, alpha=0.5, label="mixtures")
        # mean per 1 dB bin (the organizers' integer SNRs each get their own point)
        finite = np.isfinite(snr)
        bins = np.round(snr[finite])
        levels = np.unique(bins)
        ax.plot(levels, [np.mean(sdri[finite][bins == v]) for v in levels], color="k", marker="o",
                markersize=3, label="mean per 1 dB of input SNR")
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set(xlabel="input SNR (dB)", ylabel="SDRi (dB)", title=title)
        ax.legend()
        written.append(_save(fig, out_dir / "sdri_vs_snr.png"))
        plt.close(fig)
    else:
        result.notes.append("no input SNRs in this split: sdri_vs_snr.png not drawn")
    return written


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    return path


# --- the workspace: what to score -------------------------------------------------------------

def find_targets(
    ws,
    *,
    splits: list[str] | None = None,
    models: list[str] | None = None,
    estimates: Path | None = None,
    out: Path | None = None,
) -> tuple[list[Target], list[str]]:
    """The (model, split) pairs to score and notes on what was skipped.

    Default: every split with references that has outputs ``exp/<model>/<split>``, for every
    model in ``exp/``. ``splits``/``models`` restrict that (naming one that cannot be scored is a
    :class:`UsageError`). ``estimates``: one arbitrary folder scored against the one split given,
    named ``models[0]`` or the folder's name, written into ``out`` or the folder itself.
    """
    from lasskit.splits import read_split

    notes: list[str] = []
    if estimates is not None:
        if not splits or len(splits) != 1:
            raise UsageError("--estimates DIR needs exactly one --split: the split the estimates were separated from")
        if models and len(models) > 1:
            raise UsageError("--estimates DIR takes at most one --model (the name to report it under)")
        split_dir = ws.split_dir(splits[0])
        _require_references(read_split(split_dir))
        estimates = Path(estimates)
        model = models[0] if models else estimates.resolve().name
        return [Target(model, split_dir, estimates, Path(out) if out else estimates)], notes

    available_models = ws.models()
    if models:
        for m in models:
            if m not in available_models:
                raise UsageError(f"{ws.exp_dir / m}: no outputs for model {m!r}; run `lasskit separate --model {m}` "
                                 f"first (models with outputs: {', '.join(available_models) or 'none'})")
    if splits:
        for s in splits:
            _require_references(read_split(ws.split_dir(s)))
        split_names = list(splits)
    else:
        split_names = []
        for s in ws.splits():
            split = read_split(ws.split_dir(s))
            if split.has_references:
                split_names.append(s)
            elif any(ws.output_dir(m, s).is_dir() for m in (models or available_models)):
                notes.append(f"split {s}: skipped, it has no references (only its mixtures are known)")
    targets = []
    for m in models or available_models:
        for s in split_names:
            if ws.output_dir(m, s).is_dir():
                targets.append(Target(m, ws.split_dir(s), ws.output_dir(m, s), ws.output_dir(m, s)))
            elif models and splits:
                raise UsageError(f"{ws.output_dir(m, s)}: no outputs of {m} for split {s}; "
                                 f"run `lasskit separate --model {m} --split {s}` first")
        if not splits:
            known = set(ws.splits())
            for d in sorted(p for p in (ws.exp_dir / m).iterdir() if p.is_dir()) if (ws.exp_dir / m).is_dir() else []:
                if d.name not in known:
                    notes.append(f"{d}: no split {d.name} in {ws.splits_dir}; skipped")
    if not targets:
        what = (f"model(s) {', '.join(models)}" if models else "any model") + \
               (f" on split(s) {', '.join(splits)}" if splits else " on a split with references")
        raise UsageError(f"{ws.exp_dir}: no outputs of {what} to score; run `lasskit separate` first "
                         "or pass --estimates DIR --split SPLIT")
    if out is not None:
        if len(targets) != 1:
            raise UsageError(f"--out {out}: only for one model on one split ({len(targets)} to score); "
                             "pass --model and --split")
        targets[0].out_dir = Path(out)
    return targets, notes


def _require_references(split) -> None:
    if not split.has_references:
        raise UsageError(f"{split.csv_path}: split {split.name} has no references (no 'source' files); it cannot "
                         "be scored; score a split with references such as val_synth")


def score_workspace(
    ws,
    *,
    splits: list[str] | None = None,
    models: list[str] | None = None,
    estimates: Path | None = None,
    out: Path | None = None,
    compare: str | None = None,
    options: ScoreOptions = ScoreOptions(),
) -> ScoreRun:
    """Score every target :func:`find_targets` picks; with ``compare``, pair each with that model.

    A target that cannot be scored (missing or extra estimates, ...) is recorded in
    ``run.errors`` and the others go on. ``compare`` scores the other model's outputs on the same
    split (in memory, without rewriting its files, unless it is scored in this run anyway) and
    writes ``compare_<other>.json`` next to each target's scores.
    """
    for b in options.by:
        if b not in BREAKDOWNS:
            raise UsageError(f"--by {b}: unknown breakdown; use one of {', '.join(BREAKDOWNS)}")
    if options.resamples < 1:
        raise UsageError(f"--resamples {options.resamples}: must be at least 1")
    targets, notes = find_targets(ws, splits=splits, models=models, estimates=estimates, out=out)
    if compare is not None:
        if not (ws.exp_dir / compare).is_dir():
            raise UsageError(f"{ws.exp_dir / compare}: no outputs of model {compare!r} to compare with; "
                             f"run `lasskit separate --model {compare}` first")
        if all(t.model == compare for t in targets):
            raise UsageError(f"--compare {compare}: that is the model being scored; compare two different models")
    run = ScoreRun(notes=notes, targets=len(targets))
    for t in targets:
        try:
            run.results.append(score_estimates(t.split_dir, t.estimates_dir, t.out_dir, model=t.model, options=options))
        except LasskitError as exc:
            run.errors.append((t.model, t.split, exc))
    if compare is not None:
        _compare_all(ws, run, compare, options)
    return run


def _compare_all(ws, run: ScoreRun, other: str, options: ScoreOptions) -> None:
    from dataclasses import replace

    cache: dict[str, SplitScores] = {r.split: r for r in run.results if r.model == other}
    for r in list(run.results):
        if r.model == other:
            continue
        if r.split not in cache:
            other_dir = ws.output_dir(other, r.split)
            if not other_dir.is_dir():
                run.errors.append((other, r.split, UsageError(
                    f"{other_dir}: no outputs of {other} for split {r.split} to compare with; "
                    f"run `lasskit separate --model {other} --split {r.split}`")))
                continue
            try:
                cache[r.split] = score_estimates(ws.split_dir(r.split), other_dir, model=other, write=False,
                                                 options=replace(options, by=(), plot=False, allow_missing=True))
            except LasskitError as exc:
                run.errors.append((other, r.split, exc))
                continue
        comparison = compare_scores(r, cache[r.split], seed=options.seed, resamples=options.resamples)
        write_comparison(comparison, r.out_dir, options)
        run.comparisons.append(comparison)

