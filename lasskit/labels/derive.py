"""Class labels from keywords and captions: the matching rules (see :mod:`lasskit.labels`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lasskit.labels import scope
from lasskit.labels import synonyms as tables
from lasskit.labels.vocabulary import Vocabulary
from lasskit.labels.words import phrases, stem, variants

VOTING_CAPTIONS = 3
# top-level families whose classes one caption alone does not establish: sounds named by what
# they sound like (many sources) and the weather/water/wind backdrop often mentioned in passing
WEAK_ROOTS = frozenset({"source-ambiguous sounds", "natural sounds"})
_HUMAN_ROOT = "human sounds"
_ANIMAL_ROOT = "animal"
# animal classes by name, for a vocabulary without hierarchy (FSD50K's vocabulary.csv alone)
_ANIMAL_NAMES = frozenset({
    "animal", "domestic animals and pets", "dog", "cat", "livestock and farm animals and working animals",
    "horse", "cattle and bovinae", "pig", "goat", "sheep", "fowl", "chicken and rooster", "turkey", "duck",
    "goose", "wild animals", "bird", "crow", "owl", "pigeon and dove", "gull and seagull", "insect",
    "cricket", "mosquito", "fly and housefly", "bee and wasp and etc.", "frog", "snake", "donkey and ass",
    "roaring cats (lions and tigers)", "canidae and dogs and wolves", "rodents and rats and mice",
    "whale vocalization", "bird vocalization and bird call and bird song",
})

# human-sound classes by name, for a vocabulary without hierarchy
_HUMAN_NAMES = frozenset({
    "human voice", "speech", "male speech and man speaking", "female speech and woman speaking",
    "child speech and kid speaking", "conversation", "narration and monologue", "babbling", "shout", "yell",
    "screaming", "whispering", "laughter", "giggle", "chuckle and chortle", "crying and sobbing",
    "baby cry and infant cry", "whimper", "wail and moan", "sigh", "singing", "male singing", "female singing",
    "humming", "groan", "grunt", "whistling", "breathing", "gasp", "pant", "snoring", "cough", "sneeze",
    "sniff", "walk and footsteps", "run", "chewing and mastication", "burping and eructation", "hiccup",
    "clapping", "applause", "cheering", "chatter", "crowd", "human group actions", "finger snapping",
})


@dataclass(frozen=True)
class Match:
    """A class found in a text, and the word (stemmed) or phrase that named it."""

    key: str
    trigger: str


def _stems(text: str) -> tuple[str, ...]:
    return tuple(w for run in phrases(text) for w in run)


def _forms(words) -> frozenset[str]:
    """Every form a table word may take in a caption (see :func:`lasskit.labels.words.variants`)."""
    return frozenset(v[0] for w in words for v in variants((stem(w),)))


class Labeler:
    """Derives labels onto one :class:`Vocabulary`. Deterministic: same text, same labels.

    Votes (see :mod:`lasskit.labels`): with :data:`VOTING_CAPTIONS` captions or more, each
    caption (and the keywords, as one more voter) votes for the class set of what it names
    (:meth:`ConflictCheck.class_set`); a class is kept with two votes, or with one when it is a
    named source (one top-level family outside :data:`WEAK_ROOTS`, one parent).
    """

    def __init__(self, vocabulary: Vocabulary):
        from lasskit.labels.conflict import ConflictCheck

        self.vocabulary = vocabulary
        self.check = ConflictCheck(vocabulary)
        index: dict[tuple[str, ...], set[str]] = {}
        never = _forms(tables.NEVER_ALONE)

        def add(words: tuple[str, ...], keys) -> None:
            for form in variants(words):
                index.setdefault(form, set()).update(keys)
            if len(words) == 2:  # "door bell" is also "doorbell"
                add((stem("".join(words)),), keys)

        primary: dict[tuple[str, ...], set[str]] = {}
        blocked = {k for k in (vocabulary.key(n) for n in tables.NOT_DERIVED) if k}
        for key, info in vocabulary.classes.items():
            if key in blocked or (vocabulary.hierarchy and vocabulary.ancestors(key) & blocked):
                continue
            for n, phrase in enumerate(info.phrases):
                words = _stems(phrase)
                if words and not (len(words) == 1 and words[0] in never):
                    add(words, {key})
                    if n == 0:
                        for form in variants(words):
                            primary.setdefault(form, set()).add(key)
        for form, keys in primary.items():  # "dog" names Dog, not also "Canidae, dogs, wolves"
            index[form] = set(keys)
        for phrase, targets in tables.SYNONYMS.items():
            keys = {k for k in (vocabulary.key(t) for t in targets) if k}
            words = _stems(phrase)
            if keys and words:
                add(words, keys)
        for phrase in tables.NAMES_NOTHING:
            for form in variants(_stems(phrase)):
                index[form] = set()
        self.context: dict[str, list[tuple[frozenset[str] | None, frozenset[str]]]] = {}
        for word, rules in tables.CONTEXT.items():
            resolved = [(_forms(ctx) if ctx is not None else None,
                         frozenset(k for k in (vocabulary.key(t) for t in targets) if k))
                        for ctx, targets in rules]
            for form in _forms([word]):
                self.context[form] = resolved
                index.pop((form,), None)
        self.index = index
        self.longest = max((len(w) for w in index), default=1)
        self.human_words = _forms(tables.HUMAN_WORDS)
        self.animal_words = _forms(tables.ANIMAL_WORDS)
        self.human_verbs = _forms(tables.HUMAN_VERBS)
        self.needs = {k: _forms(ctx) for name, ctx in tables.NEEDS.items() if (k := vocabulary.key(name))}
        self.vetoed = {k: _forms(ctx) for name, ctx in tables.VETOED_BY.items() if (k := vocabulary.key(name))}
        self.imitator = vocabulary.key("Human voice")
        self.animal_verbs = {form: frozenset(k for k in (vocabulary.key(t) for t in alt) if k)
                             for w, alt in tables.ANIMAL_VERBS.items() for form in _forms([w])}
        self.not_with_animal = {form: frozenset(k for k in (vocabulary.key(t) for t in alt) if k)
                                for w, alt in tables.NOT_WITH_ANIMAL.items() for form in _forms([w])}

    # -- one text -------------------------------------------------------------------------------
    def match(self, text: str, keyword: bool = False) -> list[Match]:
        """Every class named in ``text``, before the source rules, in order of appearance."""
        reading = scope.read(text, keyword=keyword)
        runs = reading.runs
        words = {w for run in runs for w in run}
        found: list[Match] = []
        for run, synthetic in zip(runs, reading.synthetic_runs):
            if synthetic:  # a synthesized or game animal is not an animal (see lasskit.labels.scope)
                found += [m for m in self._match_run(run, words) if not self._only_animal(m.key)]
            else:
                found += self._match_run(run, words)
        return found

    def _match_run(self, run: tuple[str, ...], words: set[str]) -> list[Match]:
        found: list[Match] = []
        i = 0
        while i < len(run):
            for n in range(min(self.longest, len(run) - i), 0, -1):
                keys = self.index.get(run[i:i + n])
                if keys is not None:  # an empty set: a phrase that names nothing ("hot dog")
                    found += [Match(k, " ".join(run[i:i + n])) for k in sorted(keys)]
                    i += n
                    break
            else:
                rules = self.context.get(run[i])
                if rules:
                    for ctx, keys in rules:
                        if ctx is None or ctx & words:
                            found += [Match(k, run[i]) for k in sorted(keys)]
                            break
                i += 1
        return found

    def classes(self, texts: Sequence[str], keyword: bool = False) -> set[str]:
        """The classes named by ``texts`` read as one text, after the source rules (module docs)."""
        matches: list[Match] = []
        words: set[str] = set()
        imitated = False
        for text in texts:
            matches += self.match(text, keyword)
            reading = scope.read(text, keyword=keyword)
            words |= {w for run in reading.runs for w in run}
            imitated |= reading.imitated
        human = bool(words & self.human_words)
        animal = bool(words & self.animal_words) or any(
            self._is_animal(m.key) and m.trigger not in self.animal_verbs and m.trigger not in self.human_verbs
            for m in matches)
        other = any(not self._is_human(m.key) for m in matches)
        out: set[str] = set()
        for m in matches:
            if m.trigger in self.animal_verbs and not animal:
                out |= self.animal_verbs[m.trigger]
            elif m.key in self.not_with_animal.get(m.trigger, ()):
                continue  # an animal named: its "honk" is the animal's, not a car horn
            elif m.trigger in self.human_verbs and self._is_human(m.key) and not human and (animal or other):
                continue
            elif m.key in self.needs and not self.needs[m.key] & words:
                continue
            elif m.key in self.vetoed and self.vetoed[m.key] & words:
                continue
            else:
                out.add(m.key)
        if imitated and human and self.imitator:  # the person imitating: a vocal sound, not speech
            out.add(self.imitator)
        return out

    def _is_animal(self, key: str) -> bool:
        if self.vocabulary.hierarchy:
            return key == _ANIMAL_ROOT or _ANIMAL_ROOT in self.vocabulary.ancestors(key)
        return key in _ANIMAL_NAMES

    def _only_animal(self, key: str) -> bool:
        """An animal class that no other family shares (``Rattle`` is also a thing's sound)."""
        if self.vocabulary.hierarchy:
            return self.vocabulary.roots(key) == {_ANIMAL_ROOT}
        return key in _ANIMAL_NAMES

    def _is_human(self, key: str) -> bool:
        if self.vocabulary.hierarchy:
            return _HUMAN_ROOT in self.vocabulary.ancestors(key)
        return key in _HUMAN_NAMES

    # -- one clip -------------------------------------------------------------------------------
    def derive(self, keywords: Sequence[str] = (), captions: Sequence[str] = ()) -> tuple[list[str], str]:
        """``(labels, label_source)`` for a clip from its Freesound ``keywords`` and ``captions``.

        ``label_source`` is ``keywords`` when the keywords voted for a kept class, else
        ``caption``; ``([], "")`` when nothing was named. Labels are class names as the
        vocabulary writes them (ancestors included, see :mod:`lasskit.labels.conflict`), sorted.
        """
        captions = [c for c in captions if c and str(c).strip()]
        keywords = [k for k in keywords if k and str(k).strip()]
        voters = [self.check.class_set(self._names(self.classes([c]))) for c in captions]
        from_keywords = self.check.class_set(self._names(self.classes(keywords, keyword=True))) if keywords else frozenset()
        votes: dict[str, int] = {}
        for voter in [*voters, from_keywords]:
            for key in voter:
                votes[key] = votes.get(key, 0) + 1
        voting = len(captions) >= VOTING_CAPTIONS
        kept = {k for k, n in votes.items() if not voting or n >= 2 or self._named_source(k)}
        if not kept:
            return [], ""
        names = sorted({self.vocabulary.classes[k].name if k in self.vocabulary.classes else k for k in kept})
        return names, ("keywords" if kept & from_keywords else "caption")

    def _names(self, keys) -> list[str]:
        return [self.vocabulary.classes[k].name for k in keys]

    def _named_source(self, key: str) -> bool:
        """One caption is enough for ``key``: it has one parent and one family, not a weak one."""
        if not self.vocabulary.hierarchy or key not in self.vocabulary.classes:
            return True
        roots = self.vocabulary.roots(key)
        return len(self.vocabulary.classes[key].parents) <= 1 and len(roots) == 1 and not roots & WEAK_ROOTS
