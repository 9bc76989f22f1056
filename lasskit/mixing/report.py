"""What ``mix`` reports (:class:`MixReport`): counts, skipped clips by reason, the data rules'
notes and warnings, and the statistics of a finished set (SNRs, activity, padding, cropping)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lasskit import SAMPLE_RATE
from lasskit.mixing.planning import PlannedRow
from lasskit.mixing.pool import PoolReport
from lasskit.mixing.rows import clip_length
from lasskit.mixing.spec import MixSpec

@dataclass
class MixReport:
    """What :func:`make_mixtures` (or :func:`mix_from_official`) did."""

    split_dir: Path
    rows: int = 0  # rows in mixtures.csv
    written: int = 0  # rows written by this run
    resumed: int = 0  # rows already there and current (kept)
    audio_seconds: float = 0.0
    targets_available: int = 0  # targets and noises after filters, before skipping
    noises_available: int = 0
    distinct_targets: int = 0
    distinct_noises: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> clips
    without_noise: list[str] = field(default_factory=list)  # target ids with no class-disjoint noise
    snr_histogram: dict[int, int] = field(default_factory=dict)  # floor(snr dB) -> rows
    failures: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    official_csv: Path | None = None
    complete: bool = True  # False when rows failed to write: re-run the same command
    seconds: float = 0.0
    redone: dict[str, int] = field(default_factory=dict)  # why rows were (re)written -> rows
    removed: int = 0  # files of rows no longer in the set, deleted
    derived_rows: int = 0  # rows whose target or noise labels were derived (not given)
    pool: PoolReport | None = None
    active_quartiles: tuple[float, float, float] | None = None  # share of the target segment active
    low_active_rows: int = 0  # rows whose target segment is less than half active
    padded: dict[str, int] = field(default_factory=dict)  # "target"/"noise" -> rows zero-padded (clip < --duration)
    cropped: dict[str, int] = field(default_factory=dict)  # "target"/"noise" -> rows taking part of a longer clip
    min_active: float = 0.0  # floor used (s)
    snr_active_median_gap: float | None = None  # median(snr_active - snr), dB

    @property
    def csv_path(self) -> Path:
        return self.split_dir / "mixtures.csv"

def pool_notes(report: MixReport) -> None:
    pool = report.pool
    if pool is None:
        return
    if pool.held_out:
        shown = ", ".join(f"{k} {v}" for k, v in sorted(pool.held_out.items()))
        report.notes.append(f"left out validation/evaluation clips not asked for ({shown}); name a split with "
                            "--split (or the challenge's corpus as MANIFEST) to use them")
    if pool.held_out_used:
        shown = ", ".join(f"{k} {v}" for k, v in sorted(pool.held_out_used.items()))
        report.warnings.append(f"this set uses validation/evaluation clips ({shown}): do not train on it")
    if pool.challenge_recordings:
        report.notes.append(f"left out {pool.challenge_recordings} clip(s) that are recordings of the challenge's "
                            "validation/evaluation sets (same Freesound id or same samples)")
    if pool.held_out_recordings:
        report.notes.append(f"left out {pool.held_out_recordings} clip(s) that are recordings of a val/eval split of "
                            "a prepared corpus (same Freesound id, YouTube video or samples)")
    if pool.upload_window and pool.upload_range:
        lo, hi = pool.upload_range
        report.warnings.append(
            f"{pool.upload_window} clip(s) have Freesound ids inside the validation ids' range {lo}-{hi}: they may "
            "have been uploaded in April-October 2023, which the rules forbid for training (an approximation: "
            "check them)")


def count_rows(report: MixReport, rows: list[PlannedRow], records: list[dict], spec: MixSpec, written: int,
               activity: dict | None = None) -> None:
    """Fill the counts and statistics of a finished set (rows, SNR histogram, derived labels,
    padding and cropping, the target's active share, ``snr_active - snr``) and note derived labels."""
    report.rows = len(records)
    report.written = written
    report.resumed = len(records) - written
    report.audio_seconds = report.rows * spec.length / SAMPLE_RATE
    report.distinct_targets = len({r.target.key for r in rows})
    report.distinct_noises = len({r.noise.key for r in rows})
    report.snr_histogram = dict(sorted(Counter(int(np.floor(r.snr)) for r in rows).items()))
    report.derived_rows = sum(1 for r in rows if r.target.derived_labels or r.noise.derived_labels)
    activity = activity or {}
    for role in ("target", "noise"):
        lengths = [clip_length(r, role, activity) for r in rows]
        report.padded[role] = sum(1 for n in lengths if n is not None and n < spec.length)
        report.cropped[role] = sum(1 for n in lengths if n is not None and n > spec.length)
    shares = np.array([float(rec["source_active"]) / spec.duration for rec in records])
    if len(shares):
        q = np.quantile(shares, [0.25, 0.5, 0.75])
        report.active_quartiles = (float(q[0]), float(q[1]), float(q[2]))
        report.low_active_rows = int(np.count_nonzero(shares < 0.5))
    gaps = np.array([float(rec["snr_active"]) - float(rec["snr"]) for rec in records])
    gaps = gaps[np.isfinite(gaps)]
    report.snr_active_median_gap = float(np.median(gaps)) if len(gaps) else None
    if report.derived_rows:
        report.notes.append(f"{report.derived_rows} of {report.rows} row(s) rest on derived labels (target or noise "
                            "labelled from keywords or captions, not given by the corpus)")
