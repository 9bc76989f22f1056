"""webMUSHRA interoperability: export a test as a webMUSHRA configuration, import its results.

Export (``export_webmushra``) writes, under ``OUT`` (to be copied into the root of a webMUSHRA
installation)::

    configs/lasskit_<name>.yaml                the experiment
    configs/resources/lasskit_<name>/<id>.wav  the loudness-matched playback copies and, under each
                                               item's reference id, the mixture (for comparison)

Every file is written atomically (a full disk leaves no truncated WAV).

The experiment: a ``generic`` page with the instructions (the test's own paragraphs, then how a
webMUSHRA page works: no keys, answers sent only at the end); then one ``random`` block holding
one ``likert_single_stimulus`` page per stimulus (id ``s<stimulus>``), so webMUSHRA shuffles every
screen for every rater as the web test does, plus ``repeats`` extra pages (id
``<stimulus>_again<k>``) that repeat one stimulus each, drawn with the test's seed, for the
consistency check, and the test's gold and trapping screens (id ``q<stimulus>``, no original
recording; judged on import like the web's). Each page shows the description, plays the item's mixture as the original
recording (an ``<audio>`` player in the page text, under the reference id, never the anchor's) and
holds two Likert scales, REL then OVL, values ``1``-``5``, each point labelled with its level
description, with ``mustPlayback: ended`` and ``mustRate: true``. A ``finish`` page asks for a
rater name (``rater``) and writes the results. How this differs from ``lasskit listen serve``:
every rater rates every item (no per-rater plan), the same hidden repeats for everyone and in
random places (not at least three screens after the original), no headphone check or training
page, and answers are saved only when the rater sends them at the end.

Import (``import_webmushra``) reads webMUSHRA's ``lss.csv``: columns ``session_test_id``, the
questionnaire's columns, ``trial_id``, ``stimuli_rating1``, ``stimuli_rating2``, ``stimuli``,
``rating_time`` (and ``session_uuid`` where webMUSHRA writes it). Each session becomes one rater
(source ``webmushra``): the rows of a ``session_uuid``, or else a run of rows with the same
questionnaire answer, which ends where the answer changes or a page id comes again (webMUSHRA
appends each session's rows together, each page once). Two sessions whose raters typed the same
name stay two raters (``ann``, ``ann (session 2)``) and are reported as duplicate names. Answers
are taken in file order; a stimulus answered twice in one session counts as a hidden repeat.
Rows with ``NA`` or out-of-range ratings, or stimuli that are not in this test, are skipped and
counted; a session already imported (same rows) is skipped, so re-importing a file adds nothing.
"""

from __future__ import annotations

import csv
import html
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lasskit.atomic import write_text
from lasskit.errors import UsageError
from lasskit.listening.layout import ListenSpec


@dataclass
class ImportReport:
    raters: list[str] = field(default_factory=list)
    answers: int = 0
    skipped_na: int = 0
    skipped_unknown: int = 0
    already: list[str] = field(default_factory=list)
    duplicates: dict[str, int] = field(default_factory=dict)  # a name typed in more than one session -> sessions


def _scale(spec: ListenSpec, name: str) -> list[dict]:
    sc = spec.data["scales"][name]
    labels, help_ = sc["labels"], sc.get("help", {})
    out = []
    for p in range(1, 6):
        text = f"{p} {labels[str(p)]}"
        if help_.get(str(p)):
            text += f": {help_[str(p)]}"
        out.append({"value": str(p), "label": text})
    return out


