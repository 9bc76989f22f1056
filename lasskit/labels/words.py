"""Words of captions, keywords and class names, reduced to comparable forms.

:func:`phrases` splits a text into runs of words (a run ends at punctuation: ``,.;:!?()"/``, and
at a hyphen only inside keywords), lower-cased, with the "filler" words of :data:`FILLER`
(articles, forms of "be", possessives) removed, so that "a man is speaking" reads ``man speak``.
Each word is reduced by :func:`stem`:

1. irregular forms come from the table :data:`IRREGULAR` (``children`` -> ``child``, ``sang`` ->
   ``sing``, ``leaves`` -> ``leaf``);
2. words of three letters or fewer are kept as they are;
3. ``-ies``/``-ied`` -> ``-y`` (``flies`` -> ``fly``); ``-sses`` -> ``-ss``; ``-es`` after
   ``sh``, ``ch``, ``x``, ``z`` or ``o`` is dropped (``dishes`` -> ``dish``); a final ``-s`` is
   dropped unless it follows ``s``, ``u`` or ``i`` (``dogs`` -> ``dog``, ``glass``, ``bus``);
4. ``-ing`` (words of six letters or more) and ``-ed`` (five or more, not after ``e``) are
   dropped; then a doubled final consonant other than ``l``, ``s``, ``z``, ``f`` is undone
   (``dripping`` -> ``drip``, ``buzzing`` -> ``buzz``), or else a final consonant-vowel-consonant
   gets its silent ``e`` back (``taping`` -> ``tape``, ``typing`` -> ``type``, against
   ``tapping`` -> ``tap``).

A final ``-e`` stays (``tape`` is not ``tap``); where vocabulary phrases are indexed
(:func:`variants`), a word of five letters or more ending in ``e`` is also indexed without it, so ``whistling``
(``whistl``) finds "whistle".

The same function reduces class names and captions, so the forms only need to agree with
each other, not be English.
"""

from __future__ import annotations

import re

IRREGULAR = {
    "children": "child", "men": "man", "women": "woman", "people": "person", "geese": "goose",
    "mice": "mouse", "feet": "foot", "teeth": "tooth", "sang": "sing", "sung": "sing", "rang": "ring",
    "rung": "ring", "blew": "blow", "blown": "blow", "flew": "fly", "flown": "fly", "fell": "fall",
    "fallen": "fall", "ran": "run", "spoke": "speak", "spoken": "speak", "said": "say", "says": "say",
    "struck": "strike", "broke": "break", "broken": "break", "threw": "throw", "thrown": "throw",
    "shook": "shake", "shaken": "shake", "drove": "drive", "driven": "drive", "rode": "ride",
    "dug": "dig", "swept": "sweep", "crept": "creep", "tore": "tear", "torn": "tear", "knives": "knife",
    "leaves": "leaf", "wolves": "wolf", "calves": "calf", "shelves": "shelf", "hooves": "hoof",
    "went": "go", "gone": "go", "came": "come", "ate": "eat", "eaten": "eat", "sat": "sit",
    "stood": "stand", "wrote": "write", "written": "write", "dove": "dive", "began": "begin",
    "begun": "begin", "held": "hold", "hung": "hang", "slid": "slide", "hit": "hit", "bit": "bite",
    "fed": "feed", "led": "lead", "sped": "speed", "swung": "swing", "stung": "sting",
    "while": "while", "news": "news", "species": "species", "series": "series", "sheep": "sheep",
    "fish": "fish", "purring": "purr", "purred": "purr", "breathe": "breath", "breathes": "breath",
    "breathing": "breath", "breathed": "breath", "listening": "listen", "opening": "open", "happening": "happen", "was": "be", "were": "be", "is": "be", "are": "be", "am": "be", "been": "be",
    "being": "be", "blues": "blues", "has": "have", "had": "have", "having": "have", "does": "do", "did": "do",
}

FILLER = frozenset({
    "a", "an", "the", "be", "some", "its", "their", "his", "her", "this", "that", "these", "those",
    "very", "really", "just", "s", "it", "quite", "lot", "lots", "there", "here",
})

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_BREAK = re.compile(r"[,.;:!?()\"/\[\]{}|]+")
_DOUBLE_KEPT = set("lszf")
_CVC = re.compile(r"(?:^|[^aeiou])[aeiouy][^aeiouwxy]$")


def stem(word: str) -> str:
    """The comparable form of one lower-case word (see the module docstring for the rules)."""
    w = word.lower()
    w = w.removesuffix("'s")
    w = w.replace("'", "")
    if w in IRREGULAR:
        return IRREGULAR[w]
    if len(w) <= 3:
        return w
    if w.endswith(("ies", "ied")) and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith("sses") or w.endswith("es") and (w[-3] in "xzo" or w[-4:-2] in ("sh", "ch")):
        w = w[:-2]
    elif w.endswith("s") and w[-2] not in "sui":
        w = w[:-1]
    elif w.endswith("ing") and len(w) >= 6:
        w = _base(w[:-3])
    elif w.endswith("ed") and len(w) >= 5 and w[-3] != "e":
        w = _base(w[:-2])
    return w


def _base(w: str) -> str:
    """The base of a word stripped of -ing/-ed: undo a doubled consonant, or restore a silent e."""
    if len(w) >= 3 and w[-1] == w[-2] and w[-1] not in "aeiou" and w[-1] not in _DOUBLE_KEPT:
        return w[:-1]
    if _CVC.search(w) and not w.endswith(("er", "en", "on", "el", "et")):
        return w + "e"
    return w


def variants(words: tuple[str, ...]) -> list[tuple[str, ...]]:
    """``words`` and its forms with a final ``e`` dropped from words of five letters or more."""
    out = [()]
    for w in words:
        alts = (w, w[:-1]) if len(w) >= 5 and w.endswith("e") else (w,)
        out = [prefix + (a,) for prefix in out for a in alts]
    return out


def phrases(text: str, *, keyword: bool = False) -> list[tuple[str, ...]]:
    """Runs of stemmed words of ``text``, split at punctuation, filler words removed.

    ``keyword``: the text is a Freesound tag, where ``-`` and ``_`` join words of one phrase
    (``dog-barking`` reads ``dog bark``).
    """
    text = str(text).lower().replace("’", "'")
    if keyword:
        text = text.replace("-", " ").replace("_", " ")
    else:
        text = text.replace("-", " ")
    runs = []
    for part in _BREAK.split(text):
        words = [stem(w) for w in _WORD.findall(part)]
        words = [w for w in words if w and w not in FILLER]
        if words:
            runs.append(tuple(words))
    return runs


def words_of(text: str) -> set[str]:
    """The stemmed words of ``text`` (all runs together)."""
    return {w for run in phrases(text) for w in run}
