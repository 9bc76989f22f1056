"""Submission packages for DCASE 2024 Task 9 (``lasskit package``).

For one system (index ``N`` from 1 to 4) of a team, ``build_package`` writes under
``submission/``, with the default names (see :class:`Naming`)::

    <Lastname>_<INST>_task9_<N>_eval_synth.zip       separated evaluation (synth) audio, flat
    <Lastname>_<INST>_task9_<N>_eval_real.zip        separated evaluation (real) audio, flat
    <Lastname>_<INST>_task9_<N>.meta.yaml            system metadata (DCASE layout)
    <Lastname>_<INST>_task9_<N>.technical_report.pdf copy of --report
    <Lastname>_<INST>_task9_<N>.audio_url.txt        "Google Drive: <link>" (--audio-url)
    <Lastname>_<INST>_task9.zip                      every system's meta, report and link file

Each audio zip holds one WAV per row of ``data/splits/<split>/mixtures.csv``, named exactly as
the mixture. By default (``audio_format="pcm16"``) the float outputs of ``separate`` are stored
as 16-bit PCM (16 kHz mono; samples clipped to [-1, 1), rounded to ``round(x * 32768)``),
which halves the zip; the number of files that clipped is reported. ``audio_format="float"``
stores the output files' bytes unchanged (32-bit float WAV, exactly what ``score`` read).

Zips are deterministic: entries sorted by name, DEFLATE (zlib level 1), a fixed 1980-01-01
timestamp and fixed attributes, so the same inputs give byte-identical zips (with the same zlib)
whatever ``--jobs``. Re-running with ``--overwrite`` after uploading therefore changes nothing
in the audio zips. Compression runs in worker processes; the archive is assembled here (plain
ZIP, no ZIP64: at most 65535 entries and 4 GiB)."""

from __future__ import annotations

import io
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lasskit import SAMPLE_RATE
from lasskit.errors import AudioError, UsageError, WorkError
from lasskit.failures import write_failures
from lasskit.submission.archive import (
    AUDIO_FORMATS,
    ZIP_LEVEL,
    DeterministicZipWriter,
    ZipEntry,
    deflate_entry,
    write_zip,
)
from lasskit.submission.records import check_one_system, check_outputs_recorded, check_scores_tied, read_json
from lasskit.submission.rules import (
    AUDIO_SPLITS,
    AUDIO_URL_PLACEHOLDER,
    INSTITUTE_RE,
    LASTNAME_RE,
    MAX_SYSTEMS,
    RESULT_KEYS,
    VALIDATION_SPLIT,
    Naming,
    audio_digest_line,
    lastname_for_label,
    zip_audio_digest,
)

BATCH_FILES = 256
"""Audio files compressed per batch of worker calls (bounds the memory held at once)."""




# ---------------------------------------------------------------------------------------------
# audio: one worker call per output file
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AudioTask:
    """Validate one separated output and make its zip entry."""

    source: str                 # path of the output WAV
    name: str                   # entry name (= the mixture's file name)
    expected_samples: int | None
    audio_format: str = "pcm16"
    level: int = ZIP_LEVEL


@dataclass(frozen=True)
class AudioResult:
    entry: ZipEntry
    clipped: bool               # pcm16 only: some sample was outside [-1, 1)


def pcm16_wav_bytes(samples, sample_rate: int = SAMPLE_RATE) -> tuple[bytes, bool]:
    """16-bit PCM mono WAV bytes of float samples in [-1, 1]: ``round(x * 32768)`` clipped to
    [-32768, 32767]. Returns the bytes and whether any sample was clipped."""
    import wave

    import numpy as np

    scaled = np.round(np.asarray(samples, dtype=np.float64) * 32768.0)
    clipped = bool((scaled > 32767).any() or (scaled < -32768).any())
    pcm = np.clip(scaled, -32768, 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())
    return buf.getvalue(), clipped


def make_audio_entry(task: AudioTask) -> AudioResult:
    """Read and validate one output (the same rules as ``check``), then compress its entry."""
    from lasskit.submission.rules import decode_wav

    path = Path(task.source)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise AudioError(f"{path}: missing output; run `lasskit separate` for this split") from None
    decoded = decode_wav(raw, task.expected_samples)
    if decoded.problems:
        raise AudioError(f"{path}: " + "; ".join(f"{msg} ({fix})" for _, msg, fix in decoded.problems))
    if task.audio_format == "float":
        payload, clipped = raw, False
    else:
        payload, clipped = pcm16_wav_bytes(decoded.samples[:, 0])
    return AudioResult(deflate_entry(task.name, payload, task.level), clipped)


