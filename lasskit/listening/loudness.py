"""Loudness matching of the playback copies: a simple K-weighted integrated loudness (LUFS).

Only the copies that raters hear are matched; the systems' outputs are never touched.

Measurement, after ITU-R BS.1770 for one channel:

- K-weighting: a high shelf (+4 dB above about 1.7 kHz) followed by a high-pass (about 38 Hz),
  each a biquad designed for the file's sample rate from its analog prototype by the bilinear
  transform (``K = tan(pi f0 / fs)``); at 48 kHz the coefficients are those printed in BS.1770.
- The filter is applied to the power spectrum of each block: ``z_j = sum_k |X_j(k)|^2 |H(k)|^2 / N^2``
  (Parseval for a rectangular block of ``N`` samples), which is the filtered block's mean square up
  to the filter's start-up at the block edges.
- Blocks of 400 ms every 100 ms; block loudness ``l_j = -0.691 + 10 log10 z_j``; an absolute gate
  at -70 LUFS, then a relative gate 10 LU below the loudness of the blocks that passed it; the
  integrated loudness is ``-0.691 + 10 log10(mean z_j)`` over the blocks that pass both gates.
  A signal shorter than one block is measured as one block.

Matching: each copy gets the gain ``target - L`` (dB). Where that gain would push a sample past
``PEAK_LIMIT`` (-0.1 dBFS), the gain is lowered until the peak fits: nothing is clipped, and the
shortfall (LU below the target) is recorded and reported. Silent inputs (no block above the
absolute gate) keep gain 0 dB and are reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ABSOLUTE_GATE = -70.0
RELATIVE_GATE = -10.0
PEAK_LIMIT = 10 ** (-0.1 / 20)
DEFAULT_TARGET = -23.0


def k_weighting_biquads(rate: int) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The two K-weighting stages ``(b, a)`` for ``rate`` Hz (``a[0] == 1``)."""
    # stage 1: high shelf
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / rate)
    vh = 10 ** (gain_db / 20)
    vb = vh ** 0.4996667741545416
    a0 = 1 + k / q + k * k
    shelf = (np.array([(vh + vb * k / q + k * k) / a0, 2 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0]),
             np.array([1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]))
    # stage 2: high-pass
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / rate)
    a0 = 1 + k / q + k * k
    highpass = (np.array([1.0, -2.0, 1.0]), np.array([1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]))
    return shelf, highpass


def k_weighting_power(rate: int, n: int) -> np.ndarray:
    """``|H(k)|^2`` of the K-weighting at the ``n // 2 + 1`` frequencies of an ``n``-point rfft."""
    w = 2 * np.pi * np.arange(n // 2 + 1) / n
    z1 = np.exp(-1j * w)
    power = np.ones_like(w)
    for b, a in k_weighting_biquads(rate):
        h = (b[0] + b[1] * z1 + b[2] * z1 * z1) / (a[0] + a[1] * z1 + a[2] * z1 * z1)
        power *= np.abs(h) ** 2
    return power


def integrated_loudness(signal: np.ndarray, rate: int) -> float:
    """Gated K-weighted loudness of a mono signal in LUFS; ``-inf`` when every block is gated."""
    x = np.asarray(signal, dtype=np.float64).reshape(-1)
    block, hop = round(0.4 * rate), round(0.1 * rate)
    if len(x) == 0:
        return -math.inf
    if len(x) < block:
        block = len(x)
        starts = np.array([0])
    else:
        starts = np.arange(0, len(x) - block + 1, hop)
    frames = x[starts[:, None] + np.arange(block)[None, :]]
    spectra = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    weights = k_weighting_power(rate, block)
    # one-sided spectrum: bins other than DC (and Nyquist for even n) stand for two
    double = np.full(len(weights), 2.0)
    double[0] = 1.0
    if block % 2 == 0:
        double[-1] = 1.0
    z = (spectra * (weights * double)[None, :]).sum(axis=1) / (block * block)
    with np.errstate(divide="ignore"):
        loud = -0.691 + 10 * np.log10(z)
    z = z[loud > ABSOLUTE_GATE]
    if len(z) == 0:
        return -math.inf
    relative = -0.691 + 10 * math.log10(z.mean()) + RELATIVE_GATE
    with np.errstate(divide="ignore"):
        z = z[-0.691 + 10 * np.log10(z) > relative]
    return -0.691 + 10 * math.log10(z.mean())


@dataclass
class Match:
    """What matching did to one signal: measured loudness, applied gain (dB), shortfall (LU)."""

    loudness: float
    gain_db: float
    shortfall: float = 0.0  # LU below the target because the peak limit lowered the gain
    silent: bool = False


def match_loudness(signal: np.ndarray, rate: int, target: float = DEFAULT_TARGET) -> tuple[np.ndarray, Match]:
    """A copy of ``signal`` scaled to ``target`` LUFS, peak kept at or below ``PEAK_LIMIT``."""
    x = np.asarray(signal, dtype=np.float64)
    loud = integrated_loudness(x, rate)
    if not math.isfinite(loud):
        return x.astype(np.float32), Match(loud, 0.0, 0.0, True)
    gain_db = target - loud
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    shortfall = 0.0
    if peak > 0 and peak * 10 ** (gain_db / 20) > PEAK_LIMIT:
        limited = 20 * math.log10(PEAK_LIMIT / peak)
        shortfall = gain_db - limited
        gain_db = limited
    y = x * 10 ** (gain_db / 20)
    return y.astype(np.float32), Match(loud, gain_db, shortfall, False)
