"""Opening the CSV files lasskit reads (manifests, splits, vocabularies, organizers' and raters'
CSVs): UTF-8, with or without the byte-order mark that spreadsheet exports put first.

Every CSV reader opens through :func:`open_csv` (pandas readers strip the mark themselves), so a
manifest saved from a spreadsheet reads as the same columns (``id``, not ``\\ufeffid``).
"""

from __future__ import annotations

import os

CSV_ENCODING = "utf-8-sig"
"""Decodes UTF-8 and drops a leading byte-order mark (U+FEFF) if there is one."""


def open_csv(path: str | os.PathLike, newline: str | None = ""):
    """``path`` opened for ``csv.reader``/``csv.DictReader`` (text, UTF-8, no byte-order mark)."""
    return open(path, encoding=CSV_ENCODING, newline=newline)
