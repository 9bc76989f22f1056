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

import errno
import os
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lasskit import SAMPLE_RATE, audio
from lasskit.errors import UsageError, WorkError, os_error
from lasskit.failures import write_failures
from lasskit.manifest import Clip, write_manifest
from lasskit.ontology import caption_from_labels  # noqa: F401  (recipes import it from here)
from lasskit.parallel import resolve_jobs, run_parallel
from lasskit.provenance import (
    DigestCache,
    Ledger,
    digest_bytes,
    fingerprint,
    summarize_reasons,
)

CONVERT_VERSION = 1
"""Version of the conversion arithmetic (decode, downmix, resample, encode). Bumped when a lasskit
release changes the bytes ``prepare`` writes; outputs made by another version are redone."""

DC_SHARE = 0.5
"""A clip is noted for DC when its mean holds more than this share of its energy ..."""
DC_FLOOR = 1e-3
"""... and the mean is at least this large (-60 dBFS): digital silence with a 1-LSB offset is not noted."""
DOWNMIX_LOSS_DB = 20.0
"""A multichannel source is noted when its mono downmix has this much less energy than its channels."""

BATCH = 1024
"""Files converted between two saves of the records (what Ctrl-C or kill -9 can cost at most); more
for corpora over 32 batches, so that saving the records stays a small part of the run."""

FATAL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)
"""Write errors that would fail every following file too: the run stops."""


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


SOURCES_FILE = "sources.json"
"""Per output folder: the sources' checksums by ``(size, mtime_ns, inode)`` (:class:`SourceChecksums`)."""


def source_checksum(data: bytes | memoryview) -> str:
    """What identifies a source file's content: its CRC-32 and the low 32 bits of its size, as 16
    hex digits. Compared only with the same file's earlier checksum (a change goes unnoticed with
    probability 2^-32); 4-8x cheaper than BLAKE2b, which would cost as much as the resampling."""
    return f"{zlib.crc32(data):08x}{len(data) & 0xFFFFFFFF:08x}"


class SourceChecksums(DigestCache):
    """A :class:`~lasskit.provenance.DigestCache` of :func:`source_checksum` s (``sources.json``):
    a file is read again only when its ``(size, mtime_ns, inode)`` changed."""

    def digest(self, file: str | os.PathLike, st: os.stat_result | None = None) -> str:
        key = os.path.abspath(file)
        st = st if st is not None else os.stat(file)
        stat = [st.st_size, st.st_mtime_ns, st.st_ino]
        hit = self.entries.get(key)
        if hit is not None and list(hit[:3]) == stat:
            return hit[3]
        data, st = audio.read_source(file)
        return self.put(file, (st.st_size, st.st_mtime_ns, st.st_ino), source_checksum(data))

    def known(self, file: str | os.PathLike, st: os.stat_result) -> str | None:
        """The checksum if the file's stat is the one it was taken at, else None (no reading)."""
        hit = self.entries.get(os.path.abspath(file))
        return hit[3] if hit is not None and list(hit[:3]) == [st.st_size, st.st_mtime_ns, st.st_ino] else None

    def put(self, file: str | os.PathLike, stat: tuple[int, int, int], checksum: str) -> str:
        """Remember ``checksum`` for the file as it was when read (``stat`` taken on the open file)."""
        key, entry = os.path.abspath(file), [*stat, checksum]
        self.hashed += 1
        if self.entries.get(key) != entry:
            self.entries[key] = entry
            self._dirty = True
        return checksum


def convert_settings(resampler: str, mode: str = "pcm16") -> dict:
    """Everything besides the source's content that changes an output's bytes."""
    formats = {
        "pcm16": "16-bit PCM; 32-bit float where 16-bit would clip",
        "copy": "16 kHz mono WAV copied byte for byte; else 32-bit float",
        "float": "32-bit float",
    }
    return {"stage": "prepare", "sample_rate": SAMPLE_RATE, "channels": "mean", "resampler": resampler,
            "format": formats[mode], "convert_version": CONVERT_VERSION}


