"""Writing a planned mixture set to disk (``lasskit mix``): files, CSVs, resume, report."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from lasskit import SAMPLE_RATE, audio
from lasskit.errors import AudioError, UsageError
from lasskit.failures import write_failures
from lasskit.mixing.planning import (
    Candidate,
    ClipActivity,
    MixSpec,
    PlannedRow,
    Planner,
    analyse_clip,
    eligible,
    load_candidates,
    plan_mixtures,
)
from lasskit.mixing.segments import (
    MixedSegments,
    _scratch,
    gain_segments,
    mix_segments,
    read_segment,
)
from lasskit.official import mixture_name
from lasskit.parallel import run_parallel

MIX_JSON = "mix.json"
"""Options and counts of a split made by :func:`make_mixtures` (written before any audio)."""
MIX_COLUMNS = (
    "mixture", "query", "source", "noise", "snr", "source_id", "noise_id", "source_labels", "noise_labels",
    "offsets", "gains", "source_corpus", "noise_corpus", "seed",
)
OFFICIAL_HEADER = "source, noise, snr, caption"
"""Header of the organizers' mixing CSV, spaces included, as in lass_synthetic_validation.csv."""


@dataclass(frozen=True)
class WriteJob:
    """One row to write: clips, offsets (samples), length (samples), SNR (dB), where."""

    name: str
    target_path: str
    target_offset: int
    noise_path: str
    noise_offset: int
    length: int
    snr: float
    split_dir: str


def _write_row(job: WriteJob) -> dict:
    """Read both segments, mix, write source and noise, then the mixture (so a mixture = a complete row).

    A row whose mixture is already complete is not written again (its gains are recomputed).
    """
    s = read_segment(job.target_path, job.target_offset, job.length, _scratch("s32", job.length, np.float32))
    n = read_segment(job.noise_path, job.noise_offset, job.length, _scratch("n32", job.length, np.float32))
    try:
        m = mix_segments(s, n, job.snr)
    except AudioError as exc:
        raise AudioError(f"{Path(job.target_path).name} + {Path(job.noise_path).name}: {exc}")
    root = Path(job.split_dir)
    out = {k: root / k / job.name for k in ("mixture", "source", "noise")}
    done = out["mixture"].exists() and all(_complete(p, job.length) for p in out.values())
    if not done:
        audio.write(out["source"], m.source, SAMPLE_RATE, "float")
        audio.write(out["noise"], m.noise, SAMPLE_RATE, "float")
        audio.write(out["mixture"], m.mixture, SAMPLE_RATE, "float")
    return {"source_gain": m.source_gain, "noise_gain": m.noise_gain, "clip_gain": m.clip_gain, "skipped": done}


def _complete(path: Path, length: int) -> bool:
    try:
        i = audio.info(path)
    except AudioError:
        return False
    return i.sample_rate == SAMPLE_RATE and i.channels == 1 and i.num_samples == length and i.subtype == "FLOAT"


def _activity_of(clips: list[Candidate], silence_db: float, jobs: int | None) -> dict[str, ClipActivity | str]:
    outcomes = run_parallel(partial(analyse_clip, silence_db=silence_db), [c.path for c in clips], jobs,
                            desc="mix: scan clips")
    return {c.key: (o.value if o.ok else o.error) for c, o in zip(clips, outcomes)}


@dataclass
class MixReport:
    """What :func:`make_mixtures` (or :func:`mix_from_official`) did."""

    split_dir: Path
    rows: int = 0  # rows in mixtures.csv
    written: int = 0  # rows written by this run
    resumed: int = 0  # rows already complete from an interrupted run
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
    official_csv: Path | None = None
    complete: bool = True  # False when rows failed to write: re-run the same command
    seconds: float = 0.0

    @property
    def csv_path(self) -> Path:
        return self.split_dir / "mixtures.csv"


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _check_split_dir(split_dir: Path, options: dict, overwrite: bool) -> bool:
    """Refuse to replace a finished split (unless ``overwrite``); True when resuming an unfinished one."""
    from lasskit.splits import MIXTURES_CSV

    state_path = split_dir / MIX_JSON
    if split_dir.exists() and not split_dir.is_dir():
        raise UsageError(f"{split_dir}: exists and is not a folder; choose another --name")
    if overwrite:
        return False
    if (split_dir / MIXTURES_CSV).is_file():
        raise UsageError(f"{split_dir}: split already exists; pass --overwrite to replace it or choose another --name")
    if state_path.is_file():
        try:
            previous = json.loads(state_path.read_text(encoding="utf-8")).get("options")
        except (OSError, ValueError):
            previous = None
        if previous != json.loads(json.dumps(options)):
            raise UsageError(f"{split_dir}: an unfinished split made with other options or inputs is here; "
                             "re-run its own command to finish it, or pass --overwrite")
        return True
    if split_dir.is_dir() and any(split_dir.iterdir()):
        raise UsageError(f"{split_dir}: folder is not empty and was not made by `lasskit mix`; "
                         "pass --overwrite or choose another --name")
    return False


