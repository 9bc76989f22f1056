"""What the AudioSet-derived recipes share (AudioCaps, Auto-ACD, WavCaps' AudioSet_SL): YouTube
ids and segment names, the AudioSet label CSVs passed with ``--audioset-labels``, finding a clip's
audio among the files a user fetched, ``excluded.csv`` (clips a recipe left out, and why) and
the labels note of a recipe's summary.

**One recording per YouTube video.** AudioSet cuts at most one 10 s segment from a video, and
AudioCaps, Auto-ACD and WavCaps' AudioSet_SL reuse those segments (WavCaps names them ``Y<id>``
without the start time), so a clip's identity across corpora is its video's 11-character id
(manifest column ``youtube_id``); the start time stays in the clip's id.

**Ids that lost their leading ``-``** (YouTube ids may start with ``-``; a CSV that went
through a spreadsheet or a script may have stripped them): restored to 11 characters
(:func:`parse_segment`) and counted in the notes, so that the clip is still the same recording
as the other corpora's copies of the video and its audio is found.

**AudioSet labels** (``--audioset-labels``): the segment CSVs (``balanced_train_segments.csv``,
``eval_segments.csv``, ``unbalanced_train_segments.csv``: ``# YTID, start_seconds, end_seconds,
positive_labels``, the labels a quoted comma-separated list of ontology ids ``/m/...``) and
``class_labels_indices.csv`` (``index,mid,display_name``), which names the ids. A clip that is a
segment of a CSV (its video, and its start time where the clip's id has one: AudioCaps', Auto-ACD's
``<id>_<start>``; WavCaps' ``Y<id>`` has none) gets that segment's labels (``label_source``
``given``). A clip cut from another time of the same video (a VGGSound clip in Auto-ACD) does not:
the labels describe the other 10 s; such clips are counted in the notes. The others have their
labels derived from their captions when a vocabulary or ontology is given, as for Clotho.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from lasskit.audio import AUDIO_EXTENSIONS
from lasskit.csvfile import open_csv
from lasskit.errors import UsageError

YOUTUBE_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")
"""A YouTube video id: 11 characters of letters, digits, ``_`` and ``-``."""

EXCLUDED_CSV = "excluded.csv"
"""Per prepared corpus: ``id, rule`` of every clip the recipe left out (blacklists, missing audio)."""


def split_segment(text: str) -> tuple[str, str]:
    """``(youtube_id, start)`` of a segment name: ``<id>``, ``Y<id>``, ``<id>_<start>`` or
    ``<id>_<start>_<end>`` (start as written, "" when absent); ``("", "")`` when it is not one."""
    text = text.strip()
    for candidate in (text, text[1:] if text.startswith("Y") else None):
        if candidate is None:
            continue
        head, rest = candidate[:11], candidate[11:]
        if YOUTUBE_ID.match(head) and (not rest or rest.startswith("_")):
            start = rest[1:].split("_", 1)[0] if rest else ""
            if start and not re.fullmatch(r"\d+(\.\d+)?", start):
                continue
            return head, start
    return "", ""


def parse_segment(text: str) -> tuple[str, str, bool]:
    """:func:`split_segment`, and ``True`` when the name's YouTube id had lost its leading ``-``
    (a CSV that went through a spreadsheet or a script that strips them: ``cB2ZVjpnA`` for
    ``--cB2ZVjpnA``): the id is restored to 11 characters with one to three ``-`` in front."""
    ytid, start = split_segment(text)
    if ytid:
        return ytid, start, False
    text = text.strip()
    if text and not text.startswith("-"):
        for dashes in ("-", "--", "---"):
            ytid, start = split_segment(dashes + text)
            if ytid:
                return ytid, start, True
    return "", "", False


RESTORED_NOTE = ("{n} row(s) name a YouTube id without its leading '-' (e.g. {example}; a spreadsheet or a script "
                 "stripped them): restored to 11 characters")


def start_seconds(text: str) -> str:
    """A start time as whole seconds' text (``"30.000"`` -> ``"30"``); the text itself otherwise."""
    try:
        value = float(text)
    except ValueError:
        return text.strip()
    return str(int(value)) if value == int(value) else repr(value)