# ---------------------------------------------------------------------------------------------
# the package
# ---------------------------------------------------------------------------------------------
@dataclass
class PackageReport:
    """What ``build_package`` wrote."""

    label: str
    out_dir: Path
    files: list[Path]
    team_zip: Path
    audio_counts: dict[str, int]
    clipped: dict[str, int]
    results: dict[str, float]
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


OPTION_HINTS = {
    "team": "--team or package.team",
    "institute": "--institute or package.institute",
    "index": "--index or package.index",
    "name": "--name or package.name",
    "abbreviation": "--abbreviation or package.abbreviation",
    "report": "--report or package.report",
    "authors": "the authors: list",
    "model": "--model or package.model",
}


def build_package(
    workspace,
    *,
    team: str | None = None,
    institute: str | None = None,
    index: int | None = None,
    name: str | None = None,
    abbreviation: str | None = None,
    model: str | None = None,
    audio_url: str | None = None,
    report: str | Path | None = None,
    authors: list[dict] | None = None,
    system: dict | None = None,
    audio_format: str = "pcm16",
    out_dir: str | Path | None = None,
    overwrite: bool = False,
    jobs: int | None = None,
) -> PackageReport:
    """Build the submission files of one system from a workspace (see the module docstring).

    Arguments left as None come from lasskit.yaml: ``package.<argument>``, ``authors:`` and
    ``package.system`` (description fields). ``total_parameters`` defaults to ``separate.json``'s
    ``parameters``, ``separation_model`` to its ``model``, ``ensemble_size`` to 1. Missing team
    details raise one UsageError naming every option or lasskit.yaml key to set.
    """
    from lasskit.submission.rules import PDF_PROBLEM, meta_problems, pdf_problem

    start = time.perf_counter()
    config = workspace.config or {}
    section = config.get("package") if isinstance(config.get("package"), dict) else {}
    naming = Naming.from_config(config)
    config_file = workspace.root / "lasskit.yaml"

    def pick(value, key):
        return value if value is not None else section.get(key)

    team, institute, index = pick(team, "team"), pick(institute, "institute"), pick(index, "index")
    name, abbreviation, model = pick(name, "name"), pick(abbreviation, "abbreviation"), pick(model, "model")
    audio_url, report = pick(audio_url, "audio_url"), pick(report, "report")
    authors = authors if authors is not None else config.get("authors")
    system = dict(system if system is not None else (section.get("system") or {}))
    if audio_format not in AUDIO_FORMATS:
        raise UsageError(f"--audio-format {audio_format}: use one of {', '.join(AUDIO_FORMATS)}")
    if not isinstance(system, dict):
        raise UsageError(f"{config_file}: package.system must be a mapping of description fields")

    # --- team details: every missing one in a single message -----------------------------
    authors = _check_authors_shape(authors, config_file)
    if team is None:
        corresponding = [a for a in authors if a.get("corresponding") is True]
        if len(corresponding) == 1 and isinstance(corresponding[0].get("lastname"), str):
            team = lastname_for_label(corresponding[0]["lastname"]) or None
    index = 1 if index is None else index
    missing = [OPTION_HINTS[k] for k, v in (("team", team), ("institute", institute), ("name", name),
                                             ("abbreviation", abbreviation), ("report", report)) if not v]
    if not authors:
        missing.append(OPTION_HINTS["authors"])
    if missing:
        raise UsageError(f"package needs team details: set {'; '.join(missing)} in {config_file} "
                         "(the command line beats lasskit.yaml)")
    team_label = lastname_for_label(str(team))
    if not re.fullmatch(LASTNAME_RE, team_label):
        raise UsageError(f"--team {team!r}: use the corresponding author's last name in ASCII letters "
                         "(e.g. Lovelace); set package.team in lasskit.yaml")
    institute = str(institute)
    if not re.fullmatch(INSTITUTE_RE, institute):
        raise UsageError(f"--institute {institute!r}: use a short abbreviation of letters and digits "
                         "(e.g. UOS), no spaces or underscores; set package.institute in lasskit.yaml")
    try:
        index = int(index)
    except (TypeError, ValueError):
        raise UsageError(f"--index {index!r}: must be a number from 1 to {MAX_SYSTEMS}") from None
    if not 1 <= index <= MAX_SYSTEMS:
        raise UsageError(f"--index {index}: must be from 1 to {MAX_SYSTEMS} (a team submits at most "
                         f"{MAX_SYSTEMS} systems)")
    label = naming.make_label(team_label, institute, index)

    # --- report and link ----------------------------------------------------------------------
    report_path = _resolve(report, workspace.root)
    if not report_path.is_file():
        raise UsageError(f"--report {report}: no such file; pass the technical report PDF "
                         "(or set package.report in lasskit.yaml)")
    report_bytes = report_path.read_bytes()
    problem = pdf_problem(report_bytes)
    if problem:
        raise UsageError(f"--report {report_path}: {problem}; {PDF_PROBLEM}")
    warnings: list[str] = []
    if audio_url:
        audio_url = str(audio_url).strip()
        if not re.fullmatch(r"https?://\S+", audio_url):
            raise UsageError(f"--audio-url {audio_url!r}: must be one public http(s) link to the audio zips")
        link_text = naming.audio_url_line.format(url=audio_url) + "\n"
    else:
        link_text = naming.audio_url_line.format(url=AUDIO_URL_PLACEHOLDER) + "\n"

    # --- model and its outputs ------------------------------------------------------------------
    model = _pick_model(workspace, model)
    runs = {split: _read_run(workspace, model, split) for split in AUDIO_SPLITS}
    for split, run in runs.items():  # an unreadable mixture: its output's length cannot be checked; said
        unknown = [n for n, length in zip(run["names"], run["lengths"]) if length is None]
        if unknown:
            warnings.append(f"{split}: {len(unknown)} mixture(s) unreadable ({', '.join(unknown[:3])}"
                            f"{' ...' if len(unknown) > 3 else ''}): the lengths of their outputs were not "
                            "checked; re-prepare the split")
    summary = _read_summary(workspace, model)
    check_one_system(workspace, model, runs)
    metrics = summary["metrics"]
    results = {key: round(float(metrics[m]["mean"]), 3) for key, m in RESULT_KEYS.items()}
    if summary.get("missing"):
        warnings.append(f"{summary['_path']}: {summary['missing']} val_synth mixture(s) had no output; "
                        "the results cover the others only")
    count = summary.get("count")
    if isinstance(count, int) and count != 3000:
        warnings.append(f"results are on {count} val_synth mixture(s), not the official 3000")

    description = {
        "input_sampling_rate": SAMPLE_RATE,
        "separation_model": system.get("separation_model") or runs["eval_synth"]["separate"].get("model_name")
        or runs["eval_synth"]["separate"].get("model"),
        "text_encoder": system.get("text_encoder"),
        "training_data": system.get("training_data"),
        "external_data": system.get("external_data"),
        "pretrained_models": system.get("pretrained_models"),
        "ensemble_size": system.get("ensemble_size", 1),
    }
    unknown = sorted(set(system) - set(description) - {"total_parameters"})
    if unknown:
        raise UsageError(f"{config_file}: unknown package.system key(s) {', '.join(unknown)}; use "
                         f"{', '.join(sorted([*description, 'total_parameters']))}")
    total_parameters = system.get("total_parameters", runs["eval_synth"]["separate"].get("parameters"))
    needed = [f"package.system.{k}" for k in ("text_encoder", "training_data", "external_data",
                                               "pretrained_models") if description[k] is None]
    if total_parameters is None:
        needed.append("package.system.total_parameters (separate.json has no parameter count)")
    if needed:
        raise UsageError(f"{config_file}: set {', '.join(needed)} (list every external data set and "
                         "pretrained model, [] if none)")
    meta = {
        "submission": {
            "label": label,
            "name": name,
            "abbreviation": abbreviation,
            "authors": [_author_entry(a) for a in authors],
        },
        "system": {
            "description": description,
            "complexity": {"total_parameters": total_parameters},
        },
        "results": {"validation_synth": results},
    }
    problems = meta_problems(meta, label, naming)
    warnings += [p.line() for p in problems if p.kind == "label_author"]
    problems = [p for p in problems if p.kind != "label_author"]
    if problems:
        raise UsageError(f"{config_file}: " + "; ".join(
            f"{p.message} ({_hint_for(p.field)})" for p in problems))

    # --- outputs --------------------------------------------------------------------------------
    out_dir = Path(out_dir) if out_dir is not None else workspace.submission_dir
    targets = {kind: out_dir / naming.file_name(kind, label) for kind in Naming.SYSTEM_FILES}
    existing = [p.name for p in targets.values() if p.exists()]
    if existing and not overwrite:
        raise UsageError(f"{out_dir}: {', '.join(existing)} already exist(s); pass --overwrite to replace "
                         f"system {index}'s package")

    from lasskit.atomic import remove_leftovers, write_bytes, write_text

    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{out_dir}: is a file; pass --out FOLDER for the package")
    remove_leftovers(out_dir, recursive=False)  # what a killed run left
    audio_counts, clipped, digests = {}, {}, {}
    for split in AUDIO_SPLITS:
        n, c = _write_audio_zip(targets[f"{split}_zip"], runs[split], audio_format, jobs)
        audio_counts[split], clipped[split] = n, c
        digests[split] = zip_audio_digest(targets[f"{split}_zip"])
        if c:
            warnings.append(f"{split}: {c} file(s) exceeded full scale and were clipped to 16-bit; "
                            "pass --audio-format float to keep them unclipped")
    write_text(targets["meta"], _meta_yaml(meta, model, runs, digests))
    write_bytes(targets["report"], report_bytes)
    write_text(targets["audio_url"], link_text)
    if not audio_url:
        warnings.append(f"{targets['audio_url'].name}: no --audio-url yet; upload the two audio zips, then "
                        "re-run with --audio-url LINK --overwrite (the zips come out byte-identical)")
    team_zip = write_team_zip(out_dir, team_label, institute, naming)
    return PackageReport(label, out_dir, [targets[k] for k in Naming.SYSTEM_FILES], team_zip, audio_counts,
                         clipped, results, warnings, time.perf_counter() - start)


