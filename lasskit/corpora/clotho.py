"""Clotho v2: ``development/``, ``validation/``, ``evaluation/`` and ``clotho_captions_<split>.csv``.

Each captions CSV has ``file_name, caption_1 .. caption_5``: five captions a clip, no labels.
Splits become ``train``, ``val`` and ``eval``; a clip's id is ``<folder>/<file stem>``.
"""

from __future__ import annotations

from pathlib import Path

from lasskit.audio import AUDIO_EXTENSIONS
from lasskit.corpora.common import ClipJob, PrepareReport, convert_corpus, find_file
from lasskit.errors import UsageError

SPLITS = {"development": "train", "validation": "val", "evaluation": "eval"}


def read_captions(path: Path) -> dict[str, list[str]]:
    """``file_name`` -> its non-empty captions, from a ``clotho_captions_<split>.csv``."""
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except Exception as exc:
        raise UsageError(f"{path}: unreadable captions CSV ({exc})")
    cols = [c for c in frame.columns if c.startswith("caption")]
    if "file_name" not in frame.columns or not cols:
        raise UsageError(f"{path}: expected columns file_name, caption_1 .. caption_5")
    return {
        row["file_name"]: [row[c].strip() for c in cols if row[c].strip()]
        for _, row in frame.iterrows()
    }


def scan(src: Path) -> tuple[list[ClipJob], list[str]]:
    """Clip jobs for every audio file of the Clotho folders present, and notes on what is missing."""
    jobs, notes = [], []
    for folder, split in SPLITS.items():
        audio_dir = src / folder
        captions_csv = find_file(src, (f"clotho_captions_{folder}.csv",))
        if not audio_dir.is_dir():
            notes.append(f"missing {folder}/ (split {split})")
            continue
        captions = read_captions(captions_csv) if captions_csv else {}
        if captions_csv is None:
            notes.append(f"missing clotho_captions_{folder}.csv: {folder} clips have no captions")
        for path in sorted(audio_dir.rglob("*")):
            if path.suffix.lower() not in AUDIO_EXTENSIONS or not path.is_file():
                continue
            rel = path.relative_to(src).with_suffix(".wav")
            jobs.append(ClipJob(
                id=str(rel.with_suffix("").as_posix()), source=path, audio=f"audio/{rel.as_posix()}",
                dataset="clotho", split=split, captions=captions.get(path.name, []),
            ))
        listed = set(captions) - {p.source.name for p in jobs if p.split == split}
        if listed:
            notes.append(f"{len(listed)} clip(s) in clotho_captions_{folder}.csv have no audio file")
    return jobs, notes


def prepare(src: Path, data_dir: Path, *, name: str = "clotho", jobs=None, overwrite=False,
            resampler="soxr") -> list[PrepareReport]:
    """Prepare Clotho v2 from ``src`` into ``data_dir/<name>``."""
    clip_jobs, notes = scan(src)
    if not clip_jobs:
        raise UsageError(f"{src}: no Clotho audio found; expected development/, validation/ or evaluation/")
    return [convert_corpus(name, clip_jobs, data_dir / name, jobs=jobs, overwrite=overwrite,
                           resampler=resampler, notes=notes)]
