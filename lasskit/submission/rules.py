"""The challenge's rules that the packager and the checker share: naming (labels, file names),
official counts and lengths, metadata fields and their checks, placeholders, the PDF and WAV checks."""

from __future__ import annotations

import io
import math
import re
import string
import unicodedata
from dataclasses import dataclass, fields
from typing import Any

from lasskit import SAMPLE_RATE
from lasskit.errors import UsageError

_REGEX_CACHE: dict[tuple[str, bool], re.Pattern] = {}


AUDIO_SPLITS = ("eval_synth", "eval_real")
"""The evaluation splits whose separated audio goes into the submission, one zip each."""


VALIDATION_SPLIT = "val_synth"
"""The split whose scores fill ``results.validation_synth`` of the metadata."""


MAX_SYSTEMS = 4
"""A team submits at most this many systems (indices 1 to 4)."""


MAX_ABBREVIATION = 10
"""Longest system abbreviation, in characters."""


OFFICIAL_COUNTS = {"eval_synth": 3000, "eval_real": 200}
"""Rows of the official evaluation sets."""


OFFICIAL_SAMPLES = 160000
"""Length of every official evaluation mixture: 10 s at 16 kHz."""


LASTNAME_RE = r"[A-Z][A-Za-z]*(?:-[A-Za-z]+)*"


INSTITUTE_RE = r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*"


INDEX_RE = r"[0-9]+"


# ---------------------------------------------------------------------------------------------
# naming: the one place that knows the organizers' file names
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Naming:
    """File-name patterns of a package; ``package.naming`` in lasskit.yaml overrides any of them.

    ``label`` uses ``{lastname}``, ``{institute}`` and ``{index}``; the per-system files use
    ``{label}``; ``team_zip`` uses ``{lastname}`` and ``{institute}``; ``audio_url_line`` is the
    text of the link file and uses ``{url}``.
    """

    label: str = "{lastname}_{institute}_task9_{index}"
    eval_synth_zip: str = "{label}_eval_synth.zip"
    eval_real_zip: str = "{label}_eval_real.zip"
    meta: str = "{label}.meta.yaml"
    report: str = "{label}.technical_report.pdf"
    audio_url: str = "{label}.audio_url.txt"
    team_zip: str = "{lastname}_{institute}_task9.zip"
    audio_url_line: str = "Google Drive: {url}"

    SYSTEM_FILES = ("meta", "report", "audio_url", "eval_synth_zip", "eval_real_zip")
    _NEEDS = {
        "label": {"lastname", "institute", "index"},
        "team_zip": {"lastname", "institute"},
        "audio_url_line": {"url"},
    }

    def __post_init__(self) -> None:
        for f in fields(self):
            pattern = getattr(self, f.name)
            needs = self._NEEDS.get(f.name, {"label"})
            where = f"package.naming.{f.name} in lasskit.yaml"
            if not isinstance(pattern, str) or not pattern:
                raise UsageError(f"{where}: must be a non-empty pattern such as {getattr(Naming, f.name)!r}")
            try:
                used = {p for _, p, _, _ in string.Formatter().parse(pattern) if p is not None}
            except ValueError as exc:
                raise UsageError(f"{where}: {pattern!r} is not a valid pattern ({exc})")
            if used != needs:
                raise UsageError(
                    f"{where}: {pattern!r} must use exactly {', '.join('{' + n + '}' for n in sorted(needs))}")

    @classmethod
    def from_config(cls, config: dict | None) -> "Naming":
        """The patterns of ``package.naming`` in a parsed lasskit.yaml, defaults elsewhere."""
        section = ((config or {}).get("package") or {})
        naming = section.get("naming") if isinstance(section, dict) else None
        if not naming:
            return cls()
        if not isinstance(naming, dict):
            raise UsageError("package.naming in lasskit.yaml: must be a mapping of pattern names to patterns")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(naming) - known)
        if unknown:
            raise UsageError(f"package.naming in lasskit.yaml: unknown key(s) {', '.join(unknown)}; "
                             f"use {', '.join(sorted(known))}")
        return cls(**naming)

    # --- making names ---------------------------------------------------------------------
    def make_label(self, lastname: str, institute: str, index: int) -> str:
        return self.label.format(lastname=lastname, institute=institute, index=index)

    def file_name(self, kind: str, label: str) -> str:
        """The file name of ``kind`` (one of ``SYSTEM_FILES``) for system ``label``."""
        return getattr(self, kind).format(label=label)

    def audio_zip_name(self, split: str, label: str) -> str:
        return self.file_name(f"{split}_zip", label)

    def team_zip_name(self, lastname: str, institute: str) -> str:
        return self.team_zip.format(lastname=lastname, institute=institute)

    # --- reading names --------------------------------------------------------------------
    def parse_label(self, label: str) -> dict[str, str] | None:
        """``{lastname, institute, index}`` of a well-formed label, else None."""
        m = _pattern_regex(self.label, strict=True).fullmatch(label)
        return m.groupdict() if m else None

    def split_label(self, label: str) -> dict[str, str] | None:
        """Like :meth:`parse_label` but lenient (any text between the separators), for messages."""
        m = _pattern_regex(self.label, strict=False).fullmatch(label)
        return m.groupdict() if m else None

    def parse_team_zip(self, name: str) -> dict[str, str] | None:
        m = _pattern_regex(self.team_zip, strict=False).fullmatch(name)
        return m.groupdict() if m else None

    def classify(self, name: str) -> tuple[str, str] | None:
        """What a package file is: ``(kind, label)`` for a system's file, ``("team_zip", name)``
        for the team zip, None for anything else."""
        for kind in self.SYSTEM_FILES:
            m = _pattern_regex(getattr(self, kind), strict=False).fullmatch(name)
            if m:
                return kind, m.group("label")
        if self.parse_team_zip(name):
            return "team_zip", name
        return None

    def describe(self) -> str:
        """The label pattern in the organizers' words, for messages."""
        return self.label.replace("{lastname}", "<Lastname>").replace("{institute}", "<INST>").replace(
            "{index}", "<N>")


