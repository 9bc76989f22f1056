"""The official DCASE 2024 Task 9 validation and evaluation downloads.

Raw layout (any subset may be present; what is missing is named in the report):

- ``lass_validation/<Index>.wav`` + ``lass_validation.json`` -> corpus ``dcase2024_val``
  (tags as labels, 3 captions a clip, split ``val``);
- ``lass_synthetic_validation.csv`` (``source, noise, snr, caption``) -> split ``val_synth``:
  mixtures built with the organizers' formula (:func:`lasskit.official.official_mixture`), with the
  scaled reference and noise, all float32 WAV;
- ``lass_evaluation_synth/`` + ``lass_synthetic_evaluation.csv`` -> split ``eval_synth``;
- ``lass_evaluation_real/`` + ``lass_real_evaluation.csv`` (``file_name,query``) -> split
  ``eval_real`` (each (recording, query) row has its own file name).

Evaluation mixtures that are already 16 kHz mono WAV are copied byte for byte; queries are kept
exactly as written (some real-evaluation queries have leading or trailing spaces), and the
organizers' mixing CSV is read exactly as their evaluator reads it
(:func:`lasskit.official.read_official_rows`). ``freesound_id`` is the number before the first
``_`` of a validation or evaluation file name (``692211_12333864-hq`` -> ``692211``), where
there is one: in the corpus manifest, and as a column of the evaluation splits' mixtures.csv.
Every output is fingerprinted (see :mod:`lasskit.corpora.common`).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from lasskit import SAMPLE_RATE
from lasskit.corpora.common import (
    SOURCES_FILE,
    ClipJob,
    Output,
    PrepareReport,
    SourceChecksums,
    convert_corpus,
    convert_settings,
    find_file,
    finish_report,
    list_audio,
    run_conversions,
    stop_if_fatal,
)
from lasskit.errors import UsageError
from lasskit.failures import write_failures
from lasskit.provenance import summarize_reasons

VAL_CORPUS = "dcase2024_val"
FILE_COLUMNS = ("file_name", "filename", "wav", "fname", "mixture", "file")
QUERY_COLUMNS = ("query", "caption", "text")
FREESOUND_NAME = re.compile(r"^(\d+)_")


def read_validation_json(path: Path) -> list[dict]:
    """The validation metadata: a list of ``{"Index", "Tags", "Captions"}`` objects."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: unreadable JSON ({exc})")
    if not isinstance(data, list):
        raise UsageError(f"{path}: expected a JSON list of {{Index, Tags, Captions}} objects")
    for i, item in enumerate(data):
        if not isinstance(item, dict) or "Index" not in item:
            raise UsageError(f"{path}: item {i} has no 'Index'")
    return data


def freesound_id(name: str) -> str:
    """The Freesound sound id in an official file name: the number before the first ``_``
    (``692211_12333864-hq`` -> ``692211``); ``""`` when the name does not start that way."""
    m = FREESOUND_NAME.match(name)
    return m.group(1) if m else ""


def _pick(columns: list[str], candidates: tuple[str, ...], path: Path, what: str) -> int:
    lowered = {c.strip().lower(): i for i, c in reversed(list(enumerate(columns)))}
    for cand in candidates:
        if cand in lowered:
            return lowered[cand]
    raise UsageError(f"{path}: no {what} column (looked for {', '.join(candidates)}; found {', '.join(columns)})")


def read_query_csv(csv_path: Path) -> tuple[list[tuple[int, list[str]]], int, int, list[str]]:
    """Rows (line, fields) of an evaluation CSV, the file and query column indexes, and the header.

    Read with the csv module: every field exactly as written (queries keep their spaces).
    """
    from lasskit.official import read_csv_lines

    rows = read_csv_lines(csv_path, "fix the file or download it again")
    if not rows:
        raise UsageError(f"{csv_path}: empty file; expected a header such as file_name,query")
    header = [c.lstrip("\ufeff") for c in rows[0][1]]
    file_col = _pick(header, FILE_COLUMNS, csv_path, "audio file")
    query_col = _pick(header, QUERY_COLUMNS, csv_path, "query")
    return rows[1:], file_col, query_col, header


