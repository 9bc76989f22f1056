"""The submission validator (``lasskit check``): every problem of a package, one line each.

``check_submission(PATH)`` accepts a package folder (``submission/``), an audio zip, or the team
zip, made by ``lasskit package`` or by hand. It checks:

- names: each file follows :class:`lasskit.packaging.Naming` (label ``<Lastname>_<INST>_task9_<N>``:
  last name in ASCII letters starting with a capital, institute of letters and digits, ``N`` from
  1 to 4); one team; every system has its meta, report, link and two audio zips; a team zip
  that holds the current meta, report and link files of every system;
- metadata (``.meta.yaml``): the required fields, their types, no placeholders (see
  :func:`placeholder_reason`), an abbreviation of at most 10 characters, exactly one
  corresponding author, e-mail shapes, ``input_sampling_rate`` 16000, and results (SDR, SDRi,
  SI-SDR in dB) that are finite numbers in [-50, 50] and not all zero;
- the report starts with ``%PDF-`` and has ``%%EOF`` in its last 2048 bytes; the link file has
  an http(s) link;
- each audio zip: readable, every entry's CRC, flat (no folders), no unsafe names (``..``,
  absolute), no duplicates, exactly the expected file names (the split's ``mixtures.csv`` when
  the workspace has it; else the official sets: 3000 eval_synth files, eval_real
  ``test-real-case-0.wav`` .. ``test-real-case-199.wav``), and every file a WAV at 16000 Hz,
  mono, of the mixture's length (160000 samples for the official sets), finite, not silent
  (peak at least 1e-5, i.e. -100 dBFS).

Zips are read in memory, never extracted: no name inside a zip becomes a path on disk. An
archive whose entries declare more than 4 GiB in all, or one entry more than 64 MiB, is refused
(its audio is not read). WAV checks run on ``jobs`` processes, each opening the zip itself.
"""

from __future__ import annotations

import io
import math
import re
import time
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lasskit import SAMPLE_RATE
from lasskit.errors import UsageError
from lasskit.packaging import (
    AUDIO_URL_PLACEHOLDER,
    INSTITUTE_RE,
    LASTNAME_RE,
    MAX_ABBREVIATION,
    MAX_SYSTEMS,
    OFFICIAL_COUNTS,
    OFFICIAL_SAMPLES,
    RESULT_KEYS,
    Naming,
    lastname_for_label,
)

MAX_TOTAL_BYTES = 4 * 1024**3
"""Largest total uncompressed size of a zip's entries that ``check`` will read (bytes)."""
MAX_ENTRY_BYTES = 64 * 1024**2
"""Largest uncompressed size of one zip entry that ``check`` will read (bytes)."""
SILENCE_PEAK = 1e-5
"""A file whose largest absolute sample is below this (-100 dBFS) is silent."""
RESULT_RANGE = (-50.0, 50.0)
"""Plausible range of a mean SDR, SDRi or SI-SDR, in dB."""
WAV_FORMATS = ("WAV", "WAVEX")
CHUNK_ENTRIES = 64
"""Zip entries per worker call."""

PLACEHOLDER_PATTERNS = (
    r"\bTODO\b", r"\bFIXME\b", r"\bTBD\b", r"\bXXX+\b", r"\bCHANGE ?ME\b", r"\bplaceholder\b",
    r"\blorem ipsum\b", r"<[^<>]*>",
)
"""Text that marks a value as not filled in (case-insensitive); ``<...>`` is a template slot."""
PLACEHOLDER_VALUES = frozenset({
    "lastname", "last name", "firstname", "first name", "inst", "institute", "my system", "mysys",
    "example university", "your name", "name", "unknown", "...", "?", "-",
})
"""Whole values (case-insensitive) that are template text, e.g. from ``lasskit init``'s lasskit.yaml."""
PLACEHOLDER_EMAIL_DOMAINS = ("example.org", "example.com", "example.net")
PLACEHOLDER_EMAIL_TLDS = (".example", ".invalid", ".test", ".localhost")
EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
URL_RE = re.compile(r"https?://[^\s<>\"']+")

PDF_PROBLEM = "export the technical report as PDF and pass it with --report"
PACKAGE_FIX = "re-create it with `lasskit package --overwrite`"


# ---------------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------------
@dataclass
class Problem:
    """One finding: the file it is about, what is wrong, how to fix it, and a short ``kind``."""

    file: str
    message: str
    fix: str
    kind: str
    field: str = ""

    def line(self) -> str:
        return f"{self.file}: {self.message}; {self.fix}"


