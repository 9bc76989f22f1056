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
``source_id``, else the content of its mixture file: rows whose mixture files hold the same bytes
are one recording (eval_real gives each (recording, query) row its own file name, ``...-N``, so
names cannot tell), and a file that cannot be read is a recording of its own.

Stimuli: for each item, each system's output ``exp/<system>/<split>/<mixture>`` and the mixture
itself (the anchor, system name ``mixture``). Each gets a hidden id, the first 12 hex digits of
``sha256("<seed>/<mixture>/<system>")``, so names never reach the browser and the same seed always
gives the same test. Each item also has a reference id: the mixture, offered on every screen for
comparison, under a name different from the anchor's. Playback copies are loudness-matched (see
:mod:`lasskit.listening.loudness`); the outputs themselves are never changed.

Creating checks every option, the split and every system's outputs before anything is written,
builds the new test in a hidden sibling folder (``listen/.NAME.new-*``) and only then swaps it
in: ``--force`` replaces an existing test only once the new one is complete, and a refused or
failed create leaves the old test (ratings included) as it was.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lasskit import SAMPLE_RATE
from lasskit.atomic import FILE_MODE, write_text
from lasskit.errors import UsageError, WorkError, os_error

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

    def stimulus_seconds(self) -> dict[str, float]:
        """``{stimulus id: its clip's length in seconds}`` (a test made before per-clip lengths were
        kept gives every stimulus of an item the item's ``seconds``)."""
        out = {}
        for it in self.items:
            own = it.get("durations") or {}
            for sid in it["stimuli"].values():
                out[sid] = float(own.get(sid, it.get("seconds", 0)) or 0)
        return out

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
    length_differs: list[str] = field(default_factory=list)
    """``system/mixture`` of outputs whose length differs from their mixture's by more than 10 ms."""
    links: list[tuple[str, str]] = field(default_factory=list)  # (rater, token)


def hidden_id(seed: int, mixture: str, system: str) -> str:
    return hashlib.sha256(f"{seed}/{mixture}/{system}".encode()).hexdigest()[:12]


def recording_of(row: dict, mixture_dir: str | os.PathLike | None = None) -> str:
    """The recording a row comes from (see the module docstring)."""
    for column in ("recording", "source_id"):
        value = row.get(column)
        if isinstance(value, str) and value.strip():
            return "column:" + value.strip()
    if mixture_dir is not None:
        try:
            return "content:" + hashlib.sha256((Path(mixture_dir) / row["mixture"]).read_bytes()).hexdigest()
        except OSError:
            pass
    return "file:" + row["mixture"]


def select_items(rows: list[dict], items: int | None, seed: int,
                 mixture_dir: str | os.PathLike | None = None) -> list[dict]:
    """All rows (``items`` None or >= len) or a seeded sample stratified over recordings (see the
    module docstring; ``mixture_dir`` holds the mixture files), in split order."""
    if items is None or items >= len(rows):
        return list(rows)
    if items < 1:
        raise UsageError(f"--items {items}: must be at least 1")
    rng = np.random.default_rng(seed)
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(recording_of(row, mixture_dir), []).append(i)
    keys = sorted(groups)
    order = [keys[i] for i in rng.permutation(len(keys))]
    queues = [[groups[k][j] for j in rng.permutation(len(groups[k]))] for k in order]
    chosen: list[int] = []
    while len(chosen) < items:
        for q in queues:
            if q and len(chosen) < items:
                chosen.append(q.pop(0))
    return [rows[i] for i in sorted(chosen)]


SERVING_LOCK = ".serving.lock"
"""Held (shared) by every ``listen serve`` of the test; ``create --force`` refuses while it is held."""


