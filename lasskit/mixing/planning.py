"""Planning a mixture set: its spec, the candidate clips, the data rules, and every random choice.

Nothing here writes audio. The steps, shared by ``lasskit mix`` and the training Dataset so that
both give the same (mixture, reference, query) triples:

1. :func:`load_candidates`: every clip of the manifests (once per audio file), with its split,
   dataset, labels (given or derived: ``label_source``), Freesound id and content digest.
2. :func:`select_pool`: the challenge's data rules (see below), then :func:`eligible` (labels,
   captions, ``--min-duration``).
3. :func:`scan_clips`: every clip left is decoded once (or read from :class:`ActivityCache`) and its
   0.1 s frames marked active or not; silent clips, targets with less active time than
   ``min_active`` and unreadable clips are left out, all of them, and counted by reason.
4. :class:`Planner`: pairs, queries, SNRs and crop offsets, from per-row seeded generators.

**Data rules** (DCASE 2024 Task 9 forbids training on its validation and evaluation audio):

- a clip is *held out* when its split is one of :data:`HELD_OUT_SPLITS` (``val``, ``eval``, ...)
  or its dataset is one of the challenge's own sets (name starting with ``dcase``, e.g.
  ``dcase2024_val``);
- held-out clips are used only when asked for by name: their split listed in ``splits``
  (``--split val``), or, for the challenge's own corpora, the corpus named explicitly
  (``lasskit mix dcase2024_val ...``); otherwise they are left out and counted per corpus/split;
- a clip that is not held out but is the same recording as a challenge clip (same Freesound id,
  or the same decoded samples: the manifest's ``digest``) is left out and counted;
- two clips of one mixture never share a Freesound id or a content digest (nor the audio file);
- a clip whose Freesound id lies inside the range the challenge's validation ids span is counted
  and warned about: the rules also forbid audio uploaded to Freesound between April and October
  2023, the window the validation clips were sampled from, and ids grow with upload time (an
  approximation: the range is not the window).
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lasskit import SAMPLE_RATE, audio
from lasskit.errors import AudioError, UsageError, WorkError
from lasskit.mixing.segments import (
    FRAME_SECONDS,
    SILENCE_DB,
    frame_activity,
    usable_offsets,
)

HELD_OUT_SPLITS = frozenset({"val", "valid", "validation", "eval", "evaluation", "test"})
"""Manifest splits that hold validation or evaluation data: used only when ``splits`` names them."""
CHALLENGE_PREFIX = "dcase"
"""Datasets whose name starts with this are the challenge's own validation/evaluation sets."""
DERIVED_SOURCES = frozenset({"keywords", "caption", "clap"})
"""``label_source`` values of labels lasskit derived (not given by the corpus)."""
_LEADING_ID = re.compile(r"^(\d+)_")


def is_challenge_dataset(dataset: str) -> bool:
    """True for the challenge's own validation/evaluation sets (``dcase2024_val``, ...)."""
    return dataset.lower().startswith(CHALLENGE_PREFIX)