def write_team_zip(out_dir: Path, lastname: str, institute: str, naming: Naming | None = None) -> Path:
    """(Re)write the team zip: the meta, report and link file of every system of this team in
    ``out_dir`` (found by name), flat and deterministic."""
    naming = naming or Naming()
    entries = []
    for path in sorted(p for p in out_dir.iterdir() if p.is_file() and not p.name.startswith(".")):
        found = naming.classify(path.name)
        if not found or found[0] not in ("meta", "report", "audio_url"):
            continue
        parts = naming.parse_label(found[1])
        if parts and parts["lastname"] == lastname and parts["institute"] == institute:
            entries.append(deflate_entry(path.name, path.read_bytes()))
    return write_zip(out_dir / naming.team_zip_name(lastname, institute), entries)


# --- helpers -----------------------------------------------------------------------------------
def _resolve(path: str | Path, root: Path) -> Path:
    """A relative path: from the current directory if it exists there, else from the workspace."""
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return p
    return root / p


def _check_authors_shape(authors: Any, config_file: Path) -> list[dict]:
    if authors is None:
        return []
    if not isinstance(authors, list) or not all(isinstance(a, dict) for a in authors):
        raise UsageError(f"{config_file}: authors must be a list of mappings with firstname, lastname, "
                         "email, affiliation (and corresponding: true for one)")
    return authors