@contextmanager
def serving(root: Path):
    """Mark the test at ``root`` as served for the duration (a shared ``flock``, the pid in the file)."""
    try:
        import fcntl
    except ImportError:  # no flock: nothing to mark
        yield
        return
    path = Path(root) / SERVING_LOCK
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    except OSError as exc:
        raise os_error(exc, path) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        os.pwrite(fd, f"{os.getpid():<12}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def server_pid(root: Path) -> str | None:
    """The pid of a ``listen serve`` serving the test at ``root`` now, else None."""
    try:
        import fcntl
    except ImportError:
        return None
    try:
        fd = os.open(Path(root) / SERVING_LOCK, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return None
    except BlockingIOError:
        return os.pread(fd, 16, 0).decode("ascii", "replace").strip() or "?"
    finally:
        os.close(fd)


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
        known = sorted(p.parent.name for p in tests_dir(workspace).glob(f"*/{TEST_JSON}")
                       if not p.parent.name.startswith("."))  # not a create's build folder
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
    gold: int = 2,
    trap: bool = True,
    headphone_check: bool = True,
    training: str | os.PathLike | None = "auto",
) -> CreateReport:
    """Lay out a test (see the module docstring) and register ``raters`` raters (default
    ``raters_per_item``) in its database; returns the report with each rater's token.

    Quality control (:mod:`lasskit.listening.qc`): ``gold`` known-answer screens, a trapping
    screen (``trap``), the volume/headphone check (``headphone_check``) and the training page
    (``training``: ``"auto"`` for lasskit's proposal, a CSV file of the team's examples, or None).

    Everything is checked before anything is written; the test is built beside its final place
    and swapped in at the end (an existing test is removed only then, with ``force``)."""
    from lasskit.listening.scales import load_scales
    from lasskit.separation import resolve_split_dir
    from lasskit.splits import read_split

    # 1. every option, before reading anything
    if not NAME_RE.match(name):
        raise UsageError(f"--name {name!r}: use letters, digits, '.', '_' or '-' (at most 64, no '/')")
    models = list(dict.fromkeys(models))
    if not models:
        raise UsageError("--models: name at least one system with outputs under exp/<model>/<split>/")
    if ANCHOR in models:
        raise UsageError(f"--models: {ANCHOR!r} is the name of the anchor (the unprocessed mixture); rename that system")
    if items is not None and items < 1:
        raise UsageError(f"--items {items}: must be at least 1")
    if raters_per_item < 1:
        raise UsageError(f"--raters-per-item {raters_per_item}: must be at least 1")
    raters = raters_per_item if raters is None else raters
    if raters < 1:
        raise UsageError(f"--raters {raters}: must be at least 1")
    if repeats is not None and repeats < 0:
        raise UsageError(f"--repeats {repeats}: must be 0 or more")
    if seed < 0:
        raise UsageError(f"--seed {seed}: must be 0 or more")
    if not 0 <= gold <= 20:
        raise UsageError(f"--gold {gold}: must be from 0 to 20")
    if not (isinstance(target_lufs, (int, float)) and math.isfinite(target_lufs) and -60.0 <= target_lufs <= -10.0):
        raise UsageError(f"--target-lufs {target_lufs}: use a level between -60 and -10 LUFS")
    # 2. the inputs: wording, split, every system's outputs
    scales = load_scales(scales_file)
    split_dir = resolve_split_dir(split, workspace)
    sp = read_split(split_dir)
    root = tests_dir(workspace) / name
    exists = (root / TEST_JSON).exists() or (root / DB_NAME).exists()
    if exists and not force:
        raise UsageError(f"{root}: a test of this name exists; pick another --name or pass --force to replace it (its ratings are lost)")
    pid = server_pid(root) if exists else None
    if pid is not None:
        raise UsageError(f"{root}: `lasskit listen serve` (pid {pid}) is serving this test to raters; stop it (Ctrl-C) "
                         "before replacing the test with --force")
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root}: a file is in the way of the test folder; remove it or pick another --name")
    if not exists and root.is_dir() and any(root.iterdir()):
        raise UsageError(f"{root}: a folder that is not a listening test is in the way; move it or pick another --name")
    rows = sp.frame.to_dict("records")
    chosen = select_items(rows, items, seed, split_dir / "mixture")
    missing = []
    for m in models:
        out_dir = workspace.output_dir(m, sp.name)
        if not out_dir.is_dir():
            raise UsageError(f"{out_dir}: no outputs of model {m!r} for split {sp.name!r}; run `lasskit separate --split {sp.name} --model {m}`")
        missing += [f"{m}/{r['mixture']}" for r in chosen if not (out_dir / r["mixture"]).is_file()]
    missing += [f"mixture/{r['mixture']}" for r in chosen if not sp.mixture_path(r["mixture"]).is_file()]
    if missing:
        more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
        raise UsageError(f"missing outputs: {', '.join(missing[:5])}{more}; run `lasskit separate` for them first")

    from lasskit.listening.qc import propose_training, read_training_csv

    if training is None:
        examples = None
    elif str(training) == "auto":
        examples = propose_training(workspace, chosen, sp, seed)
    else:
        examples = read_training_csv(training)
    qc_options = {"gold": gold, "trap": trap, "headphones": headphone_check, "training": examples}

    systems = models + ([ANCHOR] if anchor else [])
    n_items = len(chosen)
    k = min(raters_per_item, raters)
    items_per_rater = max(1, math.ceil(n_items * k / raters))
    screens = items_per_rater * len(systems)
    repeats = max(2, round(0.1 * screens)) if repeats is None else repeats
    repeats = min(repeats, screens)

    # 3. build beside, swap at the end
    import shutil

    parent = tests_dir(workspace)
    for stale in parent.glob(f".{name}.new-*"):  # a create killed before its swap
        shutil.rmtree(stale, ignore_errors=True)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=f".{name}.new-", dir=parent))
        os.chmod(building, 0o777 & ~(0o666 & ~FILE_MODE))  # a normal folder, not mkdtemp's 0700
    except OSError as exc:
        raise os_error(exc, parent) from None
    try:
        report = _build(workspace, sp, building, root, name, models, systems, chosen, seed, anchor, scales,
                        target_lufs, raters_per_item, items_per_rater, repeats, raters, qc_options)
        if root.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{name}.old-", dir=parent))
            os.replace(root, old / name)
            os.replace(building, root)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(building, root)
    except OSError as exc:
        shutil.rmtree(building, ignore_errors=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):  # the build folder is gone: name the test, not it
            old = " (the old test is as it was)" if exists else ""
            raise WorkError(f"{root}: no space left on the device while building the test; nothing was written"
                            f"{old}: free some space (or use a workspace on another disk) and run the same "
                            "command again") from None
        raise os_error(exc, getattr(exc, "filename", None) or building) from None
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return report