@dataclass(frozen=True)
class MixSpec:
    """What a mixture set is: SNR range (dB), size, queries, segment length (s), seed.

    ``min_active`` (s) is the floor on a target segment's active time (0.1 s frames at or above
    ``silence_db``): ``None`` means a tenth of ``duration`` (1 s for 10 s segments), 0 turns it off.
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
        if self.min_active is not None and not (0 <= self.min_active <= self.duration):
            raise UsageError(f"--min-active {self.min_active}: give 0 to {self.duration:g} seconds of active target")
        if not np.isfinite(self.silence_db):
            raise UsageError(f"--silence-db {self.silence_db}: must be a finite level in dBFS")
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
    label_source: str = ""  # given, keywords, caption, clap (derived) or empty
    freesound_id: str = ""
    digest: str = ""  # content digest of the decoded samples (manifest), where known
    manifest: str = ""  # the manifest it came from

    @property
    def held_out(self) -> bool:
        """Validation or evaluation data (see the module doc)."""
        return self.split.lower() in HELD_OUT_SPLITS or is_challenge_dataset(self.dataset)

    @property
    def derived_labels(self) -> bool:
        return bool(self.labels) and self.label_source in DERIVED_SOURCES

    @property
    def identities(self) -> tuple[str, ...]:
        """What makes two clips the same recording: the file, the Freesound id, the samples."""
        out = [self.key]
        if self.freesound_id:
            out.append("fs:" + self.freesound_id)
        if self.digest:
            out.append("dg:" + self.digest)
        return tuple(out)


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


def challenge_manifests(workspace) -> list[Path]:
    """The workspace's prepared corpora that are the challenge's own sets (by the first clip's dataset)."""
    out = []
    for name in workspace.corpora():
        path = workspace.manifest_path(name)
        try:
            from lasskit.csvfile import open_csv

            with open_csv(path) as fh:
                import csv

                first = next(csv.DictReader(fh), None)
        except (OSError, UnicodeDecodeError, ValueError):
            continue
        if first and is_challenge_dataset(str(first.get("dataset") or "")):
            out.append(path.resolve())
    return out


def freesound_id_of(clip) -> str:
    """A manifest clip's Freesound id: its ``freesound_id``, else what its name says for corpora
    whose names are Freesound ids (FSD50K's ``fname``; ``<id>_<user>-hq`` in the challenge's sets)."""
    if clip.freesound_id:
        return str(clip.freesound_id).strip()
    dataset = clip.dataset.lower()
    if dataset.startswith("fsd50k") and clip.id.isdigit():
        return clip.id
    if is_challenge_dataset(dataset):
        m = _LEADING_ID.match(clip.id)
        if m:
            return m.group(1)
    return ""


def class_sets(ontology: str | os.PathLike | None = None) -> Callable[[Iterable[str]], frozenset[str]]:
    """The conflict rule of ``mix``: labels -> the set two clips are compared by.

    :class:`lasskit.labels.conflict.ConflictCheck` (ancestors with limits, see there) when the
    labels package provides it, else :func:`lasskit.ontology.label_set` (normalised names, every
    ancestor with an ontology).
    """
    try:
        from lasskit.labels.conflict import ConflictCheck
    except ImportError:  # pragma: no cover - the labels package ships with lasskit
        ConflictCheck = None
    if ConflictCheck is not None:
        return ConflictCheck.load(ontology).class_set
    from lasskit.ontology import Ontology, label_set

    onto = Ontology.from_json(ontology) if ontology else None
    return lambda labels: label_set(labels, onto)


def load_candidates(
    manifests: Sequence[str | os.PathLike],
    ontology=None,
    splits: Sequence[str] = (),
    datasets: Sequence[str] = (),
    *,
    classes: Callable[[Iterable[str]], frozenset[str]] | None = None,
) -> list[Candidate]:
    """Every clip of ``manifests`` whose split and dataset pass the filters, once (by audio path).

    ``ontology`` is an :class:`lasskit.ontology.Ontology` (or None); ``classes`` (labels ->
    class set, see :func:`class_sets`) overrides it. The data rules are applied later, by
    :func:`select_pool`.
    """
    from lasskit.manifest import read_manifest

    if classes is None:
        from lasskit.ontology import label_set

        def classes(labels):
            return label_set(labels, ontology)

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
                label_set=classes(clip.labels), label_source=clip.label_source or ("given" if clip.labels else ""),
                freesound_id=freesound_id_of(clip), digest=clip.digest, manifest=str(Path(mpath)),
            ))
    return out


def reference_ids(manifests: Sequence[str | os.PathLike]) -> tuple[set[str], set[str], list[int]]:
    """Freesound ids and digests of the challenge's clips in ``manifests``, and the validation ids (ints)."""
    from lasskit.manifest import read_manifest

    ids: set[str] = set()
    digests: set[str] = set()
    val_ids: list[int] = []
    for mpath in manifests:
        for clip in read_manifest(mpath).clips:
            if not is_challenge_dataset(clip.dataset):
                continue
            fid = freesound_id_of(clip)
            if fid:
                ids.add(fid)
                if clip.split.lower() in ("val", "valid", "validation") and fid.isdigit():
                    val_ids.append(int(fid))
            if clip.digest:
                digests.add(clip.digest)
    return ids, digests, val_ids


