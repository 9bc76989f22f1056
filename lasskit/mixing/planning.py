"""Planning a mixture set: its spec, the candidate clips, and every random choice (no audio written)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lasskit import SAMPLE_RATE, audio
from lasskit.errors import UsageError, WorkError
from lasskit.mixing.segments import (
    FRAME_SECONDS,
    SILENCE_DB,
    frame_activity,
    usable_offsets,
)


@dataclass(frozen=True)
class MixSpec:
    """What a mixture set is: SNR range (dB), size, queries, segment length (s), seed."""

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

    @property
    def length(self) -> int:
        """Segment length in samples at 16 kHz."""
        return int(round(self.duration * SAMPLE_RATE))

    @property
    def hop(self) -> int:
        """Frame and offset-grid step in samples."""
        return int(round(FRAME_SECONDS * SAMPLE_RATE))

    def snr_bounds(self) -> tuple[float, float]:
        """The SNR range actually drawn from: integers ceil(low)..floor(high) with integer_snr."""
        if self.integer_snr:
            return float(np.ceil(self.snr_low)), float(np.floor(self.snr_high))
        return float(self.snr_low), float(self.snr_high)

    def validate(self) -> "MixSpec":
        """Raise :class:`UsageError` for impossible options; returns self."""
        if not (np.isfinite(self.snr_low) and np.isfinite(self.snr_high)) or self.snr_low > self.snr_high:
            raise UsageError(f"--snr {self.snr_low:g} {self.snr_high:g}: give LOW <= HIGH, finite, in dB")
        lo, hi = self.snr_bounds()
        if lo > hi:
            raise UsageError(f"--snr {self.snr_low:g} {self.snr_high:g} holds no integer for --integer-snr")
        if self.num is not None and self.num <= 0:
            raise UsageError(f"--num {self.num}: must be a positive number of mixtures")
        if not self.duration > 0 or self.length < 1:
            raise UsageError(f"--duration {self.duration}: must be a positive number of seconds")
        if self.min_duration < 0:
            raise UsageError(f"--min-duration {self.min_duration}: must be >= 0 seconds")
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


@dataclass
class Candidate:
    """A clip that may become a target or a noise. ``key`` (its resolved audio path) is its identity."""

    key: str
    corpus: str  # the manifest's folder name
    id: str
    path: Path
    duration: float  # seconds, from the manifest
    dataset: str
    split: str
    captions: list[str]
    labels: list[str]
    label_set: frozenset[str]


def resolve_manifest(value: str | os.PathLike, workspace=None) -> Path:
    """A manifest from a CLI word: a manifest CSV, a corpus folder, or a corpus name in the workspace."""
    path = Path(value)
    if path.is_file():
        return path.resolve()
    if (path / "manifest.csv").is_file():
        return (path / "manifest.csv").resolve()
    if workspace is not None and workspace.manifest_path(str(value)).is_file():
        return workspace.manifest_path(str(value)).resolve()
    known = ", ".join(workspace.corpora()) if workspace is not None else ""
    raise UsageError(f"{value}: no such manifest; pass a manifest.csv, a corpus folder or a prepared corpus name"
                     + (f" ({known})" if known else " (run `lasskit prepare` first)"))


def load_candidates(
    manifests: Sequence[str | os.PathLike],
    ontology=None,
    splits: Sequence[str] = (),
    datasets: Sequence[str] = (),
) -> list[Candidate]:
    """Every clip of ``manifests`` whose split and dataset pass the filters, once (by audio path)."""
    from lasskit.manifest import read_manifest
    from lasskit.ontology import label_set

    keep_splits, keep_datasets = set(splits), set(datasets)
    out: list[Candidate] = []
    seen: set[str] = set()
    for mpath in manifests:
        manifest = read_manifest(mpath)
        for clip in manifest.clips:
            if keep_splits and clip.split not in keep_splits:
                continue
            if keep_datasets and clip.dataset not in keep_datasets:
                continue
            path = manifest.audio_path(clip).resolve()
            key = str(path)
            if key in seen:
                continue
            seen.add(key)
            out.append(Candidate(
                key=key, corpus=manifest.root.name, id=clip.id, path=path, duration=clip.duration,
                dataset=clip.dataset, split=clip.split,
                captions=[c for c in clip.captions if c.strip()], labels=list(clip.labels),
                label_set=label_set(clip.labels, ontology),
            ))
    return out



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
    generator then draws, in this order: the noise (uniform among class-disjoint noises), a
    caption index, the SNR, the target's and the noise's crop offsets.
    """

    def __init__(self, targets: Sequence[Candidate], noises: Sequence[Candidate], spec: MixSpec):
        from lasskit.ontology import NoisePool

        self.spec = spec.validate()
        self.targets = list(targets)
        self.noises = list(noises)
        self.pool = NoisePool([n.label_set for n in self.noises], [n.key for n in self.noises])
        self.excluded: set[str] = set()
        self._noise_excluded = np.zeros(len(self.noises), dtype=bool)
        self.refresh()

    def exclude(self, keys: set[str]) -> None:
        """Leave these clips (by key) out of both roles, e.g. silent or unreadable ones."""
        self.excluded |= set(keys)
        self._noise_excluded = np.array([n.key in self.excluded for n in self.noises], dtype=bool)
        self.refresh()

    def valid_noises(self, target: Candidate) -> np.ndarray:
        """Positions in ``noises`` of the noises ``target`` may be mixed with."""
        return self.pool.valid(target.label_set, target.key, self._noise_excluded)

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

    def draw_offset(self, rng: np.random.Generator, active: np.ndarray, num_samples: int) -> int | None:
        """A crop offset (samples) among the usable windows, or None if the clip is silent."""
        offsets = usable_offsets(active, num_samples, self.spec.length, self.spec.hop)
        if not len(offsets):
            return None
        return int(offsets[rng.integers(len(offsets))])


