"""What can be heard of a signal: the part that activity and level decisions are measured on.

A clip with a DC offset (a constant 0.1 under a quiet room) or a slow drift holds energy no one
hears. ``mix`` (and ``train``'s on-the-fly mixing) must not take it for sound:

- **Activity** (which 0.1 s frames are active, :func:`lasskit.mixing.frame_activity`) is
  measured on :func:`audible`: each 0.1 s frame minus its own mean. That removes a DC offset
  exactly and most content below ~10 Hz (a drift slower than a frame), and unlike a high-pass
  filter it spreads nothing into neighbouring frames (a filter's ringing after a sharp onset
  would mark silent frames active at -60 dBFS). A constant offset makes no frame active.
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


def audible(signal: np.ndarray, hop: int = 1600) -> np.ndarray:
    """``signal`` (1-D) with each ``hop``-sample frame's mean removed (the last, partial frame's
    too), float64: what activity is measured on."""
    x = np.asarray(signal, dtype=np.float64)
    out = x.copy()
    full = len(x) // hop
    if full:
        body = out[: full * hop].reshape(full, hop)
        body -= body.mean(axis=1, keepdims=True)
    if len(x) % hop:
        tail = out[full * hop:]
        tail -= tail.mean()
    return out


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
