"""Which words of a caption name a sound that is there: negation, imitation, modifiers, games.

A caption can name a source that is absent ("no dogs barking"), imitated ("a man imitating a
dog"), only the owner of a thing ("a cat toy squeaks") or synthetic ("laser shots in a video
game"). :func:`read` returns the words of a text (as :func:`lasskit.labels.words.phrases` does)
with those words removed, so that a rule that is unsure says less rather than something else.
Rules, applied to each punctuation-delimited part of the text before stemming:

1. Negation: from a negation word (:data:`NEGATION`: "no", "not", "without", "never", words
   ending in ``n't`` ...) to the end of the part or to a word that ends the negated span
   (:data:`SCOPE_END`: "but", "only", "except", "then", "while" ...), the words are dropped:
   "there is no rain, only wind" reads ``wind``. A negation directly followed by "stop"/"end"
   ("never stops barking") and "not only" are not negations.
2. Imitation: from an imitation word (:data:`IMITATION`: "imitating", "mimics", "impersonates",
   "pretending", "impression of" ...) to the end of the span as in 1, the words are dropped, and
   the reading records that something was imitated (``imitated``); :class:`lasskit.labels.Labeler` then adds ``Human
   voice`` when the text names a person: the imitator. A vocal imitation is not speech, so no
   ``Speech`` class; the imitated source gets no label (it is not confidently there).
   A comparison is not an imitation: "whirring like a blender", "sounds like a flute" keep
   what they name (what a clip sounds like is what a separator hears, and the validation tags
   name it too).
   A noun naming an imitation or a thing made for an animal (:data:`MODIFIER_HEADS`: "toy",
   "imitation", "costume", and after an animal or child word (:data:`OWNERS`) also "food",
   "bowl", "feeder" ...) drops the word directly before it: "cat toy", "dog imitation", "dog
   food" (but "chewing food" keeps "chewing").
3. Synthetic sounds: the content words after a synthetic adjective (:data:`SYNTHETIC`:
   "synthesized", "fake", "cartoon", "robotic", "toy" ...; up to three, stopping at a function
   word; after "toy" the first of them is dropped instead: a toy car is not a car), and every word of a part naming a game (:data:`GAME`: "video game", "arcade", "8 bit"
   ...; the game words themselves are dropped: "8 bit" is not a bite), are kept but marked ``synthetic_runs``: the labeler drops the *animal* classes they
   name (a synthesized or game dog is not a dog) and keeps the others (a game's gunshot, beep or
   whoosh sounds like one; AudioSet tags them so).

Every dropped word is counted (``dropped``). The rules look at word
forms before stemming.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from lasskit.labels.words import _BREAK, _WORD, FILLER, stem

NEGATION = frozenset({
    "no", "not", "without", "never", "nobody", "nothing", "none", "neither", "nor", "nowhere",
    "absence", "absent", "lack", "lacking", "cannot",
})
# a negation directly followed by one of these is not one ("never stops barking", "not only")
NOT_NEGATED_AFTER = frozenset({"stop", "stops", "stopping", "stopped", "cease", "ceases", "ceasing",
                               "end", "ends", "ending", "quit", "quits", "only", "longer", "doubt"})
IMITATION = frozenset({
    "imitate", "imitates", "imitated", "imitating", "imitation", "mimic", "mimics", "mimicked",
    "mimicking", "mimicry", "impersonate", "impersonates", "impersonating", "impersonation",
    "pretend", "pretends", "pretending", "impression", "impressions", "imitator", "parody",
    "parodies",
})
SCOPE_END = frozenset({
    "but", "only", "just", "instead", "except", "then", "while", "whilst", "whereas", "although",
    "though", "yet", "until", "till", "however", "besides", "apart", "when", "after", "before",
    "meanwhile", "later",
})
MODIFIER_HEADS = frozenset({
    "toy", "toys", "imitation", "imitations", "impression", "impressions", "impersonation",
    "food", "bowl", "bowls", "feeder", "feeders", "flap", "collar", "leash", "litter", "cage",
    "costume", "mask", "figurine", "statue", "plush", "shaped", "ornament", "sticker",
})
SYNTHETIC = frozenset({
    "synthesized", "synthesised", "synthetic", "artificial", "fake", "faked", "simulated",
    "cartoon", "cartoonish", "cartoony", "robotic", "robot", "computerized", "computerised",
    "emulated", "toy", "digitized",
})
GAME = (("video", "game"), ("videogame",), ("arcade",), ("computer", "game"), ("8", "bit"),
        ("bit", "game"), ("game", "console"), ("retro", "game"), ("chiptune",), ("pinball",))
_GAME_WORDS = frozenset(w for pattern in GAME for w in pattern)
_FUNCTION = frozenset({
    "of", "in", "on", "at", "by", "with", "from", "to", "for", "and", "or", "into", "onto", "over",
    "under", "near", "as", "while", "then", "but", "is", "are", "was", "were", "be", "being",
})
_IMITATION_HEADS = frozenset({"toy", "toys", "imitation", "imitations", "impression", "impressions",
                              "impersonation", "costume", "mask", "figurine", "statue", "plush"})
# owners: a word naming an animal or a child, which a following MODIFIER_HEADS noun makes a modifier
OWNERS = frozenset({
    "dog", "dogs", "cat", "cats", "bird", "birds", "horse", "cow", "pig", "duck", "chicken", "frog",
    "bee", "puppy", "kitten", "pet", "pets", "fish", "hamster", "parrot", "rabbit", "mouse", "baby",
    "kid", "kids", "child", "children", "lion", "tiger", "bear", "monkey", "sheep", "goat", "owl",
})
_WORD_OR_DIGIT = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


@dataclass(frozen=True)
class Reading:
    """The words of a text that name sounds present: ``runs`` of stems, and what was left out."""

    runs: tuple[tuple[str, ...], ...]
    synthetic_runs: tuple[bool, ...] = ()  # per run: its words describe a synthetic or game sound
    dropped: int = 0
    negated: bool = False
    imitated: bool = False
    synthetic: bool = False


def _is_negation(word: str) -> bool:
    return word in NEGATION or word.endswith("n't")


def _game_music(words: list[str]) -> bool:
    return any(tuple(words[i:i + 3]) == ("video", "game", "music") for i in range(len(words) - 2))


def _game(words: list[str]) -> set[int]:
    """Positions of the words naming a game in ``words`` (empty: none)."""
    if not set(words) & _GAME_WORDS:
        return set()
    found: set[int] = set()
    for pattern in GAME:
        n = len(pattern)
        for i in range(len(words) - n + 1):
            if tuple(words[i:i + n]) == pattern and words[i + n:i + n + 1] != ["music"]:  # "video game music"
                found |= set(range(i, i + n))
    return found


def _part(words: list[str]) -> tuple[list[tuple[list[str], bool]], int, bool, bool, bool]:
    """(kept segments of raw words, synthetic?) of one part; dropped count; negated, imitated, synthetic."""
    game = _game(words)
    if game or _GAME_WORDS & set(words) and _game_music(words):
        kept = [w for i, w in enumerate(words) if i not in game]
        return ([(kept, True)] if kept else []), len(game), False, False, True
    keep = [True] * len(words)
    synthetic_at = [False] * len(words)
    negated = imitated = synthetic = False
    i = 0
    while i < len(words):
        w = words[i]
        nxt = words[i + 1] if i + 1 < len(words) else ""
        scope = None
        if _is_negation(w) and nxt not in NOT_NEGATED_AFTER:
            scope, negated = "span", True
        elif w in IMITATION:
            scope, imitated = "span", True
        elif w in SYNTHETIC:
            scope, synthetic = "adjective", True
        if w in MODIFIER_HEADS and i > 0 and (words[i - 1] in OWNERS or w in _IMITATION_HEADS):
            keep[i - 1] = False
            imitated |= w in _IMITATION_HEADS and w not in ("toy", "toys")
        if scope == "span":
            keep[i] = False
            j = i + 1
            while j < len(words) and words[j] not in SCOPE_END:
                keep[j] = False
                j += 1
            i = j
            continue
        if scope == "adjective":
            j, content = i + 1, 0
            before = words[i - 1] if i else ""
            # "a toy car" is not a car: the next content word is dropped ("a dog toy rattles": a head noun)
            if w in ("toy", "toys") and (not before or before in FILLER or before in _FUNCTION):
                while j < len(words) and words[j] in FILLER:
                    j += 1
                if j < len(words) and words[j] not in _FUNCTION:
                    keep[j] = False
                    j += 1
            while j < len(words) and content < 3 and words[j] not in _FUNCTION:
                if words[j] not in FILLER:
                    content += 1
                synthetic_at[j] = True
                j += 1
            i = j
            continue
        i += 1
    segments: list[tuple[list[str], bool]] = []
    current: list[str] = []
    flag = False
    for w, k, syn in zip(words, keep, synthetic_at):
        if current and (not k or syn != flag):
            segments.append((current, flag))
            current = []
        if k:
            current.append(w)
            flag = syn
    if current:
        segments.append((current, flag))
    return segments, keep.count(False), negated, imitated, synthetic


@lru_cache(maxsize=65536)
def read(text: str, *, keyword: bool = False) -> Reading:
    """The runs of stemmed words of ``text`` that name sounds present (module docstring)."""
    text = str(text).lower().replace("’", "'")
    text = text.replace("-", " ").replace("_", " ") if keyword else text.replace("-", " ")
    runs: list[tuple[str, ...]] = []
    flags: list[bool] = []
    dropped, negated, imitated, synthetic = 0, False, False, False
    for part in _BREAK.split(text):
        raw = _WORD_OR_DIGIT.findall(part)
        segments, n, neg, imi, syn = _part(raw)
        dropped += n
        negated |= neg
        imitated |= imi
        synthetic |= syn
        for segment, flag in segments:
            words = [stem(w) for w in segment if _WORD.fullmatch(w)]
            words = [w for w in words if w and w not in FILLER]
            if words:
                runs.append(tuple(words))
                flags.append(flag)
    return Reading(tuple(runs), tuple(flags), dropped, negated, imitated, synthetic)
