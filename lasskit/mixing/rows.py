"""One row of a mixture set on disk: its fingerprint, the float WAV writer, the worker that reads,
mixes and writes a row, its ``mixtures.csv`` record, the organizers' CSV text, and the rebuild of
a row from its record.

**What ties a row to what made it.** Row ``i``'s bytes are fixed by the target's and the noise's
files, the two crop offsets, the segment length and the SNR. Their fingerprint
(:func:`row_fingerprint`: BLAKE2b-128 of the two clips' file digests, offsets, length, SNR and
:data:`WRITER_VERSION`) goes into ``mixtures.csv`` (column ``fingerprint``) and, with each of the
row's three files' size and mtime, into the split's ledger (``provenance.json``, see
:mod:`lasskit.provenance`). A re-run (the same command, or ``--overwrite`` with other options)
rewrites exactly the rows whose fingerprint changed or whose files changed on disk, deletes the
files of rows that are no longer in the set, and says how many it redid and why; an unchanged
re-run decodes nothing (clip activity and digests come from the activity cache in
``data/splits/.cache``, gains from the ledger). ``mixtures.csv`` is removed before any file of a changed set is written
and written again last, so a folder never pairs an old table with new audio, or the reverse.
:func:`mixture_fingerprints` gives a later stage each mixture's fingerprint while its file is the
one ``mix`` wrote (a ``stat``, no hashing).

**Columns of mixtures.csv** (:data:`MIX_COLUMNS`): ``mixture, query, source, noise, snr``
(dB over the whole segment), ``snr_active`` (dB over the 0.1 s frames where the target is active;
``inf`` if the noise is silent there), ``source_active`` (s of active target in the segment),
``source_id, noise_id, source_labels, noise_labels, label_sources`` (JSON: where each clip's
labels came from: given, keywords, caption, ...), ``offsets`` and ``gains`` (JSON; they rebuild
the row exactly: :func:`rebuild_row`), ``source_corpus, noise_corpus, seed, fingerprint``.

Files are written by :func:`write_float_wav`: the header and the float32 samples in one
``writev`` to a temporary file, renamed over the output (as :mod:`lasskit.atomic` does; same bytes
as ``lasskit.audio.write(..., "float")``), from per-process buffers reused row after row.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lasskit import SAMPLE_RATE, audio
from lasskit.atomic import TMP_SUFFIX
from lasskit.errors import AudioError
from lasskit.mixing.planning import PlannedRow
from lasskit.mixing.segments import (
    MixedSegments,
    _scratch,
    frame_energies,
    gain_segments,
    mix_segments,
    read_segment,
)
from lasskit.mixing.spec import MixSpec

MIX_COLUMNS = (
    "mixture", "query", "source", "noise", "snr", "snr_active", "source_active", "source_id", "noise_id",
    "source_labels", "noise_labels", "label_sources", "offsets", "gains", "source_corpus", "noise_corpus",
    "seed", "fingerprint",
)

OFFICIAL_HEADER = "source, noise, snr, caption"
"""Header of the organizers' mixing CSV, spaces included, as in lass_synthetic_validation.csv."""

WRITER_VERSION = 3  # 3: levels measured without a large DC offset (lasskit.audible)
"""Changes whenever the arithmetic or the file layout of a row changes (part of every fingerprint)."""

ROW_SETTINGS = {"stage": "mix", "format": "float32 WAV, 16 kHz mono", "writer": WRITER_VERSION}

OUTPUTS = ("mixture", "source", "noise")
"""The three folders of a split, one WAV per row in each."""

def row_fingerprint(target_digest: str, noise_digest: str, target_offset: int, noise_offset: int,
                    length: int, snr: float) -> str:
    """BLAKE2b-128 of what fixes a row's bytes (module doc)."""
    from lasskit.provenance import digest_bytes

    text = f"{WRITER_VERSION}|{target_digest}|{noise_digest}|{target_offset}|{noise_offset}|{length}|{float(snr)!r}"
    return digest_bytes(text.encode("utf-8"))

