"""The candidate pool of ``mix`` and ``train``: every clip of the manifests (:class:`Candidate`)
with its labels and identities (audio file, Freesound id, content digest), and the challenge's
data rules that decide which clips a set may use (:func:`select_pool`, :func:`eligible`).

**Data rules** (DCASE 2024 Task 9 forbids training on its validation and evaluation audio):

- a clip is *held out* when its split is one of :data:`HELD_OUT_SPLITS` (``val``, ``eval``, ...)
  or its dataset is one of the challenge's own sets (name starting with ``dcase``, e.g.
  ``dcase2024_val``);
- held-out clips are used only when asked for by name: their split listed in ``splits``
  (``--split val``), or, for the challenge's own corpora, the corpus named explicitly
  (``lasskit mix dcase2024_val ...``); otherwise they are left out and counted per corpus/split;
- a clip that is not held out but is the same recording as a challenge clip (same Freesound id,
  or the same decoded samples: the manifest's ``digest``) is left out and counted;
- likewise a clip that is the same recording as a held-out clip of *any* prepared corpus (the
  workspace's manifests are the reference: e.g. WavCaps' copy of a Clotho evaluation clip, or
  Auto-ACD's copy of an AudioCaps test segment) is left out and counted apart;
- what makes two clips the same recording (:attr:`Candidate.identities`): the audio file, the
  Freesound id (Clotho's metadata, FSD50K, WavCaps' FreeSound, the challenge's names), the YouTube
  video (AudioSet, AudioCaps, Auto-ACD, VGGSound, WavCaps' AudioSet_SL: one recording per video) or
  the decoded samples' digest; two clips of one mixture never share any of them;
- a clip whose Freesound id lies inside the range the challenge's validation ids span is counted
  and warned about: the rules also forbid audio uploaded to Freesound between April and October
  2023, the window the validation clips were sampled from, and ids grow with upload time (an
  approximation: the range is not the window).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lasskit.errors import UsageError
from lasskit.identity import (  # noqa: F401 - re-exported: their old home
    CHALLENGE_PREFIX,
    freesound_id_of,
    is_challenge_dataset,
    recording_identities,
)
from lasskit.mixing.spec import MixSpec

HELD_OUT_SPLITS = frozenset({"val", "valid", "validation", "eval", "evaluation", "test"})
"""Manifest splits that hold validation or evaluation data: used only when ``splits`` names them."""
DERIVED_SOURCES = frozenset({"keywords", "caption", "clap"})
"""``label_source`` values of labels lasskit derived (not given by the corpus)."""


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
    youtube_id: str = ""  # the YouTube video of an AudioSet-derived clip (manifest), where known

    @property
    def held_out(self) -> bool:
        """Validation or evaluation data (see the module doc)."""
        return self.split.lower() in HELD_OUT_SPLITS or is_challenge_dataset(self.dataset)

    @property
    def derived_labels(self) -> bool:
        return bool(self.labels) and self.label_source in DERIVED_SOURCES

    @property
    def identities(self) -> tuple[str, ...]:
        """What makes two clips the same recording: the file, the Freesound id, the YouTube video,
        the samples."""
        return (self.key, *recording_identities(self.freesound_id, self.youtube_id, self.digest))

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
    """The workspace's prepared corpora whose recordings a training set must not reuse: every
    prepared corpus (its challenge clips and its held-out val/eval clips are the reference, see
    :func:`reference_ids`), the challenge's own sets first."""
    return [*_challenge_only(workspace), *sorted(set(held_out_manifests(workspace)) - set(_challenge_only(workspace)))]


def held_out_manifests(workspace) -> list[Path]:
    """Every prepared corpus's manifest (resolved), in name order."""
    out = []
    for name in workspace.corpora():
        path = workspace.manifest_path(name)
        if path.is_file():
            out.append(path.resolve())
    return out


def _challenge_only(workspace) -> list[Path]:
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
    resolve = _Resolver()
    for mpath in manifests:
        manifest = read_manifest(mpath)
        for clip in manifest.clips:
            if keep_splits and clip.split not in keep_splits:
                continue
            if keep_datasets and clip.dataset not in keep_datasets:
                continue
            path = resolve(manifest.audio_path(clip))
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
                youtube_id=getattr(clip, "youtube_id", "") or "",
            ))
    return out

@dataclass
class Reference:
    """The recordings training sets must not reuse, from manifests given as a reference: the
    challenge's clips (Freesound ids, digests; ``val_ids`` the validation clips' Freesound ids as
    ints) and every other held-out clip (``held_out``: identities ``fs:``/``yt:``/``dg:``)."""

    freesound: set[str] = field(default_factory=set)
    digests: set[str] = field(default_factory=set)
    val_ids: list[int] = field(default_factory=list)
    held_out: set[str] = field(default_factory=set)

    def __iter__(self):  # the (ids, digests, val_ids) triple of earlier versions
        return iter((self.freesound, self.digests, self.val_ids))

    def add(self, c) -> None:
        """Add a clip (a :class:`Candidate` or a manifest clip with its Freesound id resolved)."""
        fid, digest = c.freesound_id, c.digest
        if is_challenge_dataset(c.dataset):
            if fid:
                self.freesound.add(fid)
                if c.split.lower() in ("val", "valid", "validation") and fid.isdigit():
                    self.val_ids.append(int(fid))
            if digest:
                self.digests.add(digest)
        elif c.split.lower() in HELD_OUT_SPLITS:
            for ident in recording_identities(fid, getattr(c, "youtube_id", "") or "", digest):
                self.held_out.add(ident)


