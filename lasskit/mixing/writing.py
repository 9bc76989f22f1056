"""Writing a planned mixture set to disk (``lasskit mix``): :func:`make_mixtures`, a short sequence of
named steps over the row writer (:mod:`~lasskit.mixing.rows`), the split folder's state
(:mod:`~lasskit.mixing.splitdir`) and the report (:mod:`~lasskit.mixing.report`).

A re-run (the same command, or ``--overwrite`` with other options) rewrites exactly the rows whose
fingerprint changed or whose files changed on disk, deletes the files of rows that are no longer
in the set, and says how many it redid and why; an unchanged re-run decodes nothing (clip activity
and digests come from the activity cache in ``data/splits/.cache``, gains from the ledger).
``mixtures.csv`` is removed before any file of a changed set is written and written again last,
so a folder never pairs an old table with new audio, or the reverse.

The names that moved to :mod:`~lasskit.mixing.rows`, :mod:`~lasskit.mixing.splitdir` and
:mod:`~lasskit.mixing.report` are still importable from here.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from lasskit.atomic import write_text_if_changed
from lasskit.errors import UsageError
from lasskit.failures import write_failures
from lasskit.mixing.activity import ACTIVITY_CACHE, ActivityCache, scan_clips
from lasskit.mixing.planning import PlannedRow, Planner, plan_mixtures, prepare_planner
from lasskit.mixing.report import MixReport, count_rows, pool_notes
from lasskit.mixing.rows import (  # noqa: F401 - re-exported: their old home
    MIX_COLUMNS,
    OFFICIAL_HEADER,
    OUTPUTS,
    ROW_SETTINGS,
    WRITER_VERSION,
    WriteJob,
    clip_length,
    csv_text,
    official_csv_text,
    read_segment,
    rebuild_row,
    row_fingerprint,
    row_record,
    write_float_wav,
    write_row,
)
from lasskit.mixing.spec import MixSpec
from lasskit.mixing.splitdir import (  # noqa: F401 - re-exported: their old home
    MIX_JSON,
    check_split_dir,
    clear_split,
    file_sha,
    mixture_fingerprints,
    official_files,
    official_record,
    read_state,
    remove_split_leftovers,
    retire_official_csvs,
    stale_files,
    state_json,
)
from lasskit.official import mixture_name
from lasskit.parallel import run_parallel


def make_mixtures(
    split_dir: str | os.PathLike,
    spec: MixSpec,
    targets: Sequence[str | os.PathLike],
    noises: Sequence[str | os.PathLike] | None = None,
    *,
    splits: Sequence[str] = (),
    datasets: Sequence[str] = (),
    ontology: str | os.PathLike | None = None,
    official_csv: str | os.PathLike | None = None,
    jobs: int | None = None,
    overwrite: bool = False,
    named: Sequence[str | os.PathLike] | None = None,
    reference: Sequence[str | os.PathLike] = (),
    cache_dir: str | os.PathLike | None = None,
) -> MixReport:
    """Write a class-disjoint mixture set to ``split_dir`` (``mixture/``, ``source/``, ``noise/``, CSVs).

    ``targets`` and ``noises`` are manifest paths (``noises`` defaults to ``targets``); ``splits``
    and ``datasets`` keep only clips whose manifest split/dataset is listed. The data rules of
    :mod:`lasskit.mixing.pool` apply: held-out (val/eval) clips only when ``splits`` names
    their split, the challenge's corpora only when named (``named``: the manifests the user named,
    None: all of them); ``reference`` manifests add challenge clips whose recordings training
    mixtures must not use. ``ontology`` is an AudioSet ``ontology.json``.

    A folder made by the same command is brought up to date (only changed rows are rewritten);
    one made with other options is refused unless ``overwrite``, and then replaced row by row.
    ``official_csv`` also writes the organizers' ``source, noise, snr, caption`` file there.
    ``cache_dir`` keeps the clips' activity and digests between runs (default ``<split_dir>/../.cache``,
    i.e. ``data/splits/.cache``).
    """
    start = time.perf_counter()
    spec.validate()
    split_dir = Path(split_dir)
    target_paths = [Path(p).resolve() for p in targets]
    noise_paths = [Path(p).resolve() for p in (noises if noises else targets)]
    named_paths = None if named is None else [Path(p).resolve() for p in named]
    reference_paths = sorted({Path(p).resolve() for p in reference} - set(target_paths) - set(noise_paths))
    if not target_paths:
        raise UsageError("no manifest to draw targets from; run `lasskit prepare` or pass MANIFEST")
    if ontology is not None and not Path(ontology).is_file():
        raise UsageError(f"{ontology}: no such ontology file; pass AudioSet's ontology.json to --ontology")
    options = {
        "spec": asdict(spec), "split": split_dir.name,
        "targets": [str(p) for p in target_paths], "noises": [str(p) for p in noise_paths],
        "splits": sorted(splits), "datasets": sorted(datasets),
        "ontology": str(Path(ontology).resolve()) if ontology else None,
        "named": None if named_paths is None else sorted(str(p) for p in named_paths),
        "official_csv": str(Path(official_csv).resolve()) if official_csv else None,
    }
    mode = check_split_dir(split_dir, options, overwrite)
    earlier_csvs = official_files(read_state(split_dir))
    inputs = _input_digests([*target_paths, *noise_paths, *reference_paths], ontology)

    cache_dir = split_dir.parent / ACTIVITY_CACHE if cache_dir is None else Path(cache_dir)
    prepared = prepare_planner(spec, target_paths, noise_paths, splits=splits, datasets=datasets,
                               ontology=ontology, named=named_paths, reference=reference_paths, jobs=jobs,
                               cache_dir=cache_dir)
    planner = prepared.planner
    report = MixReport(split_dir, targets_available=prepared.targets_available,
                       noises_available=prepared.noises_available, pool=prepared.pool,
                       failures=list(prepared.failures), notes=list(prepared.notes),
                       min_active=spec.min_active_seconds)
    rows = _plan_rows(planner, spec, prepared.skipped, report, ActivityCache(spec.silence_db, cache_dir), jobs)
    if official_csv:
        _check_official(rows, planner, spec, official_csv)
    names, prints = _name_rows(rows, planner, spec, split_dir)

    from lasskit.provenance import Ledger

    if mode == "replace" and not (split_dir / MIX_JSON).is_file():
        clear_split(split_dir)  # a split mix did not make (no ledger): nothing in it can be reused
    ledger = Ledger(split_dir)
    redo, reasons = _rows_to_redo(ledger, split_dir, names, prints)
    keep = {f"{sub}/{n}" for n in names for sub in OUTPUTS}
    stale = [rec for rec in ledger.records if rec not in keep]
    stale_paths = stale_files(split_dir, set(names))
    if not redo and not stale and not stale_paths:
        records = [row_record(n, r, ledger.get(f"mixture/{n}").extra, spec, fp, planner)
                   for n, r, fp in zip(names, rows, prints)]
        _dc_note(report, ledger, names)
        text = csv_text(records)
        current = split_dir / "mixtures.csv"
        if current.is_file() and current.read_bytes() == text.encode("utf-8"):
            _finish(report, rows, records, spec, split_dir, options, inputs, official_csv, text, start,
                    written=0, earlier_csvs=earlier_csvs, activity=planner.activity)
            return report

    _clear_changed(split_dir, ledger, names, redo, stale, stale_paths,
                   state_json(options, inputs, None, report, official_files=earlier_csvs), report)
    failed = _write_rows(split_dir, ledger, planner, spec, rows, names, prints, redo, jobs, report)
    report.redone = dict(sorted(reasons.items()))
    write_failures(split_dir / "failures.csv", report.failures, keep_empty=True)
    if failed:  # rows failed: leave the split unfinished so that a re-run retries them
        report.complete = False
        report.rows = len(rows) - len(failed)
        report.written = len(redo) - len(failed)
        report.resumed = len(rows) - len(redo)
        report.seconds = time.perf_counter() - start
        return report
    records = [row_record(n, r, ledger.get(f"mixture/{n}").extra, spec, fp, planner)
               for n, r, fp in zip(names, rows, prints)]
    _dc_note(report, ledger, names)
    _finish(report, rows, records, spec, split_dir, options, inputs, official_csv, csv_text(records), start,
            written=len(redo), earlier_csvs=earlier_csvs, activity=planner.activity)
    return report


def _dc_note(report: MixReport, ledger, names: list[str]) -> None:
    """Count the rows whose target or noise was levelled without its DC offset (lasskit.audible)."""
    flags = [(ledger.get(f"mixture/{n}").extra or {}).get("dc_levelled") or [0, 0] for n in names]
    rows = sum(1 for f in flags if any(f))
    if rows:
        report.notes.append(f"{rows} of {len(names)} row(s) have a target or noise that is mostly a DC offset "
                            f"(source {sum(f[0] for f in flags)}, noise {sum(f[1] for f in flags)}): their SNR is "
                            "set on the signal without the offset (what can be heard)")


def _input_digests(paths: Sequence[Path], ontology) -> dict[str, str]:
    """Content digest of every input manifest (and the ontology): part of ``mix.json``."""
    inputs = {str(p): file_sha(p) for p in dict.fromkeys(paths) if p.is_file()}
    if ontology:
        inputs[str(Path(ontology).resolve())] = file_sha(Path(ontology))
    return inputs


def _plan_rows(planner: Planner, spec: MixSpec, skipped: Counter, report: MixReport, cache: ActivityCache,
               jobs: int | None) -> list[PlannedRow]:
    """Every row with its offsets; clips found silent or unreadable while planning, and targets
    without a class-disjoint noise, counted in the report (a UsageError when no row is possible)."""
    rows, why = plan_mixtures(planner, lambda clips: scan_clips(clips, spec.silence_db, jobs, cache))
    for key, reason in sorted(why.items()):
        skipped["silent clip" if reason == "silent" else "unreadable audio"] += 1
        if reason != "silent":
            report.failures.append((key, reason))
    report.without_noise = [t.id for t in planner.without_noise]
    if planner.without_noise:
        skipped["target with no class-disjoint noise"] += len(planner.without_noise)
    report.skipped = dict(sorted(skipped.items()))
    pool_notes(report)
    if not rows:
        raise UsageError("no mixture possible: no target has a usable noise that shares no class with it "
                         f"({len(planner.without_noise)} target(s) without one, e.g. {', '.join(report.without_noise[:3])})")
    return rows


def _name_rows(rows: list[PlannedRow], planner: Planner, spec: MixSpec, split_dir: Path) -> tuple[list[str], list[str]]:
    """Each row's mixture file name and fingerprint."""
    total = len(rows)
    names = [mixture_name(split_dir.name, r.index, total) for r in rows]
    digests = {k: a.digest for k, a in planner.activity.items()}
    prints = [row_fingerprint(digests[r.target.key], digests[r.noise.key], r.target_offset, r.noise_offset,
                              spec.length, r.snr) for r in rows]
    return names, prints


