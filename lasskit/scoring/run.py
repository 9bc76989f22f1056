"""Scoring one target (:func:`score_estimates`) and every target of a workspace (:func:`score_workspace`)."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np

from lasskit import provenance
from lasskit.errors import LasskitError, UsageError
from lasskit.scoring.breakdowns import _check_breakdowns, breakdown, compare_scores
from lasskit.scoring.reading import _bss_row, _name_list, _score_rows, check_provenance, match_estimates
from lasskit.scoring.reports import _summary, write_comparison, write_results
from lasskit.scoring.types import (
    BREAKDOWNS,
    BSS_METRIC,
    METRICS,
    ScoreOptions,
    ScoreRun,
    SplitScores,
    Target,
)


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
    if not split.has_references:  # reference-free: CLAP scores only
        from lasskit.scoring.clap import score_without_references

        return score_without_references(split, estimates_dir, out_dir, model, options, write)
    _check_breakdowns(split, options.by)
    frame = split.frame
    names, sources, queries = (frame[c].tolist() for c in ("mixture", "source", "query"))
    has, missing = match_estimates(names, estimates_dir, split.name, options.allow_missing)
    keep = [i for i, ok in enumerate(has) if ok]
    # plain strings: 9000 pathlib joins cost more than reading the files' headers
    root, est_root = str(split.root), str(estimates_dir)
    rows = [(os.path.join(root, "mixture", names[i]), os.path.join(root, sources[i]), os.path.join(est_root, names[i]))
            for i in keep]
    provenance_notes = check_provenance([names[i] for i in keep], [r[0] for r in rows], estimates_dir,
                                        Path(out_dir) if out_dir is not None else estimates_dir,
                                        [str(queries[i]) for i in keep])
    results = _score_rows(rows, options.trim, options.jobs, f"score {model}/{split.name}")

    labels_all = _labels_of(frame)
    ok_idx, ok_rows, vals, failures, trimmed, silent_ref, silent_est, downmixed = [], [], [], [], 0, 0, 0, 0
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
        downmixed += res[6]
    arr = np.array(vals, dtype=np.float64).reshape(-1, 3)
    values = {m: arr[:, k] for k, m in enumerate(METRICS)}
    notes = list(provenance_notes)
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
    if downmixed:
        notes.append(f"{downmixed} estimate(s) had several channels, averaged to mono before scoring (as the "
                     "organizers' librosa.load does); the challenge expects mono 16 kHz WAV")
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
    # what these scores were computed on: package compares it with the outputs it is about to report
    result.summary["estimates"] = {"count": len(keep), "digest": provenance.files_digest(
        estimates_dir, [names[i] for i in keep])}
    if options.clap:
        from lasskit.scoring.clap import add_clap_columns

        add_clap_columns(result, [r[0] for r in ok_rows], [r[2] for r in ok_rows], options)
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


def find_targets(
    ws,
    *,
    splits: list[str] | None = None,
    models: list[str] | None = None,
    estimates: Path | None = None,
    out: Path | None = None,
    clap: bool = False,
) -> tuple[list[Target], list[str]]:
    """The (model, split) pairs to score and notes on what was skipped.

    Default: every split with references that has outputs ``exp/<model>/<split>``, for every
    model in ``exp/`` (with ``clap``, splits without references too). ``splits``/``models`` restrict
    that (naming one that cannot be scored is a :class:`UsageError`; a named split without
    references is scored by CLAP alone). ``estimates``: one arbitrary folder scored against the one split given,
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
        read_split(split_dir)
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
            read_split(ws.split_dir(s))
        split_names = list(splits)
    else:
        split_names = []
        for s in ws.splits():
            split = read_split(ws.split_dir(s))
            if split.has_references or clap:
                split_names.append(s)
            elif any(ws.output_dir(m, s).is_dir() for m in (models or available_models)):
                notes.append(f"split {s}: skipped, it has no references (only its mixtures are known); "
                             f"--split {s} or --clap scores it with CLAP")
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


