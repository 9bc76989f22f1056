"""The submission validator (``lasskit check``): every problem of a package, one line each.

``check_submission(PATH)`` accepts a package folder (``submission/``), an audio zip, or the team
zip, made by ``lasskit package`` or by hand. It checks:

- names: each file follows :class:`lasskit.submission.rules.Naming` (label ``<Lastname>_<INST>_task9_<N>``:
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
  (peak at least 1e-5, i.e. -100 dBFS);
- in a package folder, each audio zip holds the entries its ``.meta.yaml`` describes: ``package``
  writes a digest line per zip (:data:`~lasskit.submission.rules.AUDIO_DIGEST_RE`), and a zip
  from another package run (other outputs under the same metadata) is a problem. Metadata
  without the line (made by hand) is not compared.

Zips are read in memory, never extracted: no name inside a zip becomes a path on disk. An
archive whose entries declare more than 4 GiB in all, or one entry more than 64 MiB, is refused
(its audio is not read). WAV checks run on ``jobs`` processes, each opening the zip itself."""

from __future__ import annotations

import re
import time
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from lasskit.errors import UsageError
from lasskit.submission.audiocheck import (  # noqa: F401 - CHUNK_ENTRIES, ZipChunk, check_zip_chunk: old paths
    CHUNK_ENTRIES,
    ZipChunk,
    check_zip_chunk,
    expected_audio,
    unsafe_name,
)
from lasskit.submission.rules import (
    AUDIO_URL_PLACEHOLDER,
    INSTITUTE_RE,
    LASTNAME_RE,
    MAX_SYSTEMS,
    OFFICIAL_SAMPLES,
    PACKAGE_FIX,
    PDF_PROBLEM,
    URL_RE,
    Naming,
    Problem,
    audio_digests,
    entries_digest,
    label_problems,
    meta_problems,
    pdf_problem,
    printable,
)

MAX_TOTAL_BYTES = 4 * 1024**3
"""Largest total uncompressed size of a zip's entries that ``check`` will read (bytes)."""


MAX_ENTRY_BYTES = 64 * 1024**2
"""Largest uncompressed size of one zip entry that ``check`` will read (bytes)."""


MAX_META_BYTES = 1024 * 1024
"""Largest ``.meta.yaml`` that ``check`` will parse (a real one is about 2 KB)."""

