"""Creating a listening test: item selection, hidden stimulus names and the playback copies.

A test lives in ``<workspace>/listen/<NAME>/``::

    test.json        what the test is: split, systems, items, stimuli, scales, settings
    stimuli.csv      one row a playback copy: stimulus, item, system, source file, loudness, gain
    audio/<id>.wav   the loudness-matched playback copies (16-bit PCM), named by hidden ids
    ratings.sqlite   raters, their plans and their answers (see lasskit.listening.store)
    results/         written by ``lasskit listen results``

Items: every row of the split, or ``items`` rows drawn with ``numpy.random.default_rng(seed)``
stratified over recordings: recordings are shuffled, the rows of each recording shuffled, and rows
are taken one per recording in turn (round robin) until enough are drawn, so the sample spreads
over as many recordings as possible. The recording of a row is its ``recording`` column, else its
``source_id``, else its file name without a trailing ``_<digits>`` or ``-<digits>``.

Stimuli: for each item, each system's output ``exp/<system>/<split>/<mixture>`` and the mixture
itself (the anchor, system name ``mixture``). Each gets a hidden id, the first 12 hex digits of
``sha256("<seed>/<mixture>/<system>")``, so names never reach the browser and the same seed always
gives the same test. Each item also has a reference id: the mixture, offered on every screen for
comparison, under a name different from the anchor's. Playback copies are loudness-matched (see
:mod:`lasskit.listening.loudness`); the outputs themselves are never changed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lasskit import SAMPLE_RATE
from lasskit.atomic import write_text
from lasskit.errors import UsageError, WorkError

TEST_JSON = "test.json"
STIMULI_CSV = "stimuli.csv"
DB_NAME = "ratings.sqlite"
ANCHOR = "mixture"
FORMAT = 1
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass
class ListenSpec:
    """A loaded ``test.json``: ``items`` is a list of dicts (item, mixture, query, reference, stimuli)."""

    root: Path
    data: dict

    @property
    def name(self) -> str:
        return self.data["name"]

    @property
    def items(self) -> list[dict]:
        return self.data["items"]

    @property
    def systems(self) -> list[str]:
        """The rated systems, the anchor last."""
        return list(self.data["systems"]) + ([ANCHOR] if self.data.get("anchor", True) else [])

    @property
    def db_path(self) -> Path:
        return self.root / DB_NAME

    def audio_path(self, stimulus: str) -> Path:
        return self.root / "audio" / f"{stimulus}.wav"

    def stimulus_table(self) -> dict[str, dict]:
        """``{stimulus id: {item, system, mixture, query}}`` for every rated stimulus."""
        out = {}
        for it in self.items:
            for system, sid in it["stimuli"].items():
                out[sid] = {"item": it["item"], "system": system, "mixture": it["mixture"], "query": it["query"]}
        return out


@dataclass
class CreateReport:
    """What ``create_test`` did: counts, and the copies whose loudness could not be matched."""

    root: Path
    items: int
    systems: list[str]
    stimuli: int
    raters: int
    target_lufs: float
    limited: list[tuple[str, float]] = field(default_factory=list)  # (stimulus, shortfall LU)
    silent: list[str] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)  # (rater, token)


def hidden_id(seed: int, mixture: str, system: str) -> str:
    return hashlib.sha256(f"{seed}/{mixture}/{system}".encode()).hexdigest()[:12]


def recording_of(row: dict) -> str:
    """The recording a row comes from (see the module docstring)."""
    for column in ("recording", "source_id"):
        if row.get(column):
            return row[column]
    stem = os.path.splitext(row["mixture"])[0]
    return re.sub(r"[_-]\d+$", "", stem) or stem


def select_items(rows: list[dict], items: int | None, seed: int) -> list[dict]:
    """All rows (``items`` None or >= len) or a seeded sample stratified over recordings, in split order."""
    if items is None or items >= len(rows):
        return list(rows)
    if items < 1:
        raise UsageError(f"--items {items}: must be at least 1")
    rng = np.random.default_rng(seed)
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(recording_of(row), []).append(i)
    keys = sorted(groups)
    order = [keys[i] for i in rng.permutation(len(keys))]
    queues = [[groups[k][j] for j in rng.permutation(len(groups[k]))] for k in order]
    chosen: list[int] = []
    while len(chosen) < items:
        for q in queues:
            if q and len(chosen) < items:
                chosen.append(q.pop(0))
    return [rows[i] for i in sorted(chosen)]


def tests_dir(workspace) -> Path:
    return Path(workspace.root) / "listen"


def resolve_test(test: str | os.PathLike, workspace=None) -> Path:
    """A test folder: ``test`` itself when it holds test.json, else ``<workspace>/listen/<test>``."""
    path = Path(test).expanduser()
    if (path / TEST_JSON).is_file():
        return path.resolve()
    if workspace is not None and isinstance(test, str) and NAME_RE.match(test):
        candidate = tests_dir(workspace) / test
        if (candidate / TEST_JSON).is_file():
            return candidate
        known = sorted(p.parent.name for p in tests_dir(workspace).glob(f"*/{TEST_JSON}"))
        hint = f"known tests: {', '.join(known)}" if known else "create one with `lasskit listen create`"
        raise UsageError(f"{candidate}: no such listening test ({hint})")
    raise UsageError(f"{path}: not a listening test folder (no {TEST_JSON}); create one with `lasskit listen create`")


def load_test(root: str | os.PathLike) -> ListenSpec:
    root = Path(root)
    path = root / TEST_JSON
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file; create the test with `lasskit listen create`")
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: unreadable ({exc}); re-create the test with `lasskit listen create --force`")
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("items"), list):
        raise UsageError(f"{path}: not a lasskit listening test (format {FORMAT}); re-create it")
    return ListenSpec(root, data)


def create_test(
    workspace,
    split: str,
    models: list[str],
    name: str,
    *,
    items: int | None = None,
    raters_per_item: int = 3,
    raters: int | None = None,
    repeats: int | None = None,
    seed: int = 0,
    anchor: bool = True,
    scales_file: str | os.PathLike | None = None,
    target_lufs: float = -23.0,
    force: bool = False,
) -> CreateReport:
    """Lay out a test (see the module docstring) and register ``raters`` raters (default
    ``raters_per_item``) in its database; returns the report with each rater's token."""
    from lasskit import audio
    from lasskit.listening.loudness import match_loudness
    from lasskit.listening.scales import load_scales
    from lasskit.listening.store import Store
    from lasskit.separation import resolve_split_dir
    from lasskit.splits import read_split

    if not NAME_RE.match(name):
        raise UsageError(f"--name {name!r}: use letters, digits, '.', '_' or '-' (at most 64, no '/')")
    models = list(dict.fromkeys(models))
    if not models:
        raise UsageError("--models: name at least one system with outputs under exp/<model>/<split>/")
    if ANCHOR in models:
        raise UsageError(f"--models: {ANCHOR!r} is the name of the anchor (the unprocessed mixture); rename that system")
    if raters_per_item < 1:
        raise UsageError(f"--raters-per-item {raters_per_item}: must be at least 1")
    raters = raters_per_item if raters is None else raters
    if raters < 1:
        raise UsageError(f"--raters {raters}: must be at least 1")
    if not (-60.0 <= target_lufs <= -10.0):
        raise UsageError(f"--target-lufs {target_lufs}: use a level between -60 and -10 LUFS")
    scales = load_scales(scales_file)
    split_dir = resolve_split_dir(split, workspace)
    sp = read_split(split_dir)
    root = tests_dir(workspace) / name
    if (root / TEST_JSON).exists() or (root / "ratings.sqlite").exists():
        if not force:
            raise UsageError(f"{root}: a test of this name exists; pick another --name or pass --force to replace it (its ratings are lost)")
        import shutil

        shutil.rmtree(root)
    rows = sp.frame.to_dict("records")
    chosen = select_items(rows, items, seed)
    # every system must have every chosen output
    missing = []
    for m in models:
        out_dir = workspace.output_dir(m, sp.name)
        if not out_dir.is_dir():
            raise UsageError(f"{out_dir}: no outputs of model {m!r} for split {sp.name!r}; run `lasskit separate --split {sp.name} --model {m}`")
        missing += [f"{m}/{r['mixture']}" for r in chosen if not (out_dir / r["mixture"]).is_file()]
    if missing:
        more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
        raise UsageError(f"missing outputs: {', '.join(missing[:5])}{more}; run `lasskit separate` for them first")

    systems = models + ([ANCHOR] if anchor else [])
    test_items, csv_rows = [], []
    report = CreateReport(root, len(chosen), systems, 0, 0, target_lufs)
    for k, row in enumerate(chosen):
        mix = row["mixture"]
        entry = {"item": f"i{k:03d}", "mixture": mix, "query": row["query"],
                 "reference": hidden_id(seed, mix, "<reference>"), "stimuli": {}}
        entry["reference_audio"] = hidden_id(seed, mix, ANCHOR)  # the mixture's playback copy
        for system in [*systems, ANCHOR] if not anchor else systems:
            src = sp.mixture_path(mix) if system == ANCHOR else workspace.output_dir(system, sp.name) / mix
            try:
                signal = audio.load(src, SAMPLE_RATE)
            except Exception as exc:
                raise WorkError(f"{src}: cannot be read ({exc}); re-create it")
            sid = hidden_id(seed, mix, system)
            copy, match = match_loudness(signal, SAMPLE_RATE, target_lufs)
            audio.write(root / "audio" / f"{sid}.wav", copy, SAMPLE_RATE, "pcm16")
            if match.silent:
                report.silent.append(sid)
            elif match.shortfall > 0.05:
                report.limited.append((sid, match.shortfall))
            if system not in systems:
                continue  # the reference copy only, not rated
            entry["stimuli"][system] = sid
            csv_rows.append({
                "stimulus": sid, "item": entry["item"], "system": system, "mixture": mix,
                "source": os.path.relpath(src, workspace.root),
                "loudness_lufs": "" if match.silent else f"{match.loudness:.2f}",
                "gain_db": f"{match.gain_db:.2f}", "shortfall_lu": f"{match.shortfall:.2f}",
                "silent": int(match.silent),
            })
        test_items.append(entry)
    n_items = len(test_items)
    k = min(raters_per_item, raters)
    items_per_rater = max(1, math.ceil(n_items * k / raters))
    screens = items_per_rater * len(systems)
    if repeats is None:
        repeats = max(2, round(0.1 * screens))
    if repeats < 0:
        raise UsageError(f"--repeats {repeats}: must be 0 or more")
    repeats = min(repeats, screens)
    data = {
        "format": FORMAT,
        "name": name,
        "split": sp.name,
        "systems": models,
        "anchor": anchor,
        "seed": seed,
        "raters_per_item": raters_per_item,
        "items_per_rater": items_per_rater,
        "repeats": repeats,
        "loudness": {
            "method": "K-weighted integrated loudness, BS.1770 gating; gain lowered where the peak would pass -0.1 dBFS",
            "target_lufs": target_lufs,
        },
        "scales": scales,
        "items": test_items,
    }
    write_text(root / TEST_JSON, json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    report.stimuli = len(csv_rows)
    _write_stimuli_csv(root / STIMULI_CSV, csv_rows)
    spec = load_test(root)
    store = Store(spec)
    store.init()
    report.links = [store.add_rater() for _ in range(raters)]
    report.raters = raters
    return report


def _write_stimuli_csv(path: Path, rows: list[dict]) -> None:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["stimulus"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buf.getvalue())


def rater_links(root, add: int = 0) -> list[dict]:
    """Add ``add`` raters to the test at ``root``, then every rater's progress and token."""
    from lasskit.listening.store import Store

    if add < 0:
        raise UsageError(f"--add {add}: must be 0 or more")
    store = Store(load_test(root))
    store.init()
    for _ in range(add):
        store.add_rater()
    return store.progress()
