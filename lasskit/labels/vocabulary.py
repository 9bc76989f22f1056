"""The class vocabulary labels are derived onto: names, the phrases that name them, hierarchy.

Two sources, read from the user's own files (neither is shipped with lasskit):

- FSD50K's ``vocabulary.csv`` (``FSD50K.ground_truth/vocabulary.csv``): rows ``index,name,mid``
  without a header, names with ``_`` for spaces and ``_and_`` where AudioSet has a comma
  (``Walk_and_footsteps``). No hierarchy.
- AudioSet's ``ontology.json``: a list of ``{"id", "name", "child_ids", "restrictions"}``; 632
  names with their parents. A class's phrases come from its name split at ``", "``
  (``Walk, footsteps`` -> "walk", "footsteps").

With both, the ontology's names and hierarchy are used and the FSD50K names (matched by ``mid``,
else by name) are kept as the spelling of the label written, so derived labels compare equal to
FSD50K's given ones. Label comparison goes through :func:`lasskit.ontology.normalize_label` everywhere.

Phrases from a name: a parenthesised qualifier is dropped (``Motor vehicle (road)`` -> "motor
vehicle"), unless it lists synonyms with commas (``Roaring cats (lions, tigers)`` -> "lions",
"tigers" too); a qualified phrase yields to an unqualified class of the same phrase (compared as
words are, see :mod:`lasskit.labels.words`: ``Howl (wind)`` gives "howl" to ``Howl``; it is still named by "wind howl"). A leading "and " is
dropped (``Dishes, pots, and pans``).
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from lasskit.errors import UsageError
from lasskit.ontology import (
    normalize_label,
    read_ontology,
)

_PAREN = re.compile(r"\(([^)]*)\)")


@dataclass
class ClassInfo:
    """One class: ``name`` as written in labels, ``key`` its normalised form, ``parents`` (keys)."""

    name: str
    key: str
    phrases: list[str] = field(default_factory=list)
    qualified: list[str] = field(default_factory=list)  # phrases cut from a qualified name
    parents: set[str] = field(default_factory=set)
    restricted: bool = False  # AudioSet marks it "abstract" or "blacklist"
    blacklisted: bool = False  # AudioSet marks it "blacklist" (not used as a label there)


class Vocabulary:
    """Classes by normalised name, with the phrases that name them and (optionally) parents."""

    def __init__(self, classes: dict[str, ClassInfo], source: str, hierarchy: bool):
        self.classes = classes
        self.source = source
        self.hierarchy = hierarchy
        self._ancestors: dict[str, frozenset[str]] = {}

    def __contains__(self, label: str) -> bool:
        return normalize_label(label) in self.classes

    def __len__(self) -> int:
        return len(self.classes)

    def key(self, label: str) -> str | None:
        """The normalised name of ``label`` if it names a class (by name or by one of its phrases)."""
        norm = normalize_label(label)
        if norm in self.classes:
            return norm
        return self._by_phrase().get(norm)

    def _by_phrase(self) -> dict[str, str]:
        if not hasattr(self, "_phrase_index"):
            index: dict[str, str] = {}
            for key, info in sorted(self.classes.items()):
                for p in info.phrases:
                    index.setdefault(normalize_label(p), key)
            self._phrase_index = index
        return self._phrase_index

    def roots(self, key: str) -> frozenset[str]:
        """The top-level classes (no parent) above ``key``, or ``key`` itself when it is one."""
        chain = self.ancestors(key) | {key}
        return frozenset(k for k in chain if k in self.classes and not self.classes[k].parents)

    def ancestors(self, key: str) -> frozenset[str]:
        """Every ancestor of ``key`` (not ``key`` itself)."""
        hit = self._ancestors.get(key)
        if hit is None:
            seen: set[str] = set()
            todo = list(self.classes[key].parents) if key in self.classes else []
            while todo:
                k = todo.pop()
                if k not in seen:
                    seen.add(k)
                    todo.extend(self.classes[k].parents if k in self.classes else ())
            hit = self._ancestors[key] = frozenset(seen)
        return hit

    @classmethod
    def load(cls, vocabulary: str | os.PathLike | None = None,
             ontology: str | os.PathLike | None = None) -> Vocabulary:
        """From FSD50K's ``vocabulary.csv``, AudioSet's ``ontology.json``, or both (see the module)."""
        if vocabulary is None and ontology is None:
            raise UsageError("no class vocabulary: pass --vocabulary FSD50K.ground_truth/vocabulary.csv "
                             "or --ontology ontology.json")
        fsd = read_fsd50k_vocabulary(vocabulary) if vocabulary is not None else None
        if ontology is None:
            classes = {}
            for name, _mid in fsd:
                info = _class(name.replace("_", " "), fsd_names=True)
                classes.setdefault(info.key, info)
            return cls(_settle(classes), f"{vocabulary} ({len(classes)} classes)", hierarchy=False)
        entries = read_ontology(ontology)
        spelling = {mid: name.replace("_", " ") for name, mid in (fsd or []) if mid}
        by_name = {normalize_label(name): name.replace("_", " ") for name, _mid in (fsd or [])}
        classes, by_id = {}, {}
        for entry in entries:
            info = _class(entry["name"])
            info.restricted = bool(entry.get("restrictions"))
            info.blacklisted = "blacklist" in (entry.get("restrictions") or [])
            # keep the FSD50K spelling (by mid, else by name; compares equal when normalised)
            info.name = spelling.get(entry["id"]) or by_name.get(info.key) or info.name
            by_id[entry["id"]] = info.key
            if info.key in classes:  # AudioSet repeats no name, but guard: merge
                classes[info.key].phrases += [p for p in info.phrases if p not in classes[info.key].phrases]
            else:
                classes[info.key] = info
        for entry in entries:
            for child in entry.get("child_ids") or []:
                if child in by_id and by_id[child] != by_id[entry["id"]]:
                    classes[by_id[child]].parents.add(by_id[entry["id"]])
        what = f"{ontology} ({len(classes)} classes)" + (f" + {vocabulary}" if vocabulary else "")
        return cls(_settle(classes), what, hierarchy=True)


def read_fsd50k_vocabulary(path: str | os.PathLike) -> list[tuple[str, str]]:
    """``(name, mid)`` rows of FSD50K's ``vocabulary.csv`` (``index,name,mid``, no header)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such vocabulary file; pass FSD50K.ground_truth/vocabulary.csv to --vocabulary")
    rows = []
    try:
        from lasskit.csvfile import open_csv

        with open_csv(path) as fh:
            for i, row in enumerate(csv.reader(fh), start=1):
                if not row or not "".join(row).strip():
                    continue
                if len(row) < 2 or (i == 1 and not row[0].strip().isdigit()):
                    if i == 1 and len(row) >= 2:
                        continue  # a header line
                    raise UsageError(f"{path} line {i}: expected index,name,mid (FSD50K vocabulary.csv)")
                rows.append((row[1].strip(), row[2].strip() if len(row) > 2 else ""))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"{path}: unreadable vocabulary CSV ({exc})")
    if not rows:
        raise UsageError(f"{path}: empty vocabulary; expected index,name,mid rows (FSD50K vocabulary.csv)")
    return rows




