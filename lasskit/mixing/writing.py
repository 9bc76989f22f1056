"""Writing a planned mixture set to disk (``lasskit mix``): files, CSVs, fingerprints, report.

**What ties a row to what made it.** Row ``i``'s bytes are fixed by the target's and the noise's
files, the two crop offsets, the segment length and the SNR. Their fingerprint
(:func:`row_fingerprint`: BLAKE2b-128 of the two clips' file digests, offsets, length, SNR and
:data:`WRITER_VERSION`) goes into ``mixtures.csv`` (column ``fingerprint``) and, with each of the
row's three files' size and mtime, into the split's ledger (``provenance.json``, see
:mod:`lasskit.provenance`). A re-run (the same command, or ``--overwrite`` with other options)
rewrites exactly the rows whose fingerprint changed or whose files changed on disk, deletes the
files of rows that are no longer in the set, and says how many it redid and why; an unchanged
re-run decodes nothing (clip activity and digests come from the activity cache in
``data/splits/.cache``, gains from the ledger). ``mixtures.csv`` is removed before any file of a changed set is written
and written again last, so a folder never pairs an old table with new audio, or the reverse.
:func:`mixture_fingerprints` gives a later stage each mixture's fingerprint while its file is the
one ``mix`` wrote (a ``stat``, no hashing).

**Columns of mixtures.csv** (:data:`MIX_COLUMNS`): ``mixture, query, source, noise, snr``
(dB over the whole segment), ``snr_active`` (dB over the 0.1 s frames where the target is active;
``inf`` if the noise is silent there), ``source_active`` (s of active target in the segment),
``source_id, noise_id, source_labels, noise_labels, label_sources`` (JSON: where each clip's
labels came from: given, keywords, caption, ...), ``offsets`` and ``gains`` (JSON; they rebuild
the row exactly: :func:`rebuild_row`), ``source_corpus, noise_corpus, seed, fingerprint``.

**--official-csv** writes the organizers' ``source, noise, snr, caption`` file only when it
describes every row exactly: each target exactly ``length`` samples long and each noise taken from
its start (shorter noises are zero-padded by both). Otherwise it is refused before any audio is
written (the CSV cannot carry crops or padding; ``mixtures.csv`` rebuilds every row).

Files are written by :func:`write_float_wav`: the header and the float32 samples in one
``writev`` to a temporary file, renamed over the output (as :mod:`lasskit.atomic` does; same bytes
as ``lasskit.audio.write(..., "float")``), from per-process buffers reused row after row.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from lasskit import SAMPLE_RATE, audio
from lasskit.atomic import TMP_SUFFIX, remove_leftovers, write_text_if_changed
from lasskit.errors import AudioError, UsageError
from lasskit.failures import write_failures
from lasskit.mixing.planning import (
    ACTIVITY_CACHE,
    MixSpec,
    PlannedRow,
    PoolReport,
    plan_mixtures,
    prepare_planner,
    scan_clips,
)
from lasskit.mixing.segments import (
    MixedSegments,
    _scratch,
    frame_energies,
    gain_segments,
    mix_segments,
    read_segment,
)
from lasskit.official import mixture_name
from lasskit.parallel import run_parallel

MIX_JSON = "mix.json"
"""Options, inputs, data rules and counts of a split made by :func:`make_mixtures`."""
MIX_COLUMNS = (
    "mixture", "query", "source", "noise", "snr", "snr_active", "source_active", "source_id", "noise_id",
    "source_labels", "noise_labels", "label_sources", "offsets", "gains", "source_corpus", "noise_corpus",
    "seed", "fingerprint",
)
OFFICIAL_HEADER = "source, noise, snr, caption"
"""Header of the organizers' mixing CSV, spaces included, as in lass_synthetic_validation.csv."""
WRITER_VERSION = 2
"""Changes whenever the arithmetic or the file layout of a row changes (part of every fingerprint)."""
ROW_SETTINGS = {"stage": "mix", "format": "float32 WAV, 16 kHz mono", "writer": WRITER_VERSION}
_OUTPUTS = ("mixture", "source", "noise")


def row_fingerprint(target_digest: str, noise_digest: str, target_offset: int, noise_offset: int,
                    length: int, snr: float) -> str:
    """BLAKE2b-128 of what fixes a row's bytes (module doc)."""
    from lasskit.provenance import digest_bytes

    text = f"{WRITER_VERSION}|{target_digest}|{noise_digest}|{target_offset}|{noise_offset}|{length}|{float(snr)!r}"
    return digest_bytes(text.encode("utf-8"))


