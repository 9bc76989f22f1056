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
- derivation speed (clips per second);
- on ``benchmarks/data/tricky_captions.csv`` (written for lasskit, 121 captions: negation,
  imitation, comparison, homonyms, genre names that are everyday words, video-game and
  synthetic sounds, plain controls; each with the classes expected and the classes that would
  be wrong): precision and recall of the derived classes (both compared by
  :meth:`ConflictCheck.class_set`, ancestors included), false alarms (captions given a class
  listed as wrong) and captions given any class outside the expected ones, per kind of caption.

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
TRICKY = REPO / "benchmarks" / "data" / "tricky_captions.csv"
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

    from lasskit.labels import scope

    scope.read.cache_clear()  # time the derivation itself, not a warm cache
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


def evaluate_tricky(path: Path = TRICKY, ontology: Path = ONTOLOGY) -> dict:
    """Precision, recall and false alarms of derived labels on the tricky captions (see the module)."""
    from lasskit.labels import ConflictCheck, Labeler, Vocabulary
    from lasskit.ontology import normalize_label

    vocabulary = Vocabulary.load(ontology=ontology)
    labeler, check = Labeler(vocabulary), ConflictCheck(vocabulary)
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    kinds: dict[str, dict] = {}
    for row in rows:
        derived = check.class_set(labeler.derive((), [row["caption"]])[0])
        expected = check.class_set([n for n in row["expected"].split(";") if n])
        forbidden = {normalize_label(n) for n in row["forbidden"].split(";") if n}
        for kind in (row["kind"], "all"):
            k = kinds.setdefault(kind, {"captions": 0, "tp": 0, "derived": 0, "expected": 0,
                                        "false_alarms": 0, "other_class": 0})
            k["captions"] += 1
            k["tp"] += len(derived & expected)
            k["derived"] += len(derived)
            k["expected"] += len(expected)
            k["false_alarms"] += bool(derived & forbidden)
            k["other_class"] += bool(derived - expected)
    for k in kinds.values():
        k["precision"] = k["tp"] / k["derived"] if k["derived"] else 1.0
        k["recall"] = k["tp"] / k["expected"] if k["expected"] else 1.0
    return kinds


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
    if TRICKY.is_file():
        kinds = evaluate_tricky()
        print(f"tricky captions ({TRICKY.relative_to(REPO)}, one caption each): kind, captions, precision, "
              "recall, false alarms (a class listed as wrong), captions given a class not expected")
        for kind in sorted(kinds, key=lambda k: (k == "all", k)):
            k = kinds[kind]
            print(f"  {kind:<11}{k['captions']:>4}  precision {100 * k['precision']:5.1f} %  recall "
                  f"{100 * k['recall']:5.1f} %  false alarms {k['false_alarms']:>3}  other class {k['other_class']:>3}")
    print(f"floor: recall >= {100 * RECALL_FLOOR:.0f} %, false alarms <= {100 * FALSE_ALARM_CEILING:.0f} % "
          "(3 captions); aim 80 % and 5 %")
    if three["recall"] < RECALL_FLOOR or three["false_alarms"] > FALSE_ALARM_CEILING:
        print("FLOOR MISSED")
        sys.exit(1)


if __name__ == "__main__":
    main()
