"""Sound-class labels: normalisation, AudioSet ontology expansion, and class-disjoint noise pools.

Two labels are the same class when their normalised forms are equal: lower-case, trimmed,
``_`` -> space, ``,`` -> `` and ``, whitespace collapsed. So FSD50K's ``Domestic_animals_and_pets``
(or ``Domestic animals and pets``) and AudioSet's ``Domestic animals, pets`` all read
``domestic animals and pets``.

With an ontology (AudioSet ``ontology.json``: a list of ``{"id", "name", "child_ids", ...}``),
each label is first expanded to itself and all its ancestors, by normalised name; two clips
share a class when their expanded sets intersect. "Dog" expands to {dog, domestic animals and
pets, animal}, so a dog clip never gets a "Domestic animals, pets" noise (nor, since both reach
"Animal", a bird noise: ancestor expansion is strict by design).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from lasskit.errors import UsageError

_COMMA = re.compile(r"\s*,\s*")
_SPACE = re.compile(r"\s+")


def normalize_label(label: str) -> str:
    """The comparison form of a label: ``" Domestic_animals, pets "`` -> ``"domestic animals and pets"``."""
    text = str(label).strip().lower().replace("_", " ")
    text = _COMMA.sub(" and ", text)
    return _SPACE.sub(" ", text).strip()


class Ontology:
    """Parent links between normalised class names, read from an AudioSet ``ontology.json``."""

    def __init__(self, parents: dict[str, set[str]], path: Path | None = None):
        self.parents = parents
        self.path = path
        self._cache: dict[str, frozenset[str]] = {}

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> "Ontology":
        """Read an AudioSet ``ontology.json``; names are normalised, child ids resolved to names."""
        data = read_ontology(path)
        names = {str(x["id"]): normalize_label(x["name"]) for x in data}
        parents: dict[str, set[str]] = {name: set() for name in names.values()}
        for x in data:
            for child in x.get("child_ids") or []:
                if str(child) in names:
                    parents[names[str(child)]].add(names[str(x["id"])])
        return cls(parents, path)

    def __contains__(self, label: str) -> bool:
        return normalize_label(label) in self.parents

    def ancestors(self, label: str) -> frozenset[str]:
        """The normalised label and every ancestor's normalised name (just the label if unknown)."""
        start = normalize_label(label)
        cached = self._cache.get(start)
        if cached is not None:
            return cached
        seen = {start}
        todo = [start]
        while todo:  # the ontology is a DAG (a class may have several parents); guard against cycles
            for parent in self.parents.get(todo.pop(), ()):
                if parent not in seen:
                    seen.add(parent)
                    todo.append(parent)
        result = frozenset(seen)
        self._cache[start] = result
        return result


def label_set(labels: Iterable[str], ontology: Ontology | None = None) -> frozenset[str]:
    """The set a clip's labels are compared by: normalised, ancestor-expanded with ``ontology``."""
    out: set[str] = set()
    for label in labels:
        norm = normalize_label(label)
        if not norm:
            continue
        out |= ontology.ancestors(norm) if ontology is not None else {norm}
    return frozenset(out)


def shares_class(a: frozenset[str], b: frozenset[str]) -> bool:
    """True when two label sets (from :func:`label_set`) have a class in common."""
    return not a.isdisjoint(b)


class NoisePool:
    """Which noises may go with which target: no shared class, and never the same recording.

    ``noise_sets[j]`` is noise ``j``'s label set; ``noise_keys[j]`` its identity: a string (the
    resolved audio path) or a tuple of strings (path, Freesound id, content digest, ...); two clips
    sharing any identity string are the same recording. :meth:`valid` returns, in pool order, the
    noises a target may be mixed with.
    """

    def __init__(self, noise_sets: Sequence[frozenset[str]], noise_keys: Sequence[str | tuple[str, ...]]):
        self.size = len(noise_sets)
        index: dict[str, list[int]] = {}
        for j, labels in enumerate(noise_sets):
            for label in labels:
                index.setdefault(label, []).append(j)
        self._by_label = {k: np.asarray(v, dtype=np.int64) for k, v in index.items()}
        self._by_key: dict[str, list[int]] = {}
        for j, key in enumerate(noise_keys):
            for k in ((key,) if isinstance(key, str) else key):
                self._by_key.setdefault(k, []).append(j)
        self._cache: dict[tuple[frozenset[str], str], np.ndarray] = {}
        self._cache_size = max(1, 4_000_000 // max(1, self.size))  # at most ~32 MB of positions

    def valid(self, labels: frozenset[str], key: str | tuple[str, ...], excluded: np.ndarray | None = None) -> np.ndarray:
        """Positions (sorted) of the noises sharing no class with ``labels`` nor an identity with ``key``.

        ``excluded`` is an optional boolean mask of noises to leave out (e.g. silent ones).
        """
        cache_key = (labels, key)
        base = self._cache.get(cache_key)
        if base is None:
            taken = np.zeros(self.size, dtype=bool)
            for label in labels:
                hit = self._by_label.get(label)
                if hit is not None:
                    taken[hit] = True
            for k in ((key,) if isinstance(key, str) else key):
                taken[self._by_key.get(k, [])] = True
            base = np.flatnonzero(~taken)
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[cache_key] = base
        if excluded is not None and len(base):
            base = base[~excluded[base]]
        return base


def caption_from_labels(labels: list[str]) -> str:
    """A plain caption for a labels-only clip: ``["Dog", "Bark"]`` -> "The sound of dog and bark."."""
    words = [label.replace("_", " ").strip().lower() for label in labels if label.strip()]
    if not words:
        return ""
    if len(words) == 1:
        body = words[0]
    else:
        body = ", ".join(words[:-1]) + " and " + words[-1]
    return f"The sound of {body}."


def read_ontology(path: str | os.PathLike) -> list[dict]:
    """The entries of an AudioSet ``ontology.json`` (checked: a list of objects with id and name)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such ontology file; pass AudioSet's ontology.json to --ontology")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: unreadable JSON ({exc}); pass AudioSet's ontology.json")
    if not isinstance(data, list) or not all(isinstance(x, dict) and "id" in x and "name" in x for x in data):
        raise UsageError(f"{path}: expected a JSON list of {{\"id\", \"name\", \"child_ids\"}} objects "
                         "(AudioSet ontology.json format)")
    cycle = find_cycle(data)
    if cycle:
        names = {str(x["id"]): str(x["name"]) for x in data}
        shown = " -> ".join(f"{i} ({names.get(i, '?')})" for i in cycle)
        raise UsageError(f"{path}: the hierarchy has a cycle ({shown}); a class cannot be its own ancestor: "
                         "fix child_ids or use AudioSet's ontology.json")
    return data


def find_cycle(entries: list[dict]) -> list[str]:
    """A cycle in the ``child_ids`` graph of ontology entries as ids ``[a, b, ..., a]``, or []."""
    children = {str(x["id"]): [str(c) for c in (x.get("child_ids") or []) if not isinstance(c, (dict, list))]
                for x in entries}
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    for root in children:
        if state.get(root):
            continue
        path, stack = [root], [iter(children[root])]
        state[root] = 1
        while stack:
            child = next(stack[-1], None)
            if child is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(child) == 1:
                return path[path.index(child):] + [child]
            elif not state.get(child) and child in children:
                state[child] = 1
                path.append(child)
                stack.append(iter(children[child]))
    return []
