"""What every corpus recipe shares: clip jobs, fingerprinted parallel conversion, manifest and failures.

A recipe scans its raw folder into :class:`ClipJob` s (no audio decoded); :func:`convert_corpus`
converts each to 16 kHz mono WAV on all cores and writes ``manifest.csv``, ``failures.csv`` and
``provenance.json``, and returns a :class:`PrepareReport`.

**Conversion.** Channels are averaged, the result resampled to 16 kHz (soxr HQ, or torchaudio)
and written as 16-bit PCM (``round(x * 32768)``). A file that would clip in 16-bit (some sample
rounds outside ``[-32768, 32767]``, e.g. a float source above full scale or resampling
overshoot) is written as **32-bit float WAV** instead, losslessly; such files are counted in the
summary and their peak is in the manifest's ``peak_dbfs`` (above 0 dBFS). Nothing is ever clipped.

**Fingerprints** (:mod:`lasskit.provenance`, ``provenance.json`` in the output folder). Each
output records what made it: a checksum of its source file's bytes (:func:`source_checksum`:
CRC-32 and size), the settings that change its bytes (:func:`convert_settings`: sample rate,
downmix, resampler, output format, :data:`CONVERT_VERSION`), and its own size and mtime. A re-run
remakes exactly the outputs whose source content or settings changed, that are missing, or that
were changed on disk, and says how many and why (``made 3 of 200: input changed 2, new 1``).
Source checksums are cached by ``(size, mtime_ns, inode)`` in ``sources.json``: a re-run over
an unchanged corpus only ``stat`` s the files and reads no audio. A source whose ``stat``
changed (touched, copied again) is read and checksummed again in the workers, and converted
only if its content changed.

**Manifest extras.** ``digest`` is the BLAKE2b-128 (hex) of the written ``data`` chunk, i.e. of
the samples exactly as stored: mono 16 kHz little-endian int16, or little-endian float32 for
files written as float (:func:`lasskit.audio.wav_payload`). Two clips with the same ``digest``
hold the same samples. ``fingerprint`` is :func:`lasskit.provenance.fingerprint` of the source
digest and settings; ``freesound_id`` is filled by recipes that know it.

**Signal notes** (counted in the summary, measured on every output made and kept in its record,
so a re-run that reuses outputs still counts them):

- *DC*: a clip whose mean (DC offset) holds more than half of its energy, with the offset at
  -60 dBFS or more (:data:`DC_SHARE`, :data:`DC_FLOOR`), e.g. a constant 0.1 under a quiet
  room: its level and activity say little about what can be heard. The samples are kept as
  they are (nothing is removed); the note names the clips so that they can be checked.
- *Antiphase*: a multichannel source whose mono downmix holds more than 20 dB less energy than
  its channels on average (:data:`DOWNMIX_LOSS_DB`): channels in antiphase cancel, and the clip
  is prepared near-silent. Measured on the decoded channels before resampling.
- *Undeclared data*: a WAV whose header declares fewer frames than the file holds after its
  ``data`` chunk starts (bytes after the declared chunk that are not a valid chunk). libsndfile
  decodes the declared length; that is what is used, and the note says how much was left out.

**Faults.** Leftover temporary files of a killed run are removed at the start. A source that
cannot be read (broken link, link loop, permissions, a name that is not valid UTF-8) is a
failure naming it. A full disk (or quota, or read-only file system) stops the run after the
current batch with one error naming the file; what was finished is recorded, so running the
same command again resumes. Work is done in batches and recorded after each, so Ctrl-C or
``kill -9`` loses at most one batch.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lasskit import SAMPLE_RATE, audio
from lasskit.corpora.convert import (  # noqa: F401 - recipes and tests use them from here
    CONVERT_VERSION,
    DC_FLOOR,
    DC_SHARE,
    DOWNMIX_LOSS_DB,
    FATAL_ERRNOS,
    SOURCES_FILE,
    Converted,
    ConvertTask,
    SourceChecksums,
    convert_file,
    convert_settings,
    source_checksum,
)
from lasskit.errors import UsageError, WorkError
from lasskit.failures import write_failures
from lasskit.manifest import Clip, write_manifest
from lasskit.ontology import caption_from_labels  # noqa: F401  (recipes import it from here)
from lasskit.parallel import resolve_jobs, run_parallel
from lasskit.provenance import (
    Ledger,
    fingerprint,
    summarize_reasons,
)

BATCH = 1024
"""Files converted between two saves of the records (what Ctrl-C or kill -9 can cost at most); more
for corpora over 32 batches, so that saving the records stays a small part of the run."""


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
    freesound_id: str = ""
    keywords: list[str] = field(default_factory=list)
    license: str = ""
    label_source: str = ""
    youtube_id: str = ""  # the YouTube video of an AudioSet-derived clip (one recording per video)


@dataclass
class PrepareReport:
    """What one prepared corpus or split came to, for the summary table."""

    name: str
    kind: str  # "corpus" or "split"
    path: Path  # manifest.csv or mixtures.csv
    items: int = 0
    audio_seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)
    skipped: int = 0  # outputs already up to date (nothing decoded)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    made: dict[str, int] = field(default_factory=dict)  # why outputs were (re)made -> how many
    float_files: int = 0  # outputs written as 32-bit float because 16-bit would have clipped
    max_peak_dbfs: float | None = None  # the highest peak among those

    @property
    def speed(self) -> float:
        """Times real time: seconds of audio per second of work."""
        return self.audio_seconds / self.seconds if self.seconds > 0 else float("inf")

    @property
    def made_count(self) -> int:
        return sum(self.made.values())


def display_name(path: str | os.PathLike) -> str:
    """A path as text that can always be printed and written to a UTF-8 CSV (bad bytes as ``\\xNN``)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _utf8_ok(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


@dataclass
class Output:
    """One output of a conversion run: its record name (relative to the folder) and files."""

    name: str
    source: Path
    dest: Path


@dataclass
class Made:
    """An output that is on disk and current: what the manifest needs to know about it."""

    input: str
    num_samples: int
    digest: str
    peak_dbfs: float
    format: str
    dc_share: float = 0.0
    dc_level: float = 0.0
    downmix_loss_db: float = 0.0
    undeclared_frames: int = 0


@dataclass
class ConversionRun:
    """The outcome of :func:`run_conversions`."""

    made: dict[str, Made] = field(default_factory=dict)  # output name -> current output
    failures: list[tuple[str, str]] = field(default_factory=list)  # (source, reason)
    reasons: Counter = field(default_factory=Counter)  # why outputs were made -> count
    up_to_date: int = 0  # current outputs left as they were (no decode)
    rehashed: int = 0  # of those, sources whose stat changed but whose content did not
    leftovers: int = 0  # temporary files of a killed run removed
    fatal: str = ""  # the error that stopped the run (a full disk); "" when it ran to the end
    save: Callable[[], None] | None = None  # after a fatal error: records still to save (failures first)


def _fmt_db(value: float) -> str:
    return f"{value:.2f}" if value != float("-inf") else "-inf"


def _made_from(extra: dict | None, input_digest: str) -> Made | None:
    try:
        peak = extra["peak_dbfs"]
        return Made(input_digest, int(extra["num_samples"]), str(extra["digest"]),
                    float("-inf") if peak == "-inf" else float(peak), str(extra["format"]),
                    float(extra["dc_share"]), float(extra["dc_level"]), float(extra["downmix_loss_db"]),
                    int(extra["undeclared_frames"]))
    except (KeyError, TypeError, ValueError):
        return None


def run_conversions(
    outputs: list[Output],
    folder: Path,
    settings: dict,
    *,
    resampler: str = "soxr",
    mode: str = "pcm16",
    jobs: int | None = None,
    overwrite: bool = False,
    desc: str = "prepare",
    cache: SourceChecksums | None = None,
) -> ConversionRun:
    """Make every output whose fingerprint changed (all with ``overwrite``), record it in
    ``folder/provenance.json``; leave the others untouched. See the module doc for the rules.

    On a full disk the run stops after the current batch and ``fatal`` holds the one-line error
    (what was done is recorded); ``KeyboardInterrupt`` is re-raised after recording what was done.
    """
    from lasskit.atomic import remove_leftovers

    run = ConversionRun()
    folder.mkdir(parents=True, exist_ok=True)
    run.leftovers = remove_leftovers(folder)
    ledger = Ledger(folder)
    cache = cache if cache is not None else SourceChecksums(folder / SOURCES_FILE)
    wanted = {o.name for o in outputs}
    for stale in [n for n in ledger.records if n not in wanted]:
        ledger.forget(stale)  # its clip left the corpus

    pending: list[tuple[Output, ConvertTask, str]] = []  # output, task, why it is (re)made
    for out in outputs:
        if not _utf8_ok(out.name):  # its name goes in the manifest; the folders above it only in JSON records
            why = "file name is not valid UTF-8 (shown with \\x escapes); rename the file"
            run.failures.append((display_name(out.source), why))
            ledger.forget(out.name)
            continue
        try:
            st = os.stat(out.source)
        except OSError:
            try:
                audio.read_source(out.source)  # the precise reason: broken link, loop, permissions ...
                raise WorkError(f"{out.source}: cannot be read")
            except Exception as exc:  # noqa: BLE001 - any reason becomes the failure's text
                run.failures.append((str(out.source), str(exc)))
            ledger.forget(out.name)
            continue
        known = cache.known(out.source, st)
        rec = ledger.get(out.name)
        task = ConvertTask(out.source, out.dest, resampler, mode)
        if overwrite:
            pending.append((out, task, "--overwrite"))
        elif known is not None:
            why = ledger.check(out.name, out.dest, known, settings)
            made = _made_from(rec.extra, known) if why is None and rec is not None else None
            if made is not None:
                run.made[out.name] = made
                run.up_to_date += 1
            else:
                pending.append((out, task, why or "record incomplete"))
        elif rec is None:
            pending.append((out, task, "new"))
        else:  # the source's stat changed: the output stands if its content did not
            why = ledger.check(out.name, out.dest, rec.input, settings)
            if why is None and _made_from(rec.extra, rec.input) is not None:
                task = ConvertTask(out.source, out.dest, resampler, mode, known_input=rec.input)
                why = "input changed"
            pending.append((out, task, why or "record incomplete"))

    def save() -> None:
        try:
            ledger.save()
            cache.save()
        except OSError:
            pass  # a full disk: the error that stopped the run is the one to report

    nproc = resolve_jobs(jobs)
    try:
        size = max(BATCH, -(-len(pending) // 32))  # at most ~32 saves of the records, however large the corpus
        for start in range(0, len(pending), size):
            batch = pending[start:start + size]
            outcomes = run_parallel(convert_file, [t for _, t, _ in batch], nproc if len(batch) > 1 else 1,
                                    desc=desc)
            for (out, task, why), outcome in zip(batch, outcomes):
                if not outcome.ok:
                    run.failures.append((str(out.source), outcome.error))
                    ledger.forget(out.name)
                    continue
                got: Converted = outcome.value
                cache.put(out.source, got.stat, got.input)  # the stat it was read at, not a later one
                if got.error:
                    run.failures.append((str(out.source), got.error))
                    ledger.forget(out.name)
                    if got.fatal and not run.fatal:
                        run.fatal = got.error
                    continue
                if got.reused:
                    rec = ledger.get(out.name)
                    run.made[out.name] = _made_from(rec.extra, got.input)
                    run.up_to_date += 1
                    run.rehashed += 1
                    continue
                ledger.record(out.name, out.dest, got.input, settings, extra={
                    "num_samples": got.num_samples, "digest": got.digest,
                    "peak_dbfs": _fmt_db(got.peak_dbfs), "format": got.format,
                    "dc_share": round(got.dc_share, 6), "dc_level": round(got.dc_level, 6),
                    "downmix_loss_db": round(got.downmix_loss_db, 3), "undeclared_frames": got.undeclared_frames})
                run.made[out.name] = Made(got.input, got.num_samples, got.digest, got.peak_dbfs, got.format,
                                          round(got.dc_share, 6), round(got.dc_level, 6),
                                          round(got.downmix_loss_db, 3), got.undeclared_frames)
                run.reasons[why] += 1
            if run.fatal:  # the caller writes failures.csv first, then the records (little space is left)
                run.save = save
                return run
            save()
    except KeyboardInterrupt:
        save()
        raise
    save()  # records of clips that left the corpus or failed are dropped even when nothing was made
    return run


def float_note(made: list[Made]) -> tuple[int, float | None, str | None]:
    """(files written as float because 16-bit would clip, their highest peak, the summary note)."""
    floats = [m for m in made if m.format == "float"]
    if not floats:
        return 0, None, None
    peak = max(m.peak_dbfs for m in floats)
    return len(floats), peak, (f"{len(floats)} file(s) would have clipped in 16-bit (peak up to {peak:+.2f} dBFS): "
                               "written as 32-bit float WAV, unclipped (peak_dbfs in the manifest)")


def signal_notes(made: dict[str, Made]) -> list[str]:
    """Summary notes for clips with a large DC offset, antiphase channels or undeclared WAV data."""
    def named(names: list[str]) -> str:
        names = sorted(names)
        return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")

    notes = []
    dc = [n for n, m in made.items() if m.dc_share > DC_SHARE and m.dc_level >= DC_FLOOR]
    if dc:
        notes.append(f"{len(dc)} clip(s) with a large DC offset (over {100 * DC_SHARE:.0f} % of the energy is the "
                     f"mean: {named(dc)}): prepared as they are, check these clips")
    anti = [n for n, m in made.items() if m.downmix_loss_db > DOWNMIX_LOSS_DB]
    if anti:
        worst = max(made[n].downmix_loss_db for n in anti)
        notes.append(f"{len(anti)} clip(s) lose more than {DOWNMIX_LOSS_DB:.0f} dB in the mono downmix (channels in "
                     f"antiphase, up to {worst:.1f} dB: {named(anti)}); prepared near-silent, check or remove them")
    short = [n for n, m in made.items() if m.undeclared_frames > 0]
    if short:
        frames = sum(made[n].undeclared_frames for n in short)
        notes.append(f"{len(short)} WAV file(s) hold more audio than their header declares ({named(short)}; "
                     f"{frames} frame(s) at the source rate in all): the declared length was used, re-export the "
                     "file(s) to use all of it")
    return notes


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
    cache: SourceChecksums | None = None,
    failures: list[tuple[str, str]] | None = None,
    amend: Callable[[list[Clip]], list[str] | None] | None = None,
) -> PrepareReport:
    """Convert ``jobs_list`` into ``corpus_dir/audio`` and write its manifest and failures.csv.

    ``failures``: problems the recipe found while scanning (listed with the conversion's own).
    ``amend``: called on the manifest's clips before the manifest is written (e.g. to derive
    labels), returning notes for the summary; the manifest is written once, and left untouched
    when nothing changed.
    """
    start = time.perf_counter()
    ids = [j.id for j in jobs_list]
    if len(set(ids)) != len(ids):
        counts = Counter(ids)
        dupes = sorted(i for i, n in counts.items() if n > 1)[:5]
        raise UsageError(f"{corpus_dir}: duplicate clip ids {dupes}; the raw folder holds the same file twice")
    outputs = [Output(j.audio, j.source, corpus_dir / j.audio) for j in jobs_list]
    settings = convert_settings(resampler)
    run = run_conversions(outputs, corpus_dir, settings, resampler=resampler, jobs=jobs,
                          overwrite=overwrite, desc=f"prepare {name}", cache=cache)
    all_failures = list(failures or []) + run.failures
    stop_if_fatal(run, corpus_dir / "failures.csv", all_failures, len(outputs))
    clips = []
    for job in jobs_list:
        made = run.made.get(job.audio)
        if made is None:
            continue
        clips.append(Clip(
            id=job.id, audio=job.audio, duration=made.num_samples / SAMPLE_RATE, sample_rate=SAMPLE_RATE,
            num_samples=made.num_samples, dataset=job.dataset, split=job.split,
            captions=job.captions, labels=job.labels, label_source=job.label_source or ("given" if job.labels else ""),
            keywords=job.keywords, freesound_id=job.freesound_id, license=job.license, digest=made.digest,
            peak_dbfs=_fmt_db(made.peak_dbfs), fingerprint=fingerprint(made.input, settings),
            youtube_id=job.youtube_id,
        ))
    amended = amend(clips) if amend is not None else None
    write_failures(corpus_dir / "failures.csv", all_failures, keep_empty=True)
    manifest = corpus_dir / "manifest.csv"
    write_manifest(manifest, clips)
    report = PrepareReport(
        name=name, kind="corpus", path=manifest, items=len(clips),
        audio_seconds=sum(c.duration for c in clips), failures=all_failures, skipped=run.up_to_date,
        seconds=time.perf_counter() - start, notes=list(notes or []) + list(amended or []),
    )
    finish_report(report, run, list(run.made.values()), len(outputs))
    return report


def stop_if_fatal(run: ConversionRun, failures_csv: Path, failures: list[tuple[str, str]], total: int) -> None:
    """After a full disk: list the failures (if the disk allows), keep the old manifest, raise one line."""
    if not run.fatal:
        return
    try:
        write_failures(failures_csv, failures, keep_empty=True)
        listed = f"; failures in {failures_csv}"
    except OSError:
        listed = f"; {failures_csv} could not be written either"
    if run.save is not None:
        run.save()
    raise WorkError(f"{run.fatal} ({len(run.made)} of {total} outputs done{listed})")


def finish_report(report: PrepareReport, run: ConversionRun, made: list[Made], total: int) -> None:
    """Add the made/reused counts, float files and leftovers to a report's notes."""
    report.made = dict(run.reasons)
    report.skipped = run.up_to_date
    report.float_files, report.max_peak_dbfs, note = float_note(made)
    said = summarize_reasons(run.reasons, total)
    if said:
        report.notes.append(said)
    if run.rehashed:
        report.notes.append(f"{run.rehashed} source(s) were touched but unchanged: hashed, not converted")
    if note:
        report.notes.append(note)
    kept = {id(m) for m in made}
    report.notes += signal_notes({n: m for n, m in run.made.items() if id(m) in kept})
    if run.leftovers:
        report.notes.append(f"removed {run.leftovers} temporary file(s) left by an interrupted run")


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


def list_audio(folder: Path, pattern: str = "*.wav") -> list[Path]:
    """Files in ``folder`` matching ``pattern``, sorted, broken or looping links included (they fail,
    named, instead of being skipped silently); hidden files and sub-folders left out."""
    return sorted(p for p in folder.glob(pattern) if not p.name.startswith(".")
                  and (p.is_file() or (p.is_symlink() and not p.exists())))