@dataclass(frozen=True)
class ClipActivity:
    """A clip's length (samples at 16 kHz) and per-frame activity."""

    num_samples: int
    active: np.ndarray


def analyse_clip(path: str | os.PathLike, silence_db: float = SILENCE_DB) -> ClipActivity:
    """Decode a clip (16 kHz mono) and mark its active frames."""
    x = audio.load(path)
    return ClipActivity(len(x), frame_activity(x, silence_db))


def plan_mixtures(
    planner: Planner,
    activity: Callable[[list[Candidate]], dict[str, ClipActivity | str]],
) -> tuple[list[PlannedRow], dict[str, str]]:
    """Plan every row with offsets, leaving out silent and unreadable clips.

    ``activity`` maps clips to their :class:`ClipActivity` (or an error message); it is asked
    only about clips a plan uses. A silent or unreadable clip is excluded and the plan redone
    (deterministically) until every row's clips are usable. Returns the rows and, per excluded
    clip key, why (``"silent"`` or the error).
    """
    known: dict[str, ClipActivity | str] = {}
    why: dict[str, str] = {}
    while True:
        rows = planner.plan()
        needed = {}
        for r in rows:
            for c in (r.target, r.noise):
                if c.key not in known:
                    needed[c.key] = c
        if needed:
            known.update(activity(list(needed.values())))
        bad: set[str] = set()
        for r in rows:
            for c in (r.target, r.noise):
                a = known[c.key]
                if isinstance(a, str):
                    why[c.key] = a
                    bad.add(c.key)
                elif not len(usable_offsets(a.active, a.num_samples, planner.spec.length, planner.spec.hop)):
                    why[c.key] = "silent"
                    bad.add(c.key)
        if not bad:
            break
        planner.exclude(bad)
    for r in rows:
        ta, na = known[r.target.key], known[r.noise.key]
        r.target_offset = planner.draw_offset(r.rng, ta.active, ta.num_samples)
        r.noise_offset = planner.draw_offset(r.rng, na.active, na.num_samples)
    return rows, why


def eligible(pool: list[Candidate], spec: MixSpec, role: str, skipped: Counter) -> list[Candidate]:
    """The clips of ``pool`` that may serve as ``role`` (target or noise); the others counted in ``skipped`` by reason."""
    out = []
    for c in pool:
        if not c.label_set and not spec.allow_unlabeled:
            skipped[f"{role} without labels"] += 1
        elif role == "target" and not c.captions and not c.labels:
            skipped["target without caption or labels"] += 1
        elif spec.min_duration and c.duration < spec.min_duration:
            skipped[f"{role} shorter than --min-duration"] += 1
        else:
            out.append(c)
    return out
