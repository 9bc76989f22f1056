"""The long-audio engine: separate a recording of any length, rate and channel count in windows,
streamed from its source to its sink with memory bounded by the window, not the recording.

Windows (:class:`Windows`, samples at the model's rate): each is ``window`` samples long (the
model's trained length: ``trained_seconds``, else ``max_seconds``, else 10 s, the DCASE 2024
baseline's training segments); ``context`` samples at each side of a window are computed but
never used (the model sees context on both sides of what it is trusted for), and consecutive
windows hand over in a linear cross-fade of ``crossfade`` samples (weights ``(i + 0.5) / X``
rising, ``1 - (i + 0.5) / X`` falling: they sum to one). Windows start every
``hop = window - 2 * context - crossfade`` samples; the last one is moved back to end flush with
the recording (its rise starts where the previous window's fall starts, so the weights still sum
to one exactly). Every window is computed once. A recording no longer than one window goes
through the model in **one pass**, as the split loop does (the organizers' parity).

Streaming (:func:`separate_stream`): the source is read in blocks (soundfile), resampled to the
model's rate with a soxr stream (identical to soxr's one-shot resampling), buffered only as far
as the next window needs; estimates are accumulated only over the samples later windows still
touch, resampled back to the source's rate with another soxr stream and handed to the sink in
order, so peak memory is a few windows (times ``batch_size`` / rows), whatever the length. The
output has exactly as many frames as were decoded (the back-resampler's last sample or two are
cropped or zero-padded to it).

Rows: every (query, channel) pair is one row of the model's batch (channels are separated
independently; a source opened with ``mono=True`` gives one channel, the average). Rows of one
window share a model call (``batch_size`` rows per call at most), so a row's estimate never
depends on rows of another length.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lasskit.errors import AudioError, UsageError
from lasskit.separation.chunking import MIN_WINDOW_SECONDS

DEFAULT_WINDOW_SECONDS = 10.0
"""Window when the model declares no trained length: the DCASE 2024 baseline's 10 s segments."""
DEFAULT_CONTEXT_SECONDS = 1.0
"""Samples computed but not used at each side of a window (default 1 s)."""
DEFAULT_CROSSFADE_SECONDS = 1.0
"""Length of the linear hand-over between consecutive windows (default 1 s)."""
BLOCK_FRAMES = 65536
"""Frames read from the source per block (at the source's rate)."""