def display_name(path: str | os.PathLike) -> str:
    """A path as text that can always be printed and written to a UTF-8 CSV (bad bytes as ``\\xNN``)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _utf8_ok(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


@dataclass(frozen=True)
class ConvertTask:
    """One output to make from one source. ``known_input``: the source digest the existing output
    was made from; if the source still hashes to it, nothing is written (``reused``)."""

    source: Path
    dest: Path
    resampler: str = "soxr"
    mode: str = "pcm16"  # "pcm16" (float where it would clip), "copy" (16 kHz mono WAV as is) or "float"
    known_input: str = ""


@dataclass
class Converted:
    """What a worker did for one :class:`ConvertTask`."""

    input: str  # source_checksum of the source's bytes
    stat: tuple[int, int, int]  # the source's (size, mtime_ns, inode) as read
    reused: bool = False  # the existing output was made from these bytes: nothing written
    num_samples: int = 0
    digest: str = ""  # BLAKE2b-128 of the samples written (the WAV data chunk)
    peak_dbfs: float = float("-inf")
    format: str = ""  # pcm16, float or copy
    dc_share: float = 0.0  # share of the output's energy in its mean (DC offset)
    dc_level: float = 0.0  # |mean| of the output
    downmix_loss_db: float = 0.0  # channels' mean energy over the mono downmix's, dB (0 for mono)
    undeclared_frames: int = 0  # WAV frames after the declared data chunk that were not used
    error: str = ""  # a write error (full disk ...): set instead of raising
    fatal: bool = False  # the error will repeat for every file: stop


def _pcm_header_ok(data: bytes) -> bool:
    """True if ``data`` is a plain 16 kHz mono WAV (copied as is in ``copy`` mode)."""
    import struct

    if len(data) < 36 or data[:4] != b"RIFF" or data[8:12] != b"WAVE" or data[12:16] != b"fmt ":
        return False
    channels, rate = struct.unpack("<HI", data[22:28])
    return channels == 1 and rate == SAMPLE_RATE


def _wav_undeclared_frames(data: bytes) -> int:
    """Frames a WAV holds after its declared ``data`` chunk that are not a chunk (0 if none / not WAV)."""
    import struct

    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return 0
    pos, block_align = 12, 0
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if cid == b"fmt " and size >= 14:
            block_align = struct.unpack("<H", data[pos + 20:pos + 22])[0]
        if cid == b"data":
            if not block_align or size == 0xFFFFFFFF:
                return 0
            end = pos + 8 + size + (size & 1)
            while end + 8 <= len(data):  # chunks after the data (LIST, id3 ...) are fine
                cid, size = data[end:end + 4], struct.unpack("<I", data[end + 4:end + 8])[0]
                if not all(32 <= b < 127 for b in cid) or end + 8 + size > len(data):
                    break
                end += 8 + size + (size & 1)
            trailing = len(data) - end
            return trailing // block_align if trailing >= block_align else 0
        pos += 8 + size + (size & 1)
    return 0


def _downmix_loss_db(task: ConvertTask, data: bytes) -> float:
    """Channels' mean energy over their mono average's, in dB (0 for one channel or silence)."""
    import io

    import numpy as np
    import soundfile as sf

    try:
        if sf.info(io.BytesIO(data)).channels < 2:
            return 0.0
    except Exception:  # noqa: BLE001 - not a libsndfile format: the decoder's own check says why
        return 0.0
    raw, _ = audio._decode(Path(task.source), "float32", data)
    raw = raw.astype(np.float64)
    channels = float(np.mean(raw * raw))
    mono = raw.mean(axis=1)
    mixed = float(np.mean(mono * mono))
    if channels <= 1e-12:
        return 0.0
    return 10 * float(np.log10(channels / max(mixed, 1e-30)))


def _dc(samples) -> tuple[float, float]:
    import numpy as np

    x = np.asarray(samples, dtype=np.float64)
    mean = float(x.mean()) if len(x) else 0.0
    energy = float(np.mean(x * x)) if len(x) else 0.0
    return (mean * mean / energy if energy > 0 else 0.0), abs(mean)


def convert_file(task: ConvertTask) -> Converted:
    """Hash the source, and unless it still matches ``known_input``, convert it (see module doc).

    Decoding errors raise :class:`~lasskit.errors.AudioError`; a write error comes back in
    ``error`` (``fatal`` for a full disk) so that the caller can stop the batch.
    """
    data, st = audio.read_source(task.source)
    got = Converted(source_checksum(data), (st.st_size, st.st_mtime_ns, st.st_ino))
    if task.known_input and got.input == task.known_input:
        got.reused = True
        return got
    copy = task.mode == "copy" and Path(task.source).suffix.lower() == ".wav" and _pcm_header_ok(data)
    if copy:
        raw, _ = audio._decode(Path(task.source), "float32", data)  # validates: truncated, empty, NaN
        samples = raw[:, 0]
        fmt, payload, blob = "copy", None, data
    else:
        samples = audio.load(task.source, SAMPLE_RATE, task.resampler, data=data)
        fmt = "float" if task.mode != "pcm16" or audio.clips_pcm16(samples) else "pcm16"
        payload = audio.wav_payload(samples, fmt)
        blob = audio.wav_bytes(payload, 1, SAMPLE_RATE, fmt)
    got.num_samples, got.format, got.peak_dbfs = len(samples), fmt, audio.peak_dbfs(samples)
    got.dc_share, got.dc_level = _dc(samples)
    got.undeclared_frames = _wav_undeclared_frames(data)
    got.downmix_loss_db = 0.0 if copy else _downmix_loss_db(task, data)
    got.digest = digest_bytes(payload) if payload is not None else digest_bytes(audio.wav_payload(samples, "float"))
    try:
        from lasskit.atomic import write_bytes

        write_bytes(task.dest, blob)
    except OSError as exc:
        got.error, got.fatal = str(os_error(exc, task.dest)), exc.errno in FATAL_ERRNOS
    return got


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
        if not _utf8_ok(os.fspath(out.source)) or not _utf8_ok(out.name):
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
