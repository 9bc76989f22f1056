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
exactly as written (some real-evaluation queries have leading or trailing spaces).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from lasskit import SAMPLE_RATE
from lasskit.corpora.common import (
    ClipJob, ConvertTask, PrepareReport, convert_corpus, copy_or_convert, find_file,
)
from lasskit.errors import UsageError
from lasskit.failures import write_failures
from lasskit.parallel import run_parallel

VAL_CORPUS = "dcase2024_val"
FILE_COLUMNS = ("file_name", "filename", "wav", "fname", "mixture", "file")
QUERY_COLUMNS = ("query", "caption", "text")


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


def _pick(columns: list[str], candidates: tuple[str, ...], path: Path, what: str) -> str:
    lowered = {c.strip().lower(): c for c in columns}
    for cand in candidates:
        if cand in lowered:
            return lowered[cand]
    raise UsageError(f"{path}: no {what} column (looked for {', '.join(candidates)}; found {', '.join(columns)})")


def prepare_query_split(
    name: str, csv_path: Path, audio_dir: Path, split_dir: Path, *, jobs=None, overwrite=False,
    resampler="soxr",
) -> PrepareReport:
    """A split of given mixtures and queries (no references): convert audio, write mixtures.csv."""
    import pandas as pd

    from lasskit.splits import write_split_csv

    start = time.perf_counter()
    try:
        frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except Exception as exc:
        raise UsageError(f"{csv_path}: unreadable CSV ({exc})")
    file_col = _pick(list(frame.columns), FILE_COLUMNS, csv_path, "audio file")
    query_col = _pick(list(frame.columns), QUERY_COLUMNS, csv_path, "query")
    notes = [f"{csv_path.name}: audio from column '{file_col.strip()}', query from '{query_col.strip()}'"]
    rows, tasks, failures = [], [], []
    for i, r in enumerate(frame.to_dict("records"), start=2):
        fname = Path(r[file_col].strip()).name
        query = r[query_col]
        if not fname:
            failures.append((f"{csv_path.name} line {i}", "empty file name"))
            continue
        if not query.strip():
            failures.append((fname, f"{csv_path.name} line {i}: empty query"))
            continue
        out_name = str(Path(fname).with_suffix(".wav"))
        rows.append({"mixture": out_name, "query": query, "original_file": fname})
        tasks.append(ConvertTask(audio_dir / fname, split_dir / "mixture" / out_name, resampler, overwrite))
    outcomes = run_parallel(copy_or_convert, tasks, jobs, desc=f"prepare {name}")
    kept, seconds, skipped = [], 0.0, 0
    for row, task, outcome in zip(rows, tasks, outcomes):
        if outcome.ok:
            kept.append(row)
            seconds += outcome.value[0] / SAMPLE_RATE
            skipped += outcome.value[1]
        else:
            failures.append((str(task.source), outcome.error))
    table = pd.DataFrame(kept, columns=["mixture", "query", "original_file"])
    split_dir.mkdir(parents=True, exist_ok=True)
    write_split_csv(split_dir, table)
    write_failures(split_dir / "failures.csv", failures, keep_empty=True)
    return PrepareReport(name, "split", split_dir / "mixtures.csv", len(kept), seconds, failures, skipped,
                         time.perf_counter() - start, notes)


def prepare(src: Path, data_dir: Path, *, jobs=None, overwrite=False, resampler="soxr") -> list[PrepareReport]:
    """Prepare whatever parts of the official download are in ``src``."""
    from lasskit.official import build_from_official

    reports: list[PrepareReport] = []
    missing: list[str] = []
    splits_dir = data_dir / "splits"

    # validation clips -> corpus
    val_json = find_file(src, ("lass_validation.json",))
    val_dir = find_file(src, ("lass_validation",))
    items = read_validation_json(val_json) if val_json else []
    clips: dict[str, Path] = {}
    if val_dir is not None and val_dir.is_dir():
        clips = {p.stem: p for p in sorted(val_dir.glob("*.wav"))}
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
                labels=tags[index],
            ))
        notes = [f"{absent} clip(s) of lass_validation.json have no audio"] if absent else []
        reports.append(convert_corpus(VAL_CORPUS, jobs_list, data_dir / VAL_CORPUS, jobs=jobs,
                                      overwrite=overwrite, resampler=resampler, notes=notes))
    else:
        missing += [x for x, ok in (("lass_validation.json", val_json), ("lass_validation/", clips)) if not ok]

    # validation mixtures -> split val_synth
    synth_val = find_file(src, ("lass_synthetic_validation.csv",))
    if synth_val and clips:
        start = time.perf_counter()
        split_dir = splits_dir / "val_synth"
        table, failures, skipped, seconds = build_from_official(
            synth_val, clips, split_dir, labels=tags, jobs=jobs, overwrite=overwrite, resampler=resampler)
        write_failures(split_dir / "failures.csv", failures, keep_empty=True)
        reports.append(PrepareReport("val_synth", "split", split_dir / "mixtures.csv", len(table), seconds,
                                     failures, skipped, time.perf_counter() - start))
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