@dataclass
class CheckReport:
    """Everything ``check_submission`` found. ``ok`` when there are no problems (warnings allowed)."""

    path: Path
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    systems: list[str] = field(default_factory=list)
    audio_files: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def kinds(self) -> Counter:
        return Counter(p.kind for p in self.problems)

    def lines(self, limit_per_file: int = 0) -> list[str]:
        """Problem lines; with ``limit_per_file`` > 0, at most that many per zip or file, then a
        count of the rest."""
        if limit_per_file <= 0:
            return [p.line() for p in self.problems]
        out, shown, hidden = [], Counter(), Counter()
        for p in self.problems:
            group = p.file.split(":", 1)[0]
            if shown[group] < limit_per_file:
                out.append(p.line())
                shown[group] += 1
            else:
                hidden[group] += 1
        for group, n in hidden.items():
            out.append(f"{group}: ... and {n} more problem(s); run `lasskit check --all` to list them")
        return out


# ---------------------------------------------------------------------------------------------
# single-value rules, shared with lasskit.packaging
# ---------------------------------------------------------------------------------------------
def placeholder_reason(value: str) -> str | None:
    """Why ``value`` looks like an unfilled template slot, or None (see ``PLACEHOLDER_*``)."""
    text = value.strip()
    if text.lower() in PLACEHOLDER_VALUES:
        return f"{value!r} is template text"
    for pattern in PLACEHOLDER_PATTERNS:
        m = re.search(pattern, text, flags=re.IGNORECASE)
        if m:
            return f"{value!r} holds the placeholder {m.group(0)!r}"
    return None


def email_problem(email: Any) -> str | None:
    if not isinstance(email, str) or not email.strip():
        return "no e-mail"
    if not EMAIL_RE.fullmatch(email.strip()):
        return f"e-mail {email!r} is not of the form name@domain.tld"
    domain = email.strip().rsplit("@", 1)[1].lower()
    if domain in PLACEHOLDER_EMAIL_DOMAINS or domain.endswith(PLACEHOLDER_EMAIL_TLDS) or any(
            domain.endswith("." + d) for d in PLACEHOLDER_EMAIL_DOMAINS):
        return f"e-mail {email!r} uses a reserved example domain (a placeholder)"
    return None


def pdf_problem(data: bytes) -> str | None:
    """Why ``data`` is not a complete PDF, or None: it must start with ``%PDF-`` and hold
    ``%%EOF`` in its last 2048 bytes."""
    if not data:
        return "empty file, not a PDF"
    if not data.startswith(b"%PDF-"):
        return f"not a PDF (starts with {data[:8]!r}, a PDF starts with b'%PDF-')"
    if b"%%EOF" not in data[-2048:]:
        return "truncated PDF (no %%EOF marker at the end)"
    return None


def label_problems(label: str, naming: Naming) -> list[tuple[str, str, str]]:
    """``(kind, message, fix)`` for a label that does not follow ``naming.label``."""
    pattern = naming.describe()
    fix = f"name the system {pattern} (e.g. {naming.make_label('Lovelace', 'UOS', 1)})"
    parts = naming.parse_label(label)
    if parts is None:
        loose = naming.split_label(label)
        if loose is None:
            return [("label", f"label {label!r} does not follow {pattern}", fix)]
        out = []
        if not re.fullmatch(LASTNAME_RE, loose["lastname"]):
            out.append(("label", f"label {label!r}: last name {loose['lastname']!r} must be ASCII letters "
                        "starting with a capital", fix))
        if not re.fullmatch(INSTITUTE_RE, loose["institute"]):
            out.append(("label", f"label {label!r}: institute {loose['institute']!r} must be letters and "
                        "digits only", fix))
        if not loose["index"].isdigit():
            out.append(("label", f"label {label!r}: index {loose['index']!r} must be a number from 1 to "
                        f"{MAX_SYSTEMS}", fix))
        return out or [("label", f"label {label!r} does not follow {pattern}", fix)]
    out = []
    if not 1 <= int(parts["index"]) <= MAX_SYSTEMS:
        out.append(("index", f"label {label!r}: index {parts['index']} is outside 1..{MAX_SYSTEMS}",
                    f"number the team's systems 1 to {MAX_SYSTEMS} (--index)"))
    for key in ("lastname", "institute"):
        reason = placeholder_reason(parts[key])
        if reason:
            out.append(("placeholder", f"label {label!r}: {reason}", "set package.team and package.institute"))
    return out


@dataclass
class DecodedWav:
    """A WAV's samples ``(frames, channels)`` float32 (None when unreadable) and its problems."""

    samples: Any
    problems: list[tuple[str, str, str]]