@dataclass(frozen=True)
class Windows:
    """Window geometry in samples at the model's rate (see the module doc)."""

    window: int
    context: int
    crossfade: int

    @property
    def hop(self) -> int:
        return self.window - 2 * self.context - self.crossfade

    @classmethod
    def for_model(cls, model: Any, rate: int, window_seconds: float | None = None,
                  context_seconds: float | None = None, crossfade_seconds: float | None = None) -> "Windows":
        """The geometry for ``model`` at ``rate`` Hz; None values take the defaults."""
        if window_seconds is None:
            window_seconds = (getattr(model, "trained_seconds", None) or getattr(model, "max_seconds", None)
                              or DEFAULT_WINDOW_SECONDS)
        max_seconds = getattr(model, "max_seconds", None)
        if max_seconds and window_seconds > max_seconds:
            raise UsageError(f"--window-seconds {window_seconds:g}: the model takes at most {max_seconds:g} s per call")
        context_seconds = DEFAULT_CONTEXT_SECONDS if context_seconds is None else context_seconds
        crossfade_seconds = DEFAULT_CROSSFADE_SECONDS if crossfade_seconds is None else crossfade_seconds
        for option, value in (("--window-seconds", window_seconds), ("--context-seconds", context_seconds),
                              ("--crossfade-seconds", crossfade_seconds)):
            if not np.isfinite(value) or value < 0 or (option == "--window-seconds" and value <= 0):
                raise UsageError(f"{option} {value:g}: must be a finite {'positive' if 'window' in option else 'non-negative'}"
                                 " number of seconds")
        if window_seconds < MIN_WINDOW_SECONDS:
            raise UsageError(f"--window-seconds {window_seconds:g}: must be at least {MIN_WINDOW_SECONDS:g} s "
                             "(a shorter window gives the model a few samples per call)")
        geometry = cls(int(round(window_seconds * rate)), int(round(context_seconds * rate)),
                       int(round(crossfade_seconds * rate)))
        if geometry.hop < max(1, int(round(MIN_WINDOW_SECONDS * rate))):
            raise UsageError(f"--window-seconds {window_seconds:g} leaves under {MIN_WINDOW_SECONDS:g} s of new audio "
                             f"per window with {context_seconds:g} s of context each side and a {crossfade_seconds:g} s "
                             "cross-fade; use a longer window or less context/cross-fade")
        return geometry

    def starts(self, length: int) -> list[int]:
        """Window starts over ``length`` samples: ``[0]`` when it fits one window (one pass)."""
        if length <= self.window:
            return [0]
        out = list(range(0, length - self.window + 1, self.hop))
        if out[-1] + self.window < length:
            out.append(length - self.window)
        return out

    def weights(self, start: int, previous: int | None, last: bool, length: int | None = None) -> np.ndarray:
        """Weights (float64, ``window`` long) of the window at ``start``: zero over the context it
        does not own, rising from the previous window's fall, falling into the next one's rise."""
        w = np.ones(self.window)
        x = self.crossfade
        ramp = (np.arange(x) + 0.5) / x if x else np.zeros(0)
        if previous is not None:
            rise = previous + self.hop + self.context - start  # where the previous window starts to fall
            w[:rise] = 0.0
            w[rise:rise + x] = ramp
        if not last:
            fall = self.hop + self.context  # the next window's rise, in this window's coordinates
            w[fall:fall + x] *= 1.0 - ramp
            w[fall + x:] = 0.0
        return w


# --- sources -------------------------------------------------------------------------------------


