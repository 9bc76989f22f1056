"""``lasskit corpora``: one table of every prepared corpus of a workspace.

Per corpus: clips, hours, the share of clips with class labels and where they came from
(``given`` by the corpus, derived from ``keywords`` or ``caption``, ``clap``), the clips it shares
a recording with each other corpus (:mod:`lasskit.identity`: Freesound id, YouTube video or
samples), and the clips left out by each rule: at prepare (``excluded.csv``: WavCaps blacklists,
YouTube clips not fetched; ``failures.csv``: unreadable files) and, for ``mix``/``train``, the
training clips that are a recording of a val/eval split of some prepared corpus (left out there).
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

HELD_OUT = frozenset({"val", "valid", "validation", "eval", "evaluation", "test"})


@dataclass
class CorpusSummary:
    """One prepared corpus (see the module doc)."""

    name: str
    clips: int = 0
    hours: float = 0.0
    splits: dict[str, int] = field(default_factory=dict)
    labelled: int = 0
    label_sources: dict[str, int] = field(default_factory=dict)
    overlap: dict[str, int] = field(default_factory=dict)  # other corpus -> clips of this one sharing a recording
    excluded: dict[str, int] = field(default_factory=dict)  # rule -> clips

    @property
    def labelled_share(self) -> float:
        return self.labelled / self.clips if self.clips else 0.0

    def as_dict(self) -> dict:
        return {"corpus": self.name, "clips": self.clips, "hours": round(self.hours, 4), "splits": self.splits,
                "labelled": self.labelled, "labelled_share": round(self.labelled_share, 4),
                "label_sources": self.label_sources, "overlap": self.overlap, "excluded": self.excluded}


def _failures(corpus_dir: Path) -> int:
    path = corpus_dir / "failures.csv"
    if not path.is_file():
        return 0
    from lasskit.csvfile import open_csv

    with open_csv(path) as fh:
        return max(0, sum(1 for _ in csv.reader(fh)) - 1)


def summarize_corpora(workspace) -> list[CorpusSummary]:
    """A :class:`CorpusSummary` of every prepared corpus of ``workspace``, in name order."""
    from lasskit.corpora.youtube import read_excluded
    from lasskit.identity import clip_identities
    from lasskit.manifest import read_manifest

    summaries: list[CorpusSummary] = []
    owners: dict[str, set[str]] = {}  # identity -> corpora holding it
    held_out: set[str] = set()  # identities of every val/eval clip
    identities: dict[str, list[tuple[tuple[str, ...], bool]]] = {}
    for name in workspace.corpora():
        manifest = read_manifest(workspace.manifest_path(name))
        s = CorpusSummary(name, clips=len(manifest.clips))
        s.hours = sum(c.duration for c in manifest.clips) / 3600
        s.splits = dict(sorted(Counter(c.split or "-" for c in manifest.clips).items()))
        s.labelled = sum(1 for c in manifest.clips if c.labels)
        s.label_sources = dict(sorted(Counter((c.label_source or "given") if c.labels else "none"
                                              for c in manifest.clips).items()))
        rows = []
        for c in manifest.clips:
            ids = clip_identities(c)
            out = c.split.lower() in HELD_OUT or c.dataset.lower().startswith("dcase")
            rows.append((ids, out))
            for i in ids:
                owners.setdefault(i, set()).add(name)
                if out:
                    held_out.add(i)
        identities[name] = rows
        corpus_dir = manifest.path.parent
        for _, rule in read_excluded(corpus_dir):
            key = f"prepare: {rule}"
            s.excluded[key] = s.excluded.get(key, 0) + 1
        failed = _failures(corpus_dir)
        if failed:
            s.excluded["prepare: unreadable file"] = failed
        summaries.append(s)
    for s in summaries:
        overlap: Counter = Counter()
        reused = 0
        for ids, out in identities[s.name]:
            others = set().union(*(owners[i] for i in ids)) - {s.name} if ids else set()
            for other in others:
                overlap[other] += 1
            if not out and any(i in held_out for i in ids):
                reused += 1
        s.overlap = dict(sorted(overlap.items()))
        if reused:
            s.excluded["mix/train: recording of a val/eval clip"] = reused
        s.excluded = dict(sorted(s.excluded.items()))
    return summaries