def _clear_split(split_dir: Path) -> None:
    """Remove what a previous mix wrote here (its CSVs, state and WAV files), nothing else."""
    if not split_dir.is_dir():
        return
    for name in ("mixtures.csv", MIX_JSON, "failures.csv"):
        (split_dir / name).unlink(missing_ok=True)
    _remove_leftovers(split_dir, every_wav=True)


def _remove_leftovers(split_dir: Path, every_wav: bool = False) -> None:
    """Temporary files an interrupted run left behind (and, with ``every_wav``, all WAVs)."""
    for sub in ("mixture", "source", "noise"):
        folder = split_dir / sub
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if p.is_file() and ((p.name.startswith(".") and p.name.endswith(".tmp")) or (every_wav and p.suffix == ".wav")):
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
) -> MixReport:
    """Write a class-disjoint mixture set to ``split_dir`` (``mixture/``, ``source/``, ``noise/``, CSVs).

    ``targets`` and ``noises`` are manifest paths (``noises`` defaults to ``targets``); ``splits``
    and ``datasets`` keep only clips whose manifest split/dataset is listed. ``ontology`` is an
    AudioSet ``ontology.json``. An existing split is refused unless ``overwrite``; a split left
    unfinished by an interrupted run (``mix.json`` but no ``mixtures.csv``) is completed when
    called again with the same options and inputs. ``official_csv`` also writes the organizers'
    ``source, noise, snr, caption`` file there.
    """
    from lasskit.ontology import Ontology

    start = time.perf_counter()
    spec.validate()
    split_dir = Path(split_dir)
    target_paths = [Path(p).resolve() for p in targets]
    noise_paths = [Path(p).resolve() for p in (noises if noises else targets)]
    if not target_paths:
        raise UsageError("no manifest to draw targets from; run `lasskit prepare` or pass MANIFEST")
    onto = Ontology.from_json(ontology) if ontology else None
    options = {
        "spec": asdict(spec), "split": split_dir.name,
        "targets": [{"manifest": str(p), "sha256": _sha256(p)} for p in target_paths if p.is_file()],
        "noises": [{"manifest": str(p), "sha256": _sha256(p)} for p in noise_paths if p.is_file()],
        "splits": sorted(splits), "datasets": sorted(datasets),
        "ontology": {"file": str(Path(ontology).resolve()), "sha256": _sha256(Path(ontology))} if ontology else None,
    }
    target_pool = load_candidates(target_paths, onto, splits, datasets)
    noise_pool = target_pool if noise_paths == target_paths else load_candidates(noise_paths, onto, splits, datasets)
    report = MixReport(split_dir, targets_available=len(target_pool), noises_available=len(noise_pool))
    if not target_pool:
        raise UsageError(f"no target clip in {', '.join(map(str, target_paths))} after the split/dataset filters")
    if not noise_pool:
        raise UsageError(f"no noise clip in {', '.join(map(str, noise_paths))} after the split/dataset filters")

    skipped: Counter = Counter()
    usable_targets = eligible(target_pool, spec, "target", skipped)
    usable_noises = eligible(noise_pool, spec, "noise", skipped)
    if onto is not None:
        unknown = sorted({lab for c in (*target_pool, *noise_pool) for lab in c.labels if lab.strip() and lab not in onto})
        if unknown:
            report.notes.append(f"{len(unknown)} label(s) not in the ontology, compared by name only: "
                                + ", ".join(unknown[:8]) + (" ..." if len(unknown) > 8 else ""))
    if not usable_targets or not usable_noises:
        raise UsageError("no usable " + ("targets" if not usable_targets else "noises") + " (skipped: "
                         + ", ".join(f"{k}: {v}" for k, v in sorted(skipped.items())) + ")"
                         + ("; pass --allow-unlabeled to use clips without labels" if skipped else ""))
    planner = Planner(usable_targets, usable_noises, spec)
    resuming = _check_split_dir(split_dir, options, overwrite)
    rows, why = plan_mixtures(planner, lambda clips: _activity_of(clips, spec.silence_db, jobs))
    for key, reason in sorted(why.items()):
        if reason == "silent":
            skipped["silent clip"] += 1
        else:
            skipped["unreadable audio"] += 1
            report.failures.append((key, reason))
    report.without_noise = [t.id for t in planner.without_noise]
    if planner.without_noise:
        skipped["target with no class-disjoint noise"] += len(planner.without_noise)
    report.skipped = dict(sorted(skipped.items()))
    if not rows:
        raise UsageError("no mixture possible: no target has a usable noise that shares no class with it "
                         f"({len(planner.without_noise)} target(s) without one, e.g. {', '.join(report.without_noise[:3])})")

    # the state file goes first: a folder with audio but no mixtures.csv is an unfinished run
    if overwrite:
        _clear_split(split_dir)
    split_dir.mkdir(parents=True, exist_ok=True)
    from lasskit.atomic import write_text, write_text_if_changed

    write_text_if_changed(split_dir / MIX_JSON, _state_json(options, None))
    if resuming:
        _remove_leftovers(split_dir)
    for sub in ("mixture", "source", "noise"):
        (split_dir / sub).mkdir(exist_ok=True)
    total = len(rows)
    names = [mixture_name(split_dir.name, r.index, total) for r in rows]
    jobs_list = [WriteJob(name, str(r.target.path), r.target_offset, str(r.noise.path), r.noise_offset,
                          spec.length, r.snr, str(split_dir)) for name, r in zip(names, rows)]
    outcomes = run_parallel(_write_row, jobs_list, jobs, desc=f"mix {split_dir.name}", unit="mixture")
    records = []
    for name, r, o in zip(names, rows, outcomes):
        if not o.ok:
            report.failures.append((name, o.error))
            continue
        report.resumed += o.value["skipped"]
        records.append(_record(name, r, o.value, spec))
    report.written = len(records) - report.resumed
    report.distinct_targets = len({r.target.key for r in rows})
    report.distinct_noises = len({r.noise.key for r in rows})
    report.snr_histogram = dict(sorted(Counter(int(np.floor(r.snr)) for r in rows).items()))
    write_failures(split_dir / "failures.csv", report.failures, keep_empty=True)
    if len(records) < total:  # rows failed: leave the split unfinished so that a re-run retries them
        report.complete = False
        report.rows = len(records)
        report.seconds = time.perf_counter() - start
        return report
    import pandas as pd

    from lasskit.splits import write_split_csv

    if official_csv:
        report.official_csv = Path(official_csv)
        write_text(report.official_csv, official_csv_text(rows, spec))
    write_split_csv(split_dir, pd.DataFrame(records, columns=list(MIX_COLUMNS)))
    report.rows = len(records)
    report.audio_seconds = report.rows * spec.length / SAMPLE_RATE
    write_text_if_changed(split_dir / MIX_JSON, _state_json(options, report))
    report.seconds = time.perf_counter() - start
    return report


