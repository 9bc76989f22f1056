"""The organizers' mixing formula and their CSV of mixtures (a core module).

The DCASE 2024 Task 9 evaluator, for a source ``s`` and noise ``n`` at 16 kHz mono and an SNR in dB::

    n   <- n * sqrt(mean(s^2) / (mean(n^2) * 10^(snr/10)))   # so 10*log10(mean(s^2)/mean(n^2)) = snr
    mix  = s + n
    if max|mix| > 1:  mix, s, n <- (0.9 / max|mix|) * (mix, s, n)

Computed in float64; the written float32 files satisfy ``mixture == source + noise`` exactly.

Owns :func:`official_mixture`, reading the organizers' ``source, noise, snr, caption`` CSV exactly
as their ``csv.reader`` does, and :func:`build_from_official` (writing the split such a CSV
describes). Both ``lasskit.corpora`` (``prepare dcase2024``'s ``val_synth``) and
``lasskit.mixing`` (``mix --from-official``) use it; it imports core modules only.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from lasskit import SAMPLE_RATE, audio
from lasskit.errors import AudioError, UsageError
from lasskit.parallel import run_parallel

CLIP_PEAK = 0.9
"""After scaling, the mixture's peak when it would have clipped (the organizers' 0.9)."""


@dataclass
class OfficialMixture:
    """A mixture and its references (float32, same length) and the gains that made them."""

    mixture: np.ndarray
    source: np.ndarray
    noise: np.ndarray
    noise_gain: float  # applied to the raw noise for the SNR
    clip_gain: float  # applied to everything afterwards (1.0 if no clipping)


def official_mixture(source: np.ndarray, noise: np.ndarray, snr: float) -> OfficialMixture:
    """Mix ``source`` and ``noise`` at ``snr`` dB with the organizers' formula (see module doc).

    The noise is cropped or zero-padded to the source's length. A silent source or noise is an
    error (the SNR would be undefined).
    """
    s = np.asarray(source, dtype=np.float64)
    n = np.asarray(noise, dtype=np.float64)
    if len(n) >= len(s):
        n = n[: len(s)]
    else:
        n = np.pad(n, (0, len(s) - len(n)))
    ps, pn = np.mean(s**2), np.mean(n**2)
    if ps <= 0:
        raise AudioError("source is silent: the SNR is undefined")
    if pn <= 0:
        raise AudioError("noise is silent: the SNR is undefined")
    noise_gain = float(np.sqrt(ps / (pn * 10 ** (snr / 10))))
    n = n * noise_gain
    mix = s + n
    peak = float(np.max(np.abs(mix)))
    clip_gain = CLIP_PEAK / peak if peak > 1 else 1.0
    s32 = (s * clip_gain).astype(np.float32)
    n32 = (n * clip_gain).astype(np.float32)
    return OfficialMixture(s32 + n32, s32, n32, noise_gain, clip_gain)


@dataclass(frozen=True)
class OfficialRow:
    """One row of an organizers' mixing CSV (``source, noise, snr, caption``) and where to write it."""

    index: int
    name: str
    source_path: Path
    noise_path: Path
    snr: float
    split_dir: Path
    overwrite: bool = False


def _build_official_row(row: OfficialRow, resampler: str = "soxr") -> dict:
    out = {k: row.split_dir / k / row.name for k in ("mixture", "source", "noise")}
    if not row.overwrite and all(audio.is_complete_wav(p) for p in out.values()):
        return {"skipped": True, "num_samples": audio.info(out["mixture"]).num_samples}
    s = audio.load(row.source_path, SAMPLE_RATE, resampler)
    n = audio.load(row.noise_path, SAMPLE_RATE, resampler)
    try:
        m = official_mixture(s, n, row.snr)
    except AudioError as exc:
        raise AudioError(f"{row.source_path.name} + {row.noise_path.name}: {exc}")
    # references first, mixture last: a complete mixture means a complete row
    audio.write(out["source"], m.source, SAMPLE_RATE, "float")
    audio.write(out["noise"], m.noise, SAMPLE_RATE, "float")
    audio.write(out["mixture"], m.mixture, SAMPLE_RATE, "float")
    return {"skipped": False, "noise_gain": m.noise_gain, "clip_gain": m.clip_gain, "num_samples": len(m.mixture)}


def mixture_name(split: str, index: int, total: int) -> str:
    """File name of a generated mixture: ``<split>_<index, zero-padded to 4+ digits>.wav``."""
    width = max(4, len(str(max(total - 1, 0))))
    return f"{split}_{index:0{width}d}.wav"