def _rows_to_redo(ledger, split_dir: Path, names: list[str], prints: list[str]) -> tuple[list[int], Counter]:
    """The rows whose files are not current (by the ledger), and why, counted."""
    from lasskit.provenance import settings_id

    redo: list[int] = []
    reasons: Counter = Counter()
    row_settings = settings_id(ROW_SETTINGS)
    root = str(split_dir)
    for i, (name, fp) in enumerate(zip(names, prints)):
        why_row = None
        for sub in OUTPUTS:
            rec = ledger.records.get(f"{sub}/{name}")
            if rec is not None and rec.input == fp and rec.settings == row_settings:
                try:  # Ledger.check's test, without rebuilding the settings id 9000 times
                    st = os.stat(os.path.join(root, sub, name))
                    if st.st_size == rec.size and st.st_mtime_ns == rec.mtime_ns:
                        continue
                except OSError:
                    pass
            why_row = ledger.check(f"{sub}/{name}", split_dir / sub / name, fp, ROW_SETTINGS)
            if why_row is not None:
                break
        if why_row is not None:
            redo.append(i)
            reasons[why_row.split(":")[0]] += 1
    return redo, reasons


def _clear_changed(split_dir: Path, ledger, names: list[str], redo: list[int], stale: list[str],
                   stale_paths: list[Path], state_text: str, report: MixReport) -> None:
    """Something changes: the old table goes first (so that no reader pairs it with new audio),
    then leftovers, the files of rows no longer in the set, and the records of rows to redo."""
    split_dir.mkdir(parents=True, exist_ok=True)
    (split_dir / "mixtures.csv").unlink(missing_ok=True)
    write_text_if_changed(split_dir / MIX_JSON, state_text)
    remove_split_leftovers(split_dir)
    for rec in stale:
        ledger.forget(rec)
    for p in stale_paths:
        p.unlink(missing_ok=True)
    report.removed = len(stale_paths)
    for sub in OUTPUTS:
        (split_dir / sub).mkdir(exist_ok=True)
    for i in redo:  # forget first: a file rewritten now but not recorded is redone next time
        for sub in OUTPUTS:
            ledger.forget(f"{sub}/{names[i]}")
    if stale or redo:
        ledger.save()


