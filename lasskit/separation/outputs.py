"""What ``separate`` writes: the output files, their completeness check, ``separate.json``, failures."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lasskit import SAMPLE_RATE, audio
from lasskit.errors import AudioError, WorkError
from lasskit.failures import write_failures

SEPARATE_JSON = "separate.json"


FAILURES_CSV = "failures.csv"


@dataclass
class Item:
    """One row to separate: its output name, query, input files, length (samples at 16 kHz), the
    content digests of its inputs and why it is (re)made."""

    index: int
    name: str
    query: str
    mixture_path: Path
    reference_path: Path | None
    num_samples: int
    digest: str = ""
    reference_digest: str | None = None
    reason: str = "new"


@dataclass
class Written:
    """What a write task did: the items written, the silent ones, and the error that stopped it."""

    items: list
    silent: list
    error: tuple | None = None  # (item, OSError)


def file_sha256(path: str | os.PathLike | None) -> str | None:
    """SHA-256 (hex) of a file; None for None or a path that is not a file."""
    if path is None or not Path(path).is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def expected_length(num_frames: int, rate: int) -> int:
    """Samples at 16 kHz of a ``num_frames`` file at ``rate`` Hz once resampled (rounded half up)."""
    if rate == SAMPLE_RATE:
        return num_frames
    return (2 * num_frames * SAMPLE_RATE + rate) // (2 * rate)


def is_complete_output(path: Path, num_samples: int) -> bool:
    """True if ``path`` is a readable 16 kHz mono WAV of exactly ``num_samples`` samples."""
    try:
        i = audio.info(path)
    except AudioError:
        return False
    return i.sample_rate == SAMPLE_RATE and i.channels == 1 and i.num_samples == num_samples


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _write_outputs(out_dir: Path, items: list[Item], estimates: list[np.ndarray]) -> Written:
    """Write each item's estimate (cropped to its length) atomically; stops at the first OSError
    (a full disk, a permission), which it returns with the items written before it."""
    done = Written([], [])
    for item, est in zip(items, estimates):
        signal = est[: item.num_samples]
        if len(signal) != item.num_samples:  # pragma: no cover - the pipeline crops to the length
            raise WorkError(f"{out_dir / item.name}: internal error, estimate of the wrong length")
        try:
            audio.write(out_dir / item.name, signal, SAMPLE_RATE, "float")
        except OSError as exc:
            done.error = (item, exc)
            return done
        if not np.any(signal):
            done.silent.append(item.name)
        done.items.append(item)
    return done


def _write_failures(out_dir: Path, failures: list[tuple[str, str]]) -> None:
    write_failures(out_dir / FAILURES_CSV, sorted(failures), first_column="mixture")
