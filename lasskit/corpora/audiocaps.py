"""AudioCaps (v1 ``dataset/`` or v2 ``dataset2.0/``): ``train.csv``, ``val.csv``, ``test.csv`` with
columns ``audiocap_id, youtube_id, start_time, caption`` (one caption a row; val and test have
five rows a clip), and the audio a user fetched from YouTube (the release has none).

The audio is looked up anywhere under the raw folder (flac or wav, one folder or several), by
the names download tools give it: ``<youtube_id>_<start_time>``, ``Y<youtube_id>``,
``<youtube_id>`` or ``<audiocap_id>``, or ``<youtube_id>_<start>.000_<end>.000`` as AudioSet download
scripts name segments (:func:`lasskit.corpora.youtube.find_segment`). A clip whose video could not be fetched is not an error:
it is counted in the notes and listed in ``excluded.csv`` (rule ``missing YouTube clip``).
Splits: ``train``, ``val``, ``eval`` (test). A clip's id is ``<youtube_id>_<start_time>``; its
``youtube_id`` is its identity across corpora (AudioCaps is AudioSet audio,
:mod:`lasskit.corpora.youtube`). Labels: AudioSet's, from ``--audioset-labels``, else derived
from the captions when a vocabulary or ontology is given.
"""

from __future__ import annotations

import csv
from pathlib import Path

from lasskit.corpora.common import ClipJob, PrepareReport
from lasskit.corpora.youtube import (
    OTHER_SEGMENT_NOTE,
    YOUTUBE_ID,
    audio_index,
    find_segment,
    RESTORED_NOTE,
    labels_for,
    parse_segment,
    prepare_segments,
    segment_files,
    start_seconds,
)
from lasskit.errors import UsageError

SPLITS = {"train": "train", "val": "val", "test": "eval"}
COLUMNS = ("audiocap_id", "youtube_id", "start_time", "caption")
MISSING = "missing YouTube clip"


def read_captions(path: Path) -> dict[tuple[str, str], dict]:
    """``(youtube_id, start)`` -> ``{"captions": [...], "audiocap_ids": [...]}`` of one split CSV."""
    from lasskit.csvfile import data_line, open_csv

    try:
        with open_csv(path) as fh:
            reader = csv.DictReader(fh)
            header = [c.strip() for c in reader.fieldnames or []]
            reader.fieldnames = header
            missing = [c for c in COLUMNS if c not in header]
            if missing:
                raise UsageError(f"{path}: lacks column(s) {', '.join(missing)}; an AudioCaps CSV has "
                                 "audiocap_id,youtube_id,start_time,caption")
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"{path}: unreadable AudioCaps CSV ({exc})")
    out: dict[tuple[str, str], dict] = {}
    for i, row in enumerate(rows, start=2):
        raw = (row["youtube_id"] or "").strip()
        ytid, restored = raw, False
        if not YOUTUBE_ID.match(ytid):
            ytid, rest, restored = parse_segment(raw)
            if not ytid or rest:
                raise UsageError(f"{path} line {data_line(path, i - 2)}: youtube_id {raw!r} is not an 11-character YouTube id")
        entry = out.setdefault((ytid, start_seconds(row["start_time"] or "0")),
                               {"captions": [], "audiocap_ids": [], "restored": []})
        if restored:
            entry["restored"].append(raw)
        caption = (row["caption"] or "").strip()
        if caption and caption not in entry["captions"]:
            entry["captions"].append(caption)
        entry["audiocap_ids"].append((row["audiocap_id"] or "").strip())
    return out


def find_csvs(src: Path) -> dict[str, Path]:
    """Split -> its CSV: ``<split>.csv`` at the top, in ``dataset2.0/`` or in ``dataset/`` (v2 first)."""
    out = {}
    for folder in (src, src / "dataset2.0", src / "dataset"):
        for name in SPLITS:
            path = folder / f"{name}.csv"
            if name not in out and path.is_file():
                out[name] = path
    return out


def scan(src: Path, audioset_labels: dict[str, list[str]] | None = None):
    """Clip jobs, notes and excluded ``(id, rule)`` rows (clips whose audio is not there)."""
    csvs = find_csvs(src)
    if not csvs:
        raise UsageError(f"{src}: no AudioCaps CSV (train.csv, val.csv, test.csv at the top, in dataset2.0/ or "
                         "dataset/); pass the folder holding the release's CSVs and the fetched audio")
    index = audio_index(src)
    segments = segment_files(index)
    jobs, notes, excluded = [], [], []
    other_segment = 0  # clips of a video whose AudioSet segment is another one
    restored: list[str] = []  # ids that had lost their leading '-'
    for name, path in sorted(csvs.items()):
        split = SPLITS[name]
        found = 0
        for (ytid, start), entry in sorted(read_captions(path).items()):
            restored += entry["restored"]
            clip_id = f"{ytid}_{start}"
            stems = [clip_id, f"Y{ytid}", ytid, f"{ytid}_{start}.000", *entry["audiocap_ids"]]
            audio = find_segment(index, segments, stems, ytid, start)
            if audio is None:
                excluded.append((clip_id, MISSING))
                continue
            found += 1
            labels = labels_for(audioset_labels, ytid, start)
            if labels is None:
                other_segment += 1
                labels = []
            jobs.append(ClipJob(id=clip_id, source=audio, audio=f"audio/{split}/{clip_id}.wav", dataset="audiocaps",
                                split=split, captions=entry["captions"], labels=labels,
                                label_source="given" if labels else "", youtube_id=ytid))
        notes.append(f"{path.name}: {found} clip(s) with audio")
    if restored:
        notes.append(RESTORED_NOTE.format(n=len(restored), example=restored[0]))
    if other_segment:
        notes.append(OTHER_SEGMENT_NOTE.format(n=other_segment))
    missing = [i for i, rule in excluded if rule == MISSING]
    if missing:
        notes.append(f"{len(missing)} clip(s) have no audio here (YouTube videos not fetched or gone); "
                     f"listed in excluded.csv, e.g. {', '.join(missing[:3])}")
    return jobs, notes, excluded


def prepare(src: Path, data_dir: Path, *, name: str = "audiocaps", jobs=None, overwrite=False,
            resampler="soxr", labeler=None, audioset_labels=()) -> list[PrepareReport]:
    """Prepare AudioCaps from ``src`` into ``data_dir/<name>`` (module doc)."""
    return prepare_segments(src, data_dir, name, "AudioCaps", scan, jobs=jobs, overwrite=overwrite, resampler=resampler,
                            labeler=labeler, audioset_labels=audioset_labels)
