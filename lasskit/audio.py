"""Audio core: read anything soundfile reads, downmix, resample, write WAV atomically.

Conventions used throughout lasskit:

- a signal is a ``numpy.ndarray`` of shape ``(samples,)`` (mono) or ``(channels, samples)``;
- sample rates are in Hz, durations in seconds, lengths in samples;
- mono is the average of the channels;
- the default resampler is soxr at "HQ" quality; ``resampler="torchaudio"`` uses
  ``torchaudio.functional.resample`` (imported only when asked for).

Every error names the file it is about and is an :class:`~lasskit.errors.AudioError`.

16-bit PCM is written as ``round(x * 32768)``; a signal *clips* in 16-bit when some sample
rounds outside ``[-32768, 32767]`` (:func:`clips_pcm16`, i.e. ``x >= 32767.5/32768`` or
``x < -32768.5/32768``). ``prepare`` writes such a file as 32-bit float instead (lossless).
"""

from __future__ import annotations

import errno
import io
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from lasskit import SAMPLE_RATE
from lasskit.atomic import write_bytes
from lasskit.errors import AudioError, UsageError

RESAMPLERS = ("soxr", "torchaudio")
SUBTYPES = {"pcm16": "PCM_16", "pcm24": "PCM_24", "float": "FLOAT"}
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff", ".aifc", ".au", ".opus", ".caf", ".w64",
                    ".rf64", ".oga")
"""What libsndfile (soundfile) decodes: files named so are audio to prepare."""
UNDECODABLE_EXTENSIONS = (".m4a", ".mp4", ".aac", ".wma", ".webm", ".mka", ".ape", ".wv", ".ac3", ".amr", ".3gp",
                          ".mov", ".mkv", ".avi", ".alac", ".dsf", ".mid", ".midi")
"""Audio (or video) formats libsndfile cannot decode: reported as failures, never skipped silently."""


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says: rate (Hz), channels, length (samples) and subtype."""

    path: Path
    sample_rate: int
    channels: int
    num_samples: int
    subtype: str

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.num_samples / self.sample_rate


def info(path: str | os.PathLike) -> AudioInfo:
    """Read a file's header without decoding it."""
    path = Path(path)
    try:
        i = sf.info(os.fsencode(path))  # bytes: a folder name that is not UTF-8 opens too
    except Exception as exc:  # soundfile raises several types; all mean "unreadable"
        raise AudioError(f"{path}: cannot read audio header ({_short(exc)}); check the file") from exc
    return AudioInfo(path, int(i.samplerate), int(i.channels), int(i.frames), str(i.subtype))


def read(path: str | os.PathLike, dtype: str = "float32") -> tuple[np.ndarray, int]:
    """Decode a whole file as ``(channels, samples)`` floats in [-1, 1] and its rate in Hz.

    Raises :class:`AudioError` for unreadable, empty or truncated files and non-finite samples.
    """
    data, rate = _decode(Path(path), dtype)
    return np.ascontiguousarray(data.T), rate


def _decode(path: Path, dtype: str, data: bytes | None = None, pcm16_fast: bool = False
            ) -> tuple[np.ndarray, int]:
    """soundfile's ``(samples, channels)`` array and rate, validated (see :func:`read`).

    ``data``: the file's bytes, already read (decoded from memory: one read per file).
    ``pcm16_fast``: a 16-bit PCM file comes back as ``int16`` (the caller scales it).
    """
    if data is None:
        _check_file(path)
    try:
        with sf.SoundFile(io.BytesIO(data) if data is not None else os.fsencode(path)) as f:
            expected = f.frames
            rate = int(f.samplerate)
            as_int = pcm16_fast and f.subtype == "PCM_16"
            out = f.read(dtype="int16" if as_int else dtype, always_2d=True)
    except Exception as exc:
        raise AudioError(f"{path}: unreadable audio ({_short(exc)}); re-download or remove it") from exc
    if out.shape[0] == 0:
        raise AudioError(f"{path}: empty audio file (0 samples); re-download or remove it")
    declared = _wav_declared_frames(path, data)
    if declared is not None and declared > expected:
        expected = declared
    if 0 < expected and out.shape[0] < expected:
        raise AudioError(
            f"{path}: truncated audio ({out.shape[0]} of {expected} samples); re-download it"
        )
    if out.dtype.kind == "f" and not np.isfinite(out).all():
        raise AudioError(f"{path}: audio holds NaN or infinite samples; fix or remove the file")
    return out, rate


