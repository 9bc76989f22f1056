"""Opening and reading the CSV files lasskit reads (manifests, splits, vocabularies, organizers',
raters' and users' CSVs): UTF-8, with or without the byte-order mark that spreadsheet exports put
first, any line ending, quoted fields holding commas and line breaks.

Every CSV reader opens through :func:`open_csv` (pandas readers strip the mark themselves), so a
manifest saved from a spreadsheet reads as the same columns (``id``, not ``\\ufeffid``).
:func:`read_table` reads a whole table with a header and says what is wrong with a malformed one
in one line naming the file, the row (its line in the file) and the fix.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

CSV_ENCODING = "utf-8-sig"
"""Decodes UTF-8 and drops a leading byte-order mark (U+FEFF) if there is one."""


def open_csv(path: str | os.PathLike, newline: str | None = ""):
    """``path`` opened for ``csv.reader``/``csv.DictReader`` (text, UTF-8, no byte-order mark)."""
    return open(path, encoding=CSV_ENCODING, newline=newline)


@dataclass
class CsvRow:
    """One data row: ``line`` (the file line it starts on; a quoted cell may span several),
    ``cells`` by header name (``""`` for a cell the row lacks), ``extra`` cells past the header's
    (a comma in an unquoted cell), ``short``: the row had fewer cells than the header."""

    line: int
    cells: dict[str, str]
    extra: list[str] = field(default_factory=list)
    short: bool = False

    def get(self, column: str, default: str = "") -> str:
        return self.cells.get(column, default)


def read_table(path: str | os.PathLike, columns: Sequence[str] = (), fix: str = "fix the file",
               *, label: str = "", lower: bool = False) -> tuple[list[str], list[CsvRow]]:
    """The header (names stripped; lower-cased with ``lower``) and every non-blank row of a CSV.

    A file that cannot be a table is a :class:`~lasskit.errors.UsageError` of one line,
    ``<label> <path>[:<line>]: <what>; <fix>``: missing, a folder, not UTF-8, a malformed quote,
    empty, no header, a header naming a column twice or lacking one of ``columns``. Rows with too
    many or too few cells are returned (``extra``, ``short``) for the caller to report per row.
    """
    import csv

    from lasskit.errors import UsageError, os_error

    name = f"{label} {os.fspath(path)}" if label else os.fspath(path)
    rows: list[CsvRow] = []
    header: list[str] | None = None
    last = 0
    try:
        with open_csv(path) as fh:
            # strict: a quote never closed is an error, not a cell swallowing every row after it
            reader = csv.reader(fh, strict=True)
            for fields in reader:
                start, last = last + 1, reader.line_num
                if not fields or not any(f.strip() for f in fields):
                    continue
                if header is None:
                    header = [f.strip().lower() if lower else f.strip() for f in fields]
                    _check_header(header, columns, name, start, fix)
                    continue
                cells = dict(zip(header, fields))
                short = len(fields) < len(header)
                for column in header[len(fields):]:
                    cells[column] = ""
                rows.append(CsvRow(start, cells, list(fields[len(header):]), short))
    except FileNotFoundError:
        raise UsageError(f"{name}: no such file; {fix}") from None
    except IsADirectoryError:
        raise UsageError(f"{name}: is a folder, not a CSV file; {fix}") from None
    except OSError as exc:
        raise os_error(exc, path) from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{name}{_where_not_utf8(path, exc)}; save it as UTF-8") from None
    except csv.Error as exc:
        what = " ".join(str(exc).split())
        what = _QUOTE_ERRORS.get(what, what)
        raise UsageError(f"{name}:{last + 1}: not a valid CSV row ({what}); {fix}") from None
    if header is None:
        raise UsageError(f"{name}: empty file, no header; {fix}")
    return header, rows


_QUOTE_ERRORS = {
    "unexpected end of data": "a double quote opened here is never closed",
    "',' expected after '\"'": 'text after a closing double quote: quote the whole cell and double the quotes '
                                'inside it, "a ""dog"" barks"',
}
"""What Python's csv module says about a malformed quote, in words that say where the mistake is."""


def _check_header(header: list[str], columns: Sequence[str], name: str, line: int, fix: str) -> None:
    from lasskit.errors import UsageError

    seen = set()
    for column in header:
        if column and column in seen:
            raise UsageError(f"{name}:{line}: the header names the column {column!r} twice; keep one")
        seen.add(column)
    missing = [c for c in columns if c not in seen]
    if missing:
        found = ", ".join(c for c in header if c) or "nothing"
        wanted = ", ".join(columns[:-1]) + " and " + columns[-1] if len(columns) > 1 else columns[0]
        raise UsageError(f"{name}: needs a header with the column{'s' if len(columns) > 1 else ''} {wanted} "
                         f"(missing {', '.join(missing)}; found: {found}); {fix}")


def _where_not_utf8(path: str | os.PathLike, exc: UnicodeDecodeError) -> str:
    """``:<line>: not UTF-8 text (<reason> at byte <offset in the file>)``."""
    found = not_utf8_at(path)
    if found is None:
        return f": not UTF-8 text ({exc.reason})"
    reason, start, line = found
    return f":{line}: not UTF-8 text ({reason} at byte {start})"


def not_utf8_at(path: str | os.PathLike) -> tuple[str, int, int] | None:
    """``(reason, byte offset, line)`` of the first bytes of ``path`` that are not UTF-8 (a leading
    byte-order mark allowed), or None. A decoder's own ``UnicodeDecodeError.start`` counts from the
    block it was decoding, not from the start of the file: a message must not repeat it."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    skip = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    try:
        data[skip:].decode("utf-8")
    except UnicodeDecodeError as whole:
        start = skip + whole.start
        return whole.reason, start, data[:start].count(b"\n") + 1
    return None


def data_line(path: str | os.PathLike, index: int, header: bool = True) -> int:
    """The file line the ``index``-th data row (0-based, after the header when ``header``) starts on,
    counted as ``csv.DictReader`` and pandas count rows: blank lines skipped, a quoted cell holding
    line breaks one row. For error messages (``<file> line <n>``): a row's position plus 2 is wrong
    after a blank line or a multi-line caption. Reads the file again; ``index + 2`` if it cannot."""
    import csv

    last, rows = 0, -1 if header else 0
    try:
        with open_csv(path) as fh:
            reader = csv.reader(fh)
            for fields in reader:
                start, last = last + 1, reader.line_num
                if not fields:
                    continue
                if rows == index:
                    return start
                rows += 1
    except (OSError, UnicodeDecodeError, csv.Error):
        pass
    return index + (2 if header else 1)


def refuse_repeated_columns(path: str | os.PathLike, fix: str = "keep one") -> None:
    """A :class:`~lasskit.errors.UsageError` when the header names a column twice. For files read
    with pandas, which renames the second ``caption`` to ``caption.1`` and so drops its cells
    without a word; :func:`read_table` checks this itself."""
    import csv

    from lasskit.errors import UsageError

    try:
        with open_csv(path) as fh:
            reader = csv.reader(fh)
            header = next((row for row in reader if row), [])
            line = reader.line_num
    except (OSError, UnicodeDecodeError, csv.Error):
        return  # the reader says what is wrong with the file
    seen = set()
    for name in (c.strip() for c in header):
        if name and name in seen:
            raise UsageError(f"{path}:{line}: the header names the column {name!r} twice; {fix}")
        seen.add(name)