def _author_entry(author: dict) -> dict:
    keys = ("lastname", "firstname", "email", "affiliation", "corresponding")
    entry = {k: author[k] for k in keys if k in author}
    entry.update({k: v for k, v in author.items() if k not in keys})
    entry["corresponding"] = author.get("corresponding") is True
    return entry


def _hint_for(meta_field: str) -> str:
    """Where the user sets the value of a metadata field."""
    if meta_field.startswith("submission.authors"):
        return "authors: in lasskit.yaml"
    key = meta_field.rsplit(".", 1)[-1]
    if meta_field.startswith("submission."):
        return OPTION_HINTS.get(key, f"package.{key}") + " in lasskit.yaml"
    if meta_field.startswith("system."):
        return f"package.system.{key} in lasskit.yaml"
    if meta_field.startswith("results"):
        return "re-run `lasskit score --split val_synth`"
    return "lasskit.yaml"


def _pick_model(workspace, model: str | None) -> str:
    ready = [m for m in workspace.models()
             if all((workspace.output_dir(m, s) / "separate.json").is_file() for s in AUDIO_SPLITS)]
    if model:
        return str(model)
    if len(ready) == 1:
        return ready[0]
    if not ready:
        raise UsageError(f"{workspace.exp_dir}: no model has outputs for both {' and '.join(AUDIO_SPLITS)}; "
                         "run `lasskit separate --split eval_synth` and `--split eval_real` first")
    raise UsageError(f"several models have evaluation outputs ({', '.join(ready)}); pass --model NAME "
                     "or set package.model in lasskit.yaml")