class Source:
    """Audio to separate: ``rate`` (Hz), ``channels``, ``frames`` (a header's count, may be
    approximate for compressed formats) and ``blocks()`` of ``(frames, channels)`` float32."""

    rate: int
    channels: int
    frames: int
    name: str

    def blocks(self, size: int = BLOCK_FRAMES) -> Iterator[np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError


class ArraySource(Source):
    """An in-memory signal ``(samples,)`` or ``(channels, samples)``."""

    def __init__(self, signal: np.ndarray, rate: int, name: str = "array", mono: bool = False):
        x = np.asarray(signal, dtype=np.float32)
        if x.ndim == 1:
            x = x[None]
        if x.ndim != 2:
            raise UsageError(f"{name}: expected (samples,) or (channels, samples), got shape {tuple(np.shape(signal))}")
        if mono and x.shape[0] > 1:
            x = _downmix(np.ascontiguousarray(x.T)).T
        self.signal = np.ascontiguousarray(x.T)  # (frames, channels)
        self.rate, self.channels, self.frames, self.name = int(rate), x.shape[0], x.shape[1], name

    def blocks(self, size: int = BLOCK_FRAMES) -> Iterator[np.ndarray]:
        for i in range(0, self.frames, size):
            yield self.signal[i:i + size]


class FileSource(Source):
    """A file soundfile decodes, read block by block (``mono``: the channels' average)."""

    def __init__(self, path: str | Path, mono: bool = False):
        import soundfile as sf

        from lasskit import audio

        self.path = Path(path)
        self.name = str(self.path)
        head = audio.info(self.path)  # one line naming the file when it is unreadable
        if head.num_samples <= 0:
            raise AudioError(f"{self.path}: empty audio file (0 samples); nothing to separate")
        self.rate, self.frames, self.mono = head.sample_rate, head.num_samples, mono
        self.file_channels = head.channels
        self.channels = 1 if mono else head.channels
        self._sf = sf

    def blocks(self, size: int = BLOCK_FRAMES) -> Iterator[np.ndarray]:
        try:
            with self._sf.SoundFile(os.fsencode(self.path)) as f:  # bytes: a name that is not UTF-8 opens too
                while True:
                    block = f.read(size, dtype="float32", always_2d=True)
                    if not len(block):
                        break
                    if not np.isfinite(block).all():
                        raise AudioError(f"{self.path}: audio holds NaN or infinite samples; fix or remove the file")
                    yield _downmix(block) if self.mono and block.shape[1] > 1 else block
        except AudioError:
            raise
        except Exception as exc:  # soundfile raises several types; all mean "unreadable"
            from lasskit.audio import _short

            raise AudioError(f"{self.path}: unreadable audio ({_short(exc)}); check the file") from exc


def _downmix(block: np.ndarray) -> np.ndarray:
    """``(frames, channels)`` -> ``(frames, 1)``: the channels' average (as :func:`lasskit.audio.load`)."""
    mono = block[:, 0].copy()
    for c in range(1, block.shape[1]):
        mono += block[:, c]
    mono *= mono.dtype.type(1.0 / block.shape[1])
    return mono[:, None]


class _Resampler:
    """A soxr stream from ``src`` to ``dst`` Hz (identity when equal): ``(frames, channels)`` blocks."""

    def __init__(self, src: int, dst: int, channels: int):
        self.stream = None
        if src != dst:
            import soxr

            self.stream = soxr.ResampleStream(src, dst, channels, dtype="float32", quality="HQ")

    def __call__(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        if self.stream is None:
            return block
        return self.stream.resample_chunk(np.ascontiguousarray(block, dtype=np.float32), last=last)


# --- the engine ----------------------------------------------------------------------------------


@dataclass
class StreamStats:
    """What one stream did: frames decoded (source rate), the most samples held, windows computed,
    model calls and the
    samples the back-resampler gave beyond (``cropped``) or short of (``padded``) the input."""

    frames: int = 0
    held: int = 0
    """Most samples (per channel/row, at the model's rate) held in the input and output buffers at once."""
    windows: int = 0
    calls: int = 0
    cropped: int = 0
    padded: int = 0


class _Windowed:
    """Windows over a stream at the model's rate: feed input blocks, get finished estimate blocks."""

    def __init__(self, run: Callable[[np.ndarray], np.ndarray], geometry: Windows, channels: int, rows: int,
                 stats: StreamStats):
        self.run, self.g, self.channels, self.rows, self.stats = run, geometry, channels, rows, stats
        self.buf = np.zeros((channels, 0), np.float32)   # input from buf_start on
        self.buf_start = 0
        self.acc = np.zeros((rows, 0), np.float64)       # weighted estimates from out_start on
        self.out_start = 0
        self.next_start = 0                              # next regular window's start
        self.previous: int | None = None
        self.received = 0

    def feed(self, block: np.ndarray) -> list[np.ndarray]:
        """Append ``(frames, channels)`` input; returns finished ``(rows, n)`` estimate blocks."""
        if len(block):
            self.buf = np.concatenate([self.buf, block.T.astype(np.float32, copy=False)], axis=1)
            self.received += len(block)
            self.stats.held = max(self.stats.held, self.buf.shape[1] + self.acc.shape[1])
        out = []
        w = self.g.window
        # a regular window is computed once the input after it exists: it is then not the last one
        # (a window ending exactly at the end of the input is computed by finish())
        while self.next_start + w < self.received:
            out.extend(self._compute(self.next_start, last=False))
            self.next_start += self.g.hop
        return out

    def finish(self) -> list[np.ndarray]:
        """The end of the input: the last window (flush with the end) and the rest of the estimate."""
        n = self.received
        if n == 0:
            return []
        if n <= self.g.window:  # one pass over the whole recording
            return self._compute(0, last=True, width=n)
        start = self.next_start if self.next_start + self.g.window == n else n - self.g.window
        return self._compute(start, last=True)

    def _compute(self, start: int, last: bool, width: int | None = None) -> list[np.ndarray]:
        width = width or self.g.window
        x = self.buf[:, start - self.buf_start:start - self.buf_start + width]
        estimate = self.run(x)  # (rows, width)
        self.stats.windows += 1
        weights = np.ones(width) if width < self.g.window or (self.previous is None and last) else \
            self.g.weights(start, self.previous, last)
        end = start + width
        if end > self.out_start + self.acc.shape[1]:
            grow = end - self.out_start - self.acc.shape[1]
            self.acc = np.concatenate([self.acc, np.zeros((self.rows, grow))], axis=1)
            self.stats.held = max(self.stats.held, self.buf.shape[1] + self.acc.shape[1])
        lo = start - self.out_start
        nz = np.flatnonzero(weights)
        a, b = (int(nz[0]), int(nz[-1]) + 1) if len(nz) else (0, 0)
        self.acc[:, lo + a:lo + b] += estimate[:, a:b].astype(np.float64) * weights[a:b]
        self.previous = start
        done = end if last else start + self.g.hop + self.g.context  # later windows start rising here
        ready = self.acc[:, :done - self.out_start].astype(np.float32)
        self.acc = self.acc[:, done - self.out_start:]
        self.out_start = done
        # input before this window is no longer needed (the last window, flush with the end,
        # starts after this one but may start before the next regular one)
        keep_from = start
        if keep_from > self.buf_start:
            self.buf = self.buf[:, keep_from - self.buf_start:]
            self.buf_start = keep_from
        return [ready] if ready.shape[1] else []


def model_caller(model: Any, queries: list[str], channels: int, device: str, label: str, batch_size: int,
                 names: str, stats: StreamStats) -> Callable[[np.ndarray], np.ndarray]:
    """``x (channels, n) -> (queries * channels, n)``: the model on every (query, channel) row of a
    window, ``batch_size`` rows per call, with the engine's checks on each estimate."""
    import torch

    from lasskit.separation.engine import _run_model

    row_queries = [q for q in queries for _ in range(channels)]
    rows = len(row_queries)
    step = max(1, int(batch_size))

    def run(x: np.ndarray) -> np.ndarray:
        x_rows = np.ascontiguousarray(np.tile(x, (len(queries), 1)))
        out = np.empty((rows, x.shape[1]), np.float32)
        with torch.inference_mode():
            for i in range(0, rows, step):
                part = torch.from_numpy(x_rows[i:i + step]).to(device)
                y = _run_model(model, label, [names] * part.shape[0], part, row_queries[i:i + step], None)
                out[i:i + step] = y.detach().to("cpu", torch.float32).numpy()
                stats.calls += 1
        return out

    return run


def separate_stream(source: Source, run: Callable[[np.ndarray], np.ndarray], rows: int, model_rate: int,
                    geometry: Windows, stats: StreamStats | None = None,
                    block_frames: int = BLOCK_FRAMES) -> Iterator[np.ndarray]:
    """Yield the estimate of every row as ``(frames, rows)`` float32 blocks at the source's rate,
    in order, exactly as many frames as the source decodes (see the module doc)."""
    stats = stats if stats is not None else StreamStats()
    down = _Resampler(source.rate, model_rate, source.channels)
    up = _Resampler(model_rate, source.rate, rows)
    windowed = _Windowed(run, geometry, source.channels, rows, stats)
    def back(blocks: list[np.ndarray], last: bool) -> Iterator[np.ndarray]:
        for k, est in enumerate(blocks):
            y = up(est.T, last=last and k == len(blocks) - 1)
            if len(y):
                yield y
        if last and not blocks and up.stream is not None:
            y = up(np.zeros((0, rows), np.float32), last=True)
            if len(y):
                yield y

    sent = 0
    for block in source.blocks(block_frames):
        stats.frames += len(block)
        for y in back(windowed.feed(down(block)), last=False):
            sent += len(y)  # the estimate lags the input by a window: never past what was decoded
            yield y
    tail = down(np.zeros((0, source.channels), np.float32), last=True)
    for y in back(windowed.feed(tail) + windowed.finish(), last=True):
        keep = min(len(y), stats.frames - sent)
        stats.cropped += len(y) - keep
        if keep:
            sent += keep
            yield y[:keep]
    if sent < stats.frames:  # the back-resampler's rounding: a sample or two short
        stats.padded = stats.frames - sent
        yield np.zeros((stats.padded, rows), np.float32)