def _class(name: str, fsd_names: bool = False) -> ClassInfo:
    name = " ".join(str(name).split())
    phrases, qualified = [], []
    base = name
    for inner in _PAREN.findall(name):
        if "," in inner:
            phrases += [p.strip() for p in inner.split(",") if p.strip()]
    if _PAREN.search(name):
        base = _PAREN.sub("", name).strip()
    parts = re.split(r" and " if fsd_names else r", ", base)
    for part in parts:
        part = re.sub(r"^and ", "", part.strip())
        if part:
            (qualified if base != name else phrases).append(part)
    if base != name:  # "Howl (wind)" is also named "wind howl"
        for inner in _PAREN.findall(name):
            if "," not in inner and len(inner.split()) == 1:
                phrases += [f"{inner} {q}" for q in qualified]
    return ClassInfo(name=name, key=normalize_label(name), phrases=phrases, qualified=qualified)


def _settle(classes: dict[str, ClassInfo]) -> dict[str, ClassInfo]:
    """Qualified phrases yield to unqualified classes of the same phrase."""
    from lasskit.labels.words import phrases

    def form(text: str) -> tuple[str, ...]:
        return tuple(w for run in phrases(text) for w in run)

    plain = {form(p) for info in classes.values() for p in info.phrases}
    for info in classes.values():
        info.phrases += [q for q in info.qualified if form(q) not in plain]
    return classes