def _build(workspace, sp, building: Path, root: Path, name: str, models, systems, chosen, seed, anchor, scales,
           target_lufs, raters_per_item, items_per_rater, repeats, raters, qc_options) -> CreateReport:
    """Write a complete test into ``building`` (it will become ``root``)."""
    from lasskit import audio
    from lasskit.listening.loudness import match_loudness
    from lasskit.listening.qc import build_qc
    from lasskit.listening.store import Store

    test_items, csv_rows = [], []
    report = CreateReport(root, len(chosen), systems, 0, 0, target_lufs)
    for k, row in enumerate(chosen):
        mix = row["mixture"]
        entry = {"item": f"i{k:03d}", "mixture": mix, "query": row["query"],
                 "reference": hidden_id(seed, mix, "<reference>"), "stimuli": {}}
        entry["reference_audio"] = hidden_id(seed, mix, ANCHOR)  # the mixture's playback copy
        frames: dict[str, int] = {}
        for system in [*systems, ANCHOR] if not anchor else systems:
            src = sp.mixture_path(mix) if system == ANCHOR else workspace.output_dir(system, sp.name) / mix
            try:
                signal = audio.load(src, SAMPLE_RATE)
            except Exception as exc:
                raise WorkError(f"{src}: cannot be read ({exc}); re-create it")
            frames[system] = len(signal)
            sid = hidden_id(seed, mix, system)
            copy, match = match_loudness(signal, SAMPLE_RATE, target_lufs)
            audio.write(building / "audio" / f"{sid}.wav", copy, SAMPLE_RATE, "pcm16")
            if match.silent:
                report.silent.append(sid)
            elif match.shortfall > 0.05:
                report.limited.append((sid, match.shortfall))
            if system not in systems:
                continue  # the reference copy only, not rated
            entry["stimuli"][system] = sid
            seconds = round(len(signal) / SAMPLE_RATE, 3)
            entry.setdefault("seconds", seconds)
            entry.setdefault("durations", {})[sid] = seconds  # the fast rule times each clip by its own length
            csv_rows.append({
                "stimulus": sid, "item": entry["item"], "system": system, "mixture": mix,
                "source": os.path.relpath(src, workspace.root),
                "loudness_lufs": "" if match.silent else f"{match.loudness:.2f}",
                "gain_db": f"{match.gain_db:.2f}", "shortfall_lu": f"{match.shortfall:.2f}",
                "silent": int(match.silent),
            })
        report.length_differs += [f"{m}/{mix}" for m in models  # 10 ms apart at 16 kHz: a cut or padded output
                                  if abs(frames[m] - frames[ANCHOR]) > SAMPLE_RATE // 100]
        test_items.append(entry)
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
        "qc": build_qc(building, seed, target_lufs, **qc_options),
    }
    write_text(building / TEST_JSON, json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    report.stimuli = len(csv_rows)
    _write_stimuli_csv(building / STIMULI_CSV, csv_rows)
    store = Store(load_test(building))
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
