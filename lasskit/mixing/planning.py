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
        """Unit index of every row: all units in order, repeated, then a sorted seeded subset.

        With corpus weights (:meth:`set_weights`), each weighted corpus gets its share of the rows
        (largest remainders), its own units taken the same way, the corpora one after another."""
        if not self.units:
            return []
        cached = self._schedules.get(epoch)
        if cached is not None:
            return cached
        if self.weights:
            order = []
            for k, (corpus, units) in enumerate(self._weighted_units()):
                rows = self.corpus_rows()[corpus]
                order += [units[u] for u in self._cycle(len(units), rows, epoch, (1 + k,))]
        else:
            order = self._cycle(len(self.units), self.num_rows, epoch, ())
        if len(self._schedules) > 8:
            self._schedules.clear()
        self._schedules[epoch] = order
        return order

    def _cycle(self, size: int, rows: int, epoch: int, extra: tuple[int, ...]) -> list[int]:
        """``rows`` positions among ``size``: all in order, repeated, then a sorted seeded subset."""
        if not size or not rows:
            return []
        full, rest = divmod(rows, size)
        order = list(range(size)) * full
        if rest:
            key = (1, *extra) if epoch == 0 else (1, *extra, epoch)
            rng = np.random.default_rng(np.random.SeedSequence(self.spec.seed, spawn_key=key))
            order += sorted(int(u) for u in rng.choice(size, rest, replace=False))
        return order

    weights: dict[str, float] = {}

    def set_weights(self, weights: dict[str, float]) -> None:
        """Draw rows per target corpus (the manifest folder's name) in proportion to ``weights``
        (e.g. ``{"wavcaps": 0.5, "clotho": 0.25, "fsd50k": 0.25}``), so a large corpus does not
        drown the others; corpora not named get no rows. A UsageError names a weight that is not a
        positive number or a corpus with no usable target."""
        bad = [f"{k}:{v}" for k, v in weights.items() if not (isinstance(v, (int, float)) and v > 0 and v < float("inf"))]
        if bad:
            raise UsageError(f"--targets {bad[0]}: a corpus weight must be a positive number (e.g. clotho:0.25)")
        present = {t.corpus for t, _ in self.units}
        missing = sorted(set(weights) - present)
        if missing:
            raise UsageError(f"--targets {missing[0]}:{weights[missing[0]]}: no usable target clip of corpus "
                             f"{missing[0]} (targets from: {', '.join(sorted(present))})")
        self.weights = dict(sorted(weights.items()))
        self._schedules = {}

    def _weighted_units(self) -> list[tuple[str, list[int]]]:
        by_corpus: dict[str, list[int]] = {}
        for i, (t, _) in enumerate(self.units):
            by_corpus.setdefault(t.corpus, []).append(i)
        return [(c, by_corpus[c]) for c in self.weights if c in by_corpus]

    def corpus_rows(self) -> dict[str, int]:
        """Rows per weighted corpus: ``num_rows * w / sum(w)``, rounded by largest remainders (over
        the corpora that still have usable targets)."""
        present = {t.corpus for t, _ in self.units}
        weights = {c: w for c, w in self.weights.items() if c in present}
        top = max(weights.values(), default=1.0)  # relative to the largest: weights like 1e308 add up without overflowing
        weights = {c: w / top for c, w in weights.items()}
        total = sum(weights.values())
        exact = {c: self.num_rows * w / total for c, w in weights.items()}
        rows = {c: int(x) for c, x in exact.items()}
        for c in sorted(exact, key=lambda c: (-(exact[c] - rows[c]), c))[: self.num_rows - sum(rows.values())]:
            rows[c] += 1
        return rows

    def shares(self) -> dict[str, dict]:
        """What the sampler draws per target corpus: weight, rows per mixing epoch, share, usable units."""
        units: dict[str, int] = {}
        for t, _ in self.units:
            units[t.corpus] = units.get(t.corpus, 0) + 1
        if self.weights:
            rows = self.corpus_rows()
        else:
            rows = {}
            for u in self.schedule():
                c = self.units[u][0].corpus
                rows[c] = rows.get(c, 0) + 1
        total = sum(rows.values()) or 1
        return {c: {"weight": self.weights.get(c), "rows": rows.get(c, 0), "share": round(rows.get(c, 0) / total, 6),
                    "units": units.get(c, 0)} for c in sorted(units)}

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

def split_weights(words: Sequence[str]) -> tuple[list[str], dict[str, float]]:
    """``["wavcaps:0.5", "clotho"]`` -> ``(["wavcaps", "clotho"], {"wavcaps": 0.5})``: a word ending
    in ``:<number>`` names a corpus and its sampling weight (a word without one keeps the plain
    sampler unless another word has a weight, then it is refused: give every corpus a weight)."""
    names, weights = [], {}
    for word in words:
        head, sep, tail = str(word).rpartition(":")
        number = None
        if sep and head:
            try:
                number = float(tail)
            except ValueError:
                number = None
        if number is None:
            names.append(str(word))
            continue
        if not number > 0 or number == float("inf"):
            raise UsageError(f"--targets {word}: a corpus weight must be a positive number (e.g. {head}:0.25)")
        names.append(head)
        weights[head] = number
    twice = sorted({w for w in names if names.count(w) > 1})
    if weights and twice:
        raise UsageError(f"--targets {twice[0]}: named twice; give each corpus once, with its weight "
                         f"(e.g. {twice[0]}:0.25)")
    if weights and len(weights) != len(names):
        plain = next(w for w in names if w not in weights)
        raise UsageError(f"--targets {plain}: give every target corpus a weight when one has one (e.g. {plain}:0.25)")
    return names, weights


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