def score_workspace(
    ws,
    *,
    splits: list[str] | None = None,
    models: list[str] | None = None,
    estimates: Path | None = None,
    out: Path | None = None,
    compare: str | None = None,
    options: ScoreOptions = ScoreOptions(),
    shard=None,
) -> ScoreRun:
    """Score every target :func:`find_targets` picks; with ``compare``, pair each with that model.

    A target that cannot be scored (missing or extra estimates, ...) is recorded in
    ``run.errors`` and the others go on. ``compare`` scores the other model's outputs on the same
    split (in memory, without rewriting its files, unless it is scored in this run anyway) and
    writes ``compare_<other>.json`` next to each target's scores.

    The CLAP audio embeddings of every target are made first, in one plan
    (:func:`lasskit.scoring.clap.embed_audio`); ``shard`` (:func:`score_in_group`): this process's
    rank of a group, which embeds its share of them; only rank 0 then scores and writes.
    """
    from lasskit.distributed import ONE

    shard = shard or ONE
    for b in options.by:
        if b not in BREAKDOWNS:
            raise UsageError(f"--by {b}: unknown breakdown; use one of {', '.join(BREAKDOWNS)}")
    if options.resamples < 1:
        raise UsageError(f"--resamples {options.resamples}: must be at least 1")
    from lasskit.scoring import clap

    if options.clap_path not in clap.CLAP_PATHS:
        raise UsageError(f"--clap-path {options.clap_path}: use one of {', '.join(clap.CLAP_PATHS)}")
    targets, notes = find_targets(ws, splits=splits, models=models, estimates=estimates, out=out, clap=options.clap)
    clap.check_weights(targets, options)
    if compare is not None:
        if not (ws.exp_dir / compare).is_dir():
            raise UsageError(f"{ws.exp_dir / compare}: no outputs of model {compare!r} to compare with; "
                             f"run `lasskit separate --model {compare}` first")
        if all(t.model == compare for t in targets):
            raise UsageError(f"--compare {compare}: that is the model being scored; compare two different models")
    run = ScoreRun(notes=notes, targets=len(targets))
    before, ranks_before = dict(clap.EMBEDDING_COUNTS), dict(clap.RANK_COUNTS)
    sources = clap.clap_sources(targets, options, compare, ws)
    if sources:  # the same batches on any number of processes: the same bits
        clap.embed_audio(sources, options, shard, desc="CLAP audio")
    if not shard.lead:
        return run
    for t in targets:
        try:
            run.results.append(score_estimates(t.split_dir, t.estimates_dir, t.out_dir, model=t.model, options=options))
        except LasskitError as exc:
            run.errors.append((t.model, t.split, exc))
    if compare is not None:
        _compare_all(ws, run, compare, options)
    run.clap_embeddings = {"computed": clap.EMBEDDING_COUNTS["embedded"] - before["embedded"],
                           "cached": clap.EMBEDDING_COUNTS["cached"] - before["cached"]}
    if shard.world > 1:
        run.clap_embeddings["by_rank"] = [clap.RANK_COUNTS.get(r, 0) - ranks_before.get(r, 0)
                                          for r in range(shard.world)]
    return run


def score_in_group(workspace: str, **kwargs) -> ScoreRun:
    """:func:`score_workspace` as one process of a group (``score --devices N``, torchrun, srun;
    :mod:`lasskit.distributed`): the ranks share the CLAP audio embeddings, rank 0 scores, writes
    and returns the run (the others an empty one)."""
    from dataclasses import replace

    from lasskit.distributed import ONE, env_shard, init_group
    from lasskit.workspace import Workspace

    shard = env_shard() or ONE
    options = kwargs.pop("options", ScoreOptions())
    if shard.world > 1:
        device = str(options.device or "auto").strip().lower()
        if device == "auto":
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        options = replace(options, device=init_group(shard, device))
    return score_workspace(Workspace.open(workspace), options=options, shard=shard, **kwargs)


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