@dataclass(frozen=True)
class WriteJob:
    """One row to write: clips, offsets (samples), length (samples), SNR (dB), where.

    ``active``: the target segment's active frames (packed bits), for ``snr_active``.
    """

    name: str
    target_path: str
    target_offset: int
    noise_path: str
    noise_offset: int
    length: int
    snr: float
    split_dir: str
    active: bytes = b""
    hop: int = 1600


_HEADERS: dict[int, bytes] = {}


def _float_header(frames: int) -> bytes:
    head = _HEADERS.get(frames)
    if head is None:
        probe = audio.encode_wav(np.zeros(1, dtype=np.float32), SAMPLE_RATE, "float")
        # same layout as encode_wav: sizes patched for ``frames`` samples
        body_size = len(probe) - 8 - 4 + 4 * frames
        head = bytearray(probe[:-4])
        head[4:8] = body_size.to_bytes(4, "little")
        fact = head.find(b"fact")
        head[fact + 8:fact + 12] = frames.to_bytes(4, "little")
        data = head.rfind(b"data")
        head[data + 4:data + 8] = (4 * frames).to_bytes(4, "little")
        head = _HEADERS[frames] = bytes(head)
    return head


def write_float_wav(path: str | os.PathLike, x: np.ndarray) -> None:
    """Write mono float32 ``x`` as a 16 kHz float WAV, atomically (bytes of ``audio.write(path, x, 16000, "float")``)."""
    x = np.asarray(x)
    if x.dtype != np.float32 or x.ndim != 1 or sys.byteorder != "little" or not x.flags.c_contiguous:
        audio.write(path, x, SAMPLE_RATE, "float")
        return
    path = os.fspath(path)
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, f".{name}.{os.getpid()}{TMP_SUFFIX}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        parts = [memoryview(_float_header(len(x))), memoryview(x).cast("B")]
        while parts:
            done = os.writev(fd, parts)
            while parts and done >= len(parts[0]):
                done -= len(parts[0])
                parts.pop(0)
            if parts and done:
                parts[0] = parts[0][done:]
    except BaseException as exc:
        os.close(fd)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and exc.filename is None:  # a full disk: name the file
            raise OSError(exc.errno, exc.strerror, path) from exc
        raise
    os.close(fd)
    os.replace(tmp, path)


def _write_row(job: WriteJob) -> dict:
    """Read both segments, mix, write source and noise, then the mixture; return gains and SNRs."""
    length = job.length
    s = read_segment(job.target_path, job.target_offset, length, _scratch("s32", length, np.float32))
    n = read_segment(job.noise_path, job.noise_offset, length, _scratch("n32", length, np.float32))
    out = (_scratch("m_out", length, np.float32), _scratch("s_out", length, np.float32),
           _scratch("n_out", length, np.float32))
    try:
        m = mix_segments(s, n, job.snr, out=out, reuse_source=True)
    except AudioError as exc:
        raise AudioError(f"{Path(job.target_path).name} + {Path(job.noise_path).name}: {exc}")
    snr_active = _active_snr(s, n, m, job)
    root = job.split_dir
    write_float_wav(os.path.join(root, "source", job.name), m.source)
    write_float_wav(os.path.join(root, "noise", job.name), m.noise)
    write_float_wav(os.path.join(root, "mixture", job.name), m.mixture)
    return {"source_gain": m.source_gain, "noise_gain": m.noise_gain, "clip_gain": m.clip_gain,
            "snr_active": snr_active}


