"""Benchmark derived labels: the class-conflict check on the challenge's validation metadata.

``../shared/dcase2024_metadata/lass_validation.json`` has, for 1000 clips, verified tags and
three captions; ``lass_synthetic_validation.csv`` has the 3000 official (source, noise) pairs,
which share no tag. Labels are derived from the captions alone (AudioSet ``ontology.json`` from
``../shared/audioset``) and compared with :class:`lasskit.labels.ConflictCheck`, the predicate
``mix`` uses. Reported:

- recall: of the clip pairs whose verified tags intersect (lower-cased, trimmed), the share the
  derived labels also call sharing;
- false alarms: of the 3000 official pairs, the share the derived labels call sharing;
- the same with one caption a clip (the first), as a one-caption corpus would have it;
- derivation speed (clips per second).

Floor (issue 13): recall >= 65 % and false alarms <= 10 %; aim 80 % and 5 %. Exits 0 without
touching anything when ../shared is absent (a user's clone).
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LASSKIT_SHARED", REPO.parent / "shared"))
METADATA = SHARED / "dcase2024_metadata"
ONTOLOGY = SHARED / "audioset" / "ontology.json"
RECALL_FLOOR, FALSE_ALARM_CEILING = 0.65, 0.10


def evaluate(metadata_dir: Path = METADATA, ontology: Path = ONTOLOGY, captions: int = 3) -> dict:
    """Recall and false-alarm rate of the conflict check on derived labels (see the module)."""
    import numpy as np

    from lasskit.labels import ConflictCheck, Labeler, Vocabulary
    from lasskit.ontology import normalize_label

    items = json.loads((metadata_dir / "lass_validation.json").read_text(encoding="utf-8"))
    with open(metadata_dir / "lass_synthetic_validation.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))[1:]
    index = {item["Index"]: i for i, item in enumerate(items)}
    official = np.array([(index[r[0].strip()], index[r[1].strip()]) for r in rows])

    start = time.perf_counter()
    vocabulary = Vocabulary.load(ontology=ontology)
    labeler, check = Labeler(vocabulary), ConflictCheck(vocabulary)
    ready = time.perf_counter()
    labels = [labeler.derive((), item["Captions"][:captions])[0] for item in items]
    derive_s = time.perf_counter() - ready
    sets = [check.class_set(x) for x in labels]
    tags = [frozenset(normalize_label(t) for t in item["Tags"]) for item in items]

    n = len(items)
    names = sorted({c for s in sets for c in s} | {t for s in tags for t in s})
    col = {c: j for j, c in enumerate(names)}

    def incidence(groups):
        m = np.zeros((n, len(names)), dtype=np.float32)
        for i, g in enumerate(groups):
            m[i, [col[c] for c in g]] = 1
        return m

    t, s = incidence(tags), incidence(sets)
    shares_tag = (t @ t.T) > 0
    called = (s @ s.T) > 0
    upper = np.triu(np.ones((n, n), dtype=bool), 1)
    positives = shares_tag & upper
    return {
        "clips": n, "pairs_sharing_a_tag": int(positives.sum()), "official_pairs": len(official),
        "recall": float(called[positives].mean()),
        "false_alarms": float(called[official[:, 0], official[:, 1]].mean()),
        "unlabeled": sum(1 for x in labels if not x),
        "clips_per_second": n / derive_s if derive_s > 0 else float("inf"),
        "load_seconds": ready - start,
    }


def main() -> None:
    if not (METADATA / "lass_validation.json").is_file() or not ONTOLOGY.is_file():
        print(f"skipped: no official metadata or ontology under {SHARED} (../shared is absent in a user's clone)")
        return
    three = evaluate(captions=3)
    one = evaluate(captions=1)
    print(f"validation metadata: {three['clips']} clips, {three['pairs_sharing_a_tag']} pairs sharing a verified "
          f"tag, {three['official_pairs']} official pairs")
    for what, r in (("3 captions", three), ("1 caption ", one)):
        print(f"{what}: recall {100 * r['recall']:.1f} %  false alarms {100 * r['false_alarms']:.1f} %  "
              f"unlabeled {r['unlabeled']}  {r['clips_per_second']:.0f} clips/s (vocabulary load "
              f"{r['load_seconds']:.2f} s)")
    print(f"floor: recall >= {100 * RECALL_FLOOR:.0f} %, false alarms <= {100 * FALSE_ALARM_CEILING:.0f} % "
          "(3 captions); aim 80 % and 5 %")
    if three["recall"] < RECALL_FLOOR or three["false_alarms"] > FALSE_ALARM_CEILING:
        print("FLOOR MISSED")
        sys.exit(1)


if __name__ == "__main__":
    main()
