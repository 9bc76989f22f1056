"""What a mixture set is (:class:`MixSpec`): SNR range, size, queries, segment length, activity
floors and seed, with their checks and the draws they fix (SNR values and their CSV text)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lasskit import SAMPLE_RATE
from lasskit.errors import UsageError
from lasskit.mixing.segments import FRAME_SECONDS, SILENCE_DB

SNR_LIMIT = 60.0
"""Bounds of the SNR range (dB): at 60 dB one signal's amplitude is a thousandth of the other's,
near the last bits of a 16-bit mixture; a separator would be asked for a sound no one hears."""

@dataclass(frozen=True)
class MixSpec:
    """What a mixture set is: SNR range (dB), size, queries, segment length (s), seed.

    ``min_active`` (s) is the floor on a target segment's active time (0.1 s frames at or above
    ``silence_db``, measured on the audible signal: :mod:`lasskit.audible`): ``None`` means a tenth
    of ``duration`` (1 s for 10 s segments), 0 turns it off. ``noise_min_active`` is the same floor
    for noise segments, ``None`` meaning the targets' floor (a 1.25 ms click is no noise).
    ``snr_low``/``snr_high`` lie within +-:data:`SNR_LIMIT` dB, ``silence_db`` below 0 dBFS.
    """

    snr_low: float
    snr_high: float
    num: int | None = None  # rows; None: one per target (per caption with per_caption)
    per_caption: bool = False
    integer_snr: bool = False
    duration: float = 10.0  # seconds
    min_duration: float = 0.0  # seconds; shorter clips are skipped (0: pad every clip)
    seed: int = 0
    allow_unlabeled: bool = False
    silence_db: float = SILENCE_DB  # dBFS
    min_active: float | None = None  # seconds of active target per segment; None: duration / 10
    noise_min_active: float | None = None  # seconds of active noise per segment; None: as min_active

    @property
    def length(self) -> int:
        """Segment length in samples at 16 kHz."""
        return int(round(self.duration * SAMPLE_RATE))

    @property
    def hop(self) -> int:
        """Frame and offset-grid step in samples."""
        return int(round(FRAME_SECONDS * SAMPLE_RATE))

    @property
    def min_active_seconds(self) -> float:
        """The floor on active target time actually used (s)."""
        return round(self.duration / 10, 6) if self.min_active is None else float(self.min_active)

    @property
    def min_active_frames(self) -> int:
        """The floor in 0.1 s frames (at least 1: a target is never silent)."""
        return max(1, int(np.ceil(self.min_active_seconds / FRAME_SECONDS - 1e-9)))

    @property
    def noise_min_active_seconds(self) -> float:
        """The floor on active noise time actually used (s): the targets' unless set."""
        return self.min_active_seconds if self.noise_min_active is None else float(self.noise_min_active)

    @property
    def noise_min_active_frames(self) -> int:
        """The noises' floor in 0.1 s frames (at least 1)."""
        return max(1, int(np.ceil(self.noise_min_active_seconds / FRAME_SECONDS - 1e-9)))

    def snr_bounds(self) -> tuple[float, float]:
        """The SNR range actually drawn from: integers ceil(low)..floor(high) with integer_snr."""
        if self.integer_snr:
            return float(np.ceil(self.snr_low)), float(np.floor(self.snr_high))
        return float(self.snr_low), float(self.snr_high)

    def validate(self) -> "MixSpec":
        """Raise :class:`UsageError` for impossible options; returns self."""
        if not (np.isfinite(self.snr_low) and np.isfinite(self.snr_high)) or self.snr_low > self.snr_high:
            raise UsageError(f"--snr {self.snr_low:g} {self.snr_high:g}: give LOW <= HIGH, finite, in dB")
        if max(abs(self.snr_low), abs(self.snr_high)) > SNR_LIMIT:
            raise UsageError(f"--snr {self.snr_low:g} {self.snr_high:g}: each bound must be from {-SNR_LIMIT:g} to "
                             f"{SNR_LIMIT:g} dB (beyond, one signal is inaudible under the other)")
        lo, hi = self.snr_bounds()
        if lo > hi:
            raise UsageError(f"--snr {self.snr_low:g} {self.snr_high:g} holds no integer for --integer-snr")
        if self.num is not None and self.num <= 0:
            raise UsageError(f"--num {self.num}: must be a positive number of mixtures")
        if not self.duration > 0 or self.length < 1:
            raise UsageError(f"--duration {self.duration}: must be a positive number of seconds")
        if self.min_duration < 0:
            raise UsageError(f"--min-duration {self.min_duration}: must be >= 0 seconds")
        if self.min_active is not None and not (0 <= self.min_active <= self.duration):
            raise UsageError(f"--min-active {self.min_active}: give 0 to {self.duration:g} seconds of active target")
        if self.noise_min_active is not None and not (0 <= self.noise_min_active <= self.duration):
            raise UsageError(f"--noise-min-active {self.noise_min_active}: give 0 to {self.duration:g} seconds of "
                             "active noise")
        if not (np.isfinite(self.silence_db) and self.silence_db < 0):
            raise UsageError(f"--silence-db {self.silence_db:g}: must be a level below 0 dBFS (a 0.1 s frame is "
                             "active when its RMS reaches it; the default is -60)")
        if self.seed < 0:
            raise UsageError(f"--seed {self.seed}: must be >= 0")
        return self

    def draw_snr(self, rng: np.random.Generator) -> float:
        lo, hi = self.snr_bounds()
        if self.integer_snr:
            return float(rng.integers(int(lo), int(hi) + 1))
        return float(rng.uniform(lo, hi))

    def format_snr(self, snr: float) -> str:
        """The CSV text of an SNR: an integer with integer_snr, else the shortest exact float."""
        return str(int(snr)) if self.integer_snr else repr(float(snr))
