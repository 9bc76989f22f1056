"""CLAP columns of ``lasskit score``: the reference-free CLAPScore of estimates and mixtures.

CLAPScore (Xiao et al., "A Reference-free Metric for Language-Queried Audio Source Separation
using Contrastive Language-Audio Pretraining", DCASE 2024 Workshop, arXiv 2407.04936) is the
cosine between the CLAP audio embedding of a clip and the CLAP text embedding of its query
(:mod:`lasskit.models.clap_model`). Per row:

- ``clap`` = CLAPScore(estimate, query);
- ``clap_mixture`` = CLAPScore(mixture, query);
- ``clap_gain`` = ``clap - clap_mixture``: how much closer to the query the separation moved
  the audio.

Splits without references (``eval_real``, ``eval_synth``) get only these columns; splits with
references get them next to SDR with ``ScoreOptions.clap``, and ``summary.json`` then reports
``clap.vs_sdri``: Spearman's rank correlation between ``clap_gain`` and ``sdri`` over the rows,
with a 95% percentile-bootstrap interval drawn from the same resampled rows as the SDR
intervals (seed, resamples), so a team sees how far the proxy tracks the real metric.

Input path (``ScoreOptions.clap_path``): ``paper`` (default) reproduces the published code,
which embeds 16 kHz audio as if it were 32 kHz (double speed); ``physical`` resamples
16 -> 48 kHz properly. Clips longer than the tower's 10 s window are averaged over windows
(:mod:`lasskit.models.clap_audio`).

Cost: every distinct query is embedded once (RoBERTa); every distinct audio content (hash of the
decoded samples) once, so a mixture shared by two queries, or an estimate equal to its mixture,
is embedded once, and ``--compare`` reuses the mixtures' embeddings. Audio embeddings are also
kept on disk (:mod:`lasskit.models.embedding_cache`, keyed by weights, input path, device kind
and content), so the next ``score`` of the same mixtures reads them instead of running the tower.
:func:`~lasskit.scoring.run.score_workspace` embeds the audio of every target first, in one plan
(:func:`embed_audio`, :func:`lasskit.models.embedding_cache.embed_missing`: the files are hashed,
then the distinct contents the caches lack are read and embedded ``--clap-batch`` at a time, so
memory holds one batch of audio and the embeddings), which ``--devices N``, torchrun and srun
share between processes with the same bits. torch and transformers are imported here only when
CLAP columns are computed.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from lasskit import SAMPLE_RATE
from lasskit.errors import AudioError, LasskitError, UsageError
from lasskit.scoring.types import ScoreOptions, SplitScores

CLAP_METRICS = ("clap", "clap_mixture", "clap_gain")
"""The CLAP columns, in scores.csv order."""
CLAP_PATHS = ("paper", "physical")
"""CLAPScore input paths (``lasskit.models.clap_audio.PATHS``, named here without importing torch)."""

_MODELS: dict[tuple, object] = {}
_EMBEDDINGS: dict[tuple, np.ndarray] = {}


def clap_model(options: ScoreOptions):
    """The CLAP model ``options`` point at (loaded once per process and settings)."""
    from lasskit.models.clap_model import load_clap_model

    key = (options.checkpoint, options.tokenizer, options.device, options.clap_batch_size)
    if key not in _MODELS:
        _MODELS[key] = load_clap_model(options.checkpoint, options.tokenizer, device=options.device,
                                       audio_batch_size=options.clap_batch_size)
    return _MODELS[key]


def check_weights(targets: list, options: ScoreOptions) -> None:
    """Before any scoring: when a target needs CLAP (``options.clap``, or a split without
    references), the CLAP model is found and loaded (weights, tokenizer, device) here, so that a
    refusal comes before anything is written (digest caches, scores); else one
    :class:`UsageError` saying what to run."""
    from lasskit.csvfile import open_csv
    from lasskit.models.clap_model import find_clap_checkpoint
    from lasskit.splits import MIXTURES_CSV, read_split

    for target in targets:
        if not options.clap:  # plain scoring: only a split without a 'source' column needs CLAP (header only)
            with open_csv(target.split_dir / MIXTURES_CSV) as fh:
                if "source" in fh.readline().strip().split(","):
                    continue
        split = read_split(target.split_dir)
        if options.clap or not split.has_references:
            try:
                find_clap_checkpoint(options.checkpoint)
                clap_model(options)  # loaded once per process: the scoring below reuses it
            except UsageError as exc:
                if split.has_references:
                    raise
                raise UsageError(f"{split.csv_path}: split {split.name} has no references, so only CLAP scores "
                                 f"it: {exc}") from None
            return


def _read_mono(path: str) -> np.ndarray:
    from lasskit.audio import read, to_mono

    signal, rate = read(path)
    if rate != SAMPLE_RATE:
        raise AudioError(f"{path}: sample rate {rate} Hz, expected {SAMPLE_RATE} Hz; write outputs at 16 kHz "
                         "(resample the file)")
    return np.ascontiguousarray(to_mono(signal), dtype=np.float32)


def _read_clip(path: str) -> tuple[np.ndarray, int]:
    return _read_mono(path), SAMPLE_RATE


EMBEDDING_COUNTS = {"cached": 0, "embedded": 0}
"""Audio embeddings read from the disk cache / computed and stored, in this process (rank 0 counts
every rank's)."""
RANK_COUNTS: dict[int, int] = {}
"""Audio embeddings computed by each rank (``--devices N``), in this process."""


def embed_audio(paths: list[str], options: ScoreOptions, shard=None, desc: str = "CLAP") -> list:
    """The content digest of each file (or the one-line reason it cannot be read); afterwards (on
    rank 0) every digest's embedding is in this process's memory. Embeds what neither memory nor
    the disk cache holds, batch ``i`` on rank ``i mod world``
    (:func:`lasskit.models.embedding_cache.embed_missing`)."""
    from lasskit.models.embedding_cache import embed_missing

    model = clap_model(options)
    settings = (model.checkpoint, options.clap_path)

    def remember(digests, vectors) -> None:
        _EMBEDDINGS.update(((*settings, d), v) for d, v in zip(digests, vectors))

    done = embed_missing(model, options.clap_path, paths, _read_clip, shard=shard, found=remember, desc=desc,
                         known=lambda d: (*settings, d) in _EMBEDDINGS)
    EMBEDDING_COUNTS["cached"] += done.cached
    EMBEDDING_COUNTS["embedded"] += done.embedded
    for rank, count in enumerate(done.by_rank):
        if count:
            RANK_COUNTS[rank] = RANK_COUNTS.get(rank, 0) + count
    return done.digests


def clap_columns(mixture_paths: list[str], estimate_paths: list[str], queries: list[str], options: ScoreOptions,
                 desc: str = "CLAP") -> tuple[dict[str, np.ndarray], list[tuple[int, str]], str]:
    """``({clap, clap_mixture, clap_gain}, failures, checkpoint)`` for rows (mixture, estimate, query).

    Values are float64 arrays aligned with the rows, NaN where a row failed; ``failures`` lists
    ``(row index, one-line reason)`` (unreadable, empty, NaN, wrong rate).
    """
    model = clap_model(options)
    n = len(queries)
    text = model.text_embeddings(queries)
    settings = (model.checkpoint, options.clap_path)
    digests = embed_audio([p for i in range(n) for p in (estimate_paths[i], mixture_paths[i])], options, desc=desc)
    width = text.shape[1] if n else 512
    audio = {"clap": np.full((n, width), np.nan), "clap_mixture": np.full((n, width), np.nan)}
    failures: list[tuple[int, str]] = []
    for i in range(n):
        estimate, mixture = digests[2 * i], digests[2 * i + 1]
        reason = next((d for d in (estimate, mixture) if isinstance(d, str)), None)
        if reason is not None:
            failures.append((i, reason))
            continue
        audio["clap"][i] = _EMBEDDINGS[(*settings, estimate)]
        audio["clap_mixture"][i] = _EMBEDDINGS[(*settings, mixture)]
    from lasskit.models.clap_model import clap_scores

    values = {m: clap_scores(audio[m], text) if n else np.empty(0) for m in ("clap", "clap_mixture")}
    values["clap_gain"] = values["clap"] - values["clap_mixture"]
    return values, failures, model.checkpoint


def clap_sources(targets: list, options: ScoreOptions, compare: str | None = None, ws=None) -> list[str]:
    """Every audio file the CLAP columns of ``targets`` (and of ``compare``'s outputs on their
    splits) read, in the order :func:`~lasskit.scoring.run.score_workspace` reads them: per row the
    estimate, then the mixture. A target that cannot be scored is left out (its error comes later)."""
    from lasskit.scoring.reading import match_estimates
    from lasskit.splits import read_split

    pairs = [(t.split_dir, t.estimates_dir, options.allow_missing) for t in targets]
    if compare is not None and ws is not None:
        pairs += [(t.split_dir, ws.output_dir(compare, read_split(t.split_dir).name), True) for t in targets
                  if t.model != compare]
    paths: list[str] = []
    for split_dir, estimates_dir, allow_missing in pairs:
        try:
            split = read_split(split_dir)
            if split.has_references and not options.clap:
                continue
            names = split.frame["mixture"].tolist()
            has, _ = match_estimates(names, Path(estimates_dir), split.name, allow_missing)
        except LasskitError:
            continue
        for name, ok in zip(names, has):
            if ok:
                paths += [os.path.join(str(estimates_dir), name), os.path.join(str(split.root), "mixture", name)]
    return paths


def spearman(x, y) -> float:
    """Spearman's rho: Pearson's correlation of the average ranks (ties share their mean rank)."""
    from scipy.stats import rankdata

    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(x) < 3:
        return math.nan
    return float(_pearson_rows(rankdata(x)[None], rankdata(y)[None])[0])


def _pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (a * b).sum(axis=1) / np.where(den > 0, den, 1.0), np.nan)


