"""Auto-ACD: CSV files of generated captions over AudioSet and VGGSound videos (its hub page:
"YouTube ID, caption" a row), e.g. ``train.csv`` and ``test.csv``, and the audio a user fetched
(the release has none).

A CSV's id column is the one named ``youtube_id``, ``ytid`` or ``# YouTube ID`` (else the first),
its caption column ``caption`` (else the second). An id is ``<youtube id>``, ``<youtube id>_<start>``
or ``Y<youtube id>``. The audio is looked up anywhere under the raw folder (flac or wav) by
``<id>``, ``<youtube id>_<start>``, ``Y<youtube id>`` or ``<youtube id>``. Clips without audio are
counted and listed in ``excluded.csv`` (rule ``missing YouTube clip``), never an error.
Splits: a CSV named ``test*``/``eval*`` is ``eval``, ``val*`` is ``val``, any other ``train``.
Identity across corpora: the video id (``youtube_id``, :mod:`lasskit.corpora.youtube`); labels:
AudioSet's from ``--audioset-labels``, else derived from the captions.
"""

from __future__ import annotations

import csv
from pathlib import Path

from lasskit.corpora.audiocaps import MISSING
from lasskit.corpora.common import ClipJob, PrepareReport, convert_corpus
from lasskit.corpora.youtube import (
    audio_index,
    find_audio,
    label_notes,
    read_audioset_labels,
    split_segment,
    start_seconds,
    write_excluded,
)
from lasskit.errors import UsageError

ID_COLUMNS = ("youtube_id", "ytid", "# youtube id", "youtube id", "id")


def split_of(path: Path) -> str:
    stem = path.stem.lower()
    if stem.startswith(("test", "eval")):
        return "eval"
    if stem.startswith("val"):
        return "val"
    return "train"


def read_csv(path: Path) -> list[tuple[str, str, str]]:
    """``(youtube_id, start, caption)`` rows of one Auto-ACD CSV."""
    from lasskit.csvfile import open_csv

    try:
        with open_csv(path) as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"{path}: unreadable Auto-ACD CSV ({exc})")
    if not rows:
        return []
    header = [c.strip().lower() for c in rows[0]]
    has_header = any(c in ID_COLUMNS or c == "caption" for c in header)
    id_col = next((header.index(c) for c in ID_COLUMNS if c in header), 0) if has_header else 0
    cap_col = header.index("caption") if has_header and "caption" in header else 1
    out = []
    for i, row in enumerate(rows[1:] if has_header else rows, start=2 if has_header else 1):
        if len(row) <= max(id_col, cap_col):
            raise UsageError(f"{path} line {i}: expected a YouTube id and a caption")
        ytid, start = split_segment(row[id_col])
        if not ytid:
            raise UsageError(f"{path} line {i}: {row[id_col]!r} is not a YouTube id (11 characters, "
                             "optionally _<start seconds>)")
        out.append((ytid, start_seconds(start) if start else "", row[cap_col].strip()))
    return out


def scan(src: Path, audioset_labels: dict[str, list[str]] | None = None):
    csvs = sorted(p for p in src.rglob("*.csv") if p.is_file() and p.name != "excluded.csv"
                  and not p.name.endswith("_segments.csv") and p.name != "class_labels_indices.csv")
    tables = []
    for path in csvs:
        try:
            rows = read_csv(path)
        except UsageError:
            if path.name.lower().startswith(("train", "test", "val", "eval", "auto")):
                raise
            continue  # another CSV in the tree (e.g. AudioSet's): not Auto-ACD's
        tables.append((path, rows))
    if not tables:
        raise UsageError(f"{src}: no Auto-ACD CSV (YouTube ID, caption rows, e.g. train.csv and test.csv)")
    index = audio_index(src)
    jobs, notes, excluded, seen = [], [], [], set()
    for path, rows in tables:
        split = split_of(path)
        found = 0
        for ytid, start, caption in rows:
            clip_id = f"{ytid}_{start}" if start else ytid
            if clip_id in seen:
                continue
            seen.add(clip_id)
            audio = find_audio(index, [clip_id, f"{ytid}_{start}.000" if start else clip_id, f"Y{ytid}", ytid])
            if audio is None:
                excluded.append((clip_id, MISSING))
                continue
            found += 1
            labels = list((audioset_labels or {}).get(ytid, []))
            jobs.append(ClipJob(id=clip_id, source=audio, audio=f"audio/{split}/{clip_id}.wav", dataset="autoacd",
                                split=split, captions=[caption] if caption else [], labels=labels,
                                label_source="given" if labels else "", youtube_id=ytid))
        notes.append(f"{path.name}: {found} of {len(rows)} clip(s) with audio ({split})")
    missing = [i for i, _ in excluded]
    if missing:
        notes.append(f"{len(missing)} clip(s) have no audio here (YouTube videos not fetched or gone); listed in "
                     f"excluded.csv, e.g. {', '.join(missing[:3])}")
    return jobs, notes, excluded


def prepare(src: Path, data_dir: Path, *, name: str = "autoacd", jobs=None, overwrite=False, resampler="soxr",
            labeler=None, audioset_labels=()) -> list[PrepareReport]:
    """Prepare Auto-ACD from ``src`` into ``data_dir/<name>`` (module doc)."""
    from lasskit.labels import label_clips

    given = read_audioset_labels(audioset_labels) if audioset_labels else {}
    clip_jobs, notes, excluded = scan(src, given)
    if not clip_jobs:
        raise UsageError(f"{src}: none of the Auto-ACD clips' audio is here; fetch the YouTube clips into this "
                         "folder (named <youtube_id>_<start>.wav or Y<youtube_id>.flac)")
    if audioset_labels:
        notes.append(f"{sum(1 for j in clip_jobs if j.labels)} of {len(clip_jobs)} clip(s) have AudioSet labels")
    labels_report = label_clips(clip_jobs, labeler)
    write_excluded(data_dir / name, excluded)
    return [convert_corpus(name, clip_jobs, data_dir / name, jobs=jobs, overwrite=overwrite, resampler=resampler,
                           notes=notes, amend=label_notes(labeler, labels_report))]