def decode_wav(data: bytes, expected_samples: int | None = None) -> DecodedWav:
    """Decode WAV bytes and list ``(kind, message, fix)`` problems: not a WAV, truncated, rate
    other than 16000 Hz, not mono, length other than ``expected_samples``, NaN/inf, silent."""
    import numpy as np
    import soundfile as sf

    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            fmt, rate, channels, frames = f.format, int(f.samplerate), int(f.channels), int(f.frames)
            samples = f.read(dtype="float32", always_2d=True)
    except Exception as exc:
        text = str(exc).strip().splitlines()
        return DecodedWav(None, [("not_wav", f"unreadable audio ({text[-1] if text else type(exc).__name__})",
                                  "write a 16 kHz mono WAV")])
    problems = []
    if fmt not in WAV_FORMATS:
        problems.append(("not_wav", f"a {fmt} file, not WAV", "write a 16 kHz mono WAV"))
    if samples.shape[0] < frames:
        problems.append(("truncated", f"truncated ({samples.shape[0]} of {frames} samples)",
                         "write the file again"))
    if rate != SAMPLE_RATE:
        problems.append(("sample_rate", f"{rate} Hz, must be {SAMPLE_RATE} Hz",
                         f"resample to {SAMPLE_RATE} Hz (lasskit separate writes {SAMPLE_RATE} Hz)"))
    if channels != 1:
        problems.append(("channels", f"{channels} channels, must be mono", "downmix to one channel"))
    n = samples.shape[0]
    if expected_samples is not None and abs(n * SAMPLE_RATE / max(rate, 1) - expected_samples) > 0.5:
        what = "short" if n * SAMPLE_RATE / max(rate, 1) < expected_samples else "long"
        problems.append(("length", f"too {what}: {n} samples ({n / max(rate, 1):.3f} s), the mixture has "
                         f"{expected_samples} ({expected_samples / SAMPLE_RATE:.3f} s)",
                         "write exactly as many samples as the input mixture"))
    if n == 0:
        problems.append(("length", "no samples", "write the separated signal"))
    finite = np.isfinite(samples)
    if not finite.all():
        problems.append(("non_finite", f"{int((~finite).sum())} NaN or infinite sample(s)",
                         "fix the model output (lasskit separate refuses non-finite outputs)"))
    elif n and float(np.abs(samples).max()) < SILENCE_PEAK:
        problems.append(("silent", f"silent (peak {float(np.abs(samples).max()):.1e} < {SILENCE_PEAK:.0e})",
                         "check the model output for this mixture"))
    return DecodedWav(samples, problems)


