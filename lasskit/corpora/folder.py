"""Any folder tree of audio, with an optional metadata CSV.

The CSV (``--metadata FILE``) has a ``file`` column (path relative to the folder, or a base
name) and any of:

- ``caption`` (one text) and/or ``captions`` (several);
- ``labels`` (class names) and ``keywords`` (free tags);
- ``split``, ``freesound_id`` (the Freesound sound id, where the audio comes from Freesound:
  ``mix`` then never pairs it with another copy of the same recording), ``license``.

List cells (``captions``, ``labels``, ``keywords``) are a JSON list (``["Dog", "Walk,
footsteps"]``) or texts separated by ``;`` or ``|``; a cell with neither is split at ``,`` (so a
label that itself holds a comma needs JSON, ``;`` or ``|``). A ``captions`` cell is never split at
commas. A clip's id is its relative path without extension; clips without labels get labels
derived from their keywords and captions (:mod:`lasskit.labels`) when a vocabulary or ontology is
given. The notes count the metadata rows that matched no file and the files without a row.
"""

from __future__ import annotations

import json
from pathlib import Path

from lasskit.audio import find_audio
from lasskit.corpora.common import (
    ClipJob,
    PrepareReport,
    caption_from_labels,
    convert_corpus,
    display_name,
)
from lasskit.errors import UsageError

SEPARATORS = (";", "|")


def split_list(value: str, comma: bool = True) -> list[str]:
    """A list cell: JSON list, else split at ``;`` or ``|``, else (``comma``) at ``,``."""
    value = (value or "").strip()
    if not value:
        return []
    if value.startswith("["):
        try:
            parsed = json.loads(value)
            if isinstance(parsed, list):
                return [str(x).strip() for x in parsed if str(x).strip()]
        except ValueError:
            pass
    for sep in SEPARATORS + ((",",) if comma else ()):
        if sep in value:
            return [x.strip() for x in value.split(sep) if x.strip()]
    return [value]


def read_metadata(path: Path) -> dict[str, dict]:
    """``file`` -> its captions, labels, keywords, split, freesound_id and license."""
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:
        raise UsageError(f"{path}: unreadable metadata CSV ({exc})")
    from lasskit.csvfile import refuse_repeated_columns

    refuse_repeated_columns(path, "keep one (several captions go in one 'captions' cell: a JSON list or separated by '|')")
    frame.columns = [str(c).strip() for c in frame.columns]
    if "file" not in frame.columns:
        raise UsageError(f"{path}: metadata CSV needs a 'file' column (path relative to the folder)")
    out = {}
    from lasskit.csvfile import data_line

    for i, row in enumerate(frame.to_dict("records"), start=2):
        file = row["file"].strip()
        if not file:
            raise UsageError(f"{path} line {data_line(path, i - 2)}: empty 'file'")
        if file in out:
            raise UsageError(f"{path} line {data_line(path, i - 2)}: {file!r} is listed twice; keep one row per file")
        captions = split_list(row.get("captions", ""), comma=False)
        if row.get("caption", "").strip():
            captions.append(row["caption"].strip())
        freesound_id = row.get("freesound_id", "").strip()
        freesound_id = freesound_id.removesuffix(".0")
        if freesound_id and not freesound_id.isdigit():
            raise UsageError(f"{path} line {data_line(path, i - 2)}: freesound_id {freesound_id!r} is not a number "
                             "(the id in https://freesound.org/s/<id>/)")
        out[file] = {"captions": captions, "labels": split_list(row.get("labels", "")),
                     "keywords": split_list(row.get("keywords", "")), "split": row.get("split", "").strip(),
                     "freesound_id": freesound_id, "license": row.get("license", "").strip()}
    return out


def prepare(src: Path, data_dir: Path, *, name: str | None = None, metadata: Path | None = None,
            jobs=None, overwrite=False, resampler="soxr", labeler=None) -> list[PrepareReport]:
    """Prepare every audio file under ``src`` into ``data_dir/<name>`` (default: the folder's name).

    ``labeler`` (a :class:`lasskit.labels.Labeler`) derives labels for clips without any.
    """
    from lasskit.labels import label_clips

    name = name or src.resolve().name
    meta = read_metadata(metadata) if metadata else {}
    by_name: dict[str, list[str]] = {}
    for key in meta:
        by_name.setdefault(Path(key).name, []).append(key)
    clip_jobs, notes, extras, used = [], [], {}, set()
    without_row = 0
    for path in find_audio(src):
        rel = path.relative_to(src)
        key = rel.as_posix() if rel.as_posix() in meta else None
        if key is None and len(by_name.get(path.name, [])) == 1:
            key = by_name[path.name][0]
        m = meta.get(key, {}) if key is not None else {}
        if key is not None:
            used.add(key)
        elif metadata:
            without_row += 1
        labels = m.get("labels", [])
        captions = m.get("captions") or ([caption_from_labels(labels)] if labels else [])
        clip_id = rel.with_suffix("").as_posix()
        clip_jobs.append(ClipJob(
            id=clip_id, source=path, audio=f"audio/{rel.with_suffix('.wav').as_posix()}",
            dataset=name, split=m.get("split", ""), captions=captions, labels=labels,
        ))
        extra = {k: m[k] for k in ("keywords", "freesound_id", "license") if m.get(k)}
        if labels:
            extra["label_source"] = "given"
        if extra:
            extras[clip_id] = extra
    from lasskit.audio import undecodable_audio

    undecodable, others = undecodable_audio(src)
    failures = [(display_name(p), f"{display_name(p)}: {p.suffix.lower()[1:]} audio cannot be "
                 f"decoded here; convert it to WAV or FLAC (e.g. ffmpeg -i '{p.name}' '{p.stem}.wav')")
                for p in undecodable]
    if not clip_jobs:
        hint = f"; {len(undecodable)} file(s) in formats it cannot decode, e.g. {undecodable[0].name}: convert " \
               "them to WAV or FLAC" if undecodable else ""
        raise UsageError(f"{src}: no audio files found (looked for .wav, .flac, .ogg, .mp3, ...){hint}")
    if others:
        example = display_name(others[0].relative_to(src))
        notes.append(f"left out {len(others)} file(s) that are not audio (e.g. {example})")
    if metadata:
        unmatched = len(meta) - len(used)
        notes.append(f"{without_row} file(s) have no row in {metadata.name}; {unmatched} of its {len(meta)} "
                     "row(s) matched no file")
    labels_report = label_clips(clip_jobs, labeler, extras)

    def label_notes(clips) -> list[str]:  # counted on the clips that reached the manifest
        from lasskit.labels.corpus import count_labels

        made = count_labels(clips, labels_report.vocabulary)
        if labeler is not None:
            return made.notes()
        if made.unlabeled:
            return [f"{made.unlabeled} clip(s) without labels (pass --vocabulary or --ontology to derive them "
                    "from captions)"]
        return []

    return [convert_corpus(name, clip_jobs, data_dir / name, jobs=jobs, overwrite=overwrite,
                           resampler=resampler, notes=notes, failures=failures, amend=label_notes)]