def webmushra_config(spec: ListenSpec, resources: str) -> dict:
    """The webMUSHRA experiment (a dict to dump as YAML); audio under ``resources``/<id>.wav."""
    from lasskit.listening.scales import WEBMUSHRA_NOTES

    sc = spec.data["scales"]
    intro = "".join(f"<p>{html.escape(p)}</p>" for p in [*sc["instructions"], *WEBMUSHRA_NOTES])
    intro += ("<p>On each page the first row of answers is: <b>" + html.escape(sc["rel"]["question"])
              + "</b> and the second row: <b>" + html.escape(sc["ovl"]["question"]) + "</b></p>")
    response = [_scale(spec, "rel"), _scale(spec, "ovl")]

    def page(pid: str, it: dict, sid: str) -> dict:
        player = ("" if not it.get("reference") else
                  f"<p>Original recording (for comparison): <audio controls preload=\"none\" "
                  f"src=\"{resources}/{it['reference']}.wav\"></audio></p>")
        content = (f"<p>Description: <b>{html.escape(it['query'])}</b></p>{player}"
                   f"<p>Row 1: {html.escape(sc['rel']['question'])}<br>Row 2: {html.escape(sc['ovl']['question'])}</p>")
        return {"type": "likert_single_stimulus", "id": pid, "name": "Rate the clip", "content": content,
                "mustPlayback": "ended", "mustRate": True,
                "stimuli": {sid: f"{resources}/{sid}.wav"}, "response": response}

    pages: list = ["random"]
    flat = [(it, sid) for it in spec.items for sid in it["stimuli"].values()]
    pages += [page(f"s{sid}", it, sid) for it, sid in flat]
    from lasskit.listening.qc import qc_screens

    pages += [page(f"q{q['stimulus']}", {"query": q["query"]}, q["stimulus"]) for q in qc_screens(spec.data.get("qc", {}))]
    rng = np.random.default_rng([int(spec.data["seed"]), 7919])
    n_rep = min(int(spec.data.get("repeats", 0)), len(flat))
    for k in sorted(int(i) for i in rng.choice(len(flat), n_rep, replace=False)):
        it, sid = flat[k]
        pages.append(page(f"{sid}_again{k}", it, sid))
    return {
        "testname": sc.get("title") or f"lasskit {spec.name}",
        "testId": f"lasskit_{spec.name}",
        "bufferSize": 2048,
        "stopOnErrors": True,
        "showButtonPreviousPage": False,
        "remoteService": "service/write.php",
        "pages": [
            {"type": "generic", "id": "instructions", "name": "Instructions", "content": intro},
            pages,
            {"type": "finish", "name": "Thank you", "content": "Thank you! Please enter your name and send the results.",
             "showResults": False, "writeResults": True,
             "questionnaire": [{"type": "text", "label": "Your name or rater code", "name": "rater"}]},
        ],
    }


def export_webmushra(spec: ListenSpec, out_dir: str | Path) -> list[Path]:
    """Write the configuration and audio (see the module docstring); returns the files written
    (the configuration first). Every file is written atomically."""
    import yaml

    from lasskit.atomic import atomic_path
    from lasskit.errors import os_error

    out_dir = Path(out_dir)
    folder = f"lasskit_{spec.name}"
    resources = f"configs/resources/{folder}"
    copies = [(sid, sid) for it in spec.items for sid in it["stimuli"].values()]
    copies += [(it["reference_audio"], it["reference"]) for it in spec.items]
    from lasskit.listening.qc import qc_screens

    copies += [(q["stimulus"], q["stimulus"]) for q in qc_screens(spec.data.get("qc", {}))]
    for src_id, _ in copies:  # everything there before anything is written
        if not spec.audio_path(src_id).is_file():
            raise UsageError(f"{spec.audio_path(src_id)}: playback copy missing; re-create the test with "
                             "`lasskit listen create --force`")
    files = []
    for src_id, dst_id in copies:
        src, dst = spec.audio_path(src_id), out_dir / resources / f"{dst_id}.wav"
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(dst) as tmp:
                shutil.copyfile(src, tmp)
        except OSError as exc:
            raise os_error(exc, getattr(exc, "filename", None) or dst) from None
        files.append(dst)
    config = webmushra_config(spec, resources)
    text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True, width=100)
    files.insert(0, write_text(out_dir / "configs" / f"{folder}.yaml", text))
    return files


def _rating(value: str) -> int | None:
    value = (value or "").strip()
    return int(value) if value in {"1", "2", "3", "4", "5"} else None


