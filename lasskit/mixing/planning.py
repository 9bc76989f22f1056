"""Planning a mixture set: the planner (pairs, queries, SNRs, crop offsets, its schedule) and the steps
that lead to it.

Nothing here writes audio. The steps, shared by ``lasskit mix`` and the training Dataset so that
both give the same (mixture, reference, query) triples:

1. :func:`~lasskit.mixing.pool.load_candidates`: every clip of the manifests (once per audio file), with its split,
   dataset, labels (given or derived: ``label_source``), Freesound id and content digest.
2. :func:`~lasskit.mixing.pool.select_pool`: the challenge's data rules (see :mod:`lasskit.mixing.pool`),
   then :func:`~lasskit.mixing.pool.eligible` (labels,
   captions, ``--min-duration``).
3. :func:`~lasskit.mixing.activity.scan_clips`: every clip left is decoded once (or read from
   :class:`~lasskit.mixing.activity.ActivityCache`) and its
   0.1 s frames marked active or not; silent clips, targets with less active time than
   ``min_active`` and unreadable clips are left out, all of them, and counted by reason.
4. :class:`Planner`: pairs, queries, SNRs and crop offsets, from per-row seeded generators.

The spec is :class:`lasskit.mixing.spec.MixSpec`. The names that moved to :mod:`~lasskit.mixing.spec`,
:mod:`~lasskit.mixing.pool` and :mod:`~lasskit.mixing.activity` are still importable from here.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lasskit.errors import UsageError, WorkError
from lasskit.mixing.activity import (  # noqa: F401 - re-exported: their old home
    ACTIVITY_CACHE,
    ActivityCache,
    ClipActivity,
    analyse_clip,
    scan_clips,
)
from lasskit.mixing.pool import (  # noqa: F401 - re-exported: their old home
    CHALLENGE_PREFIX,
    DERIVED_SOURCES,
    HELD_OUT_SPLITS,
    Candidate,
    PoolReport,
    challenge_manifests,
    class_sets,
    count_used,
    eligible,
    freesound_id_of,
    is_challenge_dataset,
    load_candidates,
    reference_ids,
    resolve_manifest,
    select_pool,
)
from lasskit.mixing.segments import usable_offsets
from lasskit.mixing.spec import MixSpec

@dataclass
class PlannedRow:
    """One mixture's choices. Offsets are in samples of the 16 kHz clips."""

    index: int
    target: Candidate
    noise: Candidate
    query: str
    snr: float
    rng: np.random.Generator = field(repr=False)
    target_offset: int = 0
    noise_offset: int = 0

