"""Rater quality control of a listening test: the check clips, the training page and the rules.

What published listening tests use (ITU-T P.808, webMUSHRA), made at ``listen create`` time and
kept in ``test.json`` under ``qc`` (the answers stay on the server, never sent to a browser):

- **volume and headphone check** (``headphones``), before the first screen: a calibration clip
  (pink-ish noise at the test's loudness) to set a comfortable volume, then ``HEADPHONE_TRIALS``
  Huggins-pitch trials. Each trial is one stereo clip of three 1 s noise bursts; in one of them the
  right channel is the left one with the phase of a narrow band (600 Hz +- 6 %) inverted, which is
  heard as a faint tone only over headphones (through loudspeakers the ears get the same mix and
  the tone vanishes). The rater says which burst (1-3) held the tone; the check passes with at
  least ``HEADPHONE_PASS`` right answers (chance: 1 in 27 for 3 of 3). Recorded per rater.
- **training** (``training``), after the check and before the first screen, not counted: anchor
  examples spanning each scale, each with the level it illustrates. A team picks them with
  ``--training FILE`` (CSV ``audio,query,aspect,level,note``; ``audio`` relative to the CSV's
  folder), or lasskit proposes: from a split with references in the workspace (``eval_synth``,
  ``val_synth``), a row's reference source as the high anchor (REL 5, OVL 5), its mixture as the
  low OVL anchor and the source of a row with other labels (and another query) under this row's
  description as the low REL anchor;
  without such a split, the test's first mixture as the low OVL anchor and generated sounds
  (:mod:`lasskit.soundgen`) with a matching and a wrong description as the REL anchors.
- **gold items** (``gold``): known-answer screens mixed into every web rater's plan: a pure tone
  described as "a steady electronic beep" (REL must be 4 or 5) and the same kind of tone described
  as a sound it is not (REL must be 1 or 2). A rater fails the gold rule with any gold answer
  outside its range.
- **trapping item** (``trap``): a screen whose clip is a number of beeps (2-4) and whose
  description asks to count them and answer both questions with that number: an audible
  instruction. A rater fails the trap rule with any other answer.
- **listening time**: an answer given after less listening than the clip's length (``listened_ms``
  of the web page, ``rating_time`` of webMUSHRA) is flagged as fast; a rater with more than
  ``max_fast_share`` of fast answers is flagged (see :mod:`lasskit.listening.results`).

All clips are generated from the test's seed: the same seed gives the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from lasskit import SAMPLE_RATE
from lasskit.errors import UsageError

HEADPHONE_TRIALS = 3
HEADPHONE_PASS = 3
BURST_SECONDS, GAP_SECONDS = 1.0, 0.5  # a Huggins trial: three bursts and the gaps between them
GOLD_SECONDS = 3.0
BEEP_GAP, TRAP_LEAD = 0.45, 0.6
GOLD_TEXTS = [  # (description, allowed REL): a steady sine tone under each description
    ("a steady electronic beep", [4, 5]),
    ("a dog barking", [1, 2]),
    ("a pure tone at one pitch", [4, 5]),
    ("people talking in a crowd", [1, 2]),
]
TRAP_TEXT = ("Attention check: count the beeps you hear, then answer BOTH questions with that number "
             "(for example 3 and 3).")
CHECK_RMS = 0.05


def qc_id(seed: int, what: str) -> str:
    return hashlib.sha256(f"{seed}/<qc>/{what}".encode()).hexdigest()[:12]


def _ramp(x: np.ndarray, ms: float = 20.0) -> np.ndarray:
    n = min(len(x) // 2, int(SAMPLE_RATE * ms / 1000))
    if n:
        w = np.sin(np.linspace(0, np.pi / 2, n)) ** 2
        x[..., :n] *= w
        x[..., -n:] *= w[::-1]
    return x


def huggins_trial(rng: np.random.Generator, target: int, burst: float | None = None, gap: float | None = None,
                  f0: float = 600.0, width: float = 0.06) -> np.ndarray:
    """A stereo clip ``(2, samples)``: three noise bursts, the ``target``-th (0-2) with Huggins pitch."""
    burst = BURST_SECONDS if burst is None else burst
    gap = GAP_SECONDS if gap is None else gap
    n = int(burst * SAMPLE_RATE)
    freqs = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    band = (freqs >= f0 * (1 - width)) & (freqs <= f0 * (1 + width))
    parts = []
    for k in range(3):
        left = rng.standard_normal(n)
        right = left.copy()
        if k == target:
            spec = np.fft.rfft(left)
            spec[band] *= -1.0
            right = np.fft.irfft(spec, n)
        pair = np.stack([left, right])
        pair *= CHECK_RMS / np.sqrt(np.mean(pair ** 2))
        parts.append(_ramp(pair))
        if k < 2:
            parts.append(np.zeros((2, int(gap * SAMPLE_RATE))))
    return np.concatenate(parts, axis=1).astype(np.float32)


def calibration_clip(rng: np.random.Generator, seconds: float = 4.0) -> np.ndarray:
    """Pink-ish noise (1/f power) for setting the volume."""
    n = int(seconds * SAMPLE_RATE)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    spec[1:] /= np.sqrt(f[1:] / f[1])
    spec[0] = 0
    x = np.fft.irfft(spec, n)
    return _ramp(x / np.max(np.abs(x)) * 0.5).astype(np.float32)


def sine(seconds: float, freq: float) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return _ramp(0.4 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def beeps(count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` 880 Hz beeps of 0.15 s, 0.45 s apart, over quiet noise, 0.6 s lead-in and tail."""
    beep = sine(0.15, 880.0)
    gap = np.zeros(int(BEEP_GAP * SAMPLE_RATE), np.float32)
    lead = np.zeros(int(TRAP_LEAD * SAMPLE_RATE), np.float32)
    x = np.concatenate([lead] + [np.concatenate([beep, gap]) for _ in range(count)] + [lead])
    return (x + 0.01 * rng.standard_normal(len(x))).astype(np.float32)