def read_lss_csv(path: Path) -> list[tuple[str, str, str, str, int | None, int | None, int | None]]:
    """``(session key, rater label, trial id, stimulus, rel, ovl, rating_time ms)`` rows of a webMUSHRA ``lss.csv``
    (ratings None for NA); see the module docstring for how sessions are told apart."""
    try:
        from lasskit.csvfile import open_csv

        with open_csv(path) as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"{path}: cannot read ({exc}); pass webMUSHRA's results/<testId>/lss.csv")
    if not rows:
        raise UsageError(f"{path}: empty file; pass webMUSHRA's results/<testId>/lss.csv")
    header = [h.strip() for h in rows[0]]
    need = ("session_test_id", "trial_id", "stimuli_rating1", "stimuli_rating2", "stimuli")
    missing = [c for c in need if c not in header]
    if missing:
        raise UsageError(f"{path}: lacks column(s) {', '.join(missing)}; expected webMUSHRA's lss.csv of a "
                         "two-scale likert_single_stimulus test (made by `lasskit listen export-webmushra`)")
    first, trial = header.index("session_test_id"), header.index("trial_id")
    uuid = header.index("session_uuid") if "session_uuid" in header else None
    participant = [i for i in range(first + 1, trial) if i != uuid]
    if not participant:
        raise UsageError(f"{path}: no questionnaire column identifies the raters; use the exported "
                         "configuration (its finish page asks for a rater name)")
    r1, r2, st = header.index("stimuli_rating1"), header.index("stimuli_rating2"), header.index("stimuli")
    rt = header.index("rating_time") if "rating_time" in header else None
    out = []
    session, label_before, pages = 0, None, set()
    for row in rows[1:]:
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) < len(header):
            raise UsageError(f"{path}: a row has {len(row)} fields, the header {len(header)}; is the file complete?")
        label = " / ".join(row[i].strip() for i in participant)
        page = row[trial].strip()
        if uuid is not None and row[uuid].strip():
            key = "uuid:" + row[uuid].strip()
        else:
            if label != label_before or page in pages:
                session, pages = session + 1, set()
            pages.add(page)
            key = f"run:{session}"
        label_before = label
        ms = row[rt].strip() if rt is not None else ""
        out.append((key, label, page, row[st].strip(), _rating(row[r1]), _rating(row[r2]),
                    int(ms) if ms.isdigit() and len(ms) < 10 else None))
    return out


def import_webmushra(spec: ListenSpec, paths: list[str | Path]) -> ImportReport:
    """Add the raters (one per session) and answers of webMUSHRA result files to the test's database."""
    import hashlib

    from lasskit.listening.store import Store

    from lasskit.listening.qc import qc_screens

    known = set(spec.stimulus_table()) | {q["stimulus"] for q in qc_screens(spec.data.get("qc", {}))}
    report = ImportReport()
    sessions: dict[tuple[str, str], dict] = {}  # (file, session key) -> {label, answers, rows}
    for path in paths:
        for key, label, page, stimulus, rel, ovl, ms in read_lss_csv(Path(path)):
            s = sessions.setdefault((str(path), key), {"label": label, "answers": [], "rows": []})
            s["rows"].append(f"{label}\t{page}\t{stimulus}\t{rel}\t{ovl}")
            if stimulus not in known:
                report.skipped_unknown += 1
                continue
            if rel is None or ovl is None:
                report.skipped_na += 1
                continue
            s["answers"].append((stimulus, rel, ovl, ms))
    store = Store(spec)
    store.init()
    done = {label.rsplit("#", 1)[-1] for label in store.imported_labels() if label}
    names: dict[str, int] = {}
    for s in sessions.values():
        names[s["label"]] = names.get(s["label"], 0) + 1
        s["name"] = s["label"] if names[s["label"]] == 1 else f"{s['label']} (session {names[s['label']]})"
    report.duplicates = {n: k for n, k in names.items() if k > 1}
    for s in sessions.values():
        digest = hashlib.sha256("\n".join(s["rows"]).encode()).hexdigest()[:16]
        if digest in done:
            report.already.append(s["name"])
            continue
        if not s["answers"]:
            continue
        done.add(digest)
        report.raters.append(store.import_ratings(f"{s['name']}#{digest}", s["answers"]))
        report.answers += len(s["answers"])
    return report