def _write_rows(split_dir: Path, ledger, planner: Planner, spec: MixSpec, rows: list[PlannedRow], names: list[str],
                prints: list[str], redo: list[int], jobs: int | None, report: MixReport) -> set[int]:
    """Write the rows to redo in worker processes and record each in the ledger; the failed rows."""
    hop = spec.hop
    width = -(-spec.length // hop)
    jobs_list = []
    for i in redo:
        r = rows[i]
        a = planner.activity[r.target.key]
        first = r.target_offset // hop
        mask = np.zeros(width, dtype=bool)
        part = a.active[first:first + width]
        mask[:len(part)] = part
        jobs_list.append(WriteJob(names[i], str(r.target.path), r.target_offset, str(r.noise.path), r.noise_offset,
                                  spec.length, r.snr, str(split_dir), np.packbits(mask).tobytes(), hop))
    outcomes = run_parallel(write_row, jobs_list, jobs, desc=f"mix {split_dir.name}", unit="mixture") if jobs_list else []
    failed: set[int] = set()
    for i, o in zip(redo, outcomes):
        if not o.ok:
            report.failures.append((names[i], o.error))
            failed.add(i)
            continue
        for sub in OUTPUTS:
            ledger.record(f"{sub}/{names[i]}", split_dir / sub / names[i], prints[i], ROW_SETTINGS,
                          extra=o.value if sub == "mixture" else None)
    ledger.save()
    return failed


def _finish(report: MixReport, rows: list[PlannedRow], records: list[dict], spec: MixSpec, split_dir: Path,
            options: dict, inputs: dict, official_csv, text: str, start: float, written: int,
            earlier_csvs: Sequence[dict] = (), activity: dict | None = None) -> None:
    """Counts and statistics, then the official CSV, mixtures.csv and mix.json (in that order)."""
    count_rows(report, rows, records, spec, written, activity)
    write_failures(split_dir / "failures.csv", report.failures, keep_empty=True)
    official_text = official_csv_text(rows, spec)
    files: list[dict] = []
    if official_csv:
        report.official_csv = Path(official_csv)
        write_text_if_changed(report.official_csv, official_text)
        files.append(official_record(report.official_csv, official_text.encode("utf-8")))
    files += retire_official_csvs(earlier_csvs, {f["path"] for f in files}, official_text, report)
    write_text_if_changed(split_dir / "mixtures.csv", text)
    write_text_if_changed(split_dir / MIX_JSON, state_json(options, inputs, report, report, official_files=files))
    report.seconds = time.perf_counter() - start


def _check_official(rows: list[PlannedRow], planner, spec: MixSpec, official_csv) -> None:
    """Refuse --official-csv unless the organizers' formula rebuilds every row (module doc of
    :mod:`~lasskit.mixing.splitdir`)."""
    bad = 0
    for r in rows:
        t = planner.activity[r.target.key]
        if t.num_samples != spec.length or r.target_offset != 0 or r.noise_offset != 0:
            bad += 1
    if bad:
        raise UsageError(
            f"--official-csv {official_csv}: {bad} of {len(rows)} rows crop or pad their clips (targets not exactly "
            f"{spec.duration:g} s, or noises cropped after their start), which the organizers' source, noise, snr, "
            "caption CSV cannot describe; leave --official-csv out (mixtures.csv's offsets and gains rebuild every "
            "row exactly) or mix clips of exactly --duration")


__all__ = [
    "MIX_COLUMNS", "MIX_JSON", "OFFICIAL_HEADER", "MixReport", "WriteJob", "make_mixtures", "mixture_fingerprints",
    "official_csv_text", "rebuild_row", "row_fingerprint", "write_float_wav",
]
