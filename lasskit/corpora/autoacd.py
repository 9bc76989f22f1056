"""Auto-ACD: CSV files of generated captions over AudioSet and VGGSound videos (its hub page:
"YouTube ID, caption" a row), e.g. ``train.csv`` and ``test.csv``, and the audio a user fetched
(the release has none).

A CSV's id column is the one named ``youtube_id``, ``ytid`` or ``# YouTube ID`` (else the first),
its caption column ``caption`` (else the second). An id is ``<youtube id>``, ``<youtube id>_<start>``
or ``Y<youtube id>``. The audio is looked up anywhere under the raw folder (flac or wav) by
``<id>``, ``<youtube id>_<start>``, ``Y<youtube id>`` or ``<youtube id>``, else by the segment a name
such as ``<youtube id>_<start>.000_<end>.000`` stands for (for an id without a start time: the one
segment of its video that is here). Clips without audio are
counted and listed in ``excluded.csv`` (rule ``missing YouTube clip``), never an error.
Splits: a CSV named ``test*``/``eval*`` is ``eval``, ``val*`` is ``val``, any other ``train``; a
clip listed in several CSVs is one clip, held out if any of them holds it out, with the captions
of all its rows (repeated rows and clips in several CSVs are counted in the notes).
Identity across corpora: the video id (``youtube_id``, :mod:`lasskit.corpora.youtube`); labels:
AudioSet's from ``--audioset-labels``, else derived from the captions.
"""

from __future__ import annotations

import csv
from pathlib import Path

from lasskit.corpora.audiocaps import MISSING
from lasskit.corpora.common import ClipJob, PrepareReport
from lasskit.corpora.youtube import (
    OTHER_SEGMENT_NOTE,
    RESTORED_NOTE,
    audio_index,
    find_segment,
    labels_for,
    parse_segment,
    prepare_segments,
    segment_files,
    start_seconds,
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


def read_csv(path: Path) -> list[tuple[str, str, str, str]]:
    """``(youtube_id, start, caption, id as written when its leading '-' were restored else "")``
    rows of one Auto-ACD CSV."""
    from lasskit.csvfile import data_line, open_csv

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
            raise UsageError(f"{path} line {data_line(path, i - (2 if has_header else 1), has_header)}: expected a YouTube id and a caption")
        ytid, start, restored = parse_segment(row[id_col])
        if not ytid:
            raise UsageError(f"{path} line {data_line(path, i - (2 if has_header else 1), has_header)}: {row[id_col]!r} is not a YouTube id (11 characters, "
                             "optionally _<start seconds>)")
        out.append((ytid, start_seconds(start) if start else "", row[cap_col].strip(),
                    row[id_col].strip() if restored else ""))
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
    segments = segment_files(index)
    rank = {"eval": 0, "val": 1, "train": 2}  # a clip listed in several CSVs is held out if any holds it out
    clips: dict[str, dict] = {}
    repeated = 0
    restored: list[str] = []  # ids that had lost their leading '-'
    per_csv: list[tuple[Path, str, list[str]]] = []
    for path, rows in tables:
        split, ids = split_of(path), []
        for ytid, start, caption, written in rows:
            if written:
                restored.append(written)
            clip_id = f"{ytid}_{start}" if start else ytid
            entry = clips.setdefault(clip_id, {"ytid": ytid, "start": start, "captions": [], "csvs": [],
                                               "split": split})
            if path.name in entry["csvs"]:
                repeated += 1
            else:
                entry["csvs"].append(path.name)
                ids.append(clip_id)
            if rank[split] < rank[entry["split"]]:
                entry["split"] = split
            if caption and caption not in entry["captions"]:
                entry["captions"].append(caption)
        per_csv.append((path, split, ids))
    jobs, notes, excluded = [], [], []
    other_segment = 0  # clips of a video whose AudioSet segment is another one
    found: set[str] = set()
    for clip_id, entry in clips.items():
        ytid, start = entry["ytid"], entry["start"]
        audio = find_segment(index, segments, [clip_id, f"{ytid}_{start}.000" if start else clip_id, f"Y{ytid}", ytid],
                             ytid, start)
        if audio is None:
            excluded.append((clip_id, MISSING))
            continue
        found.add(clip_id)
        labels = labels_for(audioset_labels, ytid, start)
        if labels is None:
            other_segment += 1
            labels = []
        split = entry["split"]
        jobs.append(ClipJob(id=clip_id, source=audio, audio=f"audio/{split}/{clip_id}.wav", dataset="autoacd",
                            split=split, captions=list(entry["captions"]), labels=labels,
                            label_source="given" if labels else "", youtube_id=ytid))
    for path, split, ids in per_csv:
        notes.append(f"{path.name}: {sum(1 for i in ids if i in found)} of {len(ids)} clip(s) with audio ({split})")
    if repeated:
        notes.append(f"{repeated} row(s) repeat a clip of the same CSV (captions merged)")
    several: dict[tuple[tuple[str, ...], str], int] = {}
    for entry in clips.values():
        if len(entry["csvs"]) > 1:
            key = (tuple(sorted(entry["csvs"])), entry["split"])
            several[key] = several.get(key, 0) + 1
    for (names, split), n in sorted(several.items()):
        notes.append(f"{n} clip(s) are in {' and '.join(names)}: " + ("held out" if split != "train" else "kept")
                     + f" ({split})")
    if restored:
        notes.append(RESTORED_NOTE.format(n=len(restored), example=restored[0]))
    if other_segment:
        notes.append(OTHER_SEGMENT_NOTE.format(n=other_segment))
    missing = [i for i, _ in excluded]
    if missing:
        notes.append(f"{len(missing)} clip(s) have no audio here (YouTube videos not fetched or gone); listed in "
                     f"excluded.csv, e.g. {', '.join(missing[:3])}")
    return jobs, notes, excluded


def prepare(src: Path, data_dir: Path, *, name: str = "autoacd", jobs=None, overwrite=False, resampler="soxr",
            labeler=None, audioset_labels=()) -> list[PrepareReport]:
    """Prepare Auto-ACD from ``src`` into ``data_dir/<name>`` (module doc)."""
    return prepare_segments(src, data_dir, name, "Auto-ACD", scan, jobs=jobs, overwrite=overwrite, resampler=resampler,
                            labeler=labeler, audioset_labels=audioset_labels)
