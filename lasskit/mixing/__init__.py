"""Synthetic mixtures: class-disjoint pairs at exact SNRs (``lasskit mix``) and the organizers' formula.

**The organizers' mixing** (DCASE 2024 Task 9 evaluator), for a source ``s`` and noise ``n`` at
16 kHz mono and an SNR in dB::

    n   <- n * sqrt(mean(s^2) / (mean(n^2) * 10^(snr/10)))   # so 10*log10(mean(s^2)/mean(n^2)) = snr
    mix  = s + n
    if max|mix| > 1:  mix, s, n <- (0.9 / max|mix|) * (mix, s, n)

Computed in float64; the written float32 files satisfy ``mixture == source + noise`` exactly
(the mixture is the float32 sum of the float32 references).

**lasskit's own sets** (:func:`make_mixtures`) use the same gains on fixed-length segments:

- segment: ``duration`` s (``length`` samples at 16 kHz). A longer clip is cropped at an offset
  drawn uniformly among the *usable* windows: offsets on a 0.1 s grid whose window holds at least
  half as many active frames as the best window, a frame (0.1 s) being active when its RMS is at
  least ``silence_db`` dBFS (default -60), measured on the audible signal (each frame minus its
  own mean: a DC offset is not sound, :mod:`lasskit.audible`); a target's window also holds at
  least ``min_active`` s of active frames (default a tenth of the duration), a noise's
  ``noise_min_active`` (default the targets' floor). A shorter clip is zero-padded at the end.
  A clip with no active frame in any window is silent and never used, as target or as noise;
  every clip of the pool is scanned before planning.
- gains: ``g = sqrt(sum(s^2) / (sum(n^2) * 10^(snr/10)))`` over the segments (float64; the sums
  taken per 0.1 s frame, then over the frames), then ``c = 0.9 / max|s + g n|`` if that peak
  exceeds 1, else 1. Written (float32 WAV): ``source = f32(s * c)``, ``noise = f32(n * (c g))``,
  ``mixture = source + noise`` (float32 sum), so ``10*log10(sum(source^2) / sum(noise^2)) = snr``
  to float precision (~1e-6 dB). Exception: a segment whose mean holds more than half of its
  energy (mostly a DC offset) enters with its energy about the mean, so the SNR is that of what
  can be heard (:func:`lasskit.audible.level_energy`); such rows are counted in the summary.
- pairing: the noise's class set (:func:`lasskit.mixing.pool.class_sets`) is disjoint from
  the target's, and the two never share an audio file, a Freesound id or a content digest.
- data rules (:mod:`lasskit.mixing.pool`): validation/evaluation clips only when asked for
  by name; recordings of the challenge's clips never in training sets.
- randomness: the order of targets comes from ``SeedSequence(seed, spawn_key=(1,))``; row ``i``'s
  noise, caption, SNR and offsets from ``SeedSequence(seed, spawn_key=(0, i))``, all drawn in the
  parent process, so the files do not depend on ``jobs``.

Modules: :mod:`lasskit.official` (a core module: the organizers' formula and CSV, also used by
``prepare dcase2024``), :mod:`~lasskit.mixing.official` (``mix --from-official``),
:mod:`~lasskit.mixing.segments` (activity, crops, gains), :mod:`~lasskit.mixing.spec` (what a set
is), :mod:`~lasskit.mixing.pool` (candidates, identities, the challenge's data rules),
:mod:`~lasskit.mixing.activity` (clip activity, its disk cache, the parallel scan),
:mod:`~lasskit.mixing.planning` (the planner, its schedule, every random choice),
:mod:`~lasskit.mixing.writing` (``make_mixtures``: named steps), :mod:`~lasskit.mixing.rows` (one row
on disk: fingerprint, writer, record), :mod:`~lasskit.mixing.splitdir` (the split folder's state,
the organizers' CSV retirement), :mod:`~lasskit.mixing.report` (``MixReport``),
:mod:`~lasskit.mixing.items` (one item in memory) and
:mod:`~lasskit.mixing.torch_dataset` (the training Dataset and :func:`mixture_dataset`; torch is
imported only there, and ``lasskit.mixing.mixture_dataset`` loads it on first use).
"""

from lasskit.mixing.items import make_item
from lasskit.mixing.official import mix_from_official
from lasskit.mixing.activity import ClipActivity, analyse_clip
from lasskit.mixing.planning import PlannedRow, Planner, plan_mixtures, prepare_planner, row_rng
from lasskit.mixing.pool import (
    HELD_OUT_SPLITS,
    Candidate,
    PoolReport,
    challenge_manifests,
    load_candidates,
    resolve_manifest,
    select_pool,
)
from lasskit.mixing.segments import (
    FRAME_SECONDS,
    SILENCE_DB,
    MixedSegments,
    energy_snr,
    frame_activity,
    gain_segments,
    mix_segments,
    read_segment,
    take_segment,
    usable_offsets,
)
from lasskit.mixing.report import MixReport
from lasskit.mixing.rows import MIX_COLUMNS, OFFICIAL_HEADER, official_csv_text, rebuild_row, row_fingerprint
from lasskit.mixing.spec import MixSpec
from lasskit.mixing.splitdir import MIX_JSON, mixture_fingerprints
from lasskit.mixing.writing import make_mixtures
from lasskit.official import (  # the organizers' formula lives in a core module; re-exported here
    CLIP_PEAK,
    OfficialMixture,
    build_from_official,
    mixture_name,
    official_clip_paths,
    official_mixture,
    read_official_csv,
)

__all__ = [
    "CLIP_PEAK", "FRAME_SECONDS", "HELD_OUT_SPLITS", "PoolReport", "mixture_fingerprints", "prepare_planner",
    "row_fingerprint", "select_pool", "challenge_manifests", "MIX_COLUMNS", "MIX_JSON", "OFFICIAL_HEADER", "SILENCE_DB", "Candidate",
    "ClipActivity", "MixReport", "MixSpec", "MixedSegments", "OfficialMixture", "PlannedRow", "Planner",
    "analyse_clip", "build_from_official", "energy_snr", "frame_activity", "gain_segments", "load_candidates",
    "make_item", "make_mixtures", "mix_from_official", "mix_segments", "mixture_dataset", "mixture_name",
    "official_clip_paths", "official_csv_text", "official_mixture", "plan_mixtures", "read_official_csv",
    "read_segment", "rebuild_row", "resolve_manifest", "row_rng", "take_segment", "usable_offsets",
]


def __getattr__(name: str):
    """``mixture_dataset`` lives with the torch Dataset; load it (and torch) only when asked for."""
    if name == "mixture_dataset":
        from lasskit.mixing.torch_dataset import mixture_dataset

        return mixture_dataset
    raise AttributeError(f"module 'lasskit.mixing' has no attribute {name!r}")
