"""Segments of clips: activity (silence), crops, partial reads, and the gains that set an SNR."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lasskit import SAMPLE_RATE, audio
from lasskit.errors import AudioError
from lasskit.official import CLIP_PEAK

FRAME_SECONDS = 0.1
"""Activity frames and crop-offset grid, in seconds."""
SILENCE_DB = -60.0
"""Default activity threshold: a frame is active when its RMS is at least this many dBFS."""
_WAV_FORMATS = ("WAV", "WAVEX", "RF64", "W64", "FLAC", "AIFF")  # exact partial reads


def frame_activity(signal: np.ndarray, silence_db: float = SILENCE_DB, hop: int | None = None) -> np.ndarray:
    """Per 0.1 s frame (``hop`` samples), True when the frame's RMS >= ``silence_db`` dBFS."""
    hop = hop or int(round(FRAME_SECONDS * SAMPLE_RATE))
    x = np.asarray(signal, dtype=np.float64)
    frames = -(-len(x) // hop)
    padded = np.zeros(frames * hop)
    padded[: len(x)] = x
    energy = (padded.reshape(frames, hop) ** 2).sum(axis=1)
    counts = np.full(frames, hop, dtype=np.float64)
    if frames and len(x) % hop:
        counts[-1] = len(x) % hop
    threshold = 10 ** (silence_db / 10)  # on mean power
    return energy / counts >= threshold


def usable_offsets(active: np.ndarray, num_samples: int, length: int, hop: int) -> np.ndarray:
    """Crop offsets (samples) whose ``length`` window holds >= half the best window's active frames.

    A clip no longer than ``length`` has the one offset 0 (it is zero-padded) if any frame is
    active. An empty result means the clip is silent for this length.
    """
    active = np.asarray(active, dtype=bool)
    if num_samples <= length:
        return np.zeros(1, dtype=np.int64) if active.any() else np.zeros(0, dtype=np.int64)
    count = (num_samples - length) // hop + 1
    width = -(-length // hop)
    cum = np.concatenate([[0], np.cumsum(active, dtype=np.int64)])
    starts = np.arange(count)
    ends = np.minimum(starts + width, len(active))
    per_window = cum[ends] - cum[np.minimum(starts, len(active))]
    best = int(per_window.max()) if len(per_window) else 0
    if best == 0:
        return np.zeros(0, dtype=np.int64)
    return (np.flatnonzero(2 * per_window >= best) * hop).astype(np.int64)


def take_segment(signal: np.ndarray, offset: int, length: int) -> np.ndarray:
    """``signal[offset:offset+length]``, zero-padded at the end to ``length`` samples."""
    seg = np.asarray(signal)[offset:offset + length]
    if len(seg) < length:
        seg = np.concatenate([seg, np.zeros(length - len(seg), dtype=seg.dtype)])
    return seg


_local = threading.local()


def _scratch(slot: str, length: int, dtype) -> np.ndarray:
    """A reusable buffer of this thread: big rows would otherwise page-fault fresh memory each time."""
    buffers = _local.__dict__.setdefault("buffers", {})
    key = (slot, length, np.dtype(dtype).char)
    buf = buffers.get(key)
    if buf is None:
        if len(buffers) >= 16:
            buffers.clear()
        buf = buffers[key] = np.empty(length, dtype=dtype)
    return buf


def read_segment(path: str | os.PathLike, offset: int, length: int, out: np.ndarray | None = None) -> np.ndarray:
    """Samples ``offset .. offset+length`` of a clip as 16 kHz mono float32, zero-padded.

    Equal to ``take_segment(audio.load(path), offset, length)``; 16 kHz WAV/FLAC files are read
    partially (only the segment is decoded). ``out`` (float32, ``length``) receives the samples.
    """
    import soundfile as sf

    path = Path(path)
    try:
        i = sf.info(str(path))
    except Exception:
        i = None
    if i is None or i.samplerate != SAMPLE_RATE or i.format not in _WAV_FORMATS:
        seg = take_segment(audio.load(path), offset, length)
        if out is None:
            return seg
        out[:] = seg
        return out
    want = max(0, min(length, int(i.frames) - offset))
    if out is None:
        out = np.empty(length, dtype=np.float32)
    try:
        with sf.SoundFile(str(path)) as f:
            f.seek(min(offset, int(f.frames)))
            if f.channels == 1:
                got = len(f.read(want, dtype="float32", out=out[:want]))
            else:
                data = f.read(want, dtype="float32", always_2d=True)
                got = data.shape[0]
                out[:got] = audio.to_mono(np.ascontiguousarray(data.T))
    except Exception as exc:
        raise AudioError(f"{path}: unreadable audio ({exc}); re-download or remove it") from exc
    if got < want:
        raise AudioError(f"{path}: truncated audio (read {got} of {want} samples at {offset}); re-prepare it")
    out[want:] = 0
    if not np.isfinite(out[:want]).all():
        raise AudioError(f"{path}: audio holds NaN or infinite samples; fix or remove the file")
    return out


@dataclass
class MixedSegments:
    """A mixture, its reference and its noise (float32, same length), and the gains that made them.

    ``source = f32(source_segment * source_gain)``, ``noise = f32(noise_segment * noise_gain)``,
    ``mixture = source + noise``; ``clip_gain`` is the part of both gains that prevents clipping.
    """

    mixture: np.ndarray
    source: np.ndarray
    noise: np.ndarray
    source_gain: float
    noise_gain: float
    clip_gain: float


def mix_segments(source: np.ndarray, noise: np.ndarray, snr: float) -> MixedSegments:
    """Mix equal-length segments at ``snr`` dB (energy ratio over the segments; see module doc)."""
    if len(source) != len(noise):
        raise ValueError(f"segments differ in length ({len(source)} and {len(noise)} samples)")
    s = _scratch("s64", len(source), np.float64)
    n = _scratch("n64", len(noise), np.float64)
    s[:] = source
    n[:] = noise
    es, en = _energy(s), _energy(n)
    if es <= 0:
        raise AudioError("target segment is silent: the SNR is undefined")
    if en <= 0:
        raise AudioError("noise segment is silent: the SNR is undefined")
    g = float(np.sqrt(es / (en * 10 ** (snr / 10))))
    work = np.multiply(n, g, out=_scratch("w64", len(n), np.float64))
    work += s
    peak = max(float(work.max()), -float(work.min()))
    clip = CLIP_PEAK / peak if peak > 1 else 1.0
    return gain_segments(s, n, clip, clip * g)


def gain_segments(source: np.ndarray, noise: np.ndarray, source_gain: float, noise_gain: float) -> MixedSegments:
    """Apply recorded gains (float64 product, then float32) and sum: how every row is written."""
    s32 = _scaled32(source, source_gain)
    n32 = _scaled32(noise, noise_gain)
    return MixedSegments(s32 + n32, s32, n32, float(source_gain), float(noise_gain), float(source_gain))


def _scaled32(x: np.ndarray, gain: float) -> np.ndarray:
    """``float32(float64(x) * gain)`` (a new array)."""
    x = np.asarray(x)
    if gain == 1.0:
        return x.astype(np.float32)  # exact: float64(x) * 1.0 == x
    work = _scratch("w64", len(x), np.float64)
    work[:] = x
    work *= gain
    return work.astype(np.float32)


def _energy(x: np.ndarray) -> float:
    """``sum(x^2)`` in float64 (einsum: no BLAS threads, no temporary)."""
    return float(np.einsum("i,i->", x, x))


def energy_snr(source: np.ndarray, noise: np.ndarray) -> float:
    """``10*log10(sum(source^2) / sum(noise^2))`` in dB, computed in float64."""
    s = np.asarray(source, dtype=np.float64)
    n = np.asarray(noise, dtype=np.float64)
    return float(10 * np.log10(_energy(s) / _energy(n)))