def _active_snr(s: np.ndarray, n: np.ndarray, m: MixedSegments, job: WriteJob) -> float:
    """``10*log10(sum_active(source^2) / sum_active(noise^2))`` over the target's active frames (dB)."""
    frames = -(-job.length // job.hop)
    mask = np.unpackbits(np.frombuffer(job.active, dtype=np.uint8), count=frames).astype(bool) \
        if job.active else np.ones(frames, dtype=bool)
    if not mask.any():
        return float("nan")
    fs = m.source_frames if m.source_frames is not None else frame_energies(s, job.hop)
    fn = m.noise_frames if m.noise_frames is not None else frame_energies(n, job.hop)
    es = float(fs[mask].sum()) * m.source_gain ** 2
    en = float(fn[mask].sum()) * m.noise_gain ** 2
    if en <= 0:
        return float("inf")
    return float(10 * np.log10(es / en)) if es > 0 else float("-inf")


@dataclass
class MixReport:
    """What :func:`make_mixtures` (or :func:`mix_from_official`) did."""

    split_dir: Path
    rows: int = 0  # rows in mixtures.csv
    written: int = 0  # rows written by this run
    resumed: int = 0  # rows already there and current (kept)
    audio_seconds: float = 0.0
    targets_available: int = 0  # targets and noises after filters, before skipping
    noises_available: int = 0
    distinct_targets: int = 0
    distinct_noises: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> clips
    without_noise: list[str] = field(default_factory=list)  # target ids with no class-disjoint noise
    snr_histogram: dict[int, int] = field(default_factory=dict)  # floor(snr dB) -> rows
    failures: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    official_csv: Path | None = None
    complete: bool = True  # False when rows failed to write: re-run the same command
    seconds: float = 0.0
    redone: dict[str, int] = field(default_factory=dict)  # why rows were (re)written -> rows
    removed: int = 0  # files of rows no longer in the set, deleted
    derived_rows: int = 0  # rows whose target or noise labels were derived (not given)
    pool: PoolReport | None = None
    active_quartiles: tuple[float, float, float] | None = None  # share of the target segment active
    low_active_rows: int = 0  # rows whose target segment is less than half active
    padded: dict[str, int] = field(default_factory=dict)  # "target"/"noise" -> rows zero-padded (clip < --duration)
    cropped: dict[str, int] = field(default_factory=dict)  # "target"/"noise" -> rows taking part of a longer clip
    min_active: float = 0.0  # floor used (s)
    snr_active_median_gap: float | None = None  # median(snr_active - snr), dB

    @property
    def csv_path(self) -> Path:
        return self.split_dir / "mixtures.csv"


def _sha(path: Path) -> str:
    from lasskit.provenance import file_digest

    return file_digest(path)


def _read_state(split_dir: Path) -> dict | None:
    try:
        state = json.loads((split_dir / MIX_JSON).read_text(encoding="utf-8"))
        return state if isinstance(state, dict) else None
    except (OSError, ValueError):
        return None


def _check_split_dir(split_dir: Path, options: dict, overwrite: bool) -> str:
    """``"new"``, ``"same"`` (made by this command: update in place) or ``"replace"`` (``--overwrite``)."""
    from lasskit.splits import MIXTURES_CSV

    if split_dir.exists() and not split_dir.is_dir():
        raise UsageError(f"{split_dir}: exists and is not a folder; choose another --name")
    if not split_dir.is_dir() or not any(split_dir.iterdir()):
        return "new"
    state = _read_state(split_dir)
    if state is not None and state.get("options") == json.loads(json.dumps(options)):
        return "same"
    if overwrite:
        return "replace"
    if state is not None:
        from lasskit.provenance import settings_diff

        diff = ", ".join(settings_diff(state.get("options") or {}, json.loads(json.dumps(options))))
        if (split_dir / MIXTURES_CSV).is_file():
            raise UsageError(f"{split_dir}: split already exists, made with other options ({diff}); "
                             "pass --overwrite to replace it or choose another --name")
        raise UsageError(f"{split_dir}: an unfinished split made with other options or inputs is here ({diff}); "
                         "re-run its own command to finish it, or pass --overwrite")
    if (split_dir / MIXTURES_CSV).is_file():
        raise UsageError(f"{split_dir}: split already exists; pass --overwrite to replace it or choose another --name")
    raise UsageError(f"{split_dir}: folder is not empty and was not made by `lasskit mix`; "
                     "pass --overwrite or choose another --name")


def _clear_split(split_dir: Path) -> None:
    """Remove what a previous mix wrote here (its CSVs, state, ledger and WAV files), nothing else."""
    from lasskit.provenance import LEDGER_FILE

    if not split_dir.is_dir():
        return
    for name in ("mixtures.csv", MIX_JSON, "failures.csv", LEDGER_FILE):
        (split_dir / name).unlink(missing_ok=True)
    _remove_leftovers(split_dir, every_wav=True)


def _remove_leftovers(split_dir: Path, every_wav: bool = False) -> None:
    """Temporary files an interrupted run left behind (and, with ``every_wav``, all WAVs)."""
    remove_leftovers(split_dir, recursive=False)
    for sub in _OUTPUTS:
        folder = split_dir / sub
        if not folder.is_dir():
            continue
        remove_leftovers(folder, recursive=False)
        if every_wav:
            for p in folder.iterdir():
                if p.is_file() and p.suffix == ".wav":
                    p.unlink()


def make_mixtures(
    split_dir: str | os.PathLike,
    spec: MixSpec,
    targets: Sequence[str | os.PathLike],
    noises: Sequence[str | os.PathLike] | None = None,
    *,
    splits: Sequence[str] = (),
    datasets: Sequence[str] = (),
    ontology: str | os.PathLike | None = None,
    official_csv: str | os.PathLike | None = None,
    jobs: int | None = None,
    overwrite: bool = False,
    named: Sequence[str | os.PathLike] | None = None,
    reference: Sequence[str | os.PathLike] = (),
    cache_dir: str | os.PathLike | None = None,
) -> MixReport:
    """Write a class-disjoint mixture set to ``split_dir`` (``mixture/``, ``source/``, ``noise/``, CSVs).

    ``targets`` and ``noises`` are manifest paths (``noises`` defaults to ``targets``); ``splits``
    and ``datasets`` keep only clips whose manifest split/dataset is listed. The data rules of
    :mod:`lasskit.mixing.planning` apply: held-out (val/eval) clips only when ``splits`` names
    their split, the challenge's corpora only when named (``named``: the manifests the user named,
    None: all of them); ``reference`` manifests add challenge clips whose recordings training
    mixtures must not use. ``ontology`` is an AudioSet ``ontology.json``.

    A folder made by the same command is brought up to date (only changed rows are rewritten);
    one made with other options is refused unless ``overwrite``, and then replaced row by row.
    ``official_csv`` also writes the organizers' ``source, noise, snr, caption`` file there.
    ``cache_dir`` keeps the clips' activity and digests between runs (default ``<split_dir>/../.cache``,
    i.e. ``data/splits/.cache``).
    """
    start = time.perf_counter()
    spec.validate()
    split_dir = Path(split_dir)
    target_paths = [Path(p).resolve() for p in targets]
    noise_paths = [Path(p).resolve() for p in (noises if noises else targets)]
    named_paths = None if named is None else [Path(p).resolve() for p in named]
    reference_paths = sorted({Path(p).resolve() for p in reference} - set(target_paths) - set(noise_paths))
    if not target_paths:
        raise UsageError("no manifest to draw targets from; run `lasskit prepare` or pass MANIFEST")
    if ontology is not None and not Path(ontology).is_file():
        raise UsageError(f"{ontology}: no such ontology file; pass AudioSet's ontology.json to --ontology")
    options = {
        "spec": asdict(spec), "split": split_dir.name,
        "targets": [str(p) for p in target_paths], "noises": [str(p) for p in noise_paths],
        "splits": sorted(splits), "datasets": sorted(datasets),
        "ontology": str(Path(ontology).resolve()) if ontology else None,
        "named": None if named_paths is None else sorted(str(p) for p in named_paths),
        "official_csv": str(Path(official_csv).resolve()) if official_csv else None,
    }
    mode = _check_split_dir(split_dir, options, overwrite)
    earlier_csvs = _official_files(_read_state(split_dir))
    inputs = {str(p): _sha(p) for p in dict.fromkeys([*target_paths, *noise_paths, *reference_paths]) if p.is_file()}
    if ontology:
        inputs[str(Path(ontology).resolve())] = _sha(Path(ontology))

    cache_dir = split_dir.parent / ACTIVITY_CACHE if cache_dir is None else Path(cache_dir)
    prepared = prepare_planner(spec, target_paths, noise_paths, splits=splits, datasets=datasets,
                               ontology=ontology, named=named_paths, reference=reference_paths, jobs=jobs,
                               cache_dir=cache_dir)
    planner = prepared.planner
    skipped = prepared.skipped
    report = MixReport(split_dir, targets_available=prepared.targets_available,
                       noises_available=prepared.noises_available, pool=prepared.pool,
                       failures=list(prepared.failures), notes=list(prepared.notes),
                       min_active=spec.min_active_seconds)
    from lasskit.mixing.planning import ActivityCache

    cache = ActivityCache(spec.silence_db, cache_dir)
    rows, why = plan_mixtures(planner, lambda clips: scan_clips(clips, spec.silence_db, jobs, cache))
    for key, reason in sorted(why.items()):
        skipped["silent clip" if reason == "silent" else "unreadable audio"] += 1
        if reason != "silent":
            report.failures.append((key, reason))
    report.without_noise = [t.id for t in planner.without_noise]
    if planner.without_noise:
        skipped["target with no class-disjoint noise"] += len(planner.without_noise)
    report.skipped = dict(sorted(skipped.items()))
    _pool_notes(report)
    if not rows:
        raise UsageError("no mixture possible: no target has a usable noise that shares no class with it "
                         f"({len(planner.without_noise)} target(s) without one, e.g. {', '.join(report.without_noise[:3])})")
    if official_csv:
        _check_official(rows, planner, spec, official_csv)

    total = len(rows)
    names = [mixture_name(split_dir.name, r.index, total) for r in rows]
    digests = {k: a.digest for k, a in planner.activity.items()}
    prints = [row_fingerprint(digests[r.target.key], digests[r.noise.key], r.target_offset, r.noise_offset,
                              spec.length, r.snr) for r in rows]

    from lasskit.provenance import Ledger, settings_id

    if mode == "replace" and not (split_dir / MIX_JSON).is_file():
        _clear_split(split_dir)  # a split mix did not make (no ledger): nothing in it can be reused
    ledger = Ledger(split_dir)
    redo: list[int] = []
    reasons: Counter = Counter()
    row_settings = settings_id(ROW_SETTINGS)
    root = str(split_dir)
    for i, (name, fp) in enumerate(zip(names, prints)):
        why_row = None
        for sub in _OUTPUTS:
            rec = ledger.records.get(f"{sub}/{name}")
            if rec is not None and rec.input == fp and rec.settings == row_settings:
                try:  # Ledger.check's test, without rebuilding the settings id 9000 times
                    st = os.stat(os.path.join(root, sub, name))
                    if st.st_size == rec.size and st.st_mtime_ns == rec.mtime_ns:
                        continue
                except OSError:
                    pass
            why_row = ledger.check(f"{sub}/{name}", split_dir / sub / name, fp, ROW_SETTINGS)
            if why_row is not None:
                break
        if why_row is not None:
            redo.append(i)
            reasons[why_row.split(":")[0]] += 1
    keep = {f"{sub}/{n}" for n in names for sub in _OUTPUTS}
    stale = [rec for rec in ledger.records if rec not in keep]
    stale_files = _stale_files(split_dir, set(names))
    state_text = _state_json(options, inputs, None, report, official_files=earlier_csvs)
    csv_text = None
    if not redo and not stale and not stale_files:
        records = [_record(n, r, ledger.get(f"mixture/{n}").extra, spec, fp, planner)
                   for n, r, fp in zip(names, rows, prints)]
        csv_text = _csv_text(records)
        current = split_dir / "mixtures.csv"
        if current.is_file() and current.read_bytes() == csv_text.encode("utf-8"):
            _finish(report, rows, records, spec, split_dir, options, inputs, official_csv, csv_text, start,
                    written=0, earlier_csvs=earlier_csvs, activity=planner.activity)
            return report

    # something changes: the old table goes first, so that no reader pairs it with new audio
    split_dir.mkdir(parents=True, exist_ok=True)
    (split_dir / "mixtures.csv").unlink(missing_ok=True)
    write_text_if_changed(split_dir / MIX_JSON, state_text)
    _remove_leftovers(split_dir)
    for rec in stale:
        ledger.forget(rec)
    for p in stale_files:
        p.unlink(missing_ok=True)
    report.removed = len(stale_files)
    for sub in _OUTPUTS:
        (split_dir / sub).mkdir(exist_ok=True)
    for i in redo:  # forget first: a file rewritten now but not recorded is redone next time
        for sub in _OUTPUTS:
            ledger.forget(f"{sub}/{names[i]}")
    if stale or redo:
        ledger.save()

    hop = spec.hop
    width = -(-spec.length // hop)
    jobs_list = []
    for i in redo:
        r = rows[i]
        a = planner.activity[r.target.key]
        first = r.target_offset // hop
        mask = np.zeros(width, dtype=bool)
        part = a.active[first:first + width]
        mask[:len(part)] = part
        jobs_list.append(WriteJob(names[i], str(r.target.path), r.target_offset, str(r.noise.path), r.noise_offset,
                                  spec.length, r.snr, str(split_dir), np.packbits(mask).tobytes(), hop))
    outcomes = run_parallel(_write_row, jobs_list, jobs, desc=f"mix {split_dir.name}", unit="mixture") if jobs_list else []
    failed: set[int] = set()
    for i, o in zip(redo, outcomes):
        if not o.ok:
            report.failures.append((names[i], o.error))
            failed.add(i)
            continue
        for sub in _OUTPUTS:
            ledger.record(f"{sub}/{names[i]}", split_dir / sub / names[i], prints[i], ROW_SETTINGS,
                          extra=o.value if sub == "mixture" else None)
    ledger.save()
    report.redone = dict(sorted(reasons.items()))
    write_failures(split_dir / "failures.csv", report.failures, keep_empty=True)
    if failed:  # rows failed: leave the split unfinished so that a re-run retries them
        report.complete = False
        report.rows = total - len(failed)
        report.written = len(redo) - len(failed)
        report.resumed = total - len(redo)
        report.seconds = time.perf_counter() - start
        return report
    records = [_record(n, r, ledger.get(f"mixture/{n}").extra, spec, fp, planner)
               for n, r, fp in zip(names, rows, prints)]
    _finish(report, rows, records, spec, split_dir, options, inputs, official_csv, _csv_text(records), start,
            written=len(redo), earlier_csvs=earlier_csvs, activity=planner.activity)
    return report


def _stale_files(split_dir: Path, names: set[str]) -> list[Path]:
    """WAV files in mixture/, source/, noise/ that are not rows of the new set."""
    out = []
    for sub in _OUTPUTS:
        folder = split_dir / sub
        if folder.is_dir():
            with os.scandir(folder) as it:
                out += [Path(e.path) for e in it if e.name.endswith(".wav") and e.name not in names and e.is_file()]
    return sorted(out)


def clip_length(row: PlannedRow, role: str, activity: dict) -> int | None:
    """Samples of the row's target or noise clip (as scanned; else the manifest's duration)."""
    clip = row.target if role == "target" else row.noise
    scanned = activity.get(clip.key)
    if scanned is not None:
        return int(scanned.num_samples)
    return int(round(clip.duration * SAMPLE_RATE)) if clip.duration else None


def _finish(report: MixReport, rows: list[PlannedRow], records: list[dict], spec: MixSpec, split_dir: Path,
            options: dict, inputs: dict, official_csv, csv_text: str, start: float, written: int,
            earlier_csvs: Sequence[dict] = (), activity: dict | None = None) -> None:
    """Counts and statistics, then the official CSV, mixtures.csv and mix.json (in that order)."""
    report.rows = len(records)
    report.written = written
    report.resumed = len(records) - written
    report.audio_seconds = report.rows * spec.length / SAMPLE_RATE
    report.distinct_targets = len({r.target.key for r in rows})
    report.distinct_noises = len({r.noise.key for r in rows})
    report.snr_histogram = dict(sorted(Counter(int(np.floor(r.snr)) for r in rows).items()))
    report.derived_rows = sum(1 for r in rows if r.target.derived_labels or r.noise.derived_labels)
    activity = activity or {}
    for role in ("target", "noise"):
        lengths = [clip_length(r, role, activity) for r in rows]
        report.padded[role] = sum(1 for n in lengths if n is not None and n < spec.length)
        report.cropped[role] = sum(1 for n in lengths if n is not None and n > spec.length)
    shares = np.array([float(rec["source_active"]) / spec.duration for rec in records])
    if len(shares):
        q = np.quantile(shares, [0.25, 0.5, 0.75])
        report.active_quartiles = (float(q[0]), float(q[1]), float(q[2]))
        report.low_active_rows = int(np.count_nonzero(shares < 0.5))
    gaps = np.array([float(rec["snr_active"]) - float(rec["snr"]) for rec in records])
    gaps = gaps[np.isfinite(gaps)]
    report.snr_active_median_gap = float(np.median(gaps)) if len(gaps) else None
    if report.derived_rows:
        report.notes.append(f"{report.derived_rows} of {report.rows} row(s) rest on derived labels (target or noise "
                            "labelled from keywords or captions, not given by the corpus)")
    write_failures(split_dir / "failures.csv", report.failures, keep_empty=True)
    official_text = official_csv_text(rows, spec)
    files: list[dict] = []
    if official_csv:
        report.official_csv = Path(official_csv)
        write_text_if_changed(report.official_csv, official_text)
        files.append(_official_record(report.official_csv, official_text.encode("utf-8")))
    files += _retire_official_csvs(earlier_csvs, {f["path"] for f in files}, official_text, report)
    write_text_if_changed(split_dir / "mixtures.csv", csv_text)
    write_text_if_changed(split_dir / MIX_JSON, _state_json(options, inputs, report, report, official_files=files))
    report.seconds = time.perf_counter() - start


def _official_record(path: Path, data: bytes) -> dict:
    import hashlib

    return {"path": str(Path(path).resolve()), "sha256": hashlib.sha256(data).hexdigest()}


def _official_files(state: dict | None) -> list[dict]:
    """The organizers' CSVs an earlier run of this split wrote (mix.json), with their checksums."""
    if not state:
        return []
    files = state.get("official_csv_files")
    if isinstance(files, list):
        return [f for f in files if isinstance(f, dict) and isinstance(f.get("path"), str)]
    path = (state.get("options") or {}).get("official_csv")  # a mix.json from before the checksums
    return [{"path": path, "sha256": None}] if isinstance(path, str) else []


def _retire_official_csvs(earlier: Sequence[dict], written: set[str], text: str, report: MixReport) -> list[dict]:
    """An organizers' CSV an earlier run wrote must not outlive the rows it describes.

    Still equal to this split's rows: kept (and still tracked). Unchanged since lasskit wrote it
    (same checksum) but describing replaced rows: removed, with a warning. Changed since by
    someone else: left in place, with a warning naming it. Returns the files still tracked.
    """
    import hashlib

    kept = []
    for record in earlier:
        path = Path(record["path"])
        if str(path) in written or not path.is_file():
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if data == text.encode("utf-8"):
            kept.append(record)
        elif record.get("sha256") and hashlib.sha256(data).hexdigest() == record["sha256"]:
            path.unlink(missing_ok=True)
            report.warnings.append(f"{path}: removed the organizers' CSV an earlier `lasskit mix` wrote for this "
                                   "split: it described rows that were replaced; pass --official-csv to write it "
                                   "for the new rows")
        else:
            report.warnings.append(f"{path}: the organizers' CSV written for an earlier version of this split no "
                                   "longer describes it (it was edited since, so it was left in place); delete it "
                                   f"or pass --official-csv {path}")
    return kept


def _pool_notes(report: MixReport) -> None:
    pool = report.pool
    if pool is None:
        return
    if pool.held_out:
        shown = ", ".join(f"{k} {v}" for k, v in sorted(pool.held_out.items()))
        report.notes.append(f"left out validation/evaluation clips not asked for ({shown}); name a split with "
                            "--split (or the challenge's corpus as MANIFEST) to use them")
    if pool.held_out_used:
        shown = ", ".join(f"{k} {v}" for k, v in sorted(pool.held_out_used.items()))
        report.warnings.append(f"this set uses validation/evaluation clips ({shown}): do not train on it")
    if pool.challenge_recordings:
        report.notes.append(f"left out {pool.challenge_recordings} clip(s) that are recordings of the challenge's "
                            "validation/evaluation sets (same Freesound id or same samples)")
    if pool.upload_window and pool.upload_range:
        lo, hi = pool.upload_range
        report.warnings.append(
            f"{pool.upload_window} clip(s) have Freesound ids inside the validation ids' range {lo}-{hi}: they may "
            "have been uploaded in April-October 2023, which the rules forbid for training (an approximation: "
            "check them)")


def _check_official(rows: list[PlannedRow], planner, spec: MixSpec, official_csv) -> None:
    """Refuse --official-csv unless the organizers' formula rebuilds every row (module doc)."""
    bad = 0
    for r in rows:
        t = planner.activity[r.target.key]
        if t.num_samples != spec.length or r.target_offset != 0 or r.noise_offset != 0:
            bad += 1
    if bad:
        raise UsageError(
            f"--official-csv {official_csv}: {bad} of {len(rows)} rows crop or pad their clips (targets not exactly "
            f"{spec.duration:g} s, or noises cropped after their start), which the organizers' source, noise, snr, "
            "caption CSV cannot describe; leave --official-csv out (mixtures.csv's offsets and gains rebuild every "
            "row exactly) or mix clips of exactly --duration")


_LABELS_JSON: dict[tuple[str, ...], str] = {}


def _labels_json(labels: list[str]) -> str:
    key = tuple(labels)
    text = _LABELS_JSON.get(key)
    if text is None:
        if len(_LABELS_JSON) > 100_000:
            _LABELS_JSON.clear()
        text = _LABELS_JSON[key] = json.dumps(labels, ensure_ascii=False)
    return text


def _record(name: str, r: PlannedRow, gains: dict, spec: MixSpec, fingerprint: str, planner) -> dict:
    active_frames = planner.active_frames(r.target.key, r.target_offset)
    active_s = min(spec.duration, active_frames * spec.hop / SAMPLE_RATE)
    snr_active = float(gains.get("snr_active", float("nan")))
    # the JSON cells are written as json.dumps would (same bytes), without its per-call cost
    return {
        "mixture": name, "query": r.query, "source": f"source/{name}", "noise": f"noise/{name}",
        "snr": spec.format_snr(r.snr), "snr_active": _fmt_db(snr_active), "source_active": f"{active_s:.1f}",
        "source_id": r.target.id, "noise_id": r.noise.id,
        "source_labels": _labels_json(r.target.labels), "noise_labels": _labels_json(r.noise.labels),
        "label_sources": f'{{"source": {_labels_json([r.target.label_source])[1:-1]}, '
                         f'"noise": {_labels_json([r.noise.label_source])[1:-1]}}}',
        "offsets": f'{{"source": {r.target_offset}, "noise": {r.noise_offset}}}',
        "gains": f'{{"source": {float(gains["source_gain"])!r}, "noise": {float(gains["noise_gain"])!r}, '
                 f'"clip": {float(gains["clip_gain"])!r}}}',
        "source_corpus": r.target.corpus, "noise_corpus": r.noise.corpus, "seed": str(spec.seed),
        "fingerprint": fingerprint,
    }


def _fmt_db(x: float) -> str:
    if np.isnan(x):
        return ""
    if np.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.4f}"


def _csv_text(records: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(MIX_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return buf.getvalue()


def _state_json(options: dict, inputs: dict, report: MixReport | None, partial: MixReport | None = None,
                official_files: Sequence[dict] = ()) -> str:
    """mix.json: options, inputs, data rules and counts (the same set gives the same bytes), and
    the organizers' CSVs written for these rows (path and sha256), so that a later run that
    replaces the rows can retire them."""
    state = {"options": options, "inputs": inputs, "status": "complete" if report is not None else "running"}
    if official_files:
        state["official_csv_files"] = list(official_files)
    src = report if report is not None else partial
    if src is not None and src.pool is not None:
        state["data"] = src.pool.as_dict()
        state["skipped"] = src.skipped
    if report is not None:
        state["counts"] = {
            "rows": report.rows, "distinct_targets": report.distinct_targets,
            "distinct_noises": report.distinct_noises, "skipped": report.skipped,
            "without_noise": report.without_noise, "derived_label_rows": report.derived_rows,
            "min_active_seconds": report.min_active,
            "target_active_share_quartiles": list(report.active_quartiles) if report.active_quartiles else None,
            "rows_target_under_half_active": report.low_active_rows,
            "rows_zero_padded": report.padded, "rows_cropped_from_longer_clips": report.cropped,
            "snr_histogram": {str(k): v for k, v in report.snr_histogram.items()},
        }
        state["warnings"] = report.warnings
    return json.dumps(state, indent=2, ensure_ascii=False) + "\n"


def official_csv_text(rows: Sequence[PlannedRow], spec: MixSpec) -> str:
    """The organizers' layout: ``source, noise, snr, caption`` with clip ids (header spaces as theirs)."""
    buf = io.StringIO()
    buf.write(OFFICIAL_HEADER + "\n")
    writer = csv.writer(buf, lineterminator="\n")
    for r in rows:
        writer.writerow([r.target.id, r.noise.id, spec.format_snr(r.snr), r.query])
    return buf.getvalue()


def rebuild_row(row: dict, source_path: str | os.PathLike, noise_path: str | os.PathLike,
                length: int) -> MixedSegments:
    """Recompute a ``mixtures.csv`` row's audio (``length`` samples) from its clips, offsets and gains.

    Bit-exact: equal to the written float32 files.
    """
    offsets = json.loads(row["offsets"])
    gains = json.loads(row["gains"])
    s = read_segment(source_path, int(offsets["source"]), length)
    n = read_segment(noise_path, int(offsets["noise"]), length)
    m = gain_segments(s, n, gains["source"], gains["noise"])
    m.clip_gain = float(gains["clip"])
    return m


def mixture_fingerprints(split_dir: str | os.PathLike) -> dict[str, str | None]:
    """Mixture file name -> its row fingerprint while the file is the one ``mix`` wrote, else None.

    A ``stat`` per file against the split's ledger, no hashing: a later stage can tell a mixture
    it has seen from a new one of the same name.
    """
    from lasskit.provenance import Ledger

    split_dir = Path(split_dir)
    ledger = Ledger(split_dir)
    out: dict[str, str | None] = {}
    for key, rec in ledger.records.items():
        if not key.startswith("mixture/"):
            continue
        name = key[len("mixture/"):]
        try:
            st = os.stat(split_dir / key)
        except OSError:
            out[name] = None
            continue
        out[name] = rec.input if (st.st_size, st.st_mtime_ns) == (rec.size, rec.mtime_ns) else None
    return out


__all__ = [
    "MIX_COLUMNS", "MIX_JSON", "OFFICIAL_HEADER", "MixReport", "WriteJob", "make_mixtures", "mixture_fingerprints",
    "official_csv_text", "rebuild_row", "row_fingerprint", "write_float_wav",
]
