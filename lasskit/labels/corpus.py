"""Labels for a prepared corpus: derive them for the clips that have none, in the manifest.

:func:`label_clips` works on :class:`~lasskit.manifest.Clip` s (or the recipes' clip jobs, before
converting: ``prepare clotho`` and ``prepare folder``); :func:`label_manifest` reads a manifest,
applies it and writes the manifest back (atomically, only if something changed): ``lasskit
label``, which touches no audio.

Which clips are (re)labelled, by ``label_source``:

- ``given`` (or empty with labels present, as older manifests have it): kept as they are;
- ``clap``: kept (zero-shot audio tagging, :mod:`lasskit.labels.clap`);
- ``keywords``, ``caption``, or empty without labels: derived again from keywords and captions
  (so a better vocabulary or ontology takes effect), and left empty when nothing is named.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from lasskit.labels.derive import Labeler
from lasskit.labels.vocabulary import Vocabulary
from lasskit.manifest import read_manifest, write_manifest

DERIVED_SOURCES = ("keywords", "caption")
KEPT_SOURCES = ("given", "clap")


@dataclass
class LabelReport:
    """What labelling one corpus came to."""

    path: Path
    clips: int = 0
    given: int = 0
    kept_other: int = 0  # e.g. clap
    derived: dict[str, int] = field(default_factory=dict)  # label_source -> clips
    unlabeled: int = 0
    vocabulary: str = ""
    written: bool = False

    def notes(self) -> list[str]:
        """One line for the summary."""
        parts = [f"{self.given} given"]
        parts += [f"{n} from {source}" for source, n in sorted(self.derived.items())]
        if self.kept_other:
            parts.append(f"{self.kept_other} other (kept)")
        parts.append(f"{self.unlabeled} without labels")
        return [f"labels: {', '.join(parts)} (vocabulary: {self.vocabulary})"]


def load_labeler(vocabulary: str | os.PathLike | None = None,
                 ontology: str | os.PathLike | None = None) -> Labeler:
    """A :class:`Labeler` on FSD50K's ``vocabulary.csv`` and/or AudioSet's ``ontology.json``."""
    return Labeler(Vocabulary.load(vocabulary, ontology))


def label_clips(clips: list, labeler: Labeler | None, extras: dict[str, dict] | None = None,
                report: LabelReport | None = None) -> LabelReport:
    """Set ``keywords``/``freesound_id``/``license``/``label_source`` from ``extras`` (by clip id),
    then derive labels for the clips without given ones, in place, and count them.

    ``clips`` are :class:`~lasskit.manifest.Clip` s or the recipes' ``ClipJob`` s (same fields).
    Without a ``labeler`` only the extras are applied and given labels marked ``given``.
    """
    report = report or LabelReport(path=Path())
    report.vocabulary = labeler.vocabulary.source if labeler is not None else "none"
    for clip in clips:
        for name, value in (extras or {}).get(clip.id, {}).items():
            setattr(clip, name, value)
        report.clips += 1
        source = clip.label_source
        if source == "given" or (not source and clip.labels):
            clip.label_source = "given"
            report.given += 1
            continue
        if source in KEPT_SOURCES or (source and source not in DERIVED_SOURCES):
            report.kept_other += 1
            continue
        if labeler is None:
            report.unlabeled += not clip.labels
            continue
        labels, source = labeler.derive(clip.keywords, clip.captions)
        clip.labels, clip.label_source = labels, source
        if labels:
            report.derived[source] = report.derived.get(source, 0) + 1
        else:
            report.unlabeled += 1
    return report


def count_labels(clips: list, vocabulary: str = "none") -> LabelReport:
    """A :class:`LabelReport` of clips as they are (no labelling): given, derived by source, other
    kept sources, without labels. For the summary of the clips that reached the manifest (a clip
    whose audio failed to convert is not counted)."""
    report = LabelReport(path=Path(), vocabulary=vocabulary)
    for clip in clips:
        report.clips += 1
        source = clip.label_source
        if not clip.labels:
            report.unlabeled += 1
        elif source == "given" or not source:
            report.given += 1
        elif source in DERIVED_SOURCES:
            report.derived[source] = report.derived.get(source, 0) + 1
        else:
            report.kept_other += 1
    return report


def label_manifest(path: str | os.PathLike, labeler: Labeler | None,
                   extras: dict[str, dict] | None = None) -> LabelReport:
    """Label the clips of the manifest at ``path`` (see :func:`label_clips`) and write it back
    (only if something changed)."""
    manifest = read_manifest(path)
    report = label_clips(manifest.clips, labeler, extras, LabelReport(path=Path(path)))
    report.written = write_manifest(path, manifest.clips)
    return report

def find_vocabulary(fsd50k_root: str | os.PathLike | None) -> Path | None:
    """FSD50K's ``vocabulary.csv`` in a raw FSD50K download, if there is one."""
    if not fsd50k_root:
        return None
    root = Path(fsd50k_root)
    for candidate in (root / "FSD50K.ground_truth" / "vocabulary.csv", root / "vocabulary.csv"):
        if candidate.is_file():
            return candidate
    return None


def resolve_labeler(vocabulary: str | os.PathLike | None = None, ontology: str | os.PathLike | None = None,
                    fsd50k_root: str | os.PathLike | None = None) -> Labeler | None:
    """The labeler for ``prepare``: on ``vocabulary`` and/or ``ontology``; without either, on the
    ``vocabulary.csv`` of the FSD50K download at ``fsd50k_root`` if found; else None."""
    if vocabulary is None and ontology is None:
        vocabulary = find_vocabulary(fsd50k_root)
        if vocabulary is None:
            return None
    return load_labeler(vocabulary, ontology)
