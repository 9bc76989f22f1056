"""Mixture sets on disk: ``data/splits/<split>/mixtures.csv`` with ``mixture/``, ``source/``, ``noise/``.

``mixtures.csv`` columns: ``mixture`` (file name in ``mixture/``) and ``query`` always; where the
references are known ``source`` and ``noise`` (paths relative to the split folder), ``snr`` (dB),
``source_id``, ``noise_id``, ``source_labels`` and ``noise_labels`` (JSON lists). Any further
columns (offsets, gains, seed, ...) are kept as they are.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

from lasskit.atomic import write_text_if_changed
from lasskit.errors import UsageError

REQUIRED_COLUMNS = ("mixture", "query")
KNOWN_COLUMNS = (
    "mixture", "query", "source", "noise", "snr", "source_id", "noise_id", "source_labels", "noise_labels",
)
MIXTURES_CSV = "mixtures.csv"


@dataclass
class Split:
    """A validated mixture set. ``frame`` is a pandas DataFrame of ``mixtures.csv`` (strings)."""

    name: str
    root: Path
    frame: "pandas.DataFrame"  # noqa: F821

    @property
    def csv_path(self) -> Path:
        return self.root / MIXTURES_CSV

    @property
    def has_references(self) -> bool:
        """True when every row names a reference (``source``) file."""
        return "source" in self.frame.columns and bool((self.frame["source"] != "").all()) and len(self.frame) > 0

    def mixture_path(self, name: str) -> Path:
        return self.root / "mixture" / name

    def __len__(self) -> int:
        return len(self.frame)


def read_split(root: str | os.PathLike) -> Split:
    """Read and validate ``root/mixtures.csv``: required columns, unique non-empty names, queries."""
    import pandas as pd

    root = Path(root)
    path = root / MIXTURES_CSV
    if not path.is_file():
        raise UsageError(f"{path}: no such split; create it with `lasskit prepare` or `lasskit mix`")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:
        raise UsageError(f"{path}: unreadable CSV ({exc}); fix it or re-create the split")
    from lasskit.csvfile import refuse_repeated_columns

    refuse_repeated_columns(path, "keep one (pandas would read the second as another column)")
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise UsageError(f"{path}: lacks column(s) {', '.join(missing)}; a split needs 'mixture' and 'query'")
    names = frame["mixture"]
    from lasskit.csvfile import data_line

    for i, (name, query) in enumerate(zip(names, frame["query"]), start=2):
        if not name:
            raise UsageError(f"{path} line {data_line(path, i - 2)}: empty mixture file name")
        if "/" in name or "\\" in name or name in (".", ".."):
            raise UsageError(f"{path} line {data_line(path, i - 2)}: mixture {name!r} must be a plain file name in mixture/")
        if not query.strip():
            raise UsageError(f"{path} line {data_line(path, i - 2)}: empty query for {name}; every mixture needs a text query")
    dupes = sorted(set(names[names.duplicated()]))
    if dupes:
        raise UsageError(f"{path}: duplicate mixture name(s) {', '.join(dupes[:5])}; names must be unique")
    return Split(root.name, root, frame)


def split_csv(frame) -> str:
    """CSV text of a mixtures table (deterministic)."""
    buf = io.StringIO()
    frame.to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue()


def write_split_csv(root: str | os.PathLike, frame) -> bool:
    """Write ``root/mixtures.csv`` atomically (untouched if unchanged). True if written."""
    return write_text_if_changed(Path(root) / MIXTURES_CSV, split_csv(frame))