class _Resolver:
    """``Path.resolve()`` (non-strict) of many files in few folders: each folder's real path is
    found once, then only a file that is itself a link is followed (one ``lstat`` a file instead
    of one a path component; 400k candidates load in a third less time)."""

    def __init__(self) -> None:
        self.folders: dict[str, str] = {}

    def __call__(self, path: Path) -> Path:
        folder, name = os.path.split(os.fspath(path))
        folder = folder or "."
        real = self.folders.get(folder)
        if real is None:
            real = self.folders[folder] = os.path.realpath(folder)
        full = os.path.join(real, name)
        if name in ("", ".", "..") or os.path.islink(full):
            full = os.path.realpath(full)
        return Path(full)


def reference_ids(manifests: Sequence[str | os.PathLike]) -> Reference:
    """The challenge's clips and every held-out clip in ``manifests`` (:class:`Reference`; it
    unpacks as the ``(Freesound ids, digests, validation ids)`` of the challenge's clips).

    Only the columns it needs are read (no JSON cells parsed): every prepared corpus is a
    reference, WavCaps' 400k rows included; a manifest it cannot read that way is read by
    :func:`lasskit.manifest.read_manifest`, which names what is wrong with it."""
    import csv
    from types import SimpleNamespace

    from lasskit.csvfile import open_csv
    from lasskit.manifest import read_manifest

    ref = Reference()
    for mpath in manifests:
        try:
            with open_csv(mpath) as fh:
                reader = csv.DictReader(fh)
                if not {"id", "dataset", "split"} <= set(reader.fieldnames or []):
                    raise ValueError("not a manifest")
                rows = [SimpleNamespace(id=r["id"], dataset=r["dataset"] or "", split=r["split"] or "",
                                        freesound_id=r.get("freesound_id") or "", digest=r.get("digest") or "",
                                        youtube_id=r.get("youtube_id") or "")
                        for r in reader
                        if is_challenge_dataset(r["dataset"] or "") or (r["split"] or "").lower() in HELD_OUT_SPLITS]
        except (OSError, UnicodeDecodeError, csv.Error, ValueError, TypeError, AttributeError):
            rows = [c for c in read_manifest(mpath).clips
                    if is_challenge_dataset(c.dataset) or c.split.lower() in HELD_OUT_SPLITS]
        for clip in rows:
            clip.freesound_id = freesound_id_of(clip)
            ref.add(clip)
    return ref


@dataclass
class PoolReport:
    """What the data rules did: clips used per corpus/split, held-out clips left out, ids dropped."""

    used: dict[str, dict[str, int]] = field(default_factory=dict)  # corpus -> split -> clips kept
    held_out: dict[str, int] = field(default_factory=dict)  # "corpus/split" -> clips left out
    held_out_used: dict[str, int] = field(default_factory=dict)  # "corpus/split" -> held-out clips used (asked for)
    challenge_recordings: int = 0  # training clips that are a challenge recording (id or samples)
    held_out_recordings: int = 0  # training clips that are a held-out recording of a prepared corpus
    upload_window: int = 0  # kept clips whose Freesound id lies in the validation ids' range
    upload_range: tuple[int, int] | None = None

    def as_dict(self) -> dict:
        return {
            "used": self.used, "held_out_left_out": self.held_out, "held_out_used": self.held_out_used,
            "challenge_recordings_dropped": self.challenge_recordings,
            "held_out_recordings_dropped": self.held_out_recordings,
            "in_validation_id_range": self.upload_window,
            "validation_id_range": list(self.upload_range) if self.upload_range else None,
        }


def select_pool(
    pool: list[Candidate],
    splits: Sequence[str] = (),
    named: Iterable[str] | None = None,
    reference: Reference | tuple[set[str], set[str], list[int]] | None = None,
    skipped: Counter | None = None,
    report: PoolReport | None = None,
) -> list[Candidate]:
    """The clips of ``pool`` the data rules allow (module doc); the others counted in ``skipped``.

    ``named``: manifests (as given to :func:`load_candidates`) the user named explicitly (None:
    all of them). ``reference``: the challenge's clips and the held-out clips of other manifests
    (:func:`reference_ids`; or the older ``(Freesound ids, digests, validation ids)`` triple),
    merged with those found in ``pool``.
    """
    skipped = skipped if skipped is not None else Counter()
    report = report if report is not None else PoolReport()
    named_set = None if named is None else {str(Path(p)) for p in named}
    ref = Reference()
    if isinstance(reference, Reference):
        ref.freesound, ref.digests = set(reference.freesound), set(reference.digests)
        ref.val_ids, ref.held_out = list(reference.val_ids), set(reference.held_out)
    elif reference is not None:
        ref.freesound, ref.digests, ref.val_ids = set(reference[0]), set(reference[1]), list(reference[2])
    for c in pool:
        if c.held_out:
            ref.add(c)
    ids, digests, val_ids = ref.freesound, ref.digests, ref.val_ids
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
        elif ref.held_out and any(i in ref.held_out for i in c.identities[1:]):
            skipped["same recording as a val/eval clip of a prepared corpus"] += 1
            report.held_out_recordings += 1
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
