"""Segments of clips: activity (silence), crops, partial reads, and the gains that set an SNR."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lasskit import SAMPLE_RATE, audio
from lasskit.audible import level_energy
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
    x = np.asarray(signal)
    frames = -(-len(x) // hop)
    energy = frame_energies(x, hop)
    counts = np.full(frames, hop, dtype=np.float64)
    if frames and len(x) % hop:
        counts[-1] = len(x) % hop
    threshold = 10 ** (silence_db / 10)  # on mean power
    return energy / counts >= threshold


def usable_offsets(active: np.ndarray, num_samples: int, length: int, hop: int, min_frames: int = 1) -> np.ndarray:
    """Crop offsets (samples) whose ``length`` window holds >= half the best window's active frames
    and at least ``min_frames`` of them.

    A clip no longer than ``length`` has the one offset 0 (it is zero-padded) if it has
    ``min_frames`` active frames. An empty result means the clip is silent (or too little active)
    for this length.
    """
    active = np.asarray(active, dtype=bool)
    min_frames = max(1, int(min_frames))
    if num_samples <= length:
        ok = int(np.count_nonzero(active)) >= min_frames
        return np.zeros(1, dtype=np.int64) if ok else np.zeros(0, dtype=np.int64)
    count = (num_samples - length) // hop + 1
    width = -(-length // hop)
    cum = np.concatenate([[0], np.cumsum(active, dtype=np.int64)])
    starts = np.arange(count)
    ends = np.minimum(starts + width, len(active))
    per_window = cum[ends] - cum[np.minimum(starts, len(active))]
    best = int(per_window.max()) if len(per_window) else 0
    if best < min_frames:
        return np.zeros(0, dtype=np.int64)
    return (np.flatnonzero((2 * per_window >= best) & (per_window >= min_frames)) * hop).astype(np.int64)


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
    partially (only the segment is decoded, the file opened once). ``out`` (float32, ``length``)
    receives the samples.
    """
    import soundfile as sf

    path = Path(path)
    try:
        f = sf.SoundFile(os.fsencode(path))  # bytes: a name not in UTF-8 opens too
    except Exception:
        f = None
    if f is None or f.samplerate != SAMPLE_RATE or f.format not in _WAV_FORMATS:
        if f is not None:
            f.close()
        seg = take_segment(audio.load(path), offset, length)
        if out is None:
            return seg
        out[:] = seg
        return out
    if out is None:
        out = np.empty(length, dtype=np.float32)
    try:
        with f:
            frames = int(f.frames)
            want = max(0, min(length, frames - offset))
            f.seek(min(offset, frames))
            if f.channels == 1:
                got = len(f.read(want, dtype="float32", out=out[:want]))
            else:
                data = f.read(want, dtype="float32", always_2d=True)
                got = data.shape[0]
                out[:got] = audio.to_mono(np.ascontiguousarray(data.T))
            integer = f.subtype.startswith("PCM")
    except Exception as exc:
        raise AudioError(f"{path}: unreadable audio ({exc}); re-download or remove it") from exc
    if got < want:
        raise AudioError(f"{path}: truncated audio (read {got} of {want} samples at {offset}); re-prepare it")
    out[want:] = 0
    if not integer and not np.isfinite(out[:want]).all():  # integer samples are always finite
        raise AudioError(f"{path}: audio holds NaN or infinite samples; fix or remove the file")
    return out


@dataclass
class MixedSegments:
    """A mixture, its reference and its noise (float32, same length), and the gains that made them.

    ``source = f32(source_segment * source_gain)``, ``noise = f32(noise_segment * noise_gain)``,
    ``mixture = source + noise``; ``clip_gain`` is the part of both gains that prevents clipping.
    ``source_frames`` and ``noise_frames``: the segments' per-frame energies (before the gains),
    where :func:`mix_segments` computed them.
    """

    mixture: np.ndarray
    source: np.ndarray
    noise: np.ndarray
    source_gain: float
    noise_gain: float
    clip_gain: float
    source_frames: np.ndarray | None = None
    noise_frames: np.ndarray | None = None
    dc_levelled: tuple[bool, bool] = (False, False)
    """Whether the source's / noise's level was measured without its DC (:func:`lasskit.audible.level_energy`)."""