def spearman_summary(x, y, *, seed: int = 0, resamples: int = 1000) -> dict:
    """``{spearman, ci95, count}`` over the rows where both are finite; the interval is the
    percentile bootstrap over resampled rows (the same draws as the SDR intervals)."""
    from scipy.stats import rankdata

    from lasskit.scoring.stats import _index_blocks

    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = len(x)
    rho = spearman(x, y)
    if n < 3 or not math.isfinite(rho):
        return {"spearman": rho, "ci95": [math.nan, math.nan], "count": n}
    rhos = np.empty(resamples)
    for start, idx in _index_blocks(n, seed, resamples):
        rhos[start:start + len(idx)] = _pearson_rows(rankdata(x[idx], axis=1), rankdata(y[idx], axis=1))
    finite = rhos[np.isfinite(rhos)]
    lo, hi = np.percentile(finite, [2.5, 97.5]) if len(finite) else (math.nan, math.nan)
    return {"spearman": rho, "ci95": [float(lo), float(hi)], "count": n}


def clap_summary(result: SplitScores, options: ScoreOptions, checkpoint: str) -> dict:
    """``summary.json``'s ``clap`` entry: path, weights, the tower's batch and device kind (an
    embedding's last bits depend on both), and on splits with references ``vs_sdri``."""
    device = getattr(getattr(clap_model(options), "audio", None), "device", None)
    entry = {"path": options.clap_path, "checkpoint": os.path.basename(checkpoint),
             "batch": options.clap_batch_size, "device": getattr(device, "type", None) or str(device or "cpu"),
             "metric": "CLAPScore (cosine of CLAP audio and text embeddings), Xiao et al. 2024"}
    if "sdri" in result.values and "clap_gain" in result.values:
        entry["vs_sdri"] = spearman_summary(result.values["clap_gain"], result.values["sdri"], seed=options.seed,
                                            resamples=options.resamples)
    return entry