@dataclass
class PoolReport:
    """What the data rules did: clips used per corpus/split, held-out clips left out, ids dropped."""

    used: dict[str, dict[str, int]] = field(default_factory=dict)  # corpus -> split -> clips kept
    held_out: dict[str, int] = field(default_factory=dict)  # "corpus/split" -> clips left out
    held_out_used: dict[str, int] = field(default_factory=dict)  # "corpus/split" -> held-out clips used (asked for)
    challenge_recordings: int = 0  # training clips that are a challenge recording (id or samples)
    upload_window: int = 0  # kept clips whose Freesound id lies in the validation ids' range
    upload_range: tuple[int, int] | None = None

    def as_dict(self) -> dict:
        return {
            "used": self.used, "held_out_left_out": self.held_out, "held_out_used": self.held_out_used,
            "challenge_recordings_dropped": self.challenge_recordings,
            "in_validation_id_range": self.upload_window,
            "validation_id_range": list(self.upload_range) if self.upload_range else None,
        }


def select_pool(
    pool: list[Candidate],
    splits: Sequence[str] = (),
    named: Iterable[str] | None = None,
    reference: tuple[set[str], set[str], list[int]] | None = None,
    skipped: Counter | None = None,
    report: PoolReport | None = None,
) -> list[Candidate]:
    """The clips of ``pool`` the data rules allow (module doc); the others counted in ``skipped``.

    ``named``: manifests (as given to :func:`load_candidates`) the user named explicitly (None:
    all of them). ``reference``: Freesound ids, digests and validation ids of the challenge's
    clips (:func:`reference_ids`), merged with those found in ``pool``.
    """
    skipped = skipped if skipped is not None else Counter()
    report = report if report is not None else PoolReport()
    named_set = None if named is None else {str(Path(p)) for p in named}
    ids, digests, val_ids = (set(reference[0]), set(reference[1]), list(reference[2])) if reference else (set(), set(), [])
    for c in pool:
        if is_challenge_dataset(c.dataset):
            if c.freesound_id:
                ids.add(c.freesound_id)
                if c.split.lower() in ("val", "valid", "validation") and c.freesound_id.isdigit():
                    val_ids.append(int(c.freesound_id))
            if c.digest:
                digests.add(c.digest)
    asked_splits = {s.lower() for s in splits}
    out = []
    for c in pool:
        where = f"{c.corpus}/{c.split or '-'}"
        if c.held_out:
            asked = c.split.lower() in asked_splits or (
                is_challenge_dataset(c.dataset) and (named_set is None or c.manifest in named_set))
            if not asked:
                skipped["held out: val/eval data not asked for"] += 1
                report.held_out[where] = report.held_out.get(where, 0) + 1
                continue
            report.held_out_used[where] = report.held_out_used.get(where, 0) + 1
        elif (c.freesound_id and c.freesound_id in ids) or (c.digest and c.digest in digests):
            skipped["same recording as a challenge validation/evaluation clip"] += 1
            report.challenge_recordings += 1
            continue
        out.append(c)
    if val_ids:
        lo, hi = min(val_ids), max(val_ids)
        report.upload_range = (lo, hi)
        report.upload_window = sum(1 for c in out if not c.held_out and c.freesound_id.isdigit()
                                   and lo <= int(c.freesound_id) <= hi)
    return out


def count_used(report: PoolReport, clips: Iterable[Candidate]) -> None:
    """Fill ``report.used`` (corpus -> split -> clips) from the clips a plan may use."""
    used: dict[str, dict[str, int]] = {}
    for c in clips:
        per = used.setdefault(c.corpus, {})
        per[c.split or "-"] = per.get(c.split or "-", 0) + 1
    report.used = {k: dict(sorted(v.items())) for k, v in sorted(used.items())}


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


@dataclass(frozen=True)
class ClipActivity:
    """A clip's length (samples at 16 kHz), per-frame activity and file digest (where computed)."""

    num_samples: int
    active: np.ndarray
    digest: str = ""


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
        self.why: dict[str, str] = {}  # excluded key -> reason
        self.activity: dict[str, ClipActivity] = {}
        self._noise_excluded = np.zeros(len(self.noises), dtype=bool)
        self.refresh()

    def exclude(self, keys: set[str] | dict[str, str]) -> None:
        """Leave these clips (by key) out of both roles, e.g. silent or unreadable ones."""
        if isinstance(keys, dict):
            self.why.update(keys)
        self.excluded |= set(keys)
        self._noise_excluded = np.array([n.key in self.excluded for n in self.noises], dtype=bool)
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

    def offsets(self, active: np.ndarray, num_samples: int, target: bool = False) -> np.ndarray:
        """The crop offsets a clip may take: see :func:`usable_offsets`; a target's window also
        holds at least ``spec.min_active_frames`` active frames. (Remembered per activity array.)"""
        cache = self.__dict__.setdefault("_offsets", {})
        key = (id(active), num_samples, target)
        hit = cache.get(key)
        if hit is not None and hit[0] is active:
            return hit[1]
        floor = self.spec.min_active_frames if target else 1
        out = usable_offsets(active, num_samples, self.spec.length, self.spec.hop, min_frames=floor)
        if len(cache) > 200_000:
            cache.clear()
        cache[key] = (active, out)
        return out

    def draw_offset(self, rng: np.random.Generator, active: np.ndarray, num_samples: int,
                    target: bool = False) -> int | None:
        """A crop offset (samples) among the usable windows, or None if the clip is unusable."""
        offsets = self.offsets(active, num_samples, target)
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


