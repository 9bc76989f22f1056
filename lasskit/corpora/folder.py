"""Any folder tree of audio, with an optional metadata CSV.

The CSV (``--metadata FILE``) has a ``file`` column (path relative to the folder, or a base
name) and any of ``caption`` (one text), ``captions`` and ``labels`` (JSON lists, or texts
separated by ``;``/``,`` respectively) and ``split``. A clip's id is its relative path without
extension; without metadata it has no captions or labels.
"""

from __future__ import annotations

import json
from pathlib import Path

from lasskit.audio import find_audio
from lasskit.corpora.common import ClipJob, PrepareReport, caption_from_labels, convert_corpus
from lasskit.errors import UsageError


def _list(value: str, sep: str) -> list[str]:
    value = (value or "").strip()
    if not value:
        return []
    if value.startswith("["):
        try:
            parsed = json.loads(value)
            return [str(x).strip() for x in parsed if str(x).strip()]
        except ValueError:
            pass
    return [x.strip() for x in value.split(sep) if x.strip()]


def read_metadata(path: Path) -> dict[str, dict]:
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:
        raise UsageError(f"{path}: unreadable metadata CSV ({exc})")
    if "file" not in frame.columns:
        raise UsageError(f"{path}: metadata CSV needs a 'file' column (path relative to the folder)")
    out = {}
    for row in frame.to_dict("records"):
        captions = _list(row.get("captions", ""), ";") + _list(row.get("caption", ""), "\n")
        out[row["file"]] = {"captions": captions, "labels": _list(row.get("labels", ""), ","),
                            "split": row.get("split", "")}
    return out


def prepare(src: Path, data_dir: Path, *, name: str | None = None, metadata: Path | None = None,
            jobs=None, overwrite=False, resampler="soxr") -> list[PrepareReport]:
    """Prepare every audio file under ``src`` into ``data_dir/<name>`` (default: the folder's name)."""
    name = name or src.resolve().name
    meta = read_metadata(metadata) if metadata else {}
    by_stem = {Path(k).name: v for k, v in meta.items()}
    clip_jobs, notes = [], []
    for path in find_audio(src):
        rel = path.relative_to(src)
        m = meta.get(rel.as_posix()) or by_stem.get(path.name) or {}
        labels = m.get("labels", [])
        captions = m.get("captions") or ([caption_from_labels(labels)] if labels else [])
        clip_jobs.append(ClipJob(
            id=rel.with_suffix("").as_posix(), source=path, audio=f"audio/{rel.with_suffix('.wav').as_posix()}",
            dataset=name, split=m.get("split", ""), captions=captions, labels=labels,
        ))
    if not clip_jobs:
        raise UsageError(f"{src}: no audio files found (looked for .wav, .flac, .ogg, .mp3, ...)")
    if metadata:
        unmatched = len(clip_jobs) - sum(1 for j in clip_jobs if j.captions or j.labels)
        if unmatched:
            notes.append(f"{unmatched} file(s) have no row in {metadata.name}")
    return [convert_corpus(name, clip_jobs, data_dir / name, jobs=jobs, overwrite=overwrite,
                           resampler=resampler, notes=notes)]
