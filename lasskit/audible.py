"""What can be heard of a signal: the part that activity and level decisions are measured on.

A clip with a DC offset (a constant 0.1 under a quiet room) or a slow drift holds energy no one
hears. ``mix`` (and ``train``'s on-the-fly mixing) must not take it for sound:

- **Activity** (which 0.1 s frames are active, :func:`lasskit.mixing.frame_activity`) is
  measured on :func:`audible`: per 0.1 s frame, the quieter of (a) the frame minus its own mean
  and (b) the clip high-passed at :data:`HIGHPASS_HZ` (20 Hz; 4th-order Butterworth run forwards
  and backwards, so no delay; odd extension at the ends, so a constant gives nothing). (a) removes
  a DC offset exactly but leaves most of a swing slower than a frame (a 2-8 Hz drift at half scale
  kept all frames active); (b) removes that (about -48 dB at 10 Hz, -96 dB at 5 Hz) but rings for
  ~0.15 s at both sides of an offset that starts mid-clip, where (a) is silent. A frame is
  active only when both call it so: a constant offset or a slow drift makes no frame active, an
  offset step marks the one frame it is in (a click), 20 Hz and up is kept.
- **Levels** (the gain that sets a row's SNR) are measured per segment on the energy about the
  segment's mean (:func:`level_energy`): ``sum((x - mean(x))^2)``, when the mean holds more than
  :data:`DC_SHARE_LIMIT` (half) of the segment's energy, i.e. the segment is mostly offset; below
  that the plain ``sum(x^2)`` is used, so the organizers' energy formula holds exactly for
  ordinary clips (a short window of low hum has a mean too, a few % of its energy, and that is
  sound). The samples written are never filtered: the mixture still equals source + noise
  exactly. Between no offset and half the energy in it, the SNR counts the offset as sound (up
  to 3 dB); ``prepare`` names such clips (its DC note uses the same one-half rule).

Both are cheap (a mean per frame, a mean per segment) and remove what a 0.1 offset adds.
"""

from __future__ import annotations

import numpy as np

DC_SHARE_LIMIT = 0.5
"""A segment whose mean holds more than this share of its energy is levelled on its DC-free energy."""
HIGHPASS_HZ = 20.0
"""Below this, content is not taken for sound by the activity decision (see the module docs)."""


def audible(signal: np.ndarray, hop: int = 1600, sample_rate: int = 16000) -> np.ndarray:
    """What activity is measured on (float64, 1-D): per ``hop``-sample frame (the last, partial
    one too), the quieter of the frame minus its own mean and the high-passed clip's frame."""
    x = np.asarray(signal, dtype=np.float64)
    out = x.copy()
    full = len(x) // hop
    if full:
        body = out[: full * hop].reshape(full, hop)
        body -= body.mean(axis=1, keepdims=True)
    if len(x) % hop:
        tail = out[full * hop:]
        tail -= tail.mean()
    high = _highpass(x, sample_rate)
    if high is None:
        return out
    for start in range(0, len(x), hop):
        a, b = out[start:start + hop], high[start:start + hop]
        if float(np.dot(b, b)) < float(np.dot(a, a)):
            a[:] = b
    return out


def _highpass(x: np.ndarray, sample_rate: int) -> np.ndarray | None:
    """``x`` through a zero-phase 20 Hz high-pass; None for a clip too short to filter."""
    from scipy.signal import butter, sosfiltfilt

    sos = butter(4, HIGHPASS_HZ, btype="highpass", fs=sample_rate, output="sos")
    if len(x) <= 3 * (2 * len(sos) + 1):  # sosfiltfilt's shortest input
        return None
    # a long odd extension (up to 0.5 s): the filter settles before the clip's first sample
    return sosfiltfilt(sos, x, padlen=min(len(x) - 1, sample_rate // 2))


def level_energy(total: float, total_sum: float, n: int) -> tuple[float, bool]:
    """``(energy, dc_removed)`` of a segment from its ``sum(x^2)`` and ``sum(x)`` over ``n`` samples.

    The energy about the mean, ``sum(x^2) - sum(x)^2 / n``, when the mean's share
    ``(sum(x)^2 / n) / sum(x^2)`` exceeds :data:`DC_SHARE_LIMIT`; else ``sum(x^2)`` unchanged."""
    if n <= 0 or total <= 0:
        return total, False
    dc = total_sum * total_sum / n
    if dc / total > DC_SHARE_LIMIT:
        return max(total - dc, 0.0), True
    return total, False