def analyse_clip(path: str | os.PathLike, silence_db: float = SILENCE_DB, with_digest: bool = False) -> ClipActivity:
    """Decode a clip (16 kHz mono) and mark its active frames; ``with_digest``: also its file's digest."""
    digest = ""
    if with_digest:
        from lasskit.provenance import file_digest

        digest = file_digest(path)
    x = audio.load(path)
    return ClipActivity(len(x), frame_activity(x, silence_db), digest)


# --- the activity cache: one file per corpus folder, kept in a cache folder ---------------------------

ACTIVITY_CACHE = ".cache"
"""``lasskit mix`` keeps its activity cache in ``<split folder>/../.cache`` (``data/splits/.cache``)."""


class ActivityCache:
    """Activity and file digests of clips, kept across runs in ``folder`` (None: in memory only).

    One JSON file per corpus folder (``activity-<hash of its path>.json``): clip path ->
    (size, mtime_ns, inode, digest, samples, active frames per threshold); an entry is used only
    while the file's size, mtime and inode are unchanged. Nothing is written into the corpus
    folders (they are inputs). A damaged or unwritable cache only costs a new scan
    (:attr:`unsaved` counts files it could not write).
    """

    def __init__(self, silence_db: float, folder: str | os.PathLike | None = None):
        self.level = repr(float(silence_db))
        self.folder = Path(folder) if folder is not None else None
        self.files: dict[str, dict] = {}  # corpus folder -> {"corpus", "clips": {...}}
        self.dirty: set[str] = set()
        self.unsaved = 0

    def _path(self, corpus: str) -> Path | None:
        from lasskit.provenance import digest_bytes

        return None if self.folder is None else self.folder / f"activity-{digest_bytes(corpus.encode())[:16]}.json"

    def _file_for(self, c: Candidate) -> tuple[str, str]:
        root = str(Path(c.manifest).parent if c.manifest else c.path.parent)
        if root not in self.files:
            data = {}
            path = self._path(root)
            if path is not None:
                try:
                    data = json.loads(path.read_text(encoding="utf-8"))
                    if not isinstance(data, dict) or data.get("version") != 1 or data.get("corpus") != root \
                            or not isinstance(data.get("clips"), dict):
                        data = {}
                except (OSError, ValueError):
                    data = {}
            self.files[root] = data or {"version": 1, "corpus": root, "clips": {}}
        try:
            rel = str(c.path.relative_to(root))
        except ValueError:
            rel = str(c.path)
        return root, rel

    def get(self, c: Candidate) -> ClipActivity | None:
        root, rel = self._file_for(c)
        hit = self.files[root]["clips"].get(rel)
        if not hit:
            return None
        try:
            st = os.stat(c.path)
        except OSError:
            return None
        if hit.get("stat") != [st.st_size, st.st_mtime_ns, st.st_ino]:
            return None
        bits = hit.get("active", {}).get(self.level)
        if bits is None:
            return None
        frames = int(hit["frames"])
        active = np.unpackbits(np.frombuffer(bytes.fromhex(bits), dtype=np.uint8), count=frames).astype(bool)
        return ClipActivity(int(hit["samples"]), active, str(hit.get("digest", "")))

    def put(self, c: Candidate, a: ClipActivity, st) -> None:
        root, rel = self._file_for(c)
        stat = [st.st_size, st.st_mtime_ns, st.st_ino]
        clips = self.files[root]["clips"]
        old = clips.get(rel)
        entry = old if old and old.get("stat") == stat and old.get("digest") == a.digest else \
            {"stat": stat, "digest": a.digest, "samples": a.num_samples, "frames": len(a.active), "active": {}}
        entry["active"][self.level] = np.packbits(a.active).tobytes().hex()
        clips[rel] = entry
        self.dirty.add(root)

    def save(self) -> None:
        from lasskit.atomic import remove_leftovers, write_text

        if self.folder is not None and self.dirty:
            remove_leftovers(self.folder, recursive=False)
        for root in sorted(self.dirty):
            path = self._path(root)
            if path is None:
                continue
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                write_text(path, json.dumps(self.files[root], separators=(",", ":"), sort_keys=True))
            except OSError:
                self.unsaved += 1
        self.dirty.clear()


