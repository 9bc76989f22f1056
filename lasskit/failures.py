"""Failure lists: the ``(name, reason)`` CSV every batch command leaves next to its outputs.

Batch commands keep going past a bad file; what failed is listed here (and in the summary),
one row per file, so that it can be fixed and the command run again.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from lasskit.atomic import write_text_if_changed


def failures_csv(failures: list[tuple[str, str]], first_column: str = "file") -> str:
    """CSV text with the header ``<first_column>,reason`` and one row per failure.

    Bytes of a file name that are not UTF-8 (surrogate escapes) are written as ``\\xNN``: the list is
    UTF-8 text, and a failure in a folder named on a Latin-1 system is still listed."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([first_column, "reason"])
    writer.writerows([cell if not isinstance(cell, str) else shown(cell) for cell in row] for row in failures)
    return buf.getvalue()


def shown(text: str) -> str:
    """``text`` as UTF-8 can hold it: surrogate escapes (bytes of a name that are not UTF-8) as ``\\xNN``."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def write_failures(
    path: str | os.PathLike,
    failures: list[tuple[str, str]],
    first_column: str = "file",
    keep_empty: bool = False,
) -> Path | None:
    """Write ``failures`` to ``path`` atomically (unchanged files are not touched).

    With no failures the file is written with its header only if ``keep_empty``; otherwise a
    stale list from an earlier run is removed, since it would mislead. Returns the path if written.
    """
    path = Path(path)
    if failures or keep_empty:
        write_text_if_changed(path, failures_csv(failures, first_column))
        return path
    path.unlink(missing_ok=True)
    return None