def _check_file(path: Path) -> None:
    """An :class:`AudioError` naming what is wrong when ``path`` is not a readable regular file."""
    if path.is_file():
        return
    if path.is_symlink():
        try:
            os.stat(path)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise AudioError(f"{path}: symbolic link loop; fix or remove the link") from None
        raise AudioError(f"{path}: broken symbolic link (to {os.readlink(path)}, which does not exist); "
                         "fix or remove the link") from None
    if path.is_dir():
        raise AudioError(f"{path}: is a folder, not an audio file")
    raise AudioError(f"{path}: no such audio file")


def read_source(path: str | os.PathLike) -> tuple[bytes, os.stat_result]:
    """A source file's bytes and its ``stat`` (taken on the open file), one read.

    Errors name the file: a broken link, a link loop, a folder, permissions, a failing disk.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            return fh.read(), st
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ELOOP, errno.EISDIR):
            _check_file(path)
        from lasskit.errors import os_error

        raise os_error(exc, path) from None


def to_mono(signal: np.ndarray) -> np.ndarray:
    """Average the channels of ``(channels, samples)`` into ``(samples,)``; mono passes through."""
    if signal.ndim == 1:
        return signal
    if signal.shape[0] == 1:
        return signal[0]
    return signal.mean(axis=0, dtype=np.float64).astype(signal.dtype)


def resample(signal: np.ndarray, orig_rate: int, target_rate: int, resampler: str = "soxr") -> np.ndarray:
    """Resample the last axis from ``orig_rate`` to ``target_rate`` (Hz).

    ``soxr`` (default) is soxr's "HQ" band-limited resampler; ``torchaudio`` is
    ``torchaudio.functional.resample`` with its default sinc window. The output length is
    ``round(len * target_rate / orig_rate)`` samples for soxr.
    """
    if resampler not in RESAMPLERS:
        raise UsageError(f"unknown resampler {resampler!r}; use one of {', '.join(RESAMPLERS)}")
    if orig_rate == target_rate:
        return signal
    if resampler == "soxr":
        import soxr

        if signal.ndim == 1:
            return soxr.resample(signal, orig_rate, target_rate, quality="HQ")
        return np.ascontiguousarray(soxr.resample(signal.T, orig_rate, target_rate, quality="HQ").T)
    import torch
    import torchaudio.functional as taf

    out = taf.resample(torch.from_numpy(np.ascontiguousarray(signal)), orig_rate, target_rate)
    return out.numpy()


def load(
    path: str | os.PathLike,
    sample_rate: int = SAMPLE_RATE,
    resampler: str = "soxr",
    dtype: str = "float32",
    data: bytes | None = None,
    measure: dict | None = None,
) -> np.ndarray:
    """Decode ``path``, downmix to mono and resample to ``sample_rate`` Hz: ``(samples,)``.

    ``data`` is the file's bytes if already read (then ``path`` only names it in errors).
    16-bit PCM is decoded as integers and summed exactly (bit-identical to summing the float
    samples, several times faster). ``measure``: a dict that receives ``downmix_loss_db``, the
    channels' mean energy over the mono downmix's in dB (0 for one channel or silence; channels
    in antiphase cancel: a large loss), measured on the decoded samples before resampling.
    """
    raw, rate = _decode(Path(path), dtype, data, pcm16_fast=dtype == "float32")
    channels = raw.shape[1]
    if raw.dtype == np.int16:  # channel sum exact in int32 / float32 (< 2^24), one scale at the end
        if channels == 1:
            mono = raw[:, 0].astype(np.float32)
        else:
            acc = raw[:, 0].astype(np.int32)
            for c in range(1, channels):
                acc += raw[:, c]
            mono = acc.astype(np.float32)
        mono *= np.float32(1.0 / 32768.0) * np.float32(1.0 / channels) if channels > 1 else np.float32(1.0 / 32768.0)
    else:
        mono = raw[:, 0].copy()  # average the channels column by column (a reduction over a
        for c in range(1, channels):  # short last axis is many times slower in numpy)
            mono += raw[:, c]
        if channels > 1:
            mono *= mono.dtype.type(1.0 / channels)
    if measure is not None:
        measure["downmix_loss_db"] = _downmix_loss_db(raw, mono)
    out = resample(mono, rate, sample_rate, resampler).astype(dtype, copy=False)
    if not np.isfinite(out).all():  # pragma: no cover - resamplers keep finite input finite
        raise AudioError(f"{path}: resampling produced non-finite samples")
    return out


def _downmix_loss_db(raw: np.ndarray, mono: np.ndarray) -> float:
    """Channels' mean energy over their (already computed) mono average's, in dB."""
    channels = raw.shape[1]
    if channels < 2:
        return 0.0
    scale = 1.0 / 32768.0 if raw.dtype == np.int16 else 1.0
    energy = 0.0
    for c in range(channels):
        col = raw[:, c].astype(np.float64)
        energy += float(np.einsum("i,i->", col, col)) * scale * scale  # einsum: no BLAS threads
    energy /= channels
    m = mono.astype(np.float64)
    mixed = float(np.einsum("i,i->", m, m))
    if energy <= 1e-12 * max(len(m), 1):
        return 0.0
    return 10 * float(np.log10(energy / max(mixed, 1e-30)))


def write(
    path: str | os.PathLike,
    signal: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    subtype: str = "pcm16",
) -> Path:
    """Write ``signal`` ((samples,) or (channels, samples)) as WAV, atomically.

    ``subtype`` is ``pcm16`` (default), ``pcm24`` or ``float`` (32-bit float). Integer
    formats saturate out-of-range samples instead of wrapping. Mono or stereo.
    The data goes to a temporary file in the same folder, then is renamed over ``path``:
    a reader never sees a half-written file, and an interrupted run leaves no output.
    """
    path = Path(path)
    if subtype not in SUBTYPES:
        raise UsageError(f"unknown WAV subtype {subtype!r}; use one of {', '.join(SUBTYPES)}")
    signal = np.asarray(signal)
    if not np.isfinite(signal).all():
        raise AudioError(f"{path}: refusing to write NaN or infinite samples")
    if signal.ndim == 2 and signal.shape[0] > 2:
        raise UsageError(f"{path}: lasskit writes mono or stereo WAV, got {signal.shape[0]} channels")
    write_bytes(path, encode_wav(signal, sample_rate, subtype))
    return path


_WAV_FORMATS = {  # subtype -> (format tag, bytes per sample)
    "pcm16": (1, 2),
    "pcm24": (1, 3),
    "float": (3, 4),
}
PCM16_MAX = 32767.5 / 32768.0
"""Samples at or above this round to 32768 in 16-bit and clip (:func:`clips_pcm16`)."""
PCM16_MIN = -32768.5 / 32768.0
"""Samples below this round under -32768 in 16-bit and clip."""


def clips_pcm16(signal: np.ndarray) -> bool:
    """True if writing ``signal`` as 16-bit PCM would saturate a sample (see the module doc)."""
    x = np.asarray(signal)
    return bool(x.size) and (float(x.max()) >= PCM16_MAX or float(x.min()) < PCM16_MIN)


def peak_dbfs(signal: np.ndarray) -> float:
    """``20*log10(max|x|)``: 0 dBFS is full scale (1.0); ``-inf`` for silence."""
    x = np.asarray(signal)
    peak = max(float(x.max()), -float(x.min())) if x.size else 0.0
    return 20.0 * float(np.log10(peak)) if peak > 0 else float("-inf")


def wav_payload(signal: np.ndarray, subtype: str = "pcm16") -> bytes:
    """The samples of a WAV ``data`` chunk, exactly as :func:`encode_wav` stores them.

    Integer samples are ``round(x * 2^(bits-1))`` clipped to the integer range, little-endian,
    channels interleaved; float samples are little-endian float32.
    """
    x = np.asarray(signal)
    interleaved = x if x.ndim == 1 else x.T
    if subtype == "float":
        return np.ascontiguousarray(interleaved, dtype="<f4").tobytes()
    if subtype == "pcm16":
        return np.clip(np.rint(interleaved * 32768.0), -32768, 32767).astype("<i2").tobytes()
    ints = np.clip(np.rint(interleaved * 8388608.0), -8388608, 8388607).astype("<i4")
    return ints.reshape(-1, 1).view(np.uint8)[:, :3].tobytes()


def wav_bytes(payload: bytes, channels: int, sample_rate: int, subtype: str = "pcm16") -> bytes:
    """A whole RIFF/WAVE file around a :func:`wav_payload` (no time stamp: same samples, same bytes)."""
    tag, width = _WAV_FORMATS[subtype]
    block = channels * width
    frames = len(payload) // block
    fmt = struct.pack("<HHIIHH", tag, channels, sample_rate, sample_rate * block, block, 8 * width)
    chunks = [b"fmt ", struct.pack("<I", len(fmt)), fmt]
    if tag != 1:  # non-PCM formats carry a fact chunk with the frame count
        chunks += [b"fact", struct.pack("<II", 4, frames)]
    chunks += [b"data", struct.pack("<I", len(payload)), payload]
    if len(payload) & 1:
        chunks.append(b"\0")
    body = b"".join(chunks)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body


def encode_wav(signal: np.ndarray, sample_rate: int, subtype: str = "pcm16") -> bytes:
    """The bytes of a RIFF/WAVE file holding ``signal`` ((samples,) or (channels, samples)).

    Integer samples are ``round(x * 2^(bits-1))`` clipped to the integer range (what a reader
    divides by, so representable values round-trip exactly); float samples
    are stored as they are (little-endian float32). The header has no time stamp, so the same
    samples always give the same bytes. (Encoding here, not through soundfile, avoids an fsync
    and a slow callback path per file.)
    """
    x = np.asarray(signal)
    channels = 1 if x.ndim == 1 else x.shape[0]
    return wav_bytes(wav_payload(x, subtype), channels, sample_rate, subtype)


def is_complete_wav(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE, channels: int = 1) -> bool:
    """True if ``path`` is a readable WAV at ``sample_rate`` Hz with ``channels`` channels."""
    try:
        i = sf.info(os.fsencode(path))
    except Exception:
        return False
    return i.samplerate == sample_rate and i.channels == channels and i.frames > 0


def find_audio(folder: str | os.PathLike) -> list[Path]:
    """Every audio file under ``folder`` (by extension), sorted by relative path.

    Hidden files are left out. Symbolic links named like audio are kept even when they are
    broken or loop, so that whoever reads them reports them (never a silent skip).
    """
    folder = Path(folder)
    return sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and not p.name.startswith(".")
        and (p.is_file() or (p.is_symlink() and not p.exists()))
    )


def undecodable_audio(folder: str | os.PathLike) -> tuple[list[Path], list[Path]]:
    """``(undecodable, others)`` under ``folder``: files in an audio/video format lasskit cannot
    decode (:data:`UNDECODABLE_EXTENSIONS`), and every other non-hidden file that is not audio
    (metadata, notes), each sorted; so that a recipe can report both instead of skipping them."""
    bad, other = [], []
    for p in Path(folder).rglob("*"):
        if p.name.startswith(".") or p.suffix.lower() in AUDIO_EXTENSIONS or not p.is_file():
            continue
        (bad if p.suffix.lower() in UNDECODABLE_EXTENSIONS else other).append(p)
    return sorted(bad), sorted(other)


def _wav_declared_frames(path: Path, data: bytes | None = None) -> int | None:
    """Frames a RIFF/WAVE header declares in its ``data`` chunk (None if not WAV or unknown).

    libsndfile quietly shortens a truncated WAV to what is on disk; comparing with the
    declared size is how a cut-off download is caught. ``data``: the file's bytes, if read.
    """
    try:
        with (io.BytesIO(data) if data is not None else open(path, "rb")) as fh:
            head = fh.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            block_align = None
            while True:
                chunk = fh.read(8)
                if len(chunk) < 8:
                    return None
                cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if cid == b"fmt ":
                    fmt = fh.read(size + (size & 1))
                    block_align = struct.unpack("<H", fmt[12:14])[0] if len(fmt) >= 14 else None
                elif cid == b"data":
                    if not block_align or size in (0, 0xFFFFFFFF):
                        return None
                    return size // block_align
                else:
                    fh.seek(size + (size & 1), 1)
    except OSError:
        return None


def _short(exc: BaseException) -> str:
    """The last line of a decoder's message, without soundfile's ``Error opening <object at 0x...>:``
    prefix (a memory address would make failures.csv differ from run to run)."""
    text = str(exc).strip().splitlines()
    line = text[-1] if text else type(exc).__name__
    line = re.sub(r"^Error opening (<[^>]*>|b?'[^']*'|\S+): ", "", line)
    return re.sub(r" at 0x[0-9a-fA-F]+", "", line)