def add_clap_columns(result: SplitScores, mixture_paths: list[str], estimate_paths: list[str],
                     options: ScoreOptions) -> None:
    """Add the CLAP columns to an SDR-scored ``result`` (rows aligned with the paths); a row CLAP
    cannot read keeps NaN there, counted in the notes."""
    values, failures, checkpoint = clap_columns(mixture_paths, estimate_paths, result.queries, options,
                                                desc=f"CLAP {result.model}/{result.split}")
    result.values.update(values)
    if failures:
        result.notes.append(f"CLAP failed for {len(failures)} mixture(s) (left empty), first: {failures[0][1]}")
    result.summary["metrics"].update({m: _summarize(values[m], options) for m in CLAP_METRICS})
    result.summary["clap"] = clap_summary(result, options, checkpoint)


def _summarize(values: np.ndarray, options: ScoreOptions) -> dict:
    from lasskit.scoring.stats import summarize

    return summarize(values, seed=options.seed, resamples=options.resamples)


def score_without_references(split, estimates_dir: Path, out_dir: Path | None, model: str, options: ScoreOptions,
                             write: bool = True) -> SplitScores:
    """CLAP-only scores of ``model``'s estimates on a split without references (see the module doc)."""
    from lasskit.scoring.breakdowns import _check_breakdowns, breakdown
    from lasskit.scoring.reading import _name_list, check_provenance, match_estimates
    from lasskit.scoring.reports import _summary, write_results

    start = time.perf_counter()
    _check_breakdowns(split, options.by)
    frame = split.frame
    names, queries = frame["mixture"].tolist(), frame["query"].tolist()
    has, missing = match_estimates(names, estimates_dir, split.name, options.allow_missing)
    keep = [i for i, ok in enumerate(has) if ok]
    root, est_root = str(split.root), str(estimates_dir)
    mixture_paths = [os.path.join(root, "mixture", names[i]) for i in keep]
    estimate_paths = [os.path.join(est_root, names[i]) for i in keep]
    notes = check_provenance([names[i] for i in keep], mixture_paths, Path(estimates_dir),
                             Path(out_dir) if out_dir is not None else Path(estimates_dir))
    try:
        values, failures, checkpoint = clap_columns(mixture_paths, estimate_paths, [queries[i] for i in keep],
                                                    options, desc=f"CLAP {model}/{split.name}")
    except UsageError as exc:  # no weights or tokenizer: say why CLAP is needed here
        raise UsageError(f"{split.csv_path}: split {split.name} has no references, so only CLAP scores it: {exc}") \
            from None
    failed = {j for j, _ in failures}
    ok = [j for j in range(len(keep)) if j not in failed]
    notes = list(notes)
    if missing:
        notes.append(f"{len(missing)} of {len(names)} mixture(s) have no estimate (--allow-missing): "
                     f"{_name_list(missing, 5)}")
    if options.plot:
        notes.append("no plots: the split has no references (no SDRi)")
    snr_col = frame["snr"].tolist() if "snr" in frame.columns else [""] * len(frame)
    result = SplitScores(
        model=model, split=split.name, estimates_dir=Path(estimates_dir),
        out_dir=Path(out_dir) if out_dir is not None else Path(estimates_dir),
        names=[names[keep[j]] for j in ok], queries=[queries[keep[j]] for j in ok],
        snrs=[snr_col[keep[j]] for j in ok], labels=None,
        values={m: values[m][ok] for m in CLAP_METRICS}, summary={}, missing=missing,
        failures=[(names[keep[j]], reason) for j, reason in failures], notes=notes,
    )
    result.summary = _summary(result, options)
    result.summary["clap"] = clap_summary(result, options, checkpoint)
    for by in options.by:
        result.breakdowns[by] = breakdown(result, by, seed=options.seed, resamples=options.resamples)
    if write:
        write_results(result, replace(options, plot=False))
    else:
        result.out_dir = None
    result.seconds = time.perf_counter() - start
    return result
