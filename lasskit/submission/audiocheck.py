"""What ``check`` expects inside an audio zip and how one entry is checked: the WAV files a split
expects (names, lengths, count: the workspace's split, else the official sets), safe entry names,
and the per-entry read and WAV check that runs in worker processes (chunks of entries)."""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass, field

from lasskit.submission.rules import OFFICIAL_COUNTS, OFFICIAL_SAMPLES, decode_wav

CHUNK_ENTRIES = 64
"""Zip entries per worker call."""


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


def unsafe_name(name: str) -> bool:
    """True for an entry name that would point outside a folder it was extracted to."""
    parts = name.replace("\\", "/").split("/")
    return name.startswith(("/", "\\")) or ".." in parts or bool(re.match(r"[A-Za-z]:", name))


@dataclass
class ExpectedAudio:
    """The WAV files an audio zip of a split must hold: ``names`` (None: not known here), the
    length in samples of each (None: unreadable mixture), the ``count`` (None: not known), the
    note saying where this came from and a warning ``(file, message, fix)`` when the workspace's
    split is not the official size; ``unreadable``: a warning ``(file, message, fix)`` when some
    mixtures' lengths could not be read (their outputs' lengths go unchecked: said, not skipped)."""

    names: list[str] | None
    lengths: dict[str, int | None] = field(default_factory=dict)
    count: int | None = None
    note: str = ""
    warning: tuple[str, str, str] | None = None
    unreadable: tuple[str, str, str] | None = None


def expected_audio(split: str, workspace) -> ExpectedAudio:
    """What an audio zip of ``split`` must hold: the rows of ``data/splits/<split>/mixtures.csv``
    when ``workspace`` has it, else the official set (names known for eval_real only)."""
    csv = workspace.split_dir(split) / "mixtures.csv" if workspace is not None else None
    if csv is not None and csv.is_file():
        import soundfile as sf

        from lasskit.splits import read_split

        table = read_split(csv.parent)
        names = list(table.frame["mixture"])
        lengths: dict[str, int | None] = {}
        for n in names:
            try:
                lengths[n] = int(sf.info(os.fsencode(table.mixture_path(n))).frames)
            except Exception:
                lengths[n] = None
        warning = None
        if split in OFFICIAL_COUNTS and len(names) != OFFICIAL_COUNTS[split]:
            warning = (str(csv), f"{len(names)} rows, the official {split} set has {OFFICIAL_COUNTS[split]}",
                       "prepare the full evaluation set before submitting")
        unknown = [n for n in names if lengths[n] is None]
        unreadable = (str(table.mixture_path(unknown[0])), f"{len(unknown)} mixture(s) of {split} unreadable "
                      f"({', '.join(unknown[:3])}{' ...' if len(unknown) > 3 else ''}): the lengths of their outputs "
                      "are not checked", "re-prepare the split") if unknown else None
        return ExpectedAudio(names, lengths, len(names), f"{split}: expecting the {len(names)} file(s) of {csv}",
                             warning, unreadable)
    if split == "eval_real":
        names = [f"test-real-case-{i}.wav" for i in range(OFFICIAL_COUNTS[split])]
        return ExpectedAudio(names, dict.fromkeys(names, OFFICIAL_SAMPLES), len(names),
                             f"{split}: no split in the workspace; expecting the official "
                             f"{len(names)} files test-real-case-<i>.wav of {OFFICIAL_SAMPLES} samples")
    n = OFFICIAL_COUNTS.get(split)
    return ExpectedAudio(None, {}, n, f"{split}: no split in the workspace; expecting {n} files of "
                                      f"{OFFICIAL_SAMPLES} samples (names not known here)")