def _scan_one(path: str, silence_db: float) -> tuple[ClipActivity, list[int]]:
    st = os.stat(path)
    a = analyse_clip(path, silence_db, with_digest=True)
    st2 = os.stat(path)
    if (st.st_size, st.st_mtime_ns) != (st2.st_size, st2.st_mtime_ns):
        raise AudioError(f"{path}: changed while it was read; run the command again")
    return a, [st.st_size, st.st_mtime_ns, st.st_ino]


def scan_clips(clips: Sequence[Candidate], silence_db: float, jobs: int | None = None,
               cache: ActivityCache | None = None) -> dict[str, ClipActivity | str]:
    """Activity (and file digest) of every clip: from ``cache`` where current, else decoded.

    Returns clip key -> :class:`ClipActivity`, or the error message of an unreadable clip.
    """
    from functools import partial

    from lasskit.parallel import run_parallel

    out: dict[str, ClipActivity | str] = {}
    todo: list[Candidate] = []
    for c in clips:
        hit = cache.get(c) if cache is not None else None
        if hit is not None:
            out[c.key] = hit
        else:
            todo.append(c)
    if todo:
        outcomes = run_parallel(partial(_scan_one, silence_db=silence_db), [str(c.path) for c in todo],
                                jobs if len(todo) >= 32 else 1, desc="mix: scan clips")
        for c, o in zip(todo, outcomes):
            if not o.ok:
                out[c.key] = o.error
                continue
            a, st = o.value
            out[c.key] = a
            if cache is not None:
                cache.put(c, a, _Stat(*st))
    if cache is not None:
        cache.save()
    return out


class _Stat:
    """The three stat fields the cache keys on."""

    def __init__(self, size: int, mtime_ns: int, ino: int):
        self.st_size, self.st_mtime_ns, self.st_ino = size, mtime_ns, ino


def apply_activity(planner: Planner, found: dict[str, ClipActivity | str], skipped: Counter) -> list[tuple[str, str]]:
    """Give the planner the scanned activity and leave out unusable clips, each counted by reason.

    Reasons: ``unreadable audio`` (also returned as failures: (file, error)), ``silent clip``
    (no active frame in any window), ``target with less than --min-active active`` (a target whose
    best window holds fewer active frames than the floor; it may still serve as a noise).
    """
    failures: list[tuple[str, str]] = []
    why: dict[str, str] = {}
    noise_keys = {n.key for n in planner.noises}
    target_keys = {t.key for t in planner.targets}
    low_targets: set[str] = set()
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
        elif c.key in target_keys and not len(planner.offsets(a.active, a.num_samples, target=True)):
            low_targets.add(c.key)
    if low_targets:
        skipped["target with less than --min-active active"] += len(low_targets)
        keep_as_noise = low_targets & noise_keys
        planner.targets = [t for t in planner.targets if t.key not in low_targets]
        for k in low_targets - keep_as_noise:
            why[k] = "little active"
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
        if bad:
            why.update(bad)
            planner.exclude(bad)
    for r in rows:
        ta, na = planner.activity[r.target.key], planner.activity[r.noise.key]
        r.target_offset = planner.draw_offset(r.rng, ta.active, ta.num_samples, target=True)
        r.noise_offset = planner.draw_offset(r.rng, na.active, na.num_samples)
        if r.target_offset is None or r.noise_offset is None:  # pragma: no cover - excluded above
            raise WorkError(f"{r.target.path}: no usable window (a bug; please report it)")
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
    ref_paths = [Path(p).resolve() for p in reference if Path(p).resolve() not in set(target_paths) | set(noise_paths)]
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
