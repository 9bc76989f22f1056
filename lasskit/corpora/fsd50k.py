"""FSD50K: ``FSD50K.dev_audio/``, ``FSD50K.eval_audio/`` and ``FSD50K.ground_truth/``.

``dev.csv`` is ``fname,labels,mids,split`` and ``eval.csv`` is ``fname,labels,mids``, with the
labels comma-separated inside one quoted field. Labels are kept in words (underscores become
spaces: ``Electric_guitar`` -> ``Electric guitar``). Splits: ``train``/``val`` from dev.csv,
``eval``. Captions come from the organizers' generated-caption JSON files
(``{"data": [{"wav": path, "caption": text}]}``, matched on the file's base name), else one
caption is made from the labels. An FSD50K ``fname`` is the clip's Freesound sound id: it is
kept as ``freesound_id``.
"""

from __future__ import annotations

import json
from pathlib import Path

from lasskit.corpora.common import (
    ClipJob,
    PrepareReport,
    caption_from_labels,
    convert_corpus,
    find_file,
    list_audio,
)
from lasskit.errors import UsageError

PARTS = (("FSD50K.dev_audio", "dev.csv"), ("FSD50K.eval_audio", "eval.csv"))


def read_ground_truth(path: Path, default_split: str | None) -> dict[str, tuple[list[str], str]]:
    """``fname`` -> (labels in words, split)."""
    import csv

    from lasskit.csvfile import data_line, open_csv

    try:
        with open_csv(path) as fh:
            reader = csv.DictReader(fh)
            columns = [c.lstrip("\ufeff") for c in (reader.fieldnames or [])]
            reader.fieldnames = columns
            records = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"{path}: unreadable ground-truth CSV ({exc})")
    if "fname" not in columns or "labels" not in columns:
        raise UsageError(f"{path}: expected columns fname,labels,mids[,split]")
    out = {}
    for i, row in enumerate(records, start=2):
        if row.get("fname") is None or row.get("labels") is None:
            raise UsageError(f"{path} line {data_line(path, i - 2)}: too few fields; expected fname,labels,mids[,split]")
        split = row.get("split") or default_split
        if not split:
            raise UsageError(f"{path} line {data_line(path, i - 2)}: no split for {row['fname']}")
        labels = [x.strip().replace("_", " ") for x in row["labels"].split(",") if x.strip()]
        out[str(row["fname"])] = (labels, split)
    return out


def read_generated_captions(paths: list[Path]) -> dict[str, list[str]]:
    """Base name (no extension) -> captions, from the organizers' caption JSON files."""
    captions: dict[str, list[str]] = {}
    for path in paths:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            entries = data["data"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"{path}: expected JSON {{\"data\": [{{\"wav\": ..., \"caption\": ...}}]}} ({exc})")
        for entry in entries:
            try:
                key = Path(str(entry["wav"])).stem
                text = str(entry["caption"]).strip()
            except (KeyError, TypeError):
                raise UsageError(f"{path}: each entry needs 'wav' and 'caption'")
            if text:
                captions.setdefault(key, []).append(text)
    return captions


def scan(src: Path, captions_files: list[Path] | None = None) -> tuple[list[ClipJob], list[str]]:
    notes: list[str] = []
    captions = read_generated_captions(list(captions_files or []))
    jobs = []
    for folder, gt_name in PARTS:
        audio_dir = find_file(src, (folder,))
        gt = find_file(src, (f"FSD50K.ground_truth/{gt_name}", gt_name))
        if audio_dir is None or not audio_dir.is_dir():
            notes.append(f"missing {folder}/")
            continue
        if gt is None:
            notes.append(f"missing FSD50K.ground_truth/{gt_name}: {folder} skipped")
            continue
        truth = read_ground_truth(gt, "eval" if gt_name == "eval.csv" else None)
        unlisted = 0
        for path in list_audio(audio_dir):
            if path.stem not in truth:
                unlisted += 1
                continue
            labels, split = truth[path.stem]
            jobs.append(ClipJob(
                id=path.stem, source=path, audio=f"audio/{folder}/{path.stem}.wav", dataset="fsd50k",
                split=split, labels=labels, freesound_id=path.stem if path.stem.isdigit() else "",
                captions=captions.get(path.stem) or [caption_from_labels(labels)],
            ))
        if unlisted:
            notes.append(f"{unlisted} file(s) in {folder}/ are not in {gt_name} and were skipped")
        present = {j.id for j in jobs}
        absent = sorted(name for name in truth if name not in present)
        if absent:
            notes.append(f"{len(absent)} clip(s) listed in {gt_name} have no audio file in {folder}/ (e.g. "
                         f"{absent[0]}.wav): a partial download? they are not in the manifest")
    if captions_files:
        matched = sum(1 for j in jobs if j.id in captions)
        notes.append(f"generated captions matched {matched} of {len(jobs)} clips")
    return jobs, notes


def prepare(src: Path, data_dir: Path, *, name: str = "fsd50k", captions: list[Path] | None = None,
            jobs=None, overwrite=False, resampler="soxr") -> list[PrepareReport]:
    """Prepare FSD50K from ``src`` into ``data_dir/<name>``."""
    clip_jobs, notes = scan(src, captions)
    if not clip_jobs:
        raise UsageError(f"{src}: no FSD50K audio found; expected FSD50K.dev_audio/ or FSD50K.eval_audio/ and FSD50K.ground_truth/")
    return [convert_corpus(name, clip_jobs, data_dir / name, jobs=jobs, overwrite=overwrite,
                           resampler=resampler, notes=notes)]
