"""What every corpus recipe shares: clip jobs, parallel conversion, manifest and failure files.

A recipe scans its raw folder into :class:`ClipJob` s (no audio decoded); :func:`convert_corpus`
then converts each to 16 kHz mono 16-bit WAV on all cores, skips outputs that are already
complete, writes ``manifest.csv`` and ``failures.csv`` and returns a :class:`PrepareReport`.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from lasskit import SAMPLE_RATE, audio
from lasskit.errors import UsageError
from lasskit.failures import write_failures
from lasskit.manifest import Clip, write_manifest
from lasskit.ontology import caption_from_labels  # noqa: F401  (recipes import it from here)
from lasskit.parallel import run_parallel


@dataclass
class ClipJob:
    """One raw file to convert. ``audio`` is the output path relative to the corpus folder."""

    id: str
    source: Path
    audio: str
    dataset: str
    split: str
    captions: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)


@dataclass
class PrepareReport:
    """What one prepared corpus or split came to, for the summary table."""

    name: str
    kind: str  # "corpus" or "split"
    path: Path  # manifest.csv or mixtures.csv
    items: int = 0
    audio_seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)
    skipped: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def speed(self) -> float:
        """Times real time: seconds of audio per second of work."""
        return self.audio_seconds / self.seconds if self.seconds > 0 else float("inf")


@dataclass(frozen=True)
class ConvertTask:
    source: Path
    dest: Path
    resampler: str = "soxr"
    overwrite: bool = False
    subtype: str = "pcm16"


def convert_file(task: ConvertTask) -> tuple[int, bool]:
    """Convert one file to mono 16 kHz WAV; returns (samples written, skipped because complete)."""
    if not task.overwrite and task.dest.is_file():
        try:
            i = audio.info(task.dest)
            if i.sample_rate == SAMPLE_RATE and i.channels == 1 and i.num_samples > 0:
                return i.num_samples, True
        except Exception:
            pass  # unreadable leftover: convert again
    data = audio.load(task.source, SAMPLE_RATE, task.resampler)
    audio.write(task.dest, data, SAMPLE_RATE, task.subtype)
    return len(data), False


def copy_or_convert(task: ConvertTask) -> tuple[int, bool]:
    """Like :func:`convert_file`, but a file that is already 16 kHz mono WAV is copied byte for byte.

    Used for the official mixtures, so that the organizers' audio reaches the model unchanged.
    """
    if not task.overwrite and task.dest.is_file():
        return convert_file(task)
    try:
        i = audio.info(task.source)
    except Exception:
        i = None
    if i and i.sample_rate == SAMPLE_RATE and i.channels == 1 and task.source.suffix.lower() == ".wav":
        audio.read(task.source)  # validates: truncated, empty or NaN files still fail
        from lasskit.atomic import atomic_path

        with atomic_path(task.dest) as tmp:
            shutil.copyfile(task.source, tmp)
        return i.num_samples, False
    return convert_file(ConvertTask(task.source, task.dest, task.resampler, True, "float"))


def check_output_outside(src: Path, out: Path) -> None:
    """Refuse to write inside the raw download (inputs are never modified)."""
    if out.resolve().is_relative_to(src.resolve()):
        raise UsageError(f"{out}: output folder is inside the raw folder {src}; choose another --out or workspace")


def convert_corpus(
    name: str,
    jobs_list: list[ClipJob],
    corpus_dir: Path,
    *,
    jobs: int | None = None,
    overwrite: bool = False,
    resampler: str = "soxr",
    notes: list[str] | None = None,
) -> PrepareReport:
    """Convert ``jobs_list`` into ``corpus_dir/audio`` and write its manifest and failures.csv."""
    start = time.perf_counter()
    ids = [j.id for j in jobs_list]
    if len(set(ids)) != len(ids):
        dupes = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise UsageError(f"{corpus_dir}: duplicate clip ids {dupes}; the raw folder holds the same file twice")
    tasks = [ConvertTask(j.source, corpus_dir / j.audio, resampler, overwrite) for j in jobs_list]
    outcomes = run_parallel(convert_file, tasks, jobs, desc=f"prepare {name}")
    clips, failures, skipped = [], [], 0
    for job, outcome in zip(jobs_list, outcomes):
        if not outcome.ok:
            failures.append((str(job.source), outcome.error))
            continue
        num_samples, was_skipped = outcome.value
        skipped += was_skipped
        clips.append(Clip(
            id=job.id, audio=job.audio, duration=num_samples / SAMPLE_RATE, sample_rate=SAMPLE_RATE,
            num_samples=num_samples, dataset=job.dataset, split=job.split,
            captions=job.captions, labels=job.labels,
        ))
    manifest = corpus_dir / "manifest.csv"
    write_manifest(manifest, clips)
    write_failures(corpus_dir / "failures.csv", failures, keep_empty=True)
    return PrepareReport(
        name=name, kind="corpus", path=manifest, items=len(clips),
        audio_seconds=sum(c.duration for c in clips), failures=failures, skipped=skipped,
        seconds=time.perf_counter() - start, notes=list(notes or []),
    )


def find_file(src: Path, names: tuple[str, ...]) -> Path | None:
    """The first of ``names`` found at ``src`` or, failing that, anywhere below it."""
    for name in names:
        if (src / name).exists():
            return src / name
    for name in names:
        hits = sorted(src.rglob(name))
        if hits:
            return hits[0]
    return None
