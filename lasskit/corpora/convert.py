"""Converting one raw file for ``prepare`` (run in worker processes): the source's checksum and its
cache, the conversion settings, and :func:`convert_file` (decode, downmix, resample, encode, the
signal measurements behind the notes). The batches, records and manifest around it are in
:mod:`lasskit.corpora.common`, whose module doc describes the conversion and the notes."""

from __future__ import annotations

import errno
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

from lasskit import SAMPLE_RATE, audio
from lasskit.errors import os_error
from lasskit.provenance import DigestCache, digest_bytes

CONVERT_VERSION = 1
"""Version of the conversion arithmetic (decode, downmix, resample, encode). Bumped when a lasskit
release changes the bytes ``prepare`` writes; outputs made by another version are redone."""

DC_SHARE = 0.5
"""A clip is noted for DC when its mean holds more than this share of its energy ..."""
DC_FLOOR = 1e-3
"""... and the mean is at least this large (-60 dBFS): digital silence with a 1-LSB offset is not noted."""
DOWNMIX_LOSS_DB = 20.0
"""A multichannel source is noted when its mono downmix has this much less energy than its channels."""

FATAL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)
"""Write errors that would fail every following file too: the run stops."""

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
        measured: dict = {}
        samples = audio.load(task.source, SAMPLE_RATE, task.resampler, data=data, measure=measured)
        fmt = "float" if task.mode != "pcm16" or audio.clips_pcm16(samples) else "pcm16"
        payload = audio.wav_payload(samples, fmt)
        blob = audio.wav_bytes(payload, 1, SAMPLE_RATE, fmt)
    got.num_samples, got.format, got.peak_dbfs = len(samples), fmt, audio.peak_dbfs(samples)
    got.dc_share, got.dc_level = _dc(samples)
    got.undeclared_frames = _wav_undeclared_frames(data)
    got.downmix_loss_db = 0.0 if copy else measured["downmix_loss_db"]  # measured while decoding, once
    got.digest = digest_bytes(payload) if payload is not None else digest_bytes(audio.wav_payload(samples, "float"))
    try:
        from lasskit.atomic import write_bytes

        write_bytes(task.dest, blob)
    except OSError as exc:
        got.error, got.fatal = str(os_error(exc, task.dest)), exc.errno in FATAL_ERRNOS
    return got
