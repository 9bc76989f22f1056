"""The raters' wording: instructions and the two 1-5 scales (REL and OVL), replaceable from a file.

The default text is lasskit's own summary of the DCASE 2024 Task 9 criteria. A team can replace
any part with a YAML or JSON file (``lasskit listen create --scales FILE``) of this shape::

    title: Listening test                    # optional
    instructions:                            # paragraphs (plain text), shown before the first item
      - First paragraph.
    rel:
      question: How well does the sound match the description?
      labels: {1: Poor, 2: Fair, 3: Average, 4: Good, 5: Excellent}
      help: {1: ..., 5: ...}                 # optional one-line explanation per point
    ovl:
      question: ...
      labels: {...}

Keys left out keep the default. Every text is shown as plain text (never interpreted as HTML).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from lasskit.errors import UsageError

LABELS = {1: "Poor", 2: "Fair", 3: "Average", 4: "Good", 5: "Excellent"}

DEFAULT_SCALES = {
    "title": "Listening test: sound separation",
    "instructions": [
        "Each screen describes a sound in words and plays a short clip that a computer program "
        "tried to extract from a recording. Please use headphones in a quiet place.",
        "Listen to the clip to the end (the answers unlock when it has played), then answer two questions. "
        "The original recording is there for comparison.",
        "Relevance: how well does the clip match the description? Judge only whether the "
        "described sound is what you hear, not the sound quality.",
        "Overall quality: how clean does the clip sound? Judge distortions, crackles, cut-offs and "
        "sounds other than the described one that remain in the clip.",
    ],
    "rel": {
        "question": "Relevance: how well does the clip match the description?",
        "labels": dict(LABELS),
        "help": {
            1: "It barely matches the description.",
            2: "It matches the description only roughly.",
            3: "It matches the description moderately well.",
            4: "It clearly matches the description.",
            5: "It matches the description almost perfectly.",
        },
    },
    "ovl": {
        "question": "Overall quality: how clean does the clip sound?",
        "labels": dict(LABELS),
        "help": {
            1: "Heavily distorted, with strong unrelated sounds.",
            2: "Noticeable unrelated sounds and distortion.",
            3: "The target sound is clear, with some unrelated sounds and slight distortion.",
            4: "Few unrelated sounds and very little distortion.",
            5: "Clean, like a recording of the sound alone.",
        },
    },
}


# How each interface works: shown after the instructions (a team's --scales file replaces only the
# instructions above, never these, so each interface's description stays true).
WEB_NOTES = [
    "The original recording can be played on every screen. Keys: Space plays or pauses the clip, M "
    "plays the original recording, 1-5 answer the highlighted question, the Up and Down arrows switch "
    "question, Enter goes on (on a focused button, Enter and Space press that button). The Instructions "
    "button shows this page again.",
    "Your answers are saved one by one: you can close the page and come back to the same link later.",
]
WEBMUSHRA_NOTES = [
    "On each page, play the original recording (for comparison) and the clip; the answers unlock once "
    "the clip has played to the end. Choose one answer in each of the two rows, then go on.",
    "Your answers are sent only at the end, when you enter your name and send the results: do not close "
    "or reload the page before that, or the answers are lost.",
]


def _points(value, where: str) -> dict[int, str]:
    if not isinstance(value, dict):
        raise UsageError(f"{where}: must map the points 1-5 to texts")
    out = {}
    for k, v in value.items():
        try:
            point = int(k)
        except (TypeError, ValueError):
            raise UsageError(f"{where}: key {k!r} is not a point 1-5")
        if point not in LABELS or not isinstance(v, str) or not v.strip():
            raise UsageError(f"{where}: point {k!r} needs a non-empty text and must be 1-5")
        out[point] = v.strip()
    return out


def load_scales(path: str | Path | None) -> dict:
    """The default wording, with the parts given in ``path`` (YAML or JSON) replacing it."""
    scales = copy.deepcopy(DEFAULT_SCALES)
    if path is None:
        return _jsonable(scales)
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the scales file ({exc.strerror or exc})")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:
        raise UsageError(f"{path}: not valid YAML/JSON ({str(exc).splitlines()[0]}); fix the file")
    if not isinstance(data, dict):
        raise UsageError(f"{path}: must be a mapping with keys title, instructions, rel, ovl")
    unknown = sorted(set(data) - {"title", "instructions", "rel", "ovl"})
    if unknown:
        raise UsageError(f"{path}: unknown key(s) {', '.join(map(str, unknown))}; use title, instructions, rel, ovl")
    if "title" in data:
        if not isinstance(data["title"], str):
            raise UsageError(f"{path}: title must be a text")
        scales["title"] = data["title"].strip()
    if "instructions" in data:
        value = data["instructions"]
        value = [value] if isinstance(value, str) else value
        if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
            raise UsageError(f"{path}: instructions must be a text or a list of paragraphs")
        scales["instructions"] = [p.strip() for p in value if p.strip()]
    for scale in ("rel", "ovl"):
        if scale not in data:
            continue
        part = data[scale]
        if not isinstance(part, dict):
            raise UsageError(f"{path}: {scale} must be a mapping with question, labels, help")
        if "question" in part:
            if not isinstance(part["question"], str) or not part["question"].strip():
                raise UsageError(f"{path}: {scale}.question must be a non-empty text")
            scales[scale]["question"] = part["question"].strip()
        for key in ("labels", "help"):
            if key in part:
                scales[scale][key].update(_points(part[key], f"{path}: {scale}.{key}"))
    return _jsonable(scales)


def _jsonable(scales: dict) -> dict:
    """Point keys as strings "1".."5" (what JSON keeps), in order."""
    for scale in ("rel", "ovl"):
        for key in ("labels", "help"):
            scales[scale][key] = {str(k): scales[scale][key][k] for k in sorted(int(x) for x in scales[scale][key])}
    return scales