def read_official_csv(path: Path) -> "pandas.DataFrame":  # noqa: F821
    """Read an organizers' mixing CSV (``source, noise, snr, caption``; spaces after commas allowed)."""
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except Exception as exc:
        raise UsageError(f"{path}: unreadable CSV ({exc})")
    frame.columns = [c.strip() for c in frame.columns]
    missing = [c for c in ("source", "noise", "snr", "caption") if c not in frame.columns]
    if missing:
        raise UsageError(f"{path}: lacks column(s) {', '.join(missing)}; expected source, noise, snr, caption")
    for i, value in enumerate(frame["snr"], start=2):
        try:
            float(value)
        except ValueError:
            raise UsageError(f"{path} line {i}: snr {value!r} is not a number")
    return frame


def build_from_official(
    csv_path: Path,
    clips: dict[str, Path],
    split_dir: Path,
    *,
    labels: dict[str, list[str]] | None = None,
    jobs: int | None = None,
    overwrite: bool = False,
    resampler: str = "soxr",
) -> tuple["pandas.DataFrame", list[tuple[str, str]], int, float]:  # noqa: F821
    """Write the split an organizers' CSV describes, with :func:`official_mixture`.

    ``clips`` maps clip ids (the CSV's ``source``/``noise`` values) to audio files. Writes
    ``mixture/``, ``source/`` and ``noise/`` (float32 WAV) and ``mixtures.csv``; returns the
    table, the failures ``(name, reason)``, the number of rows skipped as already complete and
    the seconds of audio in the split.
    """
    from lasskit.splits import write_split_csv

    frame = read_official_csv(csv_path)
    labels = labels or {}
    rows, failures = [], []
    for i, r in enumerate(frame.to_dict("records")):
        name = mixture_name(split_dir.name, i, len(frame))
        if r["source"] == r["noise"]:
            failures.append((name, f"row {i + 2}: source and noise are the same clip {r['source']}"))
            continue
        if r["source"] not in clips or r["noise"] not in clips:
            gone = [c for c in (r["source"], r["noise"]) if c not in clips]
            failures.append((name, f"row {i + 2}: no audio for clip(s) {', '.join(gone)}"))
            continue
        rows.append((i, r, OfficialRow(i, name, clips[r["source"]], clips[r["noise"]], float(r["snr"]),
                                       split_dir, overwrite)))
    outcomes = run_parallel(partial(_build_official_row, resampler=resampler), [o for _, _, o in rows],
                            jobs, desc=f"mix {split_dir.name}")
    records, skipped, seconds = [], 0, 0.0
    for (i, r, row), outcome in zip(rows, outcomes):
        if not outcome.ok:
            failures.append((row.name, outcome.error))
            continue
        skipped += outcome.value["skipped"]
        seconds += outcome.value["num_samples"] / SAMPLE_RATE
        records.append({
            "mixture": row.name, "query": r["caption"], "source": f"source/{row.name}",
            "noise": f"noise/{row.name}", "snr": r["snr"], "source_id": r["source"], "noise_id": r["noise"],
            "source_labels": json.dumps(labels.get(r["source"], []), ensure_ascii=False),
            "noise_labels": json.dumps(labels.get(r["noise"], []), ensure_ascii=False),
            "official_row": i,
        })
    import pandas as pd

    table = pd.DataFrame(records, columns=[
        "mixture", "query", "source", "noise", "snr", "source_id", "noise_id", "source_labels",
        "noise_labels", "official_row",
    ])
    split_dir.mkdir(parents=True, exist_ok=True)
    write_split_csv(split_dir, table)
    return table, failures, skipped, seconds



def official_clip_paths(clips: str | os.PathLike) -> tuple[dict[str, Path], dict[str, list[str]]]:
    """Clip id -> audio file (and id -> labels) from a manifest, a corpus folder or a folder of audio."""
    from lasskit.manifest import read_manifest

    clips = Path(clips)
    manifest = clips if clips.is_file() else clips / "manifest.csv"
    if manifest.is_file():
        m = read_manifest(manifest)
        return {c.id: m.audio_path(c) for c in m.clips}, {c.id: c.labels for c in m.clips}
    if not clips.is_dir():
        raise UsageError(f"{clips}: no such folder; pass --clips DIR holding the clips (<id>.wav) or a manifest")
    paths: dict[str, Path] = {}
    for p in audio.find_audio(clips):
        if p.stem in paths:
            raise UsageError(f"{clips}: two files for clip {p.stem} ({paths[p.stem].name}, {p.name}); keep one")
        paths[p.stem] = p
    if not paths:
        raise UsageError(f"{clips}: no audio files; pass the folder holding the clips named <id>.wav")
    return paths, {}
