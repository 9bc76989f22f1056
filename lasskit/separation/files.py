"""The file loop (:func:`separate_files`): separate recordings, not a split.

``lasskit separate FILE_OR_DIR... --query Q [--query ...] --out DIR`` (and ``--queries CSV`` of
``file,query`` rows) writes, for every input and query, ``DIR/<stem>__<query-slug>.wav``: the
estimate at the input's own rate with its channels (separated independently) or one with
``mono``, as 32-bit float WAV of exactly the input's length; with ``residual`` also
``<stem>__<query-slug>__residual.wav`` (the mixture minus the estimate). A folder input is
searched recursively for audio (:data:`lasskit.audio.AUDIO_EXTENSIONS`, the output folder left
out) and its sub-folders are kept under ``DIR``.

Every recording goes through the long-audio engine (:mod:`lasskit.separation.longaudio`): read
in blocks, separated in windows of the model's trained length, written block by block, so
memory does not grow with the recording; a recording no longer than a window is one pass.
All queries of a recording share one decode and each window's model calls.

What is in ``DIR``:

- ``provenance.json`` (a :class:`~lasskit.provenance.Ledger`): per output, the input's content
  digest and the settings that change its bytes (model class, checkpoint SHA-256, options,
  model rate, query, window geometry, mono, estimate or residual, lasskit version). A re-run
  skips every output made from the same input, query and settings, and says why it remakes
  the others (``new``, ``input changed``, ``settings changed: query``...);
- ``separations.csv``: ``input, query, output, residual, model, checkpoint_sha256, seconds``
  (seconds of audio) for every current output in ``DIR``, sorted by output;
- ``failures.csv`` (``input, reason``) when some inputs failed: an unreadable file, a folder
  with no audio, a ``--queries`` row naming a missing file or an empty query, two inputs whose
  outputs would have the same name. The others are still separated; the command exits 1.

Outputs are written through :func:`lasskit.atomic.atomic_path`: Ctrl-C (or a failure in the
middle of a recording) leaves no partial output, only what was finished (and recorded).
"""

from __future__ import annotations

import csv
import os
import struct
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lasskit import __version__, audio
from lasskit.atomic import NAME_MAX, atomic_path, remove_leftovers, write_text_if_changed
from lasskit.errors import AudioError, LasskitError, UsageError, WorkError, os_error
from lasskit.failures import write_failures
from lasskit.provenance import DIGEST_CACHE_FILE, DigestCache, Ledger, summarize_reasons
from lasskit.separation.inputs import (  # noqa: F401 - re-exported: their home before the split
    RESIDUAL_SUFFIX, SLUG_LENGTH, FileJob, collect_inputs, query_slug, read_queries_csv, shown)
from lasskit.separation.model import checkpoint_sha256, option_files
from lasskit.separation.outputs import _json_safe

SEPARATIONS_CSV = "separations.csv"
FAILURES_CSV = "failures.csv"
DEFAULT_FILE_MODEL = "dcase2024-baseline"
"""The model ``separate FILE...`` uses unless ``--model`` names another."""
WAV_LIMIT = 2**32 - 1
"""The largest RIFF size field: an output whose file would be longer is written as RF64 (EBU Tech 3306)."""


@dataclass
class FilesReport:
    """What :func:`separate_files` did: outputs written/skipped, failures ``(input, reason)``,
    seconds of audio separated, wall time, why outputs were (re)made."""

    out_dir: Path
    model: str
    device: str
    inputs: int = 0
    outputs: int = 0
    written: int = 0
    skipped: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    audio_seconds: float = 0.0
    seconds: float = 0.0
    windows: int = 0
    reasons: Counter = field(default_factory=Counter)
    silent: list[str] = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    rate_note: str | None = None
    """One line when the network runs at another rate than 16 kHz (said once in the summary)."""
    ranks: list = field(default_factory=list)
    """With several processes: what each rank did (rank, written, failed, audio_seconds, seconds)."""
    notes: list[str] = field(default_factory=list)
    """What was done otherwise than asked, one line each (a repeated --queries row, done once)."""

    @property
    def real_time_factor(self) -> float:
        return self.audio_seconds / self.seconds if self.seconds > 0 else 0.0

    @property
    def redone(self) -> str:
        return summarize_reasons(self.reasons, self.outputs)


# --- output files --------------------------------------------------------------------------------