def prepare_query_split(
    name: str, csv_path: Path, audio_dir: Path, split_dir: Path, *, jobs=None, overwrite=False,
    resampler="soxr",
) -> PrepareReport:
    """A split of given mixtures and queries (no references): convert audio, write mixtures.csv.

    Mixtures that are 16 kHz mono WAV are copied byte for byte, others converted to float WAV;
    every output is fingerprinted like a corpus clip. A ``freesound_id`` column holds the number
    that starts a file name (``<id>_...``) where there is one.
    """
    import pandas as pd

    from lasskit.splits import write_split_csv

    start = time.perf_counter()
    table, file_col, query_col, header = read_query_csv(csv_path)
    notes = [f"{csv_path.name}: audio from column '{header[file_col].strip()}', query from '{header[query_col].strip()}'"]
    rows, outputs, failures = [], [], []
    for line, fields in table:
        if not fields:
            continue  # a blank line
        if len(fields) <= max(file_col, query_col):
            failures.append((f"{csv_path.name} line {line}", f"{len(fields)} field(s), expected {len(header)}"))
            continue
        fname = Path(fields[file_col].strip()).name
        query = fields[query_col]
        if not fname:
            failures.append((f"{csv_path.name} line {line}", "empty file name"))
            continue
        if not query.strip():
            failures.append((fname, f"{csv_path.name} line {line}: empty query"))
            continue
        out_name = str(Path(fname).with_suffix(".wav"))
        rows.append({"mixture": out_name, "query": query, "original_file": fname,
                     "freesound_id": freesound_id(fname)})
        outputs.append(Output(f"mixture/{out_name}", audio_dir / fname, split_dir / "mixture" / out_name))
    run = run_conversions(outputs, split_dir, convert_settings(resampler, "copy"), resampler=resampler,
                          mode="copy", jobs=jobs, overwrite=overwrite, desc=f"prepare {name}")
    failures += run.failures
    stop_if_fatal(run, split_dir / "failures.csv", failures, len(outputs))
    kept, seconds = [], 0.0
    for row, out in zip(rows, outputs):
        made = run.made.get(out.name)
        if made is not None:
            kept.append(row)
            seconds += made.num_samples / SAMPLE_RATE
    columns = ["mixture", "query", "original_file"] + (["freesound_id"] if any(r["freesound_id"] for r in kept) else [])
    frame = pd.DataFrame(kept, columns=columns)
    write_split_csv(split_dir, frame)
    write_failures(split_dir / "failures.csv", failures, keep_empty=True)
    report = PrepareReport(name, "split", split_dir / "mixtures.csv", len(kept), seconds, failures,
                           seconds=time.perf_counter() - start, notes=notes)
    finish_report(report, run, [], len(outputs))
    return report


def prepare(src: Path, data_dir: Path, *, jobs=None, overwrite=False, resampler="soxr") -> list[PrepareReport]:
    """Prepare whatever parts of the official download are in ``src``."""
    from lasskit.official import build_from_official

    reports: list[PrepareReport] = []
    missing: list[str] = []
    splits_dir = data_dir / "splits"
    # one digest cache for the validation clips: the corpus and val_synth hash them once
    val_cache = SourceChecksums(data_dir / VAL_CORPUS / SOURCES_FILE)

    # validation clips -> corpus
    val_json = find_file(src, ("lass_validation.json",))
    val_dir = find_file(src, ("lass_validation",))
    items = read_validation_json(val_json) if val_json else []
    clips: dict[str, Path] = {}
    if val_dir is not None and val_dir.is_dir():
        clips = {p.stem: p for p in list_audio(val_dir)}
    tags = {str(it["Index"]): [str(t) for t in it.get("Tags", [])] for it in items}
    if val_json and clips:
        jobs_list, absent = [], 0
        for it in items:
            index = str(it["Index"])
            if index not in clips:
                absent += 1
                continue
            jobs_list.append(ClipJob(
                id=index, source=clips[index], audio=f"audio/{index}.wav", dataset="dcase2024_val", split="val",
                captions=[str(c).strip() for c in it.get("Captions", []) if str(c).strip()],
                labels=tags[index], freesound_id=freesound_id(index),
            ))
        notes = [f"{absent} clip(s) of lass_validation.json have no audio"] if absent else []
        reports.append(convert_corpus(VAL_CORPUS, jobs_list, data_dir / VAL_CORPUS, jobs=jobs,
                                      overwrite=overwrite, resampler=resampler, notes=notes, cache=val_cache))
    else:
        missing += [x for x, ok in (("lass_validation.json", val_json), ("lass_validation/", clips)) if not ok]

    # validation mixtures -> split val_synth
    synth_val = find_file(src, ("lass_synthetic_validation.csv",))
    if synth_val and clips:
        start = time.perf_counter()
        split_dir = splits_dir / "val_synth"
        made: dict = {}
        table, failures, skipped, seconds = build_from_official(
            synth_val, clips, split_dir, labels=tags, jobs=jobs, overwrite=overwrite, resampler=resampler,
            cache=val_cache, report=made)
        val_cache.save()
        write_failures(split_dir / "failures.csv", failures, keep_empty=True)
        report = PrepareReport("val_synth", "split", split_dir / "mixtures.csv", len(table), seconds,
                               failures, skipped, time.perf_counter() - start, made=made.get("made", {}))
        said = summarize_reasons(report.made, len(table) + len(failures))
        report.notes += [said] if said else []
        if made.get("leftovers"):
            report.notes.append(f"removed {made['leftovers']} temporary file(s) left by an interrupted run")
        reports.append(report)
    elif not synth_val:
        missing.append("lass_synthetic_validation.csv")

    # evaluation sets -> eval_synth, eval_real
    for split, folder, csv_names in (
        ("eval_synth", "lass_evaluation_synth", ("lass_synthetic_evaluation.csv", "lass_evaluation_synth.csv")),
        ("eval_real", "lass_evaluation_real", ("lass_real_evaluation.csv", "lass_evaluation_real.csv")),
    ):
        audio_dir = find_file(src, (folder,))
        csv_path = find_file(src, csv_names)
        if audio_dir is None or csv_path is None:
            missing += [x for x, ok in ((f"{folder}/", audio_dir), (csv_names[0], csv_path)) if ok is None]
            continue
        reports.append(prepare_query_split(split, csv_path, audio_dir, splits_dir / split, jobs=jobs,
                                           overwrite=overwrite, resampler=resampler))
    if not reports:
        raise UsageError(
            f"{src}: no part of the DCASE 2024 download found (looked for lass_validation/ + "
            "lass_validation.json, lass_synthetic_validation.csv, lass_evaluation_synth/, lass_evaluation_real/)"
        )
    if missing:
        reports[0].notes.append("not in the download: " + ", ".join(missing))
    return reports