MAX_META_NODES = 10_000
"""Most values a ``.meta.yaml`` may hold once its aliases are expanded (an alias bomb is refused)."""


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
            out.append(printable(f"{group}: ... and {n} more problem(s); run `lasskit check --all` to list them"))
        return out


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
    if not path.is_dir() and not path.is_file():
        raise UsageError(f"{path}: not a regular file or folder; pass the package folder (submission/) or one of its zips")
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
    checker.check_digests()
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
        self.zip_digests: dict[str, tuple[int, str]] = {}   # audio zip display name -> (entries, digest)
        self.said_digests: dict[str, tuple[str, tuple[int, str]]] = {}  # zip -> (meta file, its digest line)

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
            if not p.is_file():  # a FIFO, a device, a dangling link: never opened (reading could hang)
                self.problem(p.name, "not a regular file", "keep only package files in submission/", "unexpected_file")
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
        if not kinds and not team_zips:
            self.no_package(folder, [p for p in entries if p.is_dir()])
            return
        for label, files in sorted(kinds.items()):
            for kind in Naming.SYSTEM_FILES:
                if kind not in files:
                    name = self.naming.file_name(kind, label)
                    self.problem(name, "missing", self._missing_fix(kind, label), "missing_file")
            said: dict[str, tuple[int, str]] = {}
            for kind, p in sorted(files.items()):
                if kind in ("meta", "report", "audio_url"):
                    data = self.read_loose(p)
                    if data is not None:
                        self.check_text_file(kind, label, data, p.name)
                        if kind == "meta":
                            said = audio_digests(data.decode("utf-8", "replace"))
                else:
                    self.check_audio_zip(p, kind.replace("_zip", ""), p.name)
            for kind, p in sorted(files.items()):
                if kind.endswith("_zip") and kind.replace("_zip", "") in said:
                    self.said_digests[p.name] = (self.naming.file_name("meta", label), said[kind.replace("_zip", "")])
        self.check_team(team_zips, kinds)

    def check_digests(self) -> None:
        """Each audio zip holds the entries its metadata's digest line describes (when it has one).
        Run after the audio checks: a zip with problems of its own is not also said to differ."""
        flagged = {p.file.split(":", 1)[0] for p in self.report.problems}
        for display, (meta, want) in sorted(self.said_digests.items()):
            got = self.zip_digests.get(display)
            if got is not None and got != want and display not in flagged:
                self.problem(display, f"holds other audio than {meta} describes ({got[0]} entries, digest "
                             f"{got[1][:12]}..., the metadata says {want[0]} entries, {want[1][:12]}...): the zip and "
                             "the metadata come from different package runs",
                             "package the system again with `lasskit package --overwrite` and upload its files "
                             "together", "digest")

    def no_package(self, folder: Path, subfolders: list[Path]) -> None:
        """A folder without a single package file: one problem, pointing to a subfolder that has one."""
        holders = []
        for sub in subfolders:
            try:
                if any(self.naming.classify(q.name) for q in sub.iterdir() if q.is_file()):
                    holders.append(sub)
            except OSError:
                continue
        fix = (f"pass the package folder itself: lasskit check {holders[0]}" if holders
               else "run `lasskit package`, or pass the folder it wrote (submission/)")
        self.problem(folder.name, "no package file in this folder", fix, "missing_file")

    def read_loose(self, p: Path) -> bytes | None:
        """A metadata, report or link file of the folder; None (and a problem) if unreadable or huge."""
        try:
            size = p.stat().st_size
            if size > MAX_ENTRY_BYTES:
                self.problem(p.name, f"{size} bytes, more than the {MAX_ENTRY_BYTES} a package file may have",
                             PACKAGE_FIX, "size")
                return None
            return p.read_bytes()
        except OSError as exc:
            self.problem(p.name, f"cannot be read ({exc.strerror or exc})", "check the file's permissions",
                         "unreadable")
            return None

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

        from lasskit import safeyaml

        try:
            meta = safeyaml.load(data, max_bytes=MAX_META_BYTES, max_nodes=MAX_META_NODES)
        except UnicodeDecodeError:
            self.problem(display, "not UTF-8 text", "save the YAML as UTF-8", "yaml")
            return
        except safeyaml.YamlLimitError as exc:
            self.problem(display, f"refused: {exc}", "write the metadata as plain YAML without aliases "
                         "(lasskit package writes it)", "yaml")
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
                if unsafe_name(name):
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
        if split not in self._expected:
            found = expected_audio(split, self.workspace)
            self.report.notes.append(found.note)
            if found.warning is not None:
                self.warning(*found.warning, "official_count")
            if found.unreadable is not None:
                self.warning(*found.unreadable, "mixture_unreadable")
            self._expected[split] = (found.names, found.lengths, found.count)
        return self._expected[split]

    def check_audio_zip(self, path: Path, split: str | None, display: str) -> None:
        zf = self.open_zip(path, display)
        if zf is None:
            return
        with zf:
            infos = zf.infolist()
        self.zip_digests[display] = entries_digest(infos)
        names, lengths, count = self.expected(split)
        default_length = OFFICIAL_SAMPLES if split is not None and names is None else None
        size_ok = self.check_sizes(infos, display)
        present: Counter = Counter()
        to_read: list[tuple[int, str, int | None]] = []
        for pos, info in enumerate(infos):
            name, where = info.filename, f"{display}:{info.filename}"
            if unsafe_name(name):
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
