"""Corpus manifests: one CSV row per prepared clip.

Columns, in order: ``id`` (unique in the corpus), ``audio`` (path relative to the manifest's
folder), ``duration`` (s), ``sample_rate`` (Hz), ``num_samples``, ``dataset``, ``split``
(``train``/``val``/``eval`` or the corpus's own), ``captions`` and ``labels`` (JSON lists of
strings). Reading validates every column and names the row (CSV line) that is wrong.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from lasskit.atomic import write_text_if_changed
from lasskit.errors import UsageError

MANIFEST_COLUMNS = (
    "id", "audio", "duration", "sample_rate", "num_samples", "dataset", "split", "captions", "labels",
)


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
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such manifest; run `lasskit prepare` first")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:
        raise UsageError(f"{path}: unreadable CSV ({exc}); fix or re-create it with `lasskit prepare`")
    missing = [c for c in MANIFEST_COLUMNS if c not in frame.columns]
    if missing:
        raise UsageError(f"{path}: manifest lacks column(s) {', '.join(missing)}; re-create it with `lasskit prepare`")
    clips = []
    seen: set[str] = set()
    for i, row in enumerate(frame.itertuples(index=False), start=2):
        where = f"{path} line {i}"
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
        ))
    return Manifest(path, clips)


def manifest_csv(clips: list[Clip]) -> str:
    """The CSV text of a manifest (deterministic: same clips, same bytes)."""
    import pandas as pd

    frame = pd.DataFrame([c.to_row() for c in clips], columns=list(MANIFEST_COLUMNS))
    buf = io.StringIO()
    frame.to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue()


def write_manifest(path: str | os.PathLike, clips: list[Clip]) -> bool:
    """Write a manifest atomically; leaves the file untouched if nothing changed. True if written."""
    return write_text_if_changed(path, manifest_csv(clips))
