"""webMUSHRA interoperability: export a test as a webMUSHRA configuration, import its results.

Export (``export_webmushra``) writes, under ``OUT`` (to be copied into the root of a webMUSHRA
installation)::

    configs/lasskit_<name>.yaml                the experiment
    configs/resources/lasskit_<name>/<id>.wav  the loudness-matched playback copies

The experiment: a ``generic`` page with the instructions; then, in random order, one
``likert_single_stimulus`` page per item whose ``stimuli`` are the item's hidden ids (system names
never appear) and whose ``response`` holds two Likert scales, REL then OVL, values ``1``-``5``,
with ``mustPlayback: ended`` and ``mustRate: true``; ``repeats`` extra pages (id ``<item>_again``)
repeat one stimulus each, drawn with the test's seed, for the consistency check; a ``finish`` page
whose questionnaire asks for a rater name (``rater``) and writes the results.

Import (``import_webmushra``) reads webMUSHRA's ``lss.csv``: columns ``session_test_id``, the
questionnaire's columns, ``trial_id``, ``stimuli_rating1``, ``stimuli_rating2``, ``stimuli``,
``rating_time``. Each distinct questionnaire answer (all questionnaire columns joined) becomes one
rater (source ``webmushra``); its answers are taken in file order, and a stimulus answered twice
counts as a hidden repeat. Rows with ``NA`` or out-of-range ratings, or stimuli that are not in
this test, are skipped and counted; a rater already imported is skipped (re-importing a file adds
nothing).
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


def _scale(spec: ListenSpec, name: str) -> list[dict]:
    labels = spec.data["scales"][name]["labels"]
    return [{"value": str(p), "label": f"{p} {labels[str(p)]}"} for p in range(1, 6)]


def webmushra_config(spec: ListenSpec, resources: str) -> dict:
    """The webMUSHRA experiment (a dict to dump as YAML); audio under ``resources``/<id>.wav."""
    sc = spec.data["scales"]
    intro = "".join(f"<p>{html.escape(p)}</p>" for p in sc["instructions"])
    intro += ("<p>On each page the first row of buttons answers: <b>" + html.escape(sc["rel"]["question"])
              + "</b> and the second row: <b>" + html.escape(sc["ovl"]["question"]) + "</b></p>")
    response = [_scale(spec, "rel"), _scale(spec, "ovl")]

    def page(pid: str, query: str, stimuli: list[str]) -> dict:
        content = (f"<p>Description: <b>{html.escape(query)}</b></p>"
                   f"<p>Row 1: {html.escape(sc['rel']['question'])}<br>Row 2: {html.escape(sc['ovl']['question'])}</p>")
        return {"type": "likert_single_stimulus", "id": pid, "name": "Rate the clip", "content": content,
                "mustPlayback": "ended", "mustRate": True,
                "stimuli": {sid: f"{resources}/{sid}.wav" for sid in stimuli}, "response": response}

    pages: list = ["random"]
    for it in spec.items:
        pages.append(page(it["item"], it["query"], list(it["stimuli"].values())))
    rng = np.random.default_rng([int(spec.data["seed"]), 7919])
    flat = [(it, sid) for it in spec.items for sid in it["stimuli"].values()]
    n_rep = min(int(spec.data.get("repeats", 0)), len(flat))
    for k in sorted(int(i) for i in rng.choice(len(flat), n_rep, replace=False)):
        it, sid = flat[k]
        pages.append(page(f"{it['item']}_again{k}", it["query"], [sid]))
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
    """Write the configuration and audio (see the module docstring); returns the files written."""
    import yaml

    out_dir = Path(out_dir)
    folder = f"lasskit_{spec.name}"
    resources = f"configs/resources/{folder}"
    files = []
    ids = [sid for it in spec.items for sid in it["stimuli"].values()]
    for sid in ids:
        src = spec.audio_path(sid)
        if not src.is_file():
            raise UsageError(f"{src}: playback copy missing; re-create the test with `lasskit listen create --force`")
        dst = out_dir / resources / f"{sid}.wav"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        files.append(dst)
    config = webmushra_config(spec, resources)
    text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True, width=100)
    files.insert(0, write_text(out_dir / "configs" / f"{folder}.yaml", text))
    return files


def _rating(value: str) -> int | None:
    value = (value or "").strip()
    return int(value) if value in {"1", "2", "3", "4", "5"} else None


def read_lss_csv(path: Path) -> list[tuple[str, str, int | None, int | None]]:
    """``(rater label, stimulus, rel, ovl)`` rows of a webMUSHRA ``lss.csv`` (ratings None for NA)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as exc:
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
    participant = list(range(first + 1, trial))
    if not participant:
        raise UsageError(f"{path}: no questionnaire column identifies the raters; use the exported "
                         "configuration (its finish page asks for a rater name)")
    r1, r2, st = header.index("stimuli_rating1"), header.index("stimuli_rating2"), header.index("stimuli")
    out = []
    for row in rows[1:]:
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) < len(header):
            raise UsageError(f"{path}: a row has {len(row)} fields, the header {len(header)}; is the file complete?")
        label = " / ".join(row[i].strip() for i in participant)
        out.append((label, row[st].strip(), _rating(row[r1]), _rating(row[r2])))
    return out


def import_webmushra(spec: ListenSpec, paths: list[str | Path]) -> ImportReport:
    """Add the raters and answers of webMUSHRA result files to the test's database."""
    from lasskit.listening.store import Store

    store = Store(spec)
    store.init()
    known = spec.stimulus_table()
    done = store.imported_labels()
    report = ImportReport()
    per_rater: dict[str, list[tuple[str, int, int]]] = {}
    for path in paths:
        for label, stimulus, rel, ovl in read_lss_csv(Path(path)):
            if stimulus not in known:
                report.skipped_unknown += 1
                continue
            if rel is None or ovl is None:
                report.skipped_na += 1
                continue
            per_rater.setdefault(label, []).append((stimulus, rel, ovl))
    for label, answers in per_rater.items():
        if label in done:
            report.already.append(label)
            continue
        report.raters.append(store.import_ratings(label, answers))
        report.answers += len(answers)
    return report