def _record(name: str, r: PlannedRow, gains: dict, spec: MixSpec) -> dict:
    return {
        "mixture": name, "query": r.query, "source": f"source/{name}", "noise": f"noise/{name}",
        "snr": spec.format_snr(r.snr), "source_id": r.target.id, "noise_id": r.noise.id,
        "source_labels": json.dumps(r.target.labels, ensure_ascii=False),
        "noise_labels": json.dumps(r.noise.labels, ensure_ascii=False),
        "offsets": json.dumps({"source": r.target_offset, "noise": r.noise_offset}),
        "gains": json.dumps({"source": gains["source_gain"], "noise": gains["noise_gain"],
                             "clip": gains["clip_gain"]}),
        "source_corpus": r.target.corpus, "noise_corpus": r.noise.corpus, "seed": spec.seed,
    }


def _state_json(options: dict, report: MixReport | None) -> str:
    state = {"options": options, "status": "complete" if report is not None else "running"}
    if report is not None:
        state["counts"] = {
            "rows": report.rows, "distinct_targets": report.distinct_targets,
            "distinct_noises": report.distinct_noises, "skipped": report.skipped,
            "without_noise": report.without_noise,
            "snr_histogram": {str(k): v for k, v in report.snr_histogram.items()},
        }
    return json.dumps(state, indent=2, ensure_ascii=False) + "\n"


def official_csv_text(rows: Sequence[PlannedRow], spec: MixSpec) -> str:
    """The organizers' layout: ``source, noise, snr, caption`` with clip ids (header spaces as theirs)."""
    import csv
    import io

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