def read_training_csv(path: str | os.PathLike) -> list[dict]:
    """A team's training examples: CSV ``audio,query,aspect,level,note`` (see the module docstring)."""
    from lasskit.csvfile import read_table

    path = Path(path)
    _, table = read_table(path, ("audio", "query", "aspect", "level"),
                          "pass a CSV with columns audio,query,aspect,level (and optionally note), one row an example")
    if not table:
        raise UsageError(f"{path}: no examples under the header; one row an example (audio,query,aspect,level,note)")
    out = []
    for entry in table:
        row, i = entry.cells, entry.line
        if entry.extra:
            raise UsageError(f"{path} line {i}: {len(row) + len(entry.extra)} cells, the header has {len(row)}; "
                             "put a query or note holding a comma in double quotes")
        aspect = (row.get("aspect") or "").strip().lower()
        level = (row.get("level") or "").strip()
        audio_path = (path.parent / (row.get("audio") or "").strip())
        if aspect not in ("rel", "ovl", "both"):
            raise UsageError(f"{path} line {i}: aspect {aspect!r} must be rel, ovl or both")
        if level not in ("1", "2", "3", "4", "5"):
            raise UsageError(f"{path} line {i}: level {level!r} must be 1-5")
        if not audio_path.is_file():
            raise UsageError(f"{path} line {i}: {audio_path}: no such audio file; fix the audio column")
        if not (row.get("query") or "").strip():
            raise UsageError(f"{path} line {i}: empty query; give the description the example is heard with")
        out.append({"source": audio_path, "query": row["query"].strip(), "aspect": aspect, "level": level,
                    "note": (row.get("note") or "").strip()})
    return out


def propose_training(workspace, test_rows: list[dict], test_split, seed: int) -> list[dict]:
    """lasskit's proposal of anchor examples (see the module docstring): dicts with ``source`` (a
    file) or ``signal`` (generated), ``query``, ``aspect``, ``level`` and ``note``."""
    from lasskit import soundgen
    from lasskit.splits import read_split

    rng = np.random.default_rng([seed, 31])
    for name in ("eval_synth", "val_synth"):
        root = Path(workspace.root) / "data" / "splits" / name
        try:
            sp = read_split(root)
        except Exception:
            continue
        if not sp.has_references or len(sp) < 2:
            continue
        rows = sp.frame.to_dict("records")
        a = rows[int(rng.integers(len(rows)))]

        def labels(row) -> set:
            try:
                return set(json.loads(row.get("source_labels") or "[]"))
            except ValueError:
                return set()

        # the low REL anchor: a source of another sound (other labels where known, another query)
        others = [r for r in rows if r["query"].strip().lower() != a["query"].strip().lower()
                  and not (labels(r) & labels(a)) and r["source"] != a["source"]]
        if not others:
            continue
        b = others[int(rng.integers(len(others)))]
        if not ((root / a["source"]).is_file() and (root / b["source"]).is_file() and sp.mixture_path(a["mixture"]).is_file()):
            continue
        return [
            {"source": root / a["source"], "query": a["query"], "aspect": "both", "level": "5",
             "note": "High anchor: the described sound alone, cleanly (REL 5, OVL 5)."},
            {"source": sp.mixture_path(a["mixture"]), "query": a["query"], "aspect": "ovl", "level": "1",
             "note": "Low anchor for quality: the unprocessed recording, other sounds fully present (OVL 1-2)."},
            {"source": root / b["source"], "query": a["query"], "aspect": "rel", "level": "1",
             "note": "Low anchor for relevance: a different sound than the one described (REL 1)."},
        ]
    out = [{"signal": soundgen.generate("knock", 3.0, SAMPLE_RATE, seed=seed), "query": "someone knocking on a door",
            "aspect": "rel", "level": "5", "note": "High anchor for relevance: exactly the described sound (REL 5)."},
           {"signal": soundgen.generate("knock", 3.0, SAMPLE_RATE, seed=seed + 1), "query": "a bird singing",
            "aspect": "rel", "level": "1", "note": "Low anchor for relevance: a different sound than the one described (REL 1)."}]
    if test_rows:
        row = test_rows[0]
        out.append({"source": test_split.mixture_path(row["mixture"]), "query": row["query"], "aspect": "ovl",
                    "level": "1", "note": "Low anchor for quality: the unprocessed recording, other sounds fully "
                                          "present (OVL 1-2)."})
    return out


