"""Corpus manifests: one CSV row per prepared clip.

Required columns, in order: ``id`` (unique in the corpus), ``audio`` (path relative to the
manifest's folder), ``duration`` (s), ``sample_rate`` (Hz), ``num_samples``, ``dataset``, ``split``
(``train``/``val``/``eval`` or the corpus's own), ``captions`` and ``labels`` (JSON lists of
strings).

Optional columns (always written, in this order; an older manifest without them reads as empty):
``label_source`` (where ``labels`` came from: ``given``, ``keywords``, ``caption``, ``clap``, or
empty when there are none), ``keywords`` (JSON list: Freesound tags, where known),
``freesound_id`` (the Freesound sound id, where known), ``license``, ``digest`` (content digest of
the decoded samples written, see :mod:`lasskit.provenance`), ``peak_dbfs`` (peak of the written
audio), ``fingerprint`` (what made the output: input and settings, see :mod:`lasskit.provenance`),
``youtube_id`` (the YouTube video an AudioSet-derived clip was cut from: AudioSet, AudioCaps,
Auto-ACD, VGGSound, WavCaps' AudioSet_SL; one recording per video, see :mod:`lasskit.mixing.pool`).

Reading validates every column and names the row (CSV line) that is wrong.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from lasskit.atomic import write_text_if_changed
from lasskit.csvfile import open_csv
from lasskit.errors import UsageError

MANIFEST_COLUMNS = (
    "id", "audio", "duration", "sample_rate", "num_samples", "dataset", "split", "captions", "labels",
)
OPTIONAL_COLUMNS = (
    "label_source", "keywords", "freesound_id", "license", "digest", "peak_dbfs", "fingerprint", "youtube_id",
)
ALL_COLUMNS = MANIFEST_COLUMNS + OPTIONAL_COLUMNS


@dataclass
class Clip:
    """One prepared clip. ``audio`` is relative to the manifest's folder."""

    id: str
    audio: str
    duration: float
    sample_rate: int
    num_samples: int
    dataset: str
    split: str
    captions: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    label_source: str = ""
    keywords: list[str] = field(default_factory=list)
    freesound_id: str = ""
    license: str = ""
    digest: str = ""
    peak_dbfs: str = ""
    fingerprint: str = ""
    youtube_id: str = ""

    def to_row(self) -> dict:
        return {
            "id": self.id,
            "audio": self.audio,
            "duration": round(self.duration, 6),
            "sample_rate": self.sample_rate,
            "num_samples": self.num_samples,
            "dataset": self.dataset,
            "split": self.split,
            "captions": json.dumps(self.captions, ensure_ascii=False),
            "labels": json.dumps(self.labels, ensure_ascii=False),
            "label_source": self.label_source,
            "keywords": json.dumps(self.keywords, ensure_ascii=False) if self.keywords else "",
            "freesound_id": self.freesound_id,
            "license": self.license,
            "digest": self.digest,
            "peak_dbfs": self.peak_dbfs,
            "fingerprint": self.fingerprint,
            "youtube_id": self.youtube_id,
        }


@dataclass
class Manifest:
    """A manifest file's clips and the folder their ``audio`` paths are relative to."""

    path: Path
    clips: list[Clip]

    @property
    def root(self) -> Path:
        return self.path.parent

    def audio_path(self, clip: Clip) -> Path:
        """Absolute path of a clip's audio."""
        return self.root / clip.audio

    def __len__(self) -> int:
        return len(self.clips)


class _Row:
    """Attribute access to one CSV row's cells."""

    def __init__(self, cells: dict):
        self.__dict__.update(cells)


def parse_json_list(value: str, what: str, where: str) -> list[str]:
    """Parse a JSON list of strings from a CSV cell; an empty cell is an empty list."""
    value = (value or "").strip()
    if not value:
        return []
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        raise UsageError(f"{where}: {what} is not a JSON list ({value[:40]!r}); write it like [\"a\", \"b\"]")
    if not isinstance(parsed, list) or not all(isinstance(x, str) for x in parsed):
        raise UsageError(f"{where}: {what} must be a JSON list of strings, got {value[:40]!r}")
    return parsed


def read_manifest(path: str | os.PathLike) -> Manifest:
    """Read and validate a manifest CSV."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such manifest; run `lasskit prepare` first")
    try:
        with open_csv(path) as fh:
            reader = csv.DictReader(fh)
            header = list(reader.fieldnames or [])
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error, OSError) as exc:
        raise UsageError(f"{path}: unreadable CSV ({exc}); fix or re-create it with `lasskit prepare`")
    missing = [c for c in MANIFEST_COLUMNS if c not in header]
    if missing:
        raise UsageError(f"{path}: manifest lacks column(s) {', '.join(missing)}; re-create it with `lasskit prepare`")
    clips = []
    seen: set[str] = set()
    for i, raw in enumerate(rows, start=2):
        where = f"{path} line {i}"
        if None in raw or any(v is None for v in raw.values()):
            raise UsageError(f"{where}: wrong number of fields; fix or re-create it with `lasskit prepare`")
        row = _Row({c: raw.get(c, "") or "" for c in ALL_COLUMNS})
        if not row.id:
            raise UsageError(f"{where}: empty id")
        if row.id in seen:
            raise UsageError(f"{where}: duplicate id {row.id!r}; ids must be unique")
        seen.add(row.id)
        if not row.audio:
            raise UsageError(f"{where}: empty audio path")
        try:
            duration = float(row.duration)
            sample_rate = int(row.sample_rate)
            num_samples = int(row.num_samples)
        except ValueError:
            raise UsageError(f"{where}: duration, sample_rate and num_samples must be numbers")
        clips.append(Clip(
            id=row.id, audio=row.audio, duration=duration, sample_rate=sample_rate,
            num_samples=num_samples, dataset=row.dataset, split=row.split,
            captions=parse_json_list(row.captions, "captions", where),
            labels=parse_json_list(row.labels, "labels", where),
            label_source=row.label_source, keywords=parse_json_list(row.keywords, "keywords", where),
            freesound_id=row.freesound_id, license=row.license, digest=row.digest,
            peak_dbfs=row.peak_dbfs, fingerprint=row.fingerprint, youtube_id=row.youtube_id,
        ))
    return Manifest(path, clips)


def manifest_csv(clips: list[Clip]) -> str:
    """The CSV text of a manifest (deterministic: same clips, same bytes)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(ALL_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for clip in clips:
        writer.writerow(clip.to_row())
    return buf.getvalue()


def write_manifest(path: str | os.PathLike, clips: list[Clip]) -> bool:
    """Write a manifest atomically; leaves the file untouched if nothing changed. True if written."""
    return write_text_if_changed(path, manifest_csv(clips))
