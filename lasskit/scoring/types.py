"""What scoring passes around: options, targets, per-split scores, comparisons, a run's record."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lasskit.errors import LasskitError

METRICS = ("sdr", "sdri", "si_sdr")


BSS_METRIC = "bss_sdr"


BREAKDOWNS = ("snr", "label", "query_length")


SNR_EDGES = (-10.0, -5.0, 0.0, 5.0, 10.0)
"""Input-SNR bands (dB): (-inf, -10), [-10, -5), [-5, 0), [0, 5), [5, 10), [10, inf)."""


QUERY_LENGTH_EDGES = (5, 10, 15, 20)
"""Query-length bands in words: 1-5, 6-10, 11-15, 16-20, 21+."""


@dataclass(frozen=True)
class ScoreOptions:
    """How to score: bss_eval on/off, trimming, missing estimates, breakdowns, plots, bootstrap."""

    bss_eval: bool = False
    trim: bool = False
    allow_missing: bool = False
    by: tuple[str, ...] = ()
    plot: bool = False
    jobs: int | None = None
    seed: int = 0
    resamples: int = 1000
    clap: bool = False
    """CLAP columns on splits with references too (splits without references always get them)."""
    clap_path: str = "paper"
    """CLAPScore input path: ``paper`` (published, double speed) or ``physical`` (true 16 -> 48 kHz)."""
    checkpoint: str | None = None
    """CLAP weights (baseline checkpoint or CLAP file); default: the lasskit cache."""
    tokenizer: str | None = None
    device: str = "auto"
    """Where CLAP runs: auto (cuda if available), cpu, cuda or cuda:N."""
    clap_batch_size: int = 4


@dataclass
class Target:
    """One thing to score: ``model``'s estimates in ``estimates_dir`` for split ``split_dir``."""

    model: str
    split_dir: Path
    estimates_dir: Path
    out_dir: Path

    @property
    def split(self) -> str:
        return self.split_dir.name


@dataclass
class SplitScores:
    """The scores of one model on one split: per-row values (dB), their summary and notes."""

    model: str
    split: str
    estimates_dir: Path
    out_dir: Path | None
    names: list[str]
    queries: list[str]
    snrs: list[str]
    labels: list[list[str]] | None
    values: dict[str, np.ndarray]
    summary: dict
    missing: list[str] = field(default_factory=list)
    trimmed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    breakdowns: dict[str, list[dict]] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def count(self) -> int:
        return len(self.names)

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(self.values)


@dataclass
class Comparison:
    """Paired differences ``model - other`` per mixture on one split, per metric (dB)."""

    model: str
    other: str
    split: str
    count: int
    metrics: dict[str, dict]
    only_in_model: int = 0
    only_in_other: int = 0
    path: Path | None = None


@dataclass
class ScoreRun:
    """Everything one ``lasskit score`` did: results, comparisons, skipped things, errors."""

    results: list[SplitScores] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[tuple[str, str, LasskitError]] = field(default_factory=list)
    targets: int = 0
    clap_embeddings: dict[str, int] = field(default_factory=dict)
    """CLAP audio embeddings this run ``computed`` and ``cached`` (read from the disk cache)."""

    @property
    def failed_rows(self) -> int:
        return sum(len(r.failures) for r in self.results)