def mix_segments(source: np.ndarray, noise: np.ndarray, snr: float,
                 out: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                 reuse_source: bool = False) -> MixedSegments:
    """Mix equal-length segments at ``snr`` dB (energy ratio over the segments; see module doc).

    The energies are the audible ones (:func:`lasskit.audible.level_energy`): a segment whose mean
    holds more than half of its energy is levelled on its energy about the mean, so a DC offset
    does not count as sound; other segments on ``sum(x^2)`` exactly.

    Energies are summed in float64 frame by frame (0.1 s frames, then over the frames), the
    gains and the peak computed in float64. ``out``: float32 buffers (mixture, source, noise) of
    the segments' length to write into (the writer reuses them row after row); new arrays
    otherwise. ``reuse_source``: when the source gain is 1 (no clipping) and ``source`` is
    float32, the result's ``source`` is ``source`` itself (no copy).
    """
    if len(source) != len(noise):
        raise ValueError(f"segments differ in length ({len(source)} and {len(noise)} samples)")
    hop = int(round(FRAME_SECONDS * SAMPLE_RATE))
    s = _scratch("s64", len(source), np.float64)
    n = _scratch("n64", len(noise), np.float64)
    s[:] = source
    n[:] = noise
    fs, fn = frame_energies(s, hop), frame_energies(n, hop)
    es, s_dc = level_energy(float(fs.sum()), float(s.sum()), len(s))
    en, n_dc = level_energy(float(fn.sum()), float(n.sum()), len(n))
    if es <= 0:
        raise AudioError("target segment is silent (or only a DC offset): the SNR is undefined")
    if en <= 0:
        raise AudioError("noise segment is silent (or only a DC offset): the SNR is undefined")
    g = float(np.sqrt(es / (en * 10 ** (snr / 10))))
    # Written as if not clipping; the float32 mixture's peak decides. Its rounding is below 1e-6,
    # so only a peak within 1e-5 of full scale needs the float64 peak of s + g n.
    src32 = np.asarray(source)
    if reuse_source and src32.dtype == np.float32:
        m32, _, n32 = out if out is not None else (None, None, None)
        n32 = _scaled32(n, g, n32)
        m = MixedSegments(np.add(src32, n32, out=m32), src32, n32, 1.0, g, 1.0)
    else:
        m = gain_segments(s, n, 1.0, g, out=out)
    peak32 = max(float(m.mixture.max()), -float(m.mixture.min()))
    if peak32 > 1 - 1e-5:
        work = np.multiply(n, g, out=_scratch("w64", len(n), np.float64))
        work += s
        peak = max(float(work.max()), -float(work.min()))
        if peak > 1:
            clip = CLIP_PEAK / peak
            m = gain_segments(s, n, clip, clip * g, out=out)
    m.source_frames, m.noise_frames = fs, fn
    m.dc_levelled = (s_dc, n_dc)
    return m


def gain_segments(source: np.ndarray, noise: np.ndarray, source_gain: float, noise_gain: float,
                  out: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> MixedSegments:
    """Apply recorded gains (float64 product, then float32) and sum: how every row is written.

    ``out``: float32 (mixture, source, noise) buffers to fill instead of new arrays.
    """
    m32, s32, n32 = out if out is not None else (None, None, None)
    s32 = _scaled32(source, source_gain, s32)
    n32 = _scaled32(noise, noise_gain, n32)
    m32 = np.add(s32, n32, out=m32)
    return MixedSegments(m32, s32, n32, float(source_gain), float(noise_gain), float(source_gain))


def _scaled32(x: np.ndarray, gain: float, out: np.ndarray | None = None) -> np.ndarray:
    """``float32(float64(x) * gain)``, into ``out`` when given (else a new array)."""
    x = np.asarray(x)
    if out is None:
        out = np.empty(len(x), dtype=np.float32)
    if gain == 1.0:
        out[:] = x  # exact: float64(x) * 1.0 == x, and x holds float32 values
        return out
    work = _scratch("w64", len(x), np.float64)
    if x.dtype == np.float64:
        np.multiply(x, gain, out=work)
    else:
        work[:] = x
        work *= gain
    out[:] = work
    return out


def frame_energies(x: np.ndarray, hop: int) -> np.ndarray:
    """``sum(x^2)`` per ``hop``-sample frame (the last one partial), in float64 (numpy's pairwise sums)."""
    x = np.asarray(x)
    if x.dtype != np.float64:
        x = np.asarray(x, dtype=np.float64)
    sq = np.multiply(x, x, out=_scratch("sq64", len(x), np.float64))
    full = len(x) // hop
    e = sq[: full * hop].reshape(full, hop).sum(axis=1)
    if len(x) % hop:
        e = np.append(e, float(sq[full * hop:].sum()))
    return e


def _energy(x: np.ndarray) -> float:
    """``sum(x^2)`` in float64 (einsum: no BLAS threads, no temporary)."""
    return float(np.einsum("i,i->", x, x))


def energy_snr(source: np.ndarray, noise: np.ndarray) -> float:
    """``10*log10(sum(source^2) / sum(noise^2))`` in dB, computed in float64."""
    s = np.asarray(source, dtype=np.float64)
    n = np.asarray(noise, dtype=np.float64)
    return float(10 * np.log10(_energy(s) / _energy(n)))


