"""Overlap-add chunking of long inputs: window starts and cross-fade weights (see the package doc)."""

from __future__ import annotations

import numpy as np

DEFAULT_CHUNK_OVERLAP = 0.5

MIN_WINDOW_SECONDS = 0.1
"""The shortest window (``--chunk-seconds``, ``--window-seconds``) and the least new audio per
window (``--window-seconds`` less context and cross-fade) a run accepts: shorter ones would call
the model on a few samples (thousands of calls per second of audio) and are refused."""


def chunk_starts(length: int, chunk: int, overlap: float) -> list[int]:
    """Start samples of the windows covering ``length``: every ``hop`` samples, the last one flush
    with the end. ``length <= chunk`` gives ``[0]``."""
    if length <= chunk:
        return [0]
    hop = max(1, int(round(chunk * (1.0 - overlap))))
    starts = list(range(0, length - chunk, hop))
    starts.append(length - chunk)
    return starts


def chunk_weights(starts: list[int], chunk: int):
    """Per-window weights ``(windows, chunk)`` (float64 numpy): linear cross-fades over overlaps."""
    weights = np.ones((len(starts), chunk))
    for k in range(len(starts) - 1):
        overlap = starts[k] + chunk - starts[k + 1]
        if overlap <= 0:
            continue
        rise = (np.arange(overlap) + 0.5) / overlap
        weights[k, chunk - overlap:] *= 1.0 - rise
        weights[k + 1, :overlap] *= rise
    return weights