class WavStream:
    """A 32-bit float WAV written block by block to ``path`` (the same bytes
    :func:`lasskit.audio.write` writes for the whole signal); the sizes are filled in by :meth:`close`.
    When ``expected`` frames (the source's header count) would make the file longer than RIFF's
    size fields can say (:data:`WAV_LIMIT`, 4 GiB: e.g. 2 hours of 6 channels at 48 kHz), it is an
    RF64 file (a ``ds64`` chunk holds the 64-bit sizes; libsndfile and most editors read it)."""

    def __init__(self, path: Path, channels: int, rate: int, expected: int = 0):
        self.fh = open(path, "wb")
        self.channels, self.rate, self.frames = channels, rate, 0
        self.header = self.riff = audio.wav_bytes(b"", channels, rate, "float")
        self.rf64 = len(self.header) - 8 + expected * channels * 4 > WAV_LIMIT * 0.9  # room for a wrong count
        if self.rf64:
            self.header = self._rf64(0)
        self.fh.write(self.header)
        self.any = False

    def write(self, block: np.ndarray) -> None:
        """``(frames, channels)`` float samples."""
        if not np.isfinite(block).all():
            raise WorkError(f"{self.fh.name}: refusing to write NaN or infinite samples")
        if not self.rf64 and len(self.header) - 8 + (self.frames + len(block)) * self.channels * 4 > WAV_LIMIT:
            raise WorkError(f"{self.fh.name}: the recording decodes to more frames than its header says and the "
                            "output outgrows WAV's 4 GiB; convert the input to WAV or FLAC first")
        self.fh.write(np.ascontiguousarray(block, dtype="<f4").tobytes())
        self.frames += len(block)
        self.any = self.any or bool(np.any(block))

    def _rf64(self, payload: int) -> bytes:
        """The RF64 header of ``payload`` bytes of samples: RIFF's fields say 0xFFFFFFFF, ds64 the sizes."""
        body = self.riff[12:]  # fmt, fact and data chunks of the RIFF header
        size = 12 + 36 + len(body) + payload - 8
        ds64 = b"ds64" + struct.pack("<IQQQI", 28, size, payload, self.frames, 0)
        fixed = bytearray(body)
        fact = body.find(b"fact")
        fixed[fact + 8:fact + 12] = struct.pack("<I", 0xFFFFFFFF)
        data = body.find(b"data")
        fixed[data + 4:data + 8] = struct.pack("<I", 0xFFFFFFFF)
        return b"RF64" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + ds64 + bytes(fixed)

    def close(self) -> None:
        payload = self.frames * self.channels * 4
        self.fh.seek(0)
        if self.rf64:
            self.fh.write(self._rf64(payload))
            self.fh.close()
            return
        header = self.riff
        body_size = len(header) - 8 + payload
        fixed = bytearray(header)
        fixed[4:8] = struct.pack("<I", body_size)
        fact = header.find(b"fact")
        fixed[fact + 8:fact + 12] = struct.pack("<I", self.frames)
        data = header.find(b"data")
        fixed[data + 4:data + 8] = struct.pack("<I", payload)
        self.fh.write(bytes(fixed))
        self.fh.close()


class _Aligned:
    """Frames of a source read in step with the estimate (for the residual)."""

    def __init__(self, source):
        self.blocks = source.blocks()
        self.pending = np.zeros((0, source.channels), np.float32)

    def take(self, n: int) -> np.ndarray:
        parts, have = [], 0
        while have < n:
            if not len(self.pending):
                self.pending = next(self.blocks, None)
                if self.pending is None:
                    self.pending = np.zeros((n - have, parts[0].shape[1] if parts else 1), np.float32)
            k = min(n - have, len(self.pending))
            parts.append(self.pending[:k])
            self.pending = self.pending[k:]
            have += k
        return np.concatenate(parts) if len(parts) > 1 else parts[0]


# --- the model -----------------------------------------------------------------------------------


def build_model(model: Any, checkpoint=None, device: str = "auto", options: dict | None = None):
    """The run's model (:class:`lasskit.separation.model.RunModel`, built as the split loop builds
    it) on the resolved ``device``; a model that needs references is refused (a recording has none)."""
    from lasskit.separation.engine import resolve_device
    from lasskit.separation.model import build_model as build_run_model

    device = resolve_device(device)
    run_model = build_run_model(model, device=device, checkpoint=checkpoint, options=options)
    if run_model.needs_reference:
        raise UsageError(f"model {run_model.name} needs the reference source, which a recording does not have; "
                         "use it on a split (lasskit separate --split)")
    return run_model, device


