"""What ``separate FILE_OR_DIR... --query Q`` (and ``--queries CSV``) is given: the recordings
(files, folders searched for audio), each with its queries, the output names they get
(``<stem>__<query-slug>[__residual].wav``, a name that is not UTF-8 shown as ``\\xNN``), and the
inputs that fail before any audio is read (a missing file, a folder without audio, a malformed
``--queries`` row). :mod:`lasskit.separation.files` runs the loop over them.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from lasskit import audio

SLUG_LENGTH = 60
RESIDUAL_SUFFIX = "__residual"


def shown(text: str) -> str:
    """``text`` as UTF-8 can hold it: bytes of a file name that are not UTF-8 (surrogate escapes)
    become ``\\xNN``, so the name can go in a CSV, the ledger and an output's name."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def query_slug(query: str) -> str:
    """``"A dog barking!"`` -> ``a-dog-barking``: ASCII letters and digits joined by ``-``; a query
    with nothing left, or longer than 60 characters, gets the first 8 hex of its BLAKE2b instead of
    (or after the first 51 characters of) its tail, so that every query has a short, stable name."""
    text = unicodedata.normalize("NFKD", query).encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    if slug and len(slug) <= SLUG_LENGTH:
        return slug
    digest = hashlib.blake2b(query.encode("utf-8"), digest_size=4).hexdigest()
    return f"{slug[:SLUG_LENGTH - 9].rstrip('-')}-{digest}" if slug else f"query-{digest}"


@dataclass
class FileJob:
    """One recording and its queries: where the outputs go (relative to the output folder)."""

    path: Path
    label: str                      # the input as listed in separations.csv / failures.csv
    subdir: str                     # relative folder of its outputs ("" for the top)
    queries: list[str] = field(default_factory=list)

    def output(self, query: str, residual: bool = False) -> str:
        """The output's path relative to the output folder (a name that is not UTF-8 shown as ``\\xNN``)."""
        name = f"{shown(self.path.stem)}__{query_slug(query)}{RESIDUAL_SUFFIX if residual else ''}.wav"
        return f"{shown(self.subdir)}/{name}" if self.subdir else name


def collect_inputs(paths: list[str | os.PathLike], queries: list[str], out_dir: Path,
                   queries_csv: str | os.PathLike | None = None, notes: list[str] | None = None
                   ) -> tuple[list[FileJob], list[tuple[str, str]]]:
    """The recordings to separate, each with its queries, and the inputs that failed already (``notes``:
    what was done otherwise than written, e.g. a repeated ``--queries`` row)."""
    jobs: dict[str, FileJob] = {}
    failures: list[tuple[str, str]] = []
    out_resolved = out_dir.resolve()

    def add(path: Path, label: str, subdir: str, job_queries: list[str]) -> None:
        key = str(path.resolve())
        job = jobs.setdefault(key, FileJob(path, shown(label), subdir))
        for q in job_queries:
            if q not in job.queries:
                job.queries.append(q)

    for given in paths:
        path = Path(given).expanduser()
        label = str(given)
        if path.is_dir():
            found = [p for p in audio.find_audio(path) if out_resolved not in p.resolve().parents]
            if not found:
                bad, _ = audio.undecodable_audio(path)
                hint = (f" ({len(bad)} file(s) in formats libsndfile cannot decode, e.g. {bad[0].name}: "
                        "convert them to WAV or FLAC)") if bad else ""
                failures.append((label, f"{path}: no audio files in this folder{hint}; "
                                        f"give files or folders of {', '.join(audio.AUDIO_EXTENSIONS[:4])}, ..."))
                continue
            for p in found:
                rel = p.relative_to(path)
                add(p, str(p), rel.parent.as_posix() if rel.parent != Path(".") else "", queries)
        elif path.exists() or path.is_symlink():
            add(path, label, "", queries)
        else:
            failures.append((label, f"{path}: no such file or folder"))
    if queries_csv is not None:
        rows, row_failures = read_queries_csv(queries_csv, notes)
        failures.extend(row_failures)
        for path, label, query in rows:
            add(path, label, "", [query])
    return list(jobs.values()), failures


def read_queries_csv(path: str | os.PathLike, notes: list[str] | None = None
                     ) -> tuple[list[tuple[Path, str, str]], list[tuple[str, str]]]:
    """``(file, label, query)`` rows of a ``file,query`` CSV (files relative to the CSV's folder) and
    the rows that cannot be done (a missing file, an empty query, more cells than columns), one line
    each. The CSV is read as :func:`lasskit.csvfile.read_table` reads every table (byte-order mark,
    CRLF, quoted commas and line breaks); a row repeating an earlier one is done once and said in
    ``notes``."""
    from lasskit.csvfile import read_table

    path = Path(path).expanduser()
    _, table = read_table(path, ("file", "query"), "give a CSV with file,query columns", label="--queries",
                          lower=True)
    rows, failures, seen = [], [], {}
    repeats: list[str] = []
    for row in table:
        name, query = row.get("file").strip(), row.get("query").strip()
        where = f"{path}:{row.line}"
        if row.extra:
            failures.append((where, f"{where}: {len(row.cells) + len(row.extra)} cells, the header has "
                                    f"{len(row.cells)}; put a query holding a comma in double quotes "
                                    '(walk.wav,"rain, heavy")'))
            continue
        if not name:
            failures.append((where, f"{where}: empty file cell; name the recording or remove the row"))
            continue
        file = Path(name).expanduser()
        file = file if file.is_absolute() else path.parent / file
        if not query:
            failures.append((str(file), f"{where}: empty query for {name}; write what to separate (e.g. a dog barking)"))
            continue
        first = seen.setdefault((os.path.normpath(file), query), row.line)
        if first != row.line:
            repeats.append(f"{row.line} (= {first})")
            continue
        if not file.is_file():
            file = _other_normal_form(file)
        if file.is_dir():
            failures.append((str(file), f"{where}: {file}: a folder; name one recording a row (its folder goes on the "
                                        "command line: lasskit separate DIR --query Q)"))
            continue
        if not file.is_file():
            failures.append((str(file), f"{where}: {file}: no such file; fix the path (relative to {path.parent})"))
            continue
        rows.append((file, str(file), query))
    if repeats and notes is not None:
        notes.append(f"--queries {path}: {len(repeats)} row(s) repeat an earlier row's file and query, done once "
                     f"(line {', '.join(repeats[:5])}{' ...' if len(repeats) > 5 else ''})")
    return rows, failures


def _other_normal_form(file: Path) -> Path:
    """``file`` as the disk spells it when only the Unicode normal form differs: a spreadsheet writes
    ``café`` composed (NFC), macOS and some copies keep it decomposed (NFD); else ``file`` itself."""
    for form in ("NFC", "NFD"):
        other = Path(unicodedata.normalize(form, str(file)))
        if other != file and other.is_file():
            return other
    return file