def audio_index(src: Path, folders: Iterable[Path] | None = None) -> dict[str, list[Path]]:
    """Audio files under ``src`` (or under ``folders``) by stem, every extension lasskit reads
    (flac or wav, in one folder or in the release's tree)."""
    out: dict[str, list[Path]] = {}
    for root in (folders if folders is not None else [src]):
        for dirpath, _, files in os.walk(root):
            for name in sorted(files):
                path = Path(dirpath) / name
                if path.suffix.lower() in AUDIO_EXTENSIONS:
                    out.setdefault(path.stem, []).append(path)
    return out


def find_audio(index: dict[str, list[Path]], stems: Sequence[str]) -> Path | None:
    """The first file whose stem is one of ``stems`` (in that order of preference)."""
    for stem in stems:
        hits = index.get(stem)
        if hits:
            return sorted(hits)[0]
    return None


class AudioSetLabels(dict):
    """YouTube id -> AudioSet class names of its (first) segment, and ``starts``: YouTube id -> start
    seconds (as :func:`start_seconds` writes them) -> class names of each segment of the video."""

    def __init__(self, *args, starts: dict[str, dict[str, list[str]]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.starts = dict(starts or {})
        self.unknown: set[str] = set()  # class ids of the segment CSVs that class_labels_indices.csv lacks

    def notes(self) -> list[str]:
        """What reading the CSVs left out, for a recipe's summary."""
        if not self.unknown:
            return []
        return [f"{len(self.unknown)} AudioSet class id(s) of the segment CSVs are not in class_labels_indices.csv "
                f"(e.g. {sorted(self.unknown)[0]}): left out of the clips' labels; pass the names file of the same "
                "AudioSet release"]


def _same_start(a: str, b: str) -> bool:
    try:
        return abs(float(a) - float(b)) < 0.5
    except ValueError:
        return a.strip() == b.strip()


def labels_for(table: dict[str, list[str]] | None, ytid: str, start: str = "") -> list[str] | None:
    """The AudioSet labels of the clip of video ``ytid`` from ``start`` s (module doc): the
    segment's when the clip is that segment or its start is unknown (``[]`` when the video is not
    in the CSVs); ``None`` when the CSVs label other segments of the video only."""
    if not table or not ytid or ytid not in table:
        return []
    segments = getattr(table, "starts", {}).get(ytid)
    if not start or not segments:
        return list(table[ytid])
    for seg_start, labels in segments.items():
        if _same_start(start, seg_start):
            return list(labels)
    return None


OTHER_SEGMENT_NOTE = ("{n} clip(s) are another segment of a video AudioSet labels (their start time differs from "
                      "the labelled segment's): their labels were not taken from AudioSet")


def segment_files(index: dict[str, list[Path]]) -> dict[str, dict[str, list[Path]]]:
    """YouTube id -> start (as :func:`start_seconds` writes it; "" when the name has none) -> files,
    of the files of :func:`audio_index` whose names are segment names (``<id>_<start>_<end>`` as
    AudioSet download scripts write them, ``<id>_<start>``, ``Y<id>``, ``<id>``)."""
    out: dict[str, dict[str, list[Path]]] = {}
    for stem, paths in index.items():
        ytid, start = split_segment(stem)
        if ytid:
            out.setdefault(ytid, {}).setdefault(start_seconds(start) if start else "", []).extend(paths)
    return out


def find_segment(index: dict[str, list[Path]], segments: dict[str, dict[str, list[Path]]], stems: Sequence[str],
                 ytid: str, start: str) -> Path | None:
    """:func:`find_audio` of ``stems``, else the file of segment ``ytid`` from ``start`` s whatever its
    name's form (:func:`segment_files`); for a clip without a start time, the file of its video when
    there is one segment of it here."""
    hit = find_audio(index, stems)
    if hit is not None:
        return hit
    by_start = segments.get(ytid, {})
    if start:
        for seg_start, files in sorted(by_start.items()):
            if seg_start and _same_start(seg_start, start):
                return sorted(files)[0]
        return None
    if len(by_start) == 1:
        return sorted(next(iter(by_start.values())))[0]
    return None


def read_audioset_labels(paths: Sequence[str | os.PathLike]) -> AudioSetLabels:
    """YouTube id -> AudioSet class names (and the segments' start times, :class:`AudioSetLabels`),
    from segment CSVs and ``class_labels_indices.csv`` (module doc). A segment CSV without the
    names file is refused (ids are not names)."""
    names: dict[str, str] = {}
    segments: dict[str, dict[str, list[str]]] = {}
    for raw in paths:
        path = Path(raw)
        try:
            with open_csv(path) as fh:
                lines = [line for line in fh if line.strip()]
        except OSError as exc:
            raise UsageError(f"{path}: cannot read it ({exc.strerror or exc}); pass AudioSet's segment CSVs and "
                             "class_labels_indices.csv to --audioset-labels")
        header = lines[0].lower() if lines else ""
        if header.startswith("index,mid,display_name"):
            for row in csv.reader(lines[1:]):
                if len(row) >= 3:
                    names[row[1].strip()] = row[2].strip()
            continue
        rows = 0
        for line in lines:
            if line.startswith("#"):
                continue
            row = next(csv.reader([line], skipinitialspace=True))
            if len(row) < 4 or not YOUTUBE_ID.match(row[0].strip()):
                raise UsageError(f"{path}: not an AudioSet segment CSV (expected '# YTID, start_seconds, "
                                 "end_seconds, positive_labels' rows) nor class_labels_indices.csv")
            mids = [m.strip() for m in row[3].split(",") if m.strip()]
            segments.setdefault(row[0].strip(), {}).setdefault(start_seconds(row[1]), mids)
            rows += 1
    if segments and not names:
        raise UsageError("--audioset-labels: the segment CSVs name classes by id (/m/...); pass "
                         "class_labels_indices.csv too")
    out = AudioSetLabels()
    out.unknown = {m for by_start in segments.values() for mids in by_start.values() for m in mids if m not in names}
    for ytid, by_start in segments.items():
        named = {start: [names[m] for m in mids if m in names] for start, mids in by_start.items()}
        named = {start: labels for start, labels in named.items() if labels}
        if named:
            out[ytid] = next(iter(named.values()))
            out.starts[ytid] = named
    return out


def write_excluded(corpus_dir: Path, rows: Sequence[tuple[str, str]]) -> None:
    """``excluded.csv`` (``id, rule``), written atomically; removed when nothing was left out."""
    from lasskit.atomic import write_text_if_changed

    path = corpus_dir / EXCLUDED_CSV
    if not rows:
        path.unlink(missing_ok=True)
        return
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["id", "rule"])
    writer.writerows(sorted(rows))
    corpus_dir.mkdir(parents=True, exist_ok=True)
    write_text_if_changed(path, buf.getvalue())


def read_excluded(corpus_dir: Path) -> list[tuple[str, str]]:
    """The rows of a corpus's ``excluded.csv`` (empty when there is none)."""
    path = Path(corpus_dir) / EXCLUDED_CSV
    if not path.is_file():
        return []
    with open_csv(path) as fh:
        return [(r.get("id", ""), r.get("rule", "")) for r in csv.DictReader(fh)]


def label_notes(labeler, labels_report):
    """The labels note, counted on the clips that reached the manifest (as Clotho's)."""
    def amend(clips) -> list[str]:
        from lasskit.labels.corpus import count_labels

        return count_labels(clips, labels_report.vocabulary).notes() if labeler is not None else []

    return amend


def prepare_segments(src: Path, data_dir: Path, name: str, title: str, scan, *, jobs=None, overwrite=False,
                     resampler="soxr", labeler=None, audioset_labels=()) -> list:
    """The steps every AudioSet-derived recipe shares (AudioCaps, Auto-ACD): read the AudioSet
    labels passed, ``scan(src, given)`` the release into clip jobs, refuse a folder without any of
    its clips' audio (naming the file names looked for), count the clips AudioSet labels reached,
    derive the rest, write ``excluded.csv`` and convert."""
    from lasskit.corpora.common import convert_corpus
    from lasskit.labels import label_clips

    given = read_audioset_labels(audioset_labels) if audioset_labels else {}
    clip_jobs, notes, excluded = scan(src, given)
    notes += given.notes() if hasattr(given, "notes") else []
    if not clip_jobs:
        raise UsageError(f"{src}: none of the {title} clips' audio is here; fetch the YouTube clips into this "
                         "folder (named <youtube_id>_<start_time>.wav or Y<youtube_id>.flac)")
    if audioset_labels:
        notes.append(f"{sum(1 for j in clip_jobs if j.labels)} of {len(clip_jobs)} clip(s) have AudioSet labels")
    labels_report = label_clips(clip_jobs, labeler)
    write_excluded(data_dir / name, excluded)
    return [convert_corpus(name, clip_jobs, data_dir / name, jobs=jobs, overwrite=overwrite, resampler=resampler,
                           notes=notes, amend=label_notes(labeler, labels_report))]