def row_rng(seed: int, index: int, *extra: int) -> np.random.Generator:
    """The generator of row ``index``: ``SeedSequence(seed, spawn_key=(0, index, *extra))``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0, index, *extra)))

class Planner:
    """The pairing, query and SNR logic shared by :func:`make_mixtures` and the training Dataset.

    Units are the targets (or, with ``per_caption``, each (target, caption)); the rows take the
    units in order, cycling, and a seeded sorted subset for a last partial round. Row ``i``'s
    generator then draws, in this order: the noise (uniform among the noises sharing no class and
    no recording with the target), a caption index, the SNR, the target's and the noise's crop
    offsets. ``activity`` (clip key -> :class:`ClipActivity`) holds what :func:`scan_clips` found.
    """

    def __init__(self, targets: Sequence[Candidate], noises: Sequence[Candidate], spec: MixSpec):
        from lasskit.ontology import NoisePool

        self.spec = spec.validate()
        self.targets = list(targets)
        self.noises = list(noises)
        self.pool = NoisePool([n.label_set for n in self.noises], [n.identities for n in self.noises])
        self.excluded: set[str] = set()
        self.not_noises: set[str] = set()  # usable as targets only (less active than the noises' floor)
        self.why: dict[str, str] = {}  # excluded key -> reason
        self.activity: dict[str, ClipActivity] = {}
        self._noise_excluded = np.zeros(len(self.noises), dtype=bool)
        self.refresh()

    def exclude(self, keys: set[str] | dict[str, str]) -> None:
        """Leave these clips (by key) out of both roles, e.g. silent or unreadable ones."""
        if isinstance(keys, dict):
            self.why.update(keys)
        self.excluded |= set(keys)
        self._noise_excluded = np.array([n.key in self.excluded or n.key in self.not_noises for n in self.noises],
                                        dtype=bool)
        self.refresh()

    def valid_noises(self, target: Candidate) -> np.ndarray:
        """Positions in ``noises`` of the noises ``target`` may be mixed with."""
        return self.pool.valid(target.label_set, target.identities, self._noise_excluded)

    def refresh(self) -> None:
        """Recompute the usable targets and the units."""
        self.usable: list[Candidate] = []
        self.without_noise: list[Candidate] = []
        for t in self.targets:
            if t.key in self.excluded:
                continue
            (self.usable if len(self.valid_noises(t)) else self.without_noise).append(t)
        self.units: list[tuple[Candidate, int | None]] = []
        for t in self.usable:
            if self.spec.per_caption:
                self.units += [(t, k) for k in range(len(t.captions))] if t.captions else [(t, -1)]
            else:
                self.units.append((t, None))
        self._schedules: dict[int, list[int]] = {}

    @property
    def num_rows(self) -> int:
        return self.spec.num if self.spec.num is not None else len(self.units)

    def schedule(self, epoch: int = 0) -> list[int]:
        """Unit index of every row: all units in order, repeated, then a sorted seeded subset."""
        if not self.units:
            return []
        cached = self._schedules.get(epoch)
        if cached is not None:
            return cached
        full, rest = divmod(self.num_rows, len(self.units))
        order = list(range(len(self.units))) * full
        if rest:
            key = (1,) if epoch == 0 else (1, epoch)
            rng = np.random.default_rng(np.random.SeedSequence(self.spec.seed, spawn_key=key))
            order += sorted(int(u) for u in rng.choice(len(self.units), rest, replace=False))
        if len(self._schedules) > 8:
            self._schedules.clear()
        self._schedules[epoch] = order
        return order

    def query_of(self, target: Candidate, caption: int | None, drawn: int) -> str:
        """Caption ``caption`` (``drawn`` when None); a labels-only clip gets one made from its labels."""
        from lasskit.ontology import caption_from_labels

        if not target.captions:
            return caption_from_labels(target.labels)
        return target.captions[drawn if caption is None else caption]

    def draw(self, index: int, unit: int, rng: np.random.Generator) -> PlannedRow:
        """Row ``index`` for ``units[unit]``: noise, query and SNR from ``rng`` (offsets come later)."""
        target, caption = self.units[unit]
        valid = self.valid_noises(target)
        noise = self.noises[int(valid[rng.integers(len(valid))])]
        drawn = int(rng.integers(max(1, len(target.captions))))
        snr = self.spec.draw_snr(rng)
        if noise.key == target.key:  # pragma: no cover - NoisePool leaves the target out
            raise WorkError(f"{target.path}: the target was drawn as its own noise (a bug; please report it)")
        return PlannedRow(index, target, noise, self.query_of(target, caption, drawn), snr, rng)

    def plan(self, epoch: int = 0) -> list[PlannedRow]:
        """Every row's noise, query and SNR."""
        out = []
        for i, unit in enumerate(self.schedule(epoch)):
            rng = row_rng(self.spec.seed, i) if epoch == 0 else row_rng(self.spec.seed, i, epoch)
            out.append(self.draw(i, unit, rng))
        return out

    def offsets(self, active: np.ndarray, num_samples: int, target: bool = False, noise: bool = False) -> np.ndarray:
        """The crop offsets a clip may take: see :func:`usable_offsets`; a target's window also
        holds at least ``spec.min_active_frames`` active frames, a noise's ``spec.noise_min_active_frames``
        (neither: at least one, i.e. not silent). (Remembered per activity array.)"""
        cache = self.__dict__.setdefault("_offsets", {})
        key = (id(active), num_samples, target, noise)
        hit = cache.get(key)
        if hit is not None and hit[0] is active:
            return hit[1]
        floor = self.spec.min_active_frames if target else self.spec.noise_min_active_frames if noise else 1
        out = usable_offsets(active, num_samples, self.spec.length, self.spec.hop, min_frames=floor)
        if len(cache) > 200_000:
            cache.clear()
        cache[key] = (active, out)
        return out

    def draw_offset(self, rng: np.random.Generator, active: np.ndarray, num_samples: int,
                    target: bool = False, noise: bool = False) -> int | None:
        """A crop offset (samples) among the usable windows, or None if the clip is unusable."""
        offsets = self.offsets(active, num_samples, target, noise)
        if not len(offsets):
            return None
        return int(offsets[rng.integers(len(offsets))])

    def active_frames(self, key: str, offset: int) -> int:
        """Active frames of clip ``key``'s segment at ``offset`` (0 if its activity is unknown)."""
        a = self.activity.get(key)
        if a is None:
            return 0
        first = offset // self.spec.hop
        return int(np.count_nonzero(a.active[first:first + -(-self.spec.length // self.spec.hop)]))

def apply_activity(planner: Planner, found: dict[str, ClipActivity | str], skipped: Counter) -> list[tuple[str, str]]:
    """Give the planner the scanned activity and leave out unusable clips, each counted by reason.

    Reasons: ``unreadable audio`` (also returned as failures: (file, error)), ``silent clip``
    (no active frame in any window), ``target with less than --min-active active`` (a target whose
    best window holds fewer active frames than the floor; it may still serve as a noise),
    ``noise with less than --noise-min-active active`` (the same for noises; it may still be a target).
    """
    failures: list[tuple[str, str]] = []
    why: dict[str, str] = {}
    noise_keys = {n.key for n in planner.noises}
    target_keys = {t.key for t in planner.targets}
    low_targets: set[str] = set()
    low_noises: set[str] = set()
    for c in {**{t.key: t for t in planner.targets}, **{n.key: n for n in planner.noises}}.values():
        a = found.get(c.key)
        if a is None:
            continue
        if isinstance(a, str):
            why[c.key] = a
            skipped["unreadable audio"] += 1
            failures.append((str(c.path), a))
            continue
        planner.activity[c.key] = a
        if not len(planner.offsets(a.active, a.num_samples)):
            why[c.key] = "silent"
            skipped["silent clip"] += 1
        else:
            if c.key in target_keys and not len(planner.offsets(a.active, a.num_samples, target=True)):
                low_targets.add(c.key)
            if c.key in noise_keys and not len(planner.offsets(a.active, a.num_samples, noise=True)):
                low_noises.add(c.key)
    if low_targets:
        skipped["target with less than --min-active active"] += len(low_targets)
        keep_as_noise = low_targets & noise_keys - low_noises
        planner.targets = [t for t in planner.targets if t.key not in low_targets]
        for k in low_targets - keep_as_noise:
            why[k] = "little active"
    if low_noises:
        skipped["noise with less than --noise-min-active active"] += len(low_noises)
        planner.not_noises |= low_noises
    planner.exclude(why)
    return failures

def plan_mixtures(
    planner: Planner,
    activity: Callable[[list[Candidate]], dict[str, ClipActivity | str]] | None = None,
) -> tuple[list[PlannedRow], dict[str, str]]:
    """Plan every row with offsets (the planner's clips already scanned: :func:`apply_activity`).

    ``activity`` (clips -> :class:`ClipActivity` or an error) is asked about any clip a plan uses
    whose activity the planner lacks; such a clip, if silent or unreadable, is excluded and the
    plan redone. Returns the rows and, per excluded clip key, why.
    """
    why: dict[str, str] = {}
    while True:
        rows = planner.plan()
        needed = {c.key: c for r in rows for c in (r.target, r.noise) if c.key not in planner.activity}
        if not needed:
            break
        if activity is None:
            raise WorkError("clips without activity in a plan (a bug; please report it)")
        found = activity(list(needed.values()))
        bad: dict[str, str] = {}
        for key, a in found.items():
            if isinstance(a, str):
                bad[key] = a
            else:
                planner.activity[key] = a
                if not len(planner.offsets(a.active, a.num_samples)):
                    bad[key] = "silent"
                elif any(r.noise.key == key for r in rows) and not len(planner.offsets(a.active, a.num_samples,
                                                                                      noise=True)):
                    bad[key] = "silent"  # too little active for a noise: not drawn again
        if bad:
            why.update(bad)
            planner.exclude(bad)
    for r in rows:
        ta, na = planner.activity[r.target.key], planner.activity[r.noise.key]
        r.target_offset = planner.draw_offset(r.rng, ta.active, ta.num_samples, target=True)
        r.noise_offset = planner.draw_offset(r.rng, na.active, na.num_samples, noise=True)
        if r.target_offset is None or r.noise_offset is None:  # pragma: no cover - excluded above
            raise WorkError(f"{r.target.path}: no usable window (a bug; please report it)")
    return rows, why

@dataclass
class Prepared:
    """A planner with the data rules applied and its clips scanned, and what was left out."""

    planner: Planner
    skipped: Counter
    failures: list[tuple[str, str]]
    pool: PoolReport
    targets_available: int
    noises_available: int
    notes: list[str] = field(default_factory=list)

def prepare_planner(
    spec: MixSpec,
    targets: Sequence[str | os.PathLike],
    noises: Sequence[str | os.PathLike] | None = None,
    *,
    splits: Sequence[str] = (),
    datasets: Sequence[str] = (),
    ontology: str | os.PathLike | None = None,
    named: Sequence[str | os.PathLike] | None = None,
    reference: Sequence[str | os.PathLike] = (),
    jobs: int | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Prepared:
    """Candidates -> data rules -> eligibility -> scan -> a :class:`Planner` (steps 1-3 of the module doc).

    ``named``: the manifests the user named (None: all of them); ``reference``: further manifests
    whose challenge clips' Freesound ids and digests are forbidden in training mixtures;
    ``cache_dir``: where the clips' activity is kept between runs (:class:`ActivityCache`; None:
    scanned every time).
    """
    spec.validate()
    target_paths = [Path(p).resolve() for p in targets]
    noise_paths = [Path(p).resolve() for p in (noises if noises else targets)]
    if not target_paths:
        raise UsageError("no manifest to draw targets from; run `lasskit prepare` or pass MANIFEST")
    classes = class_sets(ontology)
    target_pool = load_candidates(target_paths, splits=splits, datasets=datasets, classes=classes)
    noise_pool = target_pool if noise_paths == target_paths else load_candidates(
        noise_paths, splits=splits, datasets=datasets, classes=classes)
    if not target_pool:
        raise UsageError(f"no target clip in {', '.join(map(str, target_paths))} after the split/dataset filters")
    if not noise_pool:
        raise UsageError(f"no noise clip in {', '.join(map(str, noise_paths))} after the split/dataset filters")
    own = set(target_paths) | set(noise_paths)
    ref_paths = [p for p in dict.fromkeys(Path(x).resolve() for x in reference) if p not in own]
    if splits or datasets:  # held-out clips the filters kept out of the pool are still not to be reused
        ref_paths += sorted(own)
    ref = reference_ids(ref_paths) if ref_paths else None
    named_paths = None if named is None else [str(Path(p).resolve()) for p in named]
    skipped: Counter = Counter()
    pool = PoolReport()
    both = {c.key: c for c in (*target_pool, *noise_pool)}
    allowed = {c.key for c in select_pool(list(both.values()), splits, named_paths, ref, skipped, pool)}
    t_allowed = [c for c in target_pool if c.key in allowed]
    n_allowed = [c for c in noise_pool if c.key in allowed]
    usable_targets = eligible(t_allowed, spec, "target", skipped)
    usable_noises = eligible(n_allowed, spec, "noise", skipped)
    if not usable_targets or not usable_noises:
        held = sum(pool.held_out.values())
        hint = ("; pass --allow-unlabeled to use clips without labels" if any("without labels" in k for k in skipped)
                else "")
        if held:
            hint += f"; {held} held-out (val/eval) clip(s) were left out: name their split with --split to use them"
        raise UsageError("no usable " + ("targets" if not usable_targets else "noises") + " (skipped: "
                         + ", ".join(f"{k}: {v}" for k, v in sorted(skipped.items())) + ")" + hint)
    planner = Planner(usable_targets, usable_noises, spec)
    scan_cache = ActivityCache(spec.silence_db, cache_dir)
    everything = list({c.key: c for c in (*usable_targets, *usable_noises)}.values())
    found = scan_clips(everything, spec.silence_db, jobs, scan_cache)
    failures = apply_activity(planner, found, skipped)
    notes = []
    if scan_cache.unsaved:
        notes.append(f"could not write the clip-activity cache in {cache_dir} ({scan_cache.unsaved} file(s)): "
                     "the next run scans those clips again")
    count_used(pool, [c for c in everything if c.key not in planner.excluded])
    return Prepared(planner, skipped, failures, pool, len(target_pool), len(noise_pool), notes)