def build_qc(folder: Path, seed: int, target_lufs: float, *, gold: int, trap: bool, headphones: bool,
             training: list[dict] | None) -> dict:
    """Write the QC clips into ``folder/audio/`` and return the ``qc`` section of test.json."""
    from lasskit import audio
    from lasskit.listening.loudness import match_loudness

    rng = np.random.default_rng([seed, 17])
    qc: dict = {}

    def put(what: str, signal: np.ndarray, match: bool = True) -> str:
        sid = qc_id(seed, what)
        if match and signal.ndim == 1:
            signal, _ = match_loudness(signal, SAMPLE_RATE, target_lufs)
        audio.write(folder / "audio" / f"{sid}.wav", signal, SAMPLE_RATE, "pcm16")
        return sid

    if headphones:
        cal = calibration_clip(rng)
        trials = []
        for k in range(HEADPHONE_TRIALS):
            target = int(rng.integers(0, 3))
            trials.append({"clip": put(f"headphones/{k}", huggins_trial(rng, target), match=False), "answer": target + 1})
        qc["headphones"] = {"calibration": put("calibration", cal), "trials": trials, "pass": HEADPHONE_PASS}
    if training:
        examples = []
        for k, ex in enumerate(training):
            if "signal" in ex:
                signal = np.asarray(ex["signal"], np.float32)
            else:
                try:
                    signal = audio.load(ex["source"], SAMPLE_RATE)
                except Exception as exc:
                    raise UsageError(f"{ex['source']}: cannot be read as a training example ({exc}); fix or replace it")
            examples.append({"audio": put(f"training/{k}", signal), "query": ex["query"], "aspect": ex["aspect"],
                             "level": ex["level"], "note": ex.get("note", "")})
        qc["training"] = examples
    golds = []
    for k in range(gold):
        text, allowed = GOLD_TEXTS[k % len(GOLD_TEXTS)]
        freq = float(rng.uniform(350, 900))
        golds.append({"stimulus": put(f"gold/{k}", sine(GOLD_SECONDS, freq)), "query": text, "rel": allowed,
                      "seconds": GOLD_SECONDS})
    if golds:
        qc["gold"] = golds
    if trap:
        count = int(rng.integers(2, 5))
        x = beeps(count, rng)
        qc["trap"] = {"stimulus": put("trap", x), "query": TRAP_TEXT, "answer": count,
                      "seconds": round(len(x) / SAMPLE_RATE, 3)}
    return qc


def qc_screens(qc: dict) -> list[dict]:
    """The QC screens of a web rater's plan: ``{stimulus, query, kind}`` (gold first, then the trap)."""
    out = [{"stimulus": g["stimulus"], "query": g["query"], "kind": "gold"} for g in qc.get("gold", [])]
    if qc.get("trap"):
        out.append({"stimulus": qc["trap"]["stimulus"], "query": qc["trap"]["query"], "kind": "trap"})
    return out


def qc_audio_ids(qc: dict) -> set[str]:
    """Every QC clip id a rater may fetch (check, training, gold and trap clips)."""
    ids = {s["stimulus"] for s in qc_screens(qc)}
    hp = qc.get("headphones")
    if hp:
        ids |= {hp["calibration"], *(t["clip"] for t in hp["trials"])}
    ids |= {ex["audio"] for ex in qc.get("training", [])}
    return ids


def judge(qc: dict, stimulus: str, rel: int, ovl: int) -> tuple[str, bool] | None:
    """``(rule, passed)`` for an answer to a gold or trap screen, else None."""
    for g in qc.get("gold", []):
        if g["stimulus"] == stimulus:
            return "gold", g["rel"][0] <= rel <= g["rel"][1]
    trap = qc.get("trap")
    if trap and trap["stimulus"] == stimulus:
        return "trap", rel == trap["answer"] and ovl == trap["answer"]
    return None