def _pattern_regex(pattern: str, strict: bool) -> re.Pattern:
    key = (pattern, strict)
    if key not in _REGEX_CACHE:
        strict_parts = {"lastname": LASTNAME_RE, "institute": INSTITUTE_RE, "index": INDEX_RE,
                        "label": ".+", "url": ".+"}
        out = []
        for literal, name, _, _ in string.Formatter().parse(pattern):
            out.append(re.escape(literal))
            if name is not None:
                body = strict_parts[name] if strict else (".+" if name in ("label", "url") else ".+?")
                out.append(f"(?P<{name}>{body})")
        _REGEX_CACHE[key] = re.compile("".join(out), re.DOTALL)
    return _REGEX_CACHE[key]


def lastname_for_label(lastname: str) -> str:
    """A person's last name as a label part: accents dropped, spaces and apostrophes removed,
    first letter capitalised (``"de la Cruz"`` -> ``"DelaCruz"``, ``"Müller"`` -> ``"Muller"``)."""
    ascii_name = unicodedata.normalize("NFKD", lastname).encode("ascii", "ignore").decode()
    ascii_name = re.sub(r"[^A-Za-z-]", "", ascii_name).strip("-")
    return ascii_name[:1].upper() + ascii_name[1:]


AUDIO_URL_PLACEHOLDER = "<PASTE THE PUBLIC LINK TO THE AUDIO ZIPS HERE>"


RESULT_KEYS = {"SDR": "sdr", "SDRi": "sdri", "SI-SDR": "si_sdr"}
"""Metadata result names -> metric names in ``summary.json``."""


SILENCE_PEAK = 1e-5
"""A file whose largest absolute sample is below this (-100 dBFS) is silent."""


RESULT_RANGE = (-50.0, 50.0)
"""Plausible range of a mean SDR, SDRi or SI-SDR, in dB."""


WAV_FORMATS = ("WAV", "WAVEX")


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
# the audio zips' digest, carried by the metadata
# ---------------------------------------------------------------------------------------------
AUDIO_DIGEST_RE = re.compile(r"^# lasskit audio digest (\w+): (\d+) entries, blake2b-128 ([0-9a-f]{32})\s*$", re.M)
"""A comment line of the ``.meta.yaml`` that ``package`` writes per audio zip (a comment: the
organizers' metadata layout is left as it is). ``check`` recomputes the digest from the zip."""


def entries_digest(entries) -> tuple[int, str]:
    """``(count, digest)`` of a zip's entries: BLAKE2b-128 of ``name<TAB>crc32<TAB>size`` lines, names
    sorted. The CRC and size are the zip's own (checked against the contents when entries are read),
    so the digest changes with any entry added, removed, renamed or changed."""
    import hashlib

    lines = sorted(f"{i.filename}\t{i.CRC:08x}\t{i.file_size}\n" for i in entries if not i.is_dir())
    return len(lines), hashlib.blake2b("".join(lines).encode("utf-8", "surrogateescape"), digest_size=16).hexdigest()


def zip_audio_digest(path) -> tuple[int, str]:
    """:func:`entries_digest` of the zip at ``path``."""
    import zipfile

    with zipfile.ZipFile(path) as zf:
        return entries_digest(zf.infolist())


def audio_digest_line(split: str, count: int, digest: str) -> str:
    """The metadata's comment line for one audio zip (see :data:`AUDIO_DIGEST_RE`)."""
    return f"# lasskit audio digest {split}: {count} entries, blake2b-128 {digest}"


def audio_digests(meta_text: str) -> dict[str, tuple[int, str]]:
    """``{split: (count, digest)}`` from a ``.meta.yaml``'s comment lines (empty when it has none)."""
    return {m.group(1): (int(m.group(2)), m.group(3)) for m in AUDIO_DIGEST_RE.finditer(meta_text)}


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
        """One line, whatever the names hold (a zip entry may be named with newlines or escapes)."""
        return printable(f"{self.file}: {self.message}; {self.fix}")


def printable(text: str) -> str:
    """``text`` with control characters (newlines, terminal escapes) and undecodable bytes shown
    as escapes, so that one problem is always one line and cannot drive the terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


# ---------------------------------------------------------------------------------------------
# single-value rules, shared by the packager and the checker
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