def meta_problems(meta: Any, label: str | None, naming: Naming, file: str = "meta.yaml") -> list[Problem]:
    """Problems of a parsed ``.meta.yaml`` (see the module docstring); ``label`` is the one the
    file name carries, compared with ``submission.label``."""
    out: list[Problem] = []

    def add(kind, where, message, fix):
        out.append(Problem(file, f"{where}: {message}" if where else message, fix, kind, where))

    if not isinstance(meta, dict):
        add("field", "", "not a mapping with submission, system and results", "fill in the metadata template")
        return out

    def get(path: str, typ, required: bool = True):
        node: Any = meta
        for key in path.split("."):
            if not isinstance(node, dict) or key not in node or node[key] is None:
                if required:
                    add("field", path, "missing", f"add {path}")
                return None
            node = node[key]
        if typ is not None and not _is_type(node, typ):
            add("type", path, f"must be {_type_name(typ)}, not {type(node).__name__} {node!r}",
                f"write {path} as {_type_name(typ)}")
            return None
        return node

    def text(path: str):
        value = get(path, str)
        if value is not None and not value.strip():
            add("field", path, "empty", f"fill in {path}")
            return None
        return value

    # submission ------------------------------------------------------------------------------
    value = text("submission.label")
    if value is not None:
        if label is not None and value != label:
            add("label", "submission.label", f"{value!r} differs from the file name's label {label!r}",
                "use one label in every file name and in submission.label")
        for kind, message, fix in label_problems(value, naming):
            add(kind, "submission.label", message, fix)
    text("submission.name")
    value = text("submission.abbreviation")
    if value is not None and len(value) > MAX_ABBREVIATION:
        add("abbreviation", "submission.abbreviation",
            f"{value!r} is {len(value)} characters, at most {MAX_ABBREVIATION} allowed",
            f"shorten it to {MAX_ABBREVIATION} characters (--abbreviation)")
    authors = get("submission.authors", list)
    if authors is not None:
        if not authors:
            add("field", "submission.authors", "empty", "list the authors")
        corresponding = []
        for i, author in enumerate(authors):
            where = f"submission.authors[{i}]"
            if not isinstance(author, dict):
                add("type", where, "must be a mapping with firstname, lastname, email, affiliation",
                    "fix the authors list")
                continue
            for key in ("firstname", "lastname"):
                if not isinstance(author.get(key), str) or not author[key].strip():
                    add("field", f"{where}.{key}", "missing or empty", f"add {key} for every author")
            problem = email_problem(author.get("email"))
            if problem:
                add("email", f"{where}.email", problem, "give a working e-mail address")
            affiliation = author.get("affiliation")
            if not ((isinstance(affiliation, str) and affiliation.strip()) or (
                    isinstance(affiliation, dict) and any(isinstance(v, str) and v.strip()
                                                          for v in affiliation.values()))):
                add("field", f"{where}.affiliation", "missing or empty",
                    "add the affiliation (text, or a mapping with institute)")
            flag = author.get("corresponding", False)
            if not isinstance(flag, bool):
                add("type", f"{where}.corresponding", f"must be true or false, not {flag!r}",
                    "write corresponding: true for one author")
            elif flag:
                corresponding.append(i)
        if authors and len(corresponding) != 1:
            which = ", ".join(f"[{i}]" for i in corresponding) or "none"
            add("corresponding", "submission.authors",
                f"{len(corresponding)} corresponding authors ({which}), exactly one required",
                "mark exactly one author with corresponding: true")
        elif authors and label is not None:
            parts = naming.parse_label(label)
            last = authors[corresponding[0]].get("lastname") if corresponding else None
            if parts and isinstance(last, str) and lastname_for_label(last).lower() != parts["lastname"].lower():
                out.append(Problem(file, f"label last name {parts['lastname']!r} is not the corresponding "
                                   f"author's ({last!r})", "the label should carry the corresponding author's "
                                   "last name", "label_author", "submission.label"))
    # system -------------------------------------------------------------------------------------
    rate = get("system.description.input_sampling_rate", (int, float))
    if rate is not None and rate != SAMPLE_RATE:
        add("field", "system.description.input_sampling_rate", f"{rate}, must be {SAMPLE_RATE}",
            f"separate at {SAMPLE_RATE} Hz")
    text("system.description.separation_model")
    text("system.description.text_encoder")
    for key, may_be_empty in (("training_data", False), ("external_data", True), ("pretrained_models", True)):
        path = f"system.description.{key}"
        items = get(path, list)
        if items is None:
            continue
        if not items and not may_be_empty:
            add("field", path, "empty", f"list the data used to train the system in {path}")
        for i, item in enumerate(items):
            name = item.get("name") if isinstance(item, dict) else item
            if not isinstance(name, str) or not name.strip():
                add("type", f"{path}[{i}]", f"must be a name (text, or a mapping with name), not {item!r}",
                    f"list names in {path}")
    size = get("system.description.ensemble_size", int)
    if size is not None and size < 1:
        add("field", "system.description.ensemble_size", f"{size}, must be at least 1",
            "give the number of models in the ensemble (1 for a single model)")
    params = get("system.complexity.total_parameters", int)
    if params is not None and params < 0:
        add("field", "system.complexity.total_parameters", f"{params}, must be 0 or more",
            "give the parameter count of every model used, added up")
    # results ------------------------------------------------------------------------------------
    values = []
    for key in RESULT_KEYS:
        path = f"results.validation_synth.{key}"
        value = get(path, (int, float))
        if value is None:
            continue
        if not math.isfinite(value) or not RESULT_RANGE[0] <= value <= RESULT_RANGE[1]:
            add("results", path, f"{value} dB is implausible (expected a finite value in "
                f"[{RESULT_RANGE[0]:g}, {RESULT_RANGE[1]:g}])", "copy it from `lasskit score`'s summary.json")
        values.append(value)
    if len(values) == len(RESULT_KEYS) and all(v == 0 for v in values):
        add("results", "results.validation_synth", "all results are 0 (left unfilled?)",
            "copy them from `lasskit score`'s summary.json")
    # placeholders anywhere ----------------------------------------------------------------------
    for path, value in _strings(meta):
        if path.endswith(".email") or path == "submission.label":
            continue  # judged by their own rules above
        reason = placeholder_reason(value) if value.strip() else None
        if reason:
            add("placeholder", path, reason, f"replace it with the real {path.rsplit('.', 1)[-1]}")
    return out


def _is_type(value, typ) -> bool:
    if isinstance(value, bool):
        return typ is bool
    return isinstance(value, typ)


def _type_name(typ) -> str:
    names = {str: "text", int: "an integer", list: "a list", dict: "a mapping", bool: "true/false",
             (int, float): "a number"}
    return names.get(typ, str(typ))