# --- the loop ------------------------------------------------------------------------------------


def separate_files(
    inputs: list[str | os.PathLike],
    queries: list[str] | None = None,
    out_dir: str | os.PathLike = "separated",
    *,
    queries_csv: str | os.PathLike | None = None,
    model: Any = DEFAULT_FILE_MODEL,
    checkpoint: str | os.PathLike | None = None,
    device: str = "auto",
    options: dict | None = None,
    residual: bool = False,
    mono: bool = False,
    window_seconds: float | None = None,
    context_seconds: float | None = None,
    crossfade_seconds: float | None = None,
    batch_size: int = 4,
    overwrite: bool = False,
) -> FilesReport:
    """Separate every input file (or the audio under every input folder) with every query into
    ``out_dir`` (see the module doc). Per-input failures are returned and listed in
    ``failures.csv``; a model that fails on a recording is that recording's failure too."""
    from lasskit.separation.longaudio import FileSource, StreamStats, Windows, model_caller, separate_stream

    started = time.perf_counter()
    for q in queries or []:  # stripped like the queries of a --queries CSV: " rain" is "rain"
        if not q.strip():
            raise UsageError(f"--query {q!r}: an empty query separates nothing; describe the sound "
                             "(e.g. 'a dog barking')")
    queries = [q.strip() for q in (queries or [])]
    slugs: dict[str, str] = {}
    for q in queries:  # every input would fail on the second one: refuse the command instead
        other = slugs.setdefault(query_slug(q), q)
        if other != q:
            raise UsageError(f"--query {q!r} and --query {other!r} give the same output name (<stem>__{query_slug(q)}.wav); "
                             "keep one of them or reword it")
    if batch_size < 1:
        raise UsageError(f"--batch-size {batch_size}: must be at least 1")
    if inputs and not queries:
        raise UsageError("no --query for the inputs: give --query 'a dog barking' (repeatable), "
                         "or --queries CSV with file,query rows")
    if not inputs and queries_csv is None:
        raise UsageError("nothing to separate: give recordings or folders (lasskit separate FILE... --query Q "
                         "--out DIR), or --queries CSV")
    out_dir = Path(out_dir).expanduser()
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir}: is a file; give a folder for the outputs")
    notes: list[str] = []
    jobs, failures = collect_inputs(list(inputs), queries, out_dir, queries_csv, notes)

    from lasskit.separation.distributed import env_shard, init_group, merge_rank_ledgers
    from lasskit.separation.engine import resolve_device

    device = resolve_device(device)
    shard = env_shard()  # under torchrun/srun or --devices N: this process's rank (distributed.py)
    if shard is not None:
        device = init_group(shard, device)
    run_model, device = build_model(model, checkpoint, device, options)
    model_obj, name, label = run_model.model, run_model.name, run_model.label
    model_rate = int(getattr(model_obj, "sample_rate", 16000) or 16000)
    geometry = Windows.for_model(model_obj, model_rate, window_seconds, context_seconds, crossfade_seconds)
    base_settings = {
        "model": f"{type(model_obj).__module__}:{type(model_obj).__qualname__}",
        "checkpoint_sha256": checkpoint_sha256(model_obj, run_model.checkpoint),
        "options": _json_safe(run_model.options),
        **option_files(run_model.options),
        "model_sample_rate": model_rate,
        "window": [geometry.window, geometry.context, geometry.crossfade],
        "mono": bool(mono),
        "lasskit_version": __version__,
    }
    report = FilesReport(out_dir, name, device, settings=base_settings, notes=notes)
    report.rate_note = getattr(run_model.model, "rate_note", None)
    lead = shard is None or shard.lead
    if lead:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise os_error(exc, out_dir) from None
        remove_leftovers(out_dir)
        ledger = Ledger(out_dir)
        merge_rank_ledgers(out_dir, ledger)  # what the ranks of a killed run recorded
    if shard is not None:
        shard.barrier()
        if not lead:
            ledger = Ledger(out_dir)
    digests = DigestCache(out_dir / DIGEST_CACHE_FILE)
    if not lead:
        digests.path = None  # rank 0 keeps the cache file
    report.inputs = len(jobs)

    # outputs two inputs (or two queries) would share are failures, not overwrites
    owners: dict[str, tuple[str, str]] = {}
    for job in jobs:  # a residual's name counts too: a__b.wav's "residual" is a.wav's "b" residual
        keep = []
        for q in job.queries:
            outs = [job.output(q)] + ([job.output(q, True)] if residual else [])
            clash = next(((out, owners[out]) for out in outs if out in owners), None)
            long = next((out for out in outs if not _fits(out)), None)
            if long is not None:  # the file system refuses it: this input's failure, not the whole run's
                report.failures.append((job.label, f"{job.label}: the output name {Path(long).name[:40]}... is "
                                                   f"{len(os.fsencode(Path(long).name))} bytes, the file system allows "
                                                   f"{NAME_MAX}; rename the input (or shorten the query)"))
                continue
            if clash is not None:
                out, other = clash
                report.failures.append((job.label, f"{job.label}: query {q!r} gives the output {out}, as {other[1]!r} "
                                                   f"of {other[0]} does; rename one input or separate them apart"))
                continue
            owners.update((out, (job.label, q)) for out in outs)
            keep.append(q)
        job.queries = keep
    if lead:
        report.failures.extend(failures)
    shared_failures = len(report.failures)  # said once, by rank 0
    if shard is not None:
        jobs = shard.select(jobs)  # recording i to rank i mod world
    records = ledger if shard is None else shard.rank_ledger(out_dir)
    forgotten: list[str] = []

    def settings_for(query: str, kind: str) -> dict:
        return {**base_settings, "query": query, "output": kind}

    from lasskit.parallel import progress_bar

    try:
        for job in jobs:
            if not job.queries:
                continue
            try:
                st = os.stat(job.path)
                digest = digests.digest(job.path, st)
            except OSError as exc:
                report.failures.append((job.label, str(os_error(exc, job.path))))
                continue
            todo = []
            for q in job.queries:
                kinds = [("estimate", job.output(q))] + ([("residual", job.output(q, True))] if residual else [])
                reasons = []
                for kind, out in kinds:
                    report.outputs += 1
                    why = "overwrite requested" if overwrite else ledger.check(out, out_dir / out, digest,
                                                                               settings_for(q, kind))
                    if why == "new" and (out_dir / out).exists():
                        why = "no record of what made it"
                    if why is None:
                        report.skipped += 1
                    else:
                        reasons.append(why)
                if reasons:
                    todo.append(q)
                    report.reasons.update(reasons)
            if not todo:
                continue
            try:
                source = FileSource(job.path, mono=mono)
            except AudioError as exc:
                report.failures.append((job.label, str(exc)))
                continue
            # nothing is removed before the model runs: each new output is renamed over its old one
            # once complete (atomic_path) and recorded at once; a recording that fails keeps its old
            # outputs and records. An earlier --residual run's residual of an estimate remade now
            # without --residual no longer matches it: removed once the new estimate is in place.
            stale_residuals = {q: [] if residual else [job.output(q, True)] for q in todo}
            stale_residuals = {q: [out for out in outs if _fits(out) and (out_dir / out).exists() and
                                   ledger.check(out, out_dir / out, digest, settings_for(q, "residual")) is not None]
                               for q, outs in stale_residuals.items()}
            stats = StreamStats()
            run = model_caller(model_obj, todo, source.channels, device, label, batch_size, str(job.path), stats)
            rows = len(todo) * source.channels
            seconds = source.frames / source.rate
            try:
                with ExitStack() as stack, progress_bar(round(seconds, 1), f"{job.path.name}", "s") as bar:
                    targets = []
                    for q in todo:
                        names = [job.output(q)] + ([job.output(q, True)] if residual else [])
                        streams = []
                        for out in names:
                            (out_dir / out).parent.mkdir(parents=True, exist_ok=True)
                            tmp = stack.enter_context(atomic_path(out_dir / out))
                            streams.append(WavStream(tmp, source.channels, source.rate, source.frames))
                        targets.append(streams)
                    mixture = _Aligned(source) if residual else None
                    done = 0
                    for block in separate_stream(source, run, rows, model_rate, geometry, stats):
                        mix = mixture.take(len(block)) if mixture is not None else None
                        for k, streams in enumerate(targets):
                            est = block[:, k * source.channels:(k + 1) * source.channels]
                            streams[0].write(est)
                            if mix is not None:
                                streams[1].write(mix - est)
                        done += len(block)
                        bar.update(round(len(block) / source.rate, 3))
                    for streams in targets:
                        for s in streams:
                            s.close()
            except (LasskitError, OSError) as exc:
                message = str(os_error(exc, job.path)) if isinstance(exc, OSError) else str(exc)
                report.failures.append((job.label, message))
                continue
            for q, streams in zip(todo, targets):
                for kind, out in zip(("estimate", "residual"), [job.output(q)] + ([job.output(q, True)] if residual else [])):
                    extra = {"input": job.label, "query": q, "seconds": round(stats.frames / source.rate, 6),
                             "model": name}
                    records.record(out, out_dir / out, digest, settings_for(q, kind), extra)
                    report.written += 1
                if not streams[0].any:
                    report.silent.append(job.output(q))
                for out in stale_residuals[q]:
                    ledger.forget(out)
                    forgotten.append(out)
                    try:
                        (out_dir / out).unlink(missing_ok=True)
                    except OSError as exc:
                        raise os_error(exc, out_dir / out) from None
            report.audio_seconds += stats.frames / source.rate
            report.windows += stats.windows
    except BaseException:
        report.seconds = time.perf_counter() - started
        if shard is not None:  # this rank's records; the next run merges them
            try:
                records.save()
            except OSError:
                pass
            raise
        _finish(out_dir, report, ledger, digests, quiet=True)  # what was finished stays recorded
        raise
    report.seconds = time.perf_counter() - started
    report.rate_note = getattr(model_obj, "rate_note", None)  # again: a model may add what it counted
    if shard is not None:
        records.save()
        everyone = shard.gather({"written": report.written, "skipped": report.skipped, "outputs": report.outputs,
                                 "failures": report.failures[shared_failures:], "silent": report.silent,
                                 "audio_seconds": report.audio_seconds, "windows": report.windows,
                                 "seconds": report.seconds, "reasons": dict(report.reasons), "forgotten": forgotten})
        if not lead:
            return report
        for other in everyone[1:]:
            for key in ("written", "skipped", "outputs", "audio_seconds", "windows"):
                setattr(report, key, getattr(report, key) + other[key])
            report.failures.extend(other["failures"])
            report.silent.extend(other["silent"])
            report.reasons.update(other["reasons"])
            for out in other["forgotten"]:
                ledger.forget(out)
        report.seconds = max(r["seconds"] for r in everyone)
        merge_rank_ledgers(out_dir, ledger)
        report.ranks = [{"rank": r, "written": e["written"], "failed": len(e["failures"]),
                         "audio_seconds": round(e["audio_seconds"], 3), "seconds": round(e["seconds"], 3)}
                        for r, e in enumerate(everyone)]
    report.failures.sort()
    report.silent.sort()
    _finish(out_dir, report, ledger, digests, quiet=False)
    return report


