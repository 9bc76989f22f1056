"""The class-conflict check: when two clips' labels say they share a sound class.

``class_set(labels)`` is the set a clip is compared by; two clips conflict when their sets
intersect. Without a hierarchy the set is the normalised labels
(:func:`lasskit.ontology.normalize_label`). With one (AudioSet ``ontology.json``) each label
climbs to its ancestors, with two limits that keep unrelated sounds apart:

1. A class with several parents names a sound, not its source (``Hiss``: cat, snake, steam or
   onomatopoeia; ``Buzz``: fly, bee or brief tone). It climbs only to the ancestors all its
   parents share, and through a parent the clip's other labels reach (``Cat`` + ``Hiss`` ->
   ``Animal``; ``Hiss`` alone stays ``Hiss``).
2. No climbing into umbrellas: the top-level groupings that gather unrelated sources ("Sounds
   of things", "Source-ambiguous sounds", ...), the groupings of generic sound words below them
   ("Generic impact sounds", "Onomatopoeia", "Brief tone", ...), "Vehicle" (road, rail, air and
   water transport sound little alike) -- all in :data:`UMBRELLAS` -- and every class the
   ontology marks ``blacklist`` (AudioSet does not label with them: "Natural sounds",
   "Domestic sounds, home sounds", ...). Classes below an umbrella still climb to each other
   ("Male speech" -> "Speech" -> "Human voice"), and a label that *is* an umbrella is kept.

A label outside the vocabulary compares by its normalised name only.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from lasskit.labels.vocabulary import Vocabulary
from lasskit.ontology import normalize_label

UMBRELLAS = frozenset(normalize_label(n) for n in (
    "Human sounds", "Natural sounds", "Sounds of things", "Source-ambiguous sounds",
    "Channel, environment and background", "Generic impact sounds", "Surface contact",
    "Deformable shell", "Onomatopoeia", "Brief tone", "Other sourceless", "Miscellaneous sources",
    "Specific impact sounds", "Acoustic environment", "Sound reproduction", "Musical concepts",
    "Music genre", "Music mood", "Music role", "Sound equipment", "Vehicle",
))


class ConflictCheck:
    """Class sets and the conflict predicate of ``mix`` (see the module docstring)."""

    def __init__(self, vocabulary: Vocabulary | None = None, umbrellas: Iterable[str] = UMBRELLAS):
        self.vocabulary = vocabulary if vocabulary is not None and vocabulary.hierarchy else None
        blacklisted = {k for k, c in self.vocabulary.classes.items() if c.blacklisted} if self.vocabulary else set()
        self.umbrellas = frozenset(umbrellas) | blacklisted
        self._climb: dict[str, frozenset[str]] = {}
        self._cache: dict[tuple[str, ...], frozenset[str]] = {}

    @classmethod
    def load(cls, ontology: str | os.PathLike | None = None) -> ConflictCheck:
        """The check for ``ontology`` (AudioSet ``ontology.json``), or by name alone without one."""
        return cls(Vocabulary.load(ontology=ontology) if ontology else None)

    def class_set(self, labels: Iterable[str]) -> frozenset[str]:
        """The normalised classes a clip with ``labels`` is compared by."""
        direct = tuple(sorted({n for n in (normalize_label(x) for x in labels) if n}))
        hit = self._cache.get(direct)
        if hit is not None:
            return hit
        if self.vocabulary is None:
            out = frozenset(direct)
        else:
            classes = self.vocabulary.classes
            out = set()
            for key in direct:
                out |= self._up(key) if key in classes else {key}
            for key in direct:  # rule 1: climb through a parent the other labels reach
                if key in classes and len(classes[key].parents) > 1:
                    for parent in sorted(classes[key].parents):
                        if parent in out and parent not in self.umbrellas:
                            out |= self._up(parent)
            out = frozenset(out)
        if len(self._cache) < 100_000:
            self._cache[direct] = out
        return out

    def _up(self, key: str) -> frozenset[str]:
        hit = self._climb.get(key)
        if hit is None:
            parents = [p for p in sorted(self.vocabulary.classes[key].parents) if p not in self.umbrellas]
            if len(self.vocabulary.classes[key].parents) > 1:
                shared = None
                for p in self.vocabulary.classes[key].parents:
                    up = self._up(p) if p not in self.umbrellas else frozenset()
                    shared = up if shared is None else shared & up
                result = {key} | set(shared or ())
            else:
                result = {key}
                for p in parents:
                    result |= self._up(p)
            hit = self._climb[key] = frozenset(result)
        return hit

    def conflict(self, a: Iterable[str], b: Iterable[str]) -> bool:
        """True when clips labelled ``a`` and ``b`` share a class."""
        return not self.class_set(a).isdisjoint(self.class_set(b))


def shares_class(a: frozenset[str], b: frozenset[str]) -> bool:
    """True when two class sets (from :meth:`ConflictCheck.class_set`) intersect."""
    return not a.isdisjoint(b)