def _read_run(workspace, model: str, split: str) -> dict:
    """A split's expected names and lengths and its ``separate.json``."""
    import soundfile as sf

    from lasskit.splits import read_split

    out = workspace.output_dir(model, split)
    fix = f"run `lasskit separate --model {model} --split {split}`"
    sep = read_json(out / "separate.json", fix)
    if sep.get("sample_rate", SAMPLE_RATE) != SAMPLE_RATE:
        raise UsageError(f"{out / 'separate.json'}: outputs at {sep.get('sample_rate')} Hz; the submission "
                         f"needs {SAMPLE_RATE} Hz; {fix}")
    if sep.get("consistent") is False:
        # the metadata would describe one checkpoint while the audio came from several
        raise UsageError(f"{out / 'separate.json'}: the outputs were made with {len(sep.get('made_with') or [])} "
                         f"different settings (checkpoints or options); {fix} --overwrite to make them all "
                         "with one")
    if sep.get("complete") is not True:
        raise UsageError(f"{out / 'separate.json'}: the last run left {sep.get('count', '?')} of "
                         f"{sep.get('total', '?')} outputs current ({sep.get('failed', '?')} failed); the package "
                         f"would hold outputs no record describes; {fix} until it says complete")
    split_dir = workspace.split_dir(split)
    if not (split_dir / "mixtures.csv").is_file():
        raise UsageError(f"{split_dir / 'mixtures.csv'}: not found; run `lasskit prepare dcase2024` with the "
                         "evaluation sets")
    table = read_split(split_dir)
    names = list(table.frame["mixture"])
    queries = list(table.frame["query"]) if "query" in table.frame.columns else None
    check_outputs_recorded(out, names, sep, fix,
                           {"mixtures": [table.mixture_path(n) for n in names], "queries": queries,
                            "csv": split_dir / "mixtures.csv"})
    lengths = []
    for n in names:
        try:
            lengths.append(int(sf.info(os.fsencode(table.mixture_path(n))).frames))
        except Exception:
            lengths.append(None)
    return {"model": model, "split": split, "dir": out, "names": names, "lengths": lengths, "separate": sep,
            "csv": split_dir / "mixtures.csv"}


def _read_summary(workspace, model: str) -> dict:
    path = workspace.output_dir(model, VALIDATION_SPLIT) / "summary.json"
    fix = (f"run `lasskit separate --model {model} --split {VALIDATION_SPLIT}` then "
           f"`lasskit score --model {model} --split {VALIDATION_SPLIT}`")
    data = read_json(path, fix)
    metrics = data.get("metrics")
    for m in RESULT_KEYS.values():
        value = (metrics or {}).get(m, {}).get("mean") if isinstance((metrics or {}).get(m), dict) else None
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise UsageError(f"{path}: no metrics.{m}.mean; {fix}")
    check_scores_tied(path, data, fix)
    data["_path"] = path
    return data


def _write_audio_zip(path: Path, run: dict, audio_format: str, jobs: int | None) -> tuple[int, int]:
    """Validate and compress every output of a split into ``path``; (files, clipped files)."""
    from lasskit.atomic import atomic_path
    from lasskit.parallel import run_parallel

    tasks = [AudioTask(str(run["dir"] / n), n, length, audio_format)
             for n, length in zip(run["names"], run["lengths"])]
    tasks.sort(key=lambda t: t.name)
    failures: list[tuple[str, str]] = []
    clipped = 0
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        writer = DeterministicZipWriter(f, str(path))
        for lo in range(0, len(tasks), BATCH_FILES):
            batch = tasks[lo:lo + BATCH_FILES]
            desc = f"package {run['split']} {lo + len(batch)}/{len(tasks)}"
            for task, outcome in zip(batch, run_parallel(make_audio_entry, batch, jobs, desc=desc)):
                if not outcome.ok:
                    failures.append((task.name, outcome.error))
                    continue
                if not failures:  # once something failed the zip is discarded anyway
                    writer.add(outcome.value.entry)
                clipped += outcome.value.clipped
        if failures:
            report = write_failures(run["dir"] / "package_failures.csv", failures)
            raise WorkError(f"{len(failures)} of {len(tasks)} {run['split']} output(s) unusable (first: "
                            f"{failures[0][1]}); all listed in {report}; fix them and run package again")
        writer.close()
    write_failures(run["dir"] / "package_failures.csv", [])  # removes a stale list of an earlier run
    return len(tasks), clipped


def _meta_yaml(meta: dict, model: str, runs: dict, digests: dict[str, tuple[int, str]] | None = None) -> str:
    import yaml

    from lasskit import __version__

    sep = runs["eval_synth"]["separate"]
    header = [
        "# DCASE 2024 Task 9 (language-queried audio source separation): system metadata",
        f"# written by lasskit {__version__} from exp/{model}/ (separate.json, val_synth/summary.json)",
    ]
    if sep.get("checkpoint_sha256"):
        header.append(f"# checkpoint sha256: {sep['checkpoint_sha256']}")
    for split, (count, digest) in sorted((digests or {}).items()):
        header.append(audio_digest_line(split, count, digest))
    body = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)
    return "\n".join(header) + "\n" + body