def _fits(out: str) -> bool:
    """False for an output name longer than the file system allows (no such file can exist)."""
    return len(os.fsencode(Path(out).name)) <= NAME_MAX


def separations_rows(ledger: Ledger, out_dir: Path) -> list[list[str]]:
    """The rows of ``separations.csv``: every recorded estimate still in ``out_dir``."""
    rows = []
    for out, rec in sorted(ledger.records.items()):
        extra = rec.extra or {}
        settings = ledger.settings.get(rec.settings) or {}
        if settings.get("output") != "estimate" or not (out_dir / out).is_file():
            continue
        res = out[:-4] + RESIDUAL_SUFFIX + ".wav"
        other = ledger.records.get(res)  # listed only as the residual of this very estimate
        has_res = (other is not None and (out_dir / res).is_file() and other.input == rec.input
                   and {**(ledger.settings.get(other.settings) or {}), "output": "estimate"} == settings)
        rows.append([extra.get("input", ""), extra.get("query", ""), out, res if has_res else "",
                     extra.get("model", ""), settings.get("checkpoint_sha256") or "", f"{extra.get('seconds', 0):.3f}"])
    return rows


def _finish(out_dir: Path, report: FilesReport, ledger: Ledger, digests: DigestCache, quiet: bool) -> None:
    """Write the ledger, the digest cache, separations.csv and failures.csv (as far as the disk
    allows when the run is being stopped, without hiding why it stopped)."""
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["input", "query", "output", "residual", "model", "checkpoint_sha256", "seconds"])
    writer.writerows(separations_rows(ledger, out_dir))
    for step in (ledger.save, digests.save, lambda: write_text_if_changed(out_dir / SEPARATIONS_CSV, buf.getvalue()),
                 lambda: write_failures(out_dir / FAILURES_CSV, [(shown(a), shown(b)) for a, b in report.failures],
                                        first_column="input")):
        try:
            step()
        except OSError as exc:
            if not quiet:
                raise os_error(exc, out_dir) from None