def _strings(node, path: str = ""):
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(v, f"{path}.{k}" if path else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _strings(v, f"{path}[{i}]")


# ---------------------------------------------------------------------------------------------
# zip entries in worker processes
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ZipChunk:
    """Entries (positions in ``infolist()``) of one zip to read and check, with expected lengths."""

    zip_path: str
    positions: tuple[int, ...]
    expected_samples: tuple[int | None, ...]


def check_zip_chunk(chunk: ZipChunk) -> list[tuple[int, str, str, str]]:
    """Read each entry (verifying its CRC) and check its WAV: ``(position, kind, message, fix)``."""
    out = []
    with zipfile.ZipFile(chunk.zip_path) as zf:
        infos = zf.infolist()
        for pos, expected in zip(chunk.positions, chunk.expected_samples):
            try:
                with zf.open(infos[pos]) as f:
                    data = f.read()
            except Exception as exc:  # BadZipFile (bad CRC, bad header), zlib.error, EOFError, ...
                text = str(exc).strip().splitlines()
                out.append((pos, "corrupt", f"damaged entry ({text[-1] if text else type(exc).__name__})",
                            "re-create the zip and upload it again"))
                continue
            for kind, message, fix in decode_wav(data, expected).problems:
                out.append((pos, kind, message, fix))
    return out


def _unsafe_name(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return name.startswith(("/", "\\")) or ".." in parts or bool(re.match(r"[A-Za-z]:", name))


# ---------------------------------------------------------------------------------------------
# the checker
# ---------------------------------------------------------------------------------------------
def check_submission(path: str | Path, workspace=None, jobs: int | None = None) -> CheckReport:
    """Check a package folder, an audio zip or a team zip; every problem in one report.

    ``workspace`` (a :class:`~lasskit.workspace.Workspace`, optional) supplies the expected file
    names and lengths (``data/splits/<split>/mixtures.csv``) and the naming patterns of its
    lasskit.yaml; without it the official sets are expected.
    """
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{path}: no such file or folder; run `lasskit package` or pass a package folder "
                         "(submission/) or one of its zips")
    start = time.perf_counter()
    checker = _Checker(path, workspace, jobs)
    if path.is_dir():
        checker.check_folder(path)
    elif path.suffix.lower() == ".zip" or zipfile.is_zipfile(path):
        checker.check_zip_path(path)
    else:
        raise UsageError(f"{path}: not a folder or a zip; pass the package folder (submission/) or one of its zips")
    checker.check_team_consistency()
    checker.run_audio_checks()
    report = checker.report
    # grouped by file (zip-level lines first, then entries by name); stable within a file
    report.problems.sort(key=lambda p: (p.file.split(":", 1)[0], ":" in p.file, p.file))
    report.systems = sorted(checker.labels)
    report.seconds = time.perf_counter() - start
    return report


class _Checker:
    def __init__(self, path: Path, workspace, jobs) -> None:
        self.workspace = workspace
        self.naming = Naming.from_config(workspace.config if workspace is not None else None)
        self.jobs = jobs
        self.report = CheckReport(path)
        self.labels: dict[str, dict[str, str]] = {}   # label -> kind -> display name
        self.teams: dict[tuple[str, str], list[str]] = {}
        self.chunks: list[tuple[ZipChunk, str, list[str]]] = []   # chunk, zip display, entry names
        self._expected: dict[str, tuple] = {}

    # --- recording --------------------------------------------------------------------------
    def problem(self, file: str, message: str, fix: str, kind: str) -> None:
        self.report.problems.append(Problem(file, message, fix, kind))

    def warning(self, file: str, message: str, fix: str, kind: str = "warning") -> None:
        self.report.warnings.append(Problem(file, message, fix, kind))

    def note_label(self, label: str, kind: str, display: str) -> bool:
        """Record a system file; False (and a problem) when its label is malformed."""
        if label not in self.labels:
            self.labels[label] = {}
            for k, message, fix in label_problems(label, self.naming):
                self.problem(display, message, fix, k)
        self.labels[label][kind] = display
        parts = self.naming.parse_label(label)
        if parts:
            self.teams.setdefault((parts["lastname"], parts["institute"]), []).append(display)
        return parts is not None

    def note_team_zip(self, name: str) -> None:
        """Record a team zip's team; a problem when its name's parts are malformed."""
        parts = self.naming.parse_team_zip(name)
        fix = f"name it {self.naming.team_zip_name('<Lastname>', '<INST>')} (lasskit package writes it)"
        if not re.fullmatch(LASTNAME_RE, parts["lastname"]):
            self.problem(name, f"last name {parts['lastname']!r} must be ASCII letters starting with a capital",
                         fix, "label")
        if not re.fullmatch(INSTITUTE_RE, parts["institute"]):
            self.problem(name, f"institute {parts['institute']!r} must be letters and digits only", fix, "label")
        self.teams.setdefault((parts["lastname"], parts["institute"]), []).append(name)

    # --- folder -----------------------------------------------------------------------------
    def check_folder(self, folder: Path) -> None:
        entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
        if not entries:
            self.problem(folder.name, "empty folder, no package in it", "run `lasskit package`", "missing_file")
            return
        kinds: dict[str, dict[str, Path]] = {}
        team_zips: list[Path] = []
        for p in entries:
            if p.is_dir():
                self.warning(p.name, "a folder inside the package folder (not checked)",
                             "keep only package files in submission/")
                continue
            found = self.naming.classify(p.name)
            if found is None:
                self.problem(p.name, "not a package file name", self._expected_names_fix(), "unexpected_file")
                continue
            kind, label = found
            if kind == "team_zip":
                team_zips.append(p)
                continue
            kinds.setdefault(label, {})[kind] = p
            self.note_label(label, kind, p.name)
        for label, files in sorted(kinds.items()):
            for kind in Naming.SYSTEM_FILES:
                if kind not in files:
                    name = self.naming.file_name(kind, label)
                    self.problem(name, "missing", self._missing_fix(kind, label), "missing_file")
            for kind, p in sorted(files.items()):
                if kind in ("meta", "report", "audio_url"):
                    self.check_text_file(kind, label, p.read_bytes(), p.name)
                else:
                    self.check_audio_zip(p, kind.replace("_zip", ""), p.name)
        self.check_team(team_zips, kinds)

    def check_team(self, team_zips: list[Path], kinds: dict[str, dict[str, Path]]) -> None:
        for z in team_zips:
            self.note_team_zip(z.name)
        if not kinds:  # only team zips here: check each on its own
            for z in team_zips:
                self.check_container_zip(z, z.name, None)
            return
        if len(self.teams) == 1:
            (lastname, institute), = self.teams
            expected = self.naming.team_zip_name(lastname, institute)
            if not any(z.name == expected for z in team_zips):
                self.problem(expected, "missing (the team zip with every system's meta, report and link file)",
                             "run `lasskit package` (it writes the team zip)", "missing_file")
        loose = {p.name: p for files in kinds.values() for k, p in files.items()
                 if k in ("meta", "report", "audio_url")}
        for z in team_zips:
            self.check_container_zip(z, z.name, loose)

    def check_team_consistency(self) -> None:
        """One team (last name and institute) in every name, at most MAX_SYSTEMS systems."""
        if len(self.teams) > 1:
            teams = ", ".join(f"{a}_{b} ({', '.join(sorted(set(v))[:2])})" for (a, b), v in sorted(self.teams.items()))
            self.problem(self.report.path.name, f"files of {len(self.teams)} different teams: {teams}",
                         "use one last name and institute in every label", "team")
        if len(self.labels) > MAX_SYSTEMS:
            self.problem(self.report.path.name, f"{len(self.labels)} systems, at most {MAX_SYSTEMS} allowed",
                         "remove the extra systems' files", "index")

    # --- a zip given as PATH ------------------------------------------------------------------
    def check_zip_path(self, path: Path) -> None:
        found = self.naming.classify(path.name)
        if found and found[0] in ("eval_synth_zip", "eval_real_zip"):
            self.note_label(found[1], found[0], path.name)
            self.check_audio_zip(path, found[0].replace("_zip", ""), path.name)
        elif found and found[0] == "team_zip":
            self.note_team_zip(path.name)
            self.check_container_zip(path, path.name, None)
        else:
            self.problem(path.name, "not a package zip name", self._expected_names_fix(), "unexpected_file")
            try:
                with zipfile.ZipFile(path) as zf:
                    has_wav = any(n.lower().endswith(".wav") for n in zf.namelist())
            except Exception:
                has_wav = True  # let the audio check report the damage
            if has_wav:
                self.check_audio_zip(path, None, path.name)
            else:
                self.check_container_zip(path, path.name, None)

    # --- meta / report / link ---------------------------------------------------------------------
    def check_text_file(self, kind: str, label: str, data: bytes, display: str) -> None:
        if kind == "report":
            problem = pdf_problem(data)
            if problem:
                self.problem(display, problem, PDF_PROBLEM, "report")
        elif kind == "audio_url":
            self.check_link(data, display)
        else:
            self.check_meta(data, label, display)

    def check_link(self, data: bytes, display: str) -> None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            self.problem(display, "not UTF-8 text", "write the link as plain text", "link")
            return
        fix = "upload the audio zips, then `lasskit package --audio-url LINK --overwrite`"
        if AUDIO_URL_PLACEHOLDER in text:
            self.problem(display, "still holds the placeholder instead of the link", fix, "link")
            return
        urls = URL_RE.findall(text)
        if not urls:
            self.problem(display, "no http(s) link in it", fix, "link")
            return
        line_re = re.compile(re.escape(self.naming.audio_url_line).replace(re.escape("{url}"), r"\S+"))
        if not line_re.fullmatch(text.strip()):
            self.warning(display, f"does not read {self.naming.audio_url_line.format(url='<link>')!r}",
                         "write the link line in the organizers' form")

    def check_meta(self, data: bytes, label: str, display: str) -> None:
        import yaml

        try:
            meta = yaml.safe_load(data.decode("utf-8"))
        except UnicodeDecodeError:
            self.problem(display, "not UTF-8 text", "save the YAML as UTF-8", "yaml")
            return
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}: " if mark is not None else ""
            self.problem(display, f"{where}invalid YAML ({getattr(exc, 'problem', None) or exc})",
                         "fix the YAML syntax (indentation, colons, quotes)", "yaml")
            return
        for p in meta_problems(meta, label, self.naming, display):
            if p.kind == "label_author":
                self.report.warnings.append(p)
            else:
                self.report.problems.append(p)

    # --- the team zip (or any zip of metadata) ----------------------------------------------------
    def check_container_zip(self, path: Path, display: str, loose: dict[str, Path] | None) -> None:
        zf = self.open_zip(path, display)
        if zf is None:
            return
        with zf:
            infos = zf.infolist()
            self.check_sizes(infos, display)
            names = Counter(i.filename for i in infos)
            for name, n in sorted(names.items()):
                if n > 1:
                    self.problem(f"{display}:{name}", f"{n} entries with this name", PACKAGE_FIX, "duplicate")
            seen: dict[str, dict[str, bool]] = {}
            for info in infos:
                name, where = info.filename, f"{display}:{info.filename}"
                if _unsafe_name(name):
                    self.problem(where, "entry name points outside the archive", PACKAGE_FIX, "unsafe_path")
                    continue
                if info.is_dir() or "/" in name or "\\" in name:
                    self.problem(where, "inside a folder; the zip must be flat", PACKAGE_FIX, "nested")
                    continue
                found = self.naming.classify(name)
                if found is None or found[0] == "team_zip":
                    self.problem(where, "not a package file name", self._expected_names_fix(), "unexpected_file")
                    continue
                kind, label = found
                if kind in ("eval_synth_zip", "eval_real_zip"):
                    self.problem(where, "an audio zip inside the team zip, which holds only meta, report "
                                 "and link files", "upload the audio zips and put the link in the "
                                 "audio_url file", "unexpected_file")
                    continue
                if info.file_size > MAX_ENTRY_BYTES:
                    continue  # reported by check_sizes
                try:
                    data = zf.read(info)
                except Exception as exc:
                    self.problem(where, f"damaged entry ({_last_line(exc)})", PACKAGE_FIX, "corrupt")
                    continue
                seen.setdefault(label, {})[kind] = True
                if loose is not None and name in loose:
                    if loose[name].read_bytes() != data:
                        self.problem(where, f"differs from {name} in the folder (stale team zip)",
                                     "re-run `lasskit package --overwrite` to rebuild the team zip", "stale")
                    continue
                if loose is None:
                    self.note_label(label, kind, where)
                self.check_text_file(kind, label, data, where)
        if loose is not None:
            for name in sorted(loose):
                kind, label = self.naming.classify(name)
                if not seen.get(label, {}).get(kind):
                    self.problem(display, f"lacks {name} (stale team zip)",
                                 "re-run `lasskit package --overwrite` to rebuild the team zip", "stale")
        else:
            for label in sorted(seen):
                for kind in ("meta", "report", "audio_url"):
                    if kind not in seen[label]:
                        self.problem(f"{display}:{self.naming.file_name(kind, label)}", "missing",
                                     self._missing_fix(kind, label), "missing_file")

    # --- audio zips ------------------------------------------------------------------------------
    def open_zip(self, path: Path, display: str):
        try:
            return zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            self.problem(display, f"not a readable zip ({_last_line(exc)})",
                         "re-create it (lasskit package --overwrite) and upload it again", "corrupt")
            return None

    def check_sizes(self, infos, display: str) -> bool:
        total = sum(i.file_size for i in infos)
        ok = True
        if total > MAX_TOTAL_BYTES:
            self.problem(display, f"entries declare {total / 1024**3:.1f} GiB uncompressed (limit "
                         f"{MAX_TOTAL_BYTES / 1024**3:.0f} GiB); not reading it", PACKAGE_FIX, "size")
            ok = False
        for i in infos:
            if i.file_size > MAX_ENTRY_BYTES:
                self.problem(f"{display}:{i.filename}", f"declares {i.file_size / 1024**2:.0f} MiB uncompressed "
                             f"(limit {MAX_ENTRY_BYTES / 1024**2:.0f} MiB); not reading it", PACKAGE_FIX, "size")
        return ok

    def expected(self, split: str | None) -> tuple[list[str] | None, dict[str, int | None], int | None]:
        """(expected names or None, expected length by name, expected count or None) of a split."""
        if split is None:
            return None, {}, None
        if split in self._expected:
            return self._expected[split]
        ws = self.workspace
        csv = ws.split_dir(split) / "mixtures.csv" if ws is not None else None
        if csv is not None and csv.is_file():
            import soundfile as sf

            from lasskit.splits import read_split

            table = read_split(csv.parent)
            names = list(table.frame["mixture"])
            lengths: dict[str, int | None] = {}
            for n in names:
                try:
                    lengths[n] = int(sf.info(str(table.mixture_path(n))).frames)
                except Exception:
                    lengths[n] = None
            self.report.notes.append(f"{split}: expecting the {len(names)} file(s) of {csv}")
            if split in OFFICIAL_COUNTS and len(names) != OFFICIAL_COUNTS[split]:
                self.warning(str(csv), f"{len(names)} rows, the official {split} set has {OFFICIAL_COUNTS[split]}",
                             "prepare the full evaluation set before submitting", "official_count")
            result = (names, lengths, len(names))
        elif split == "eval_real":
            names = [f"test-real-case-{i}.wav" for i in range(OFFICIAL_COUNTS[split])]
            self.report.notes.append(f"{split}: no split in the workspace; expecting the official "
                                     f"{len(names)} files test-real-case-<i>.wav of {OFFICIAL_SAMPLES} samples")
            result = (names, dict.fromkeys(names, OFFICIAL_SAMPLES), len(names))
        else:
            n = OFFICIAL_COUNTS.get(split)
            self.report.notes.append(f"{split}: no split in the workspace; expecting {n} files of "
                                     f"{OFFICIAL_SAMPLES} samples (names not known here)")
            result = (None, {}, n)
        self._expected[split] = result
        return result

    def check_audio_zip(self, path: Path, split: str | None, display: str) -> None:
        zf = self.open_zip(path, display)
        if zf is None:
            return
        with zf:
            infos = zf.infolist()
        names, lengths, count = self.expected(split)
        default_length = OFFICIAL_SAMPLES if split is not None and names is None else None
        size_ok = self.check_sizes(infos, display)
        present: Counter = Counter()
        to_read: list[tuple[int, str, int | None]] = []
        for pos, info in enumerate(infos):
            name, where = info.filename, f"{display}:{info.filename}"
            if _unsafe_name(name):
                self.problem(where, "entry name points outside the archive", "re-create the zip with plain "
                             "file names (lasskit package)", "unsafe_path")
                continue
            if info.is_dir():
                self.problem(where, "a folder entry; the zip must be flat", PACKAGE_FIX, "nested")
                continue
            base = name.replace("\\", "/").rsplit("/", 1)[-1]
            if base != name:
                self.problem(where, "inside a folder; the zip must be flat (WAV files at the top)",
                             PACKAGE_FIX, "nested")
            if not base.lower().endswith(".wav"):
                self.problem(where, "not a .wav file", "keep only the separated WAV files in the zip",
                             "extra_audio")
                continue
            present[base] += 1
            if present[base] == 1 and size_ok and info.file_size <= MAX_ENTRY_BYTES:
                to_read.append((pos, name, lengths.get(base, default_length)))
        for base, n in sorted(present.items()):
            if n > 1:
                self.problem(f"{display}:{base}", f"{n} entries with this name", PACKAGE_FIX, "duplicate")
        if names is not None:
            expected = set(names)
            for base in sorted(expected - set(present)):
                self.problem(f"{display}:{base}", "missing (a mixture of the split has no output)",
                             f"separate every mixture of {split} and package again", "missing_audio")
            for base in sorted(set(present) - expected):
                self.problem(f"{display}:{base}", f"extra (no mixture of {split} has this name)",
                             "remove it; name each output exactly as its input mixture", "extra_audio")
        elif count is not None and len(present) != count:
            self.problem(display, f"{len(present)} WAV files, expected {count}", "separate every mixture of "
                         f"{split} and package again", "count")
        self.report.audio_files += len(to_read)
        for lo in range(0, len(to_read), CHUNK_ENTRIES):
            part = to_read[lo:lo + CHUNK_ENTRIES]
            chunk = ZipChunk(str(path), tuple(p for p, _, _ in part), tuple(n for _, _, n in part))
            self.chunks.append((chunk, display, [name for _, name, _ in part]))

    def run_audio_checks(self) -> None:
        if not self.chunks:
            return
        from lasskit.parallel import run_parallel

        jobs = 1 if len(self.chunks) == 1 else self.jobs
        outcomes = run_parallel(check_zip_chunk, [c for c, _, _ in self.chunks], jobs, desc="check audio",
                                unit="chunk", chunk_size=1)
        for (chunk, display, names), outcome in zip(self.chunks, outcomes):
            if not outcome.ok:
                self.problem(display, f"cannot read ({outcome.error})", PACKAGE_FIX, "corrupt")
                continue
            by_pos = dict(zip(chunk.positions, names))
            for pos, kind, message, fix in outcome.value:
                self.problem(f"{display}:{by_pos[pos]}", message, fix, kind)

    # --- messages ---------------------------------------------------------------------------------
    def _expected_names_fix(self) -> str:
        example = self.naming.make_label("Lastname", "INST", 1)
        names = ", ".join(self.naming.file_name(k, example) for k in Naming.SYSTEM_FILES)
        return f"a package holds {names} per system and {self.naming.team_zip_name('Lastname', 'INST')}"

    def _missing_fix(self, kind: str, label: str) -> str:
        parts = self.naming.parse_label(label)
        index = f" --index {int(parts['index'])}" if parts else ""
        if kind == "report":
            return f"pass the technical report with `lasskit package{index} --report REPORT.pdf`"
        return f"run `lasskit package{index}`"


def _last_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__
