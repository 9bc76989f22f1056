"""Scoring separated outputs against a split's references (``lasskit score``).

For a split ``data/splits/<split>`` with references and a folder of estimates (by default
``exp/<model>/<split>``), every mixture ``name`` is scored from three files read at 16 kHz:
the mixture ``mixture/<name>``, the reference (the ``source`` column, relative to the split
folder) and the estimate ``<estimates>/<name>`` (same file name as the mixture). The metrics are
:mod:`lasskit.metrics`'s, with the organizers' SI-SDR epsilon (float32's, 1.19e-7).

Decisions (documented, not left to chance):

- estimates are matched to mixtures by exact file name; a mixture without an estimate, or an
  audio file matching no mixture, is an error listing the names (``allow_missing`` scores what
  exists and reports how many were missing; extra files are always an error);
- a file at a rate other than 16 kHz, unreadable, empty, truncated or holding NaN/inf samples is a
  failure of that row naming the file; the batch goes on, failures go to ``score_failures.csv``
  and the run exits non-zero;
- different lengths (estimate, reference, mixture) fail the row unless ``trim``: then all three
  are cut to the shortest and the row is counted in ``trimmed``;
- multi-channel files are averaged to mono (what the organizers' ``librosa.load(mono=True)`` does);
- silent references/estimates are scored by the formulas (see :mod:`lasskit.metrics`) and counted
  in the notes; bss_eval SDR is NaN for them and its summary covers finite values only.

Summary statistics: mean, median, sample standard deviation (ddof=1; 0 for one row) and a 95%
percentile-bootstrap interval of the mean (``resamples`` resamplings of the rows with
replacement, numpy ``default_rng(seed)``, seed 0 and 1000 resamples by default), so the same
inputs give the same interval. Outputs, in the output folder (``exp/<model>/<split>``, or the
estimates folder itself when scoring an arbitrary ``estimates`` folder, or ``out``):

- ``scores.csv``: mixture, query, snr, sdr, sdri, si_sdr[, bss_sdr] (dB, full precision);
- ``summary.json``: model, split, count, metrics {mean, median, std, ci95, count}, missing,
  trimmed, failed, bootstrap {seed, resamples}, estimates {count, digest}: the estimates scored
  (:func:`lasskit.provenance.files_digest`; ``package`` refuses scores whose digest differs from
  the outputs now in the folder);
- ``scores_by_<snr|label|query_length>.csv`` for each breakdown asked for;
- ``compare_<other>.json`` with ``compare``: paired differences (this model minus the other);
- ``sdri_hist.png`` and ``sdri_vs_snr.png`` with ``plot``.

Modules (layer: a stage; imports core modules only, never torch unless CLAP columns are asked for):
:mod:`~lasskit.scoring.types` (options and results), :mod:`~lasskit.scoring.stats` (bootstrap),
:mod:`~lasskit.scoring.reading` (matching and the row loop), :mod:`~lasskit.scoring.breakdowns`
(bands and comparisons), :mod:`~lasskit.scoring.reports` (CSV/JSON/plots),
:mod:`~lasskit.scoring.run` (one target, a whole workspace).
"""

from __future__ import annotations

from lasskit.scoring.breakdowns import (  # noqa: F401
    breakdown,
    compare_scores,
    query_length_band,
    snr_band,
)
from lasskit.scoring.reading import (  # noqa: F401
    CHUNK,
    match_estimates,
)
from lasskit.scoring.reports import (  # noqa: F401
    plot_scores,
    scores_csv,
    write_comparison,
    write_results,
)
from lasskit.scoring.run import (  # noqa: F401
    find_targets,
    score_estimates,
    score_workspace,
)
from lasskit.scoring.stats import (  # noqa: F401
    bootstrap_ci,
    bootstrap_means,
    summarize,
)
from lasskit.scoring.types import (  # noqa: F401
    BREAKDOWNS,
    BSS_METRIC,
    METRICS,
    QUERY_LENGTH_EDGES,
    SNR_EDGES,
    Comparison,
    ScoreOptions,
    ScoreRun,
    SplitScores,
    Target,
)