@dataclass(frozen=True)
class WriteJob:
    """One row to write: clips, offsets (samples), length (samples), SNR (dB), where.

    ``active``: the target segment's active frames (packed bits), for ``snr_active``.
    """

    name: str
    target_path: str
    target_offset: int
    noise_path: str
    noise_offset: int
    length: int
    snr: float
    split_dir: str
    active: bytes = b""
    hop: int = 1600

_HEADERS: dict[int, bytes] = {}

def _float_header(frames: int) -> bytes:
    head = _HEADERS.get(frames)
    if head is None:
        probe = audio.encode_wav(np.zeros(1, dtype=np.float32), SAMPLE_RATE, "float")
        # same layout as encode_wav: sizes patched for ``frames`` samples
        body_size = len(probe) - 8 - 4 + 4 * frames
        head = bytearray(probe[:-4])
        head[4:8] = body_size.to_bytes(4, "little")
        fact = head.find(b"fact")
        head[fact + 8:fact + 12] = frames.to_bytes(4, "little")
        data = head.rfind(b"data")
        head[data + 4:data + 8] = (4 * frames).to_bytes(4, "little")
        head = _HEADERS[frames] = bytes(head)
    return head

def write_float_wav(path: str | os.PathLike, x: np.ndarray) -> None:
    """Write mono float32 ``x`` as a 16 kHz float WAV, atomically (bytes of ``audio.write(path, x, 16000, "float")``)."""
    x = np.asarray(x)
    if x.dtype != np.float32 or x.ndim != 1 or sys.byteorder != "little" or not x.flags.c_contiguous:
        audio.write(path, x, SAMPLE_RATE, "float")
        return
    path = os.fspath(path)
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, f".{name}.{os.getpid()}{TMP_SUFFIX}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        parts = [memoryview(_float_header(len(x))), memoryview(x).cast("B")]
        while parts:
            done = os.writev(fd, parts)
            while parts and done >= len(parts[0]):
                done -= len(parts[0])
                parts.pop(0)
            if parts and done:
                parts[0] = parts[0][done:]
    except BaseException as exc:
        os.close(fd)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and exc.filename is None:  # a full disk: name the file
            raise OSError(exc.errno, exc.strerror, path) from exc
        raise
    os.close(fd)
    os.replace(tmp, path)

def write_row(job: WriteJob) -> dict:
    """Read both segments, mix, write source and noise, then the mixture; return gains and SNRs."""
    length = job.length
    s = read_segment(job.target_path, job.target_offset, length, _scratch("s32", length, np.float32))
    n = read_segment(job.noise_path, job.noise_offset, length, _scratch("n32", length, np.float32))
    out = (_scratch("m_out", length, np.float32), _scratch("s_out", length, np.float32),
           _scratch("n_out", length, np.float32))
    try:
        m = mix_segments(s, n, job.snr, out=out, reuse_source=True)
    except AudioError as exc:
        raise AudioError(f"{Path(job.target_path).name} + {Path(job.noise_path).name}: {exc}")
    snr_active = _active_snr(s, n, m, job)
    root = job.split_dir
    write_float_wav(os.path.join(root, "source", job.name), m.source)
    write_float_wav(os.path.join(root, "noise", job.name), m.noise)
    write_float_wav(os.path.join(root, "mixture", job.name), m.mixture)
    return {"source_gain": m.source_gain, "noise_gain": m.noise_gain, "clip_gain": m.clip_gain,
            "snr_active": snr_active, "dc_levelled": [int(m.dc_levelled[0]), int(m.dc_levelled[1])]}

def _active_snr(s: np.ndarray, n: np.ndarray, m: MixedSegments, job: WriteJob) -> float:
    """``10*log10(sum_active(source^2) / sum_active(noise^2))`` over the target's active frames (dB)."""
    frames = -(-job.length // job.hop)
    mask = np.unpackbits(np.frombuffer(job.active, dtype=np.uint8), count=frames).astype(bool) \
        if job.active else np.ones(frames, dtype=bool)
    if not mask.any():
        return float("nan")
    fs = m.source_frames if m.source_frames is not None else frame_energies(s, job.hop)
    fn = m.noise_frames if m.noise_frames is not None else frame_energies(n, job.hop)
    es = float(fs[mask].sum()) * m.source_gain ** 2
    en = float(fn[mask].sum()) * m.noise_gain ** 2
    if en <= 0:
        return float("inf")
    return float(10 * np.log10(es / en)) if es > 0 else float("-inf")

def clip_length(row: PlannedRow, role: str, activity: dict) -> int | None:
    """Samples of the row's target or noise clip (as scanned; else the manifest's duration)."""
    clip = row.target if role == "target" else row.noise
    scanned = activity.get(clip.key)
    if scanned is not None:
        return int(scanned.num_samples)
    return int(round(clip.duration * SAMPLE_RATE)) if clip.duration else None

_LABELS_JSON: dict[tuple[str, ...], str] = {}

def labels_json(labels: list[str]) -> str:
    key = tuple(labels)
    text = _LABELS_JSON.get(key)
    if text is None:
        if len(_LABELS_JSON) > 100_000:
            _LABELS_JSON.clear()
        text = _LABELS_JSON[key] = json.dumps(labels, ensure_ascii=False)
    return text

def row_record(name: str, r: PlannedRow, gains: dict, spec: MixSpec, fingerprint: str, planner) -> dict:
    active_frames = planner.active_frames(r.target.key, r.target_offset)
    active_s = min(spec.duration, active_frames * spec.hop / SAMPLE_RATE)
    snr_active = float(gains.get("snr_active", float("nan")))
    # the JSON cells are written as json.dumps would (same bytes), without its per-call cost
    return {
        "mixture": name, "query": r.query, "source": f"source/{name}", "noise": f"noise/{name}",
        "snr": spec.format_snr(r.snr), "snr_active": _fmt_db(snr_active), "source_active": f"{active_s:.1f}",
        "source_id": r.target.id, "noise_id": r.noise.id,
        "source_labels": labels_json(r.target.labels), "noise_labels": labels_json(r.noise.labels),
        "label_sources": f'{{"source": {labels_json([r.target.label_source])[1:-1]}, '
                         f'"noise": {labels_json([r.noise.label_source])[1:-1]}}}',
        "offsets": f'{{"source": {r.target_offset}, "noise": {r.noise_offset}}}',
        "gains": f'{{"source": {float(gains["source_gain"])!r}, "noise": {float(gains["noise_gain"])!r}, '
                 f'"clip": {float(gains["clip_gain"])!r}}}',
        "source_corpus": r.target.corpus, "noise_corpus": r.noise.corpus, "seed": str(spec.seed),
        "fingerprint": fingerprint,
    }

def _fmt_db(x: float) -> str:
    if np.isnan(x):
        return ""
    if np.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.4f}"

def csv_text(records: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(MIX_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return buf.getvalue()

def official_csv_text(rows: Sequence[PlannedRow], spec: MixSpec) -> str:
    """The organizers' layout: ``source, noise, snr, caption`` with clip ids (header spaces as theirs)."""
    buf = io.StringIO()
    buf.write(OFFICIAL_HEADER + "\n")
    writer = csv.writer(buf, lineterminator="\n")
    for r in rows:
        writer.writerow([r.target.id, r.noise.id, spec.format_snr(r.snr), r.query])
    return buf.getvalue()

def rebuild_row(row: dict, source_path: str | os.PathLike, noise_path: str | os.PathLike,
                length: int) -> MixedSegments:
    """Recompute a ``mixtures.csv`` row's audio (``length`` samples) from its clips, offsets and gains.

    Bit-exact: equal to the written float32 files.
    """
    offsets = json.loads(row["offsets"])
    gains = json.loads(row["gains"])
    s = read_segment(source_path, int(offsets["source"]), length)
    n = read_segment(noise_path, int(offsets["noise"]), length)
    m = gain_segments(s, n, gains["source"], gains["noise"])
    m.clip_gain = float(gains["clip"])
    return m
