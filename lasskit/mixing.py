"""Synthetic mixtures: class-disjoint pairs at exact SNRs (``lasskit mix``) and the organizers' formula.

**The organizers' mixing** (DCASE 2024 Task 9 evaluator), for a source ``s`` and noise ``n`` at
16 kHz mono and an SNR in dB::

    n   <- n * sqrt(mean(s^2) / (mean(n^2) * 10^(snr/10)))   # so 10*log10(mean(s^2)/mean(n^2)) = snr
    mix  = s + n
    if max|mix| > 1:  mix, s, n <- (0.9 / max|mix|) * (mix, s, n)

Computed in float64; the written float32 files satisfy ``mixture == source + noise`` exactly
(the mixture is the float32 sum of the float32 references).

**lasskit's own sets** (:func:`make_mixtures`) use the same gains on fixed-length segments:

- segment: ``duration`` s (``length`` samples at 16 kHz). A longer clip is cropped at an offset
  drawn uniformly among the *usable* windows: offsets on a 0.1 s grid whose window holds at least
  half as many active frames as the best window, a frame (0.1 s) being active when its RMS is at
  least ``silence_db`` dBFS (default -60). A shorter clip is zero-padded at the end. A clip with
  no active frame in any window is silent and never used, as target or as noise.
- gains: ``g = sqrt(sum(s^2) / (sum(n^2) * 10^(snr/10)))`` over the segments (float64), then
  ``c = 0.9 / max|s + g n|`` if that peak exceeds 1, else 1. Written (float32 WAV):
  ``source = f32(s * c)``, ``noise = f32(n * (c g))``, ``mixture = source + noise`` (float32 sum),
  so ``10*log10(sum(source^2) / sum(noise^2)) = snr`` to float precision (~1e-6 dB).
- pairing: the noise's label set (see :mod:`lasskit.ontology`) is disjoint from the target's,
  and the noise is never the target clip itself.
- randomness: the order of targets comes from ``SeedSequence(seed, spawn_key=(1,))``; row ``i``'s
  noise, caption, SNR and offsets from ``SeedSequence(seed, spawn_key=(0, i))``, all drawn in the
  parent process, so the files do not depend on ``jobs``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from lasskit import SAMPLE_RATE, audio
from lasskit.failures import write_failures
from lasskit.errors import AudioError, UsageError, WorkError
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


# =====================================================================================
# lasskit's own mixture sets
# =====================================================================================

FRAME_SECONDS = 0.1
"""Activity frames and crop-offset grid, in seconds."""
SILENCE_DB = -60.0
"""Default activity threshold: a frame is active when its RMS is at least this many dBFS."""
MIX_JSON = "mix.json"
"""Options and counts of a split made by :func:`make_mixtures` (written before any audio)."""
MIX_COLUMNS = (
    "mixture", "query", "source", "noise", "snr", "source_id", "noise_id", "source_labels", "noise_labels",
    "offsets", "gains", "source_corpus", "noise_corpus", "seed",
)
OFFICIAL_HEADER = "source, noise, snr, caption"
"""Header of the organizers' mixing CSV, spaces included, as in lass_synthetic_validation.csv."""
_WAV_FORMATS = ("WAV", "WAVEX", "RF64", "W64", "FLAC", "AIFF")  # exact partial reads


@dataclass(frozen=True)
class MixSpec:
    """What a mixture set is: SNR range (dB), size, queries, segment length (s), seed."""

    snr_low: float
    snr_high: float
    num: int | None = None  # rows; None: one per target (per caption with per_caption)
    per_caption: bool = False
    integer_snr: bool = False
    duration: float = 10.0  # seconds
    min_duration: float = 0.0  # seconds; shorter clips are skipped (0: pad every clip)
    seed: int = 0
    allow_unlabeled: bool = False
    silence_db: float = SILENCE_DB  # dBFS

    @property
    def length(self) -> int:
        """Segment length in samples at 16 kHz."""
        return int(round(self.duration * SAMPLE_RATE))

    @property
    def hop(self) -> int:
        """Frame and offset-grid step in samples."""
        return int(round(FRAME_SECONDS * SAMPLE_RATE))

    def snr_bounds(self) -> tuple[float, float]:
        """The SNR range actually drawn from: integers ceil(low)..floor(high) with integer_snr."""
        if self.integer_snr:
            return float(np.ceil(self.snr_low)), float(np.floor(self.snr_high))
        return float(self.snr_low), float(self.snr_high)

    def validate(self) -> "MixSpec":
        """Raise :class:`UsageError` for impossible options; returns self."""
        if not (np.isfinite(self.snr_low) and np.isfinite(self.snr_high)) or self.snr_low > self.snr_high:
            raise UsageError(f"--snr {self.snr_low:g} {self.snr_high:g}: give LOW <= HIGH, finite, in dB")
        lo, hi = self.snr_bounds()
        if lo > hi:
            raise UsageError(f"--snr {self.snr_low:g} {self.snr_high:g} holds no integer for --integer-snr")
        if self.num is not None and self.num <= 0:
            raise UsageError(f"--num {self.num}: must be a positive number of mixtures")
        if not self.duration > 0 or self.length < 1:
            raise UsageError(f"--duration {self.duration}: must be a positive number of seconds")
        if self.min_duration < 0:
            raise UsageError(f"--min-duration {self.min_duration}: must be >= 0 seconds")
        if self.seed < 0:
            raise UsageError(f"--seed {self.seed}: must be >= 0")
        return self

    def draw_snr(self, rng: np.random.Generator) -> float:
        lo, hi = self.snr_bounds()
        if self.integer_snr:
            return float(rng.integers(int(lo), int(hi) + 1))
        return float(rng.uniform(lo, hi))

    def format_snr(self, snr: float) -> str:
        """The CSV text of an SNR: an integer with integer_snr, else the shortest exact float."""
        return str(int(snr)) if self.integer_snr else repr(float(snr))


@dataclass
class Candidate:
    """A clip that may become a target or a noise. ``key`` (its resolved audio path) is its identity."""

    key: str
    corpus: str  # the manifest's folder name
    id: str
    path: Path
    duration: float  # seconds, from the manifest
    dataset: str
    split: str
    captions: list[str]
    labels: list[str]
    label_set: frozenset[str]


def resolve_manifest(value: str | os.PathLike, workspace=None) -> Path:
    """A manifest from a CLI word: a manifest CSV, a corpus folder, or a corpus name in the workspace."""
    path = Path(value)
    if path.is_file():
        return path.resolve()
    if (path / "manifest.csv").is_file():
        return (path / "manifest.csv").resolve()
    if workspace is not None and workspace.manifest_path(str(value)).is_file():
        return workspace.manifest_path(str(value)).resolve()
    known = ", ".join(workspace.corpora()) if workspace is not None else ""
    raise UsageError(f"{value}: no such manifest; pass a manifest.csv, a corpus folder or a prepared corpus name"
                     + (f" ({known})" if known else " (run `lasskit prepare` first)"))


def load_candidates(
    manifests: Sequence[str | os.PathLike],
    ontology=None,
    splits: Sequence[str] = (),
    datasets: Sequence[str] = (),
) -> list[Candidate]:
    """Every clip of ``manifests`` whose split and dataset pass the filters, once (by audio path)."""
    from lasskit.manifest import read_manifest
    from lasskit.ontology import label_set

    keep_splits, keep_datasets = set(splits), set(datasets)
    out: list[Candidate] = []
    seen: set[str] = set()
    for mpath in manifests:
        manifest = read_manifest(mpath)
        for clip in manifest.clips:
            if keep_splits and clip.split not in keep_splits:
                continue
            if keep_datasets and clip.dataset not in keep_datasets:
                continue
            path = manifest.audio_path(clip).resolve()
            key = str(path)
            if key in seen:
                continue
            seen.add(key)
            out.append(Candidate(
                key=key, corpus=manifest.root.name, id=clip.id, path=path, duration=clip.duration,
                dataset=clip.dataset, split=clip.split,
                captions=[c for c in clip.captions if c.strip()], labels=list(clip.labels),
                label_set=label_set(clip.labels, ontology),
            ))
    return out


# --- activity and segments -----------------------------------------------------------------------

def frame_activity(signal: np.ndarray, silence_db: float = SILENCE_DB, hop: int | None = None) -> np.ndarray:
    """Per 0.1 s frame (``hop`` samples), True when the frame's RMS >= ``silence_db`` dBFS."""
    hop = hop or int(round(FRAME_SECONDS * SAMPLE_RATE))
    x = np.asarray(signal, dtype=np.float64)
    frames = -(-len(x) // hop)
    padded = np.zeros(frames * hop)
    padded[: len(x)] = x
    energy = (padded.reshape(frames, hop) ** 2).sum(axis=1)
    counts = np.full(frames, hop, dtype=np.float64)
    if frames and len(x) % hop:
        counts[-1] = len(x) % hop
    threshold = 10 ** (silence_db / 10)  # on mean power
    return energy / counts >= threshold


def usable_offsets(active: np.ndarray, num_samples: int, length: int, hop: int) -> np.ndarray:
    """Crop offsets (samples) whose ``length`` window holds >= half the best window's active frames.

    A clip no longer than ``length`` has the one offset 0 (it is zero-padded) if any frame is
    active. An empty result means the clip is silent for this length.
    """
    active = np.asarray(active, dtype=bool)
    if num_samples <= length:
        return np.zeros(1, dtype=np.int64) if active.any() else np.zeros(0, dtype=np.int64)
    count = (num_samples - length) // hop + 1
    width = -(-length // hop)
    cum = np.concatenate([[0], np.cumsum(active, dtype=np.int64)])
    starts = np.arange(count)
    ends = np.minimum(starts + width, len(active))
    per_window = cum[ends] - cum[np.minimum(starts, len(active))]
    best = int(per_window.max()) if len(per_window) else 0
    if best == 0:
        return np.zeros(0, dtype=np.int64)
    return (np.flatnonzero(2 * per_window >= best) * hop).astype(np.int64)


def take_segment(signal: np.ndarray, offset: int, length: int) -> np.ndarray:
    """``signal[offset:offset+length]``, zero-padded at the end to ``length`` samples."""
    seg = np.asarray(signal)[offset:offset + length]
    if len(seg) < length:
        seg = np.concatenate([seg, np.zeros(length - len(seg), dtype=seg.dtype)])
    return seg


_local = threading.local()


def _scratch(slot: str, length: int, dtype) -> np.ndarray:
    """A reusable buffer of this thread: big rows would otherwise page-fault fresh memory each time."""
    buffers = _local.__dict__.setdefault("buffers", {})
    key = (slot, length, np.dtype(dtype).char)
    buf = buffers.get(key)
    if buf is None:
        if len(buffers) >= 16:
            buffers.clear()
        buf = buffers[key] = np.empty(length, dtype=dtype)
    return buf


def read_segment(path: str | os.PathLike, offset: int, length: int, out: np.ndarray | None = None) -> np.ndarray:
    """Samples ``offset .. offset+length`` of a clip as 16 kHz mono float32, zero-padded.

    Equal to ``take_segment(audio.load(path), offset, length)``; 16 kHz WAV/FLAC files are read
    partially (only the segment is decoded). ``out`` (float32, ``length``) receives the samples.
    """
    import soundfile as sf

    path = Path(path)
    try:
        i = sf.info(str(path))
    except Exception:
        i = None
    if i is None or i.samplerate != SAMPLE_RATE or i.format not in _WAV_FORMATS:
        seg = take_segment(audio.load(path), offset, length)
        if out is None:
            return seg
        out[:] = seg
        return out
    want = max(0, min(length, int(i.frames) - offset))
    if out is None:
        out = np.empty(length, dtype=np.float32)
    try:
        with sf.SoundFile(str(path)) as f:
            f.seek(min(offset, int(f.frames)))
            if f.channels == 1:
                got = len(f.read(want, dtype="float32", out=out[:want]))
            else:
                data = f.read(want, dtype="float32", always_2d=True)
                got = data.shape[0]
                out[:got] = audio.to_mono(np.ascontiguousarray(data.T))
    except Exception as exc:
        raise AudioError(f"{path}: unreadable audio ({exc}); re-download or remove it") from exc
    if got < want:
        raise AudioError(f"{path}: truncated audio (read {got} of {want} samples at {offset}); re-prepare it")
    out[want:] = 0
    if not np.isfinite(out[:want]).all():
        raise AudioError(f"{path}: audio holds NaN or infinite samples; fix or remove the file")
    return out


@dataclass
class MixedSegments:
    """A mixture, its reference and its noise (float32, same length), and the gains that made them.

    ``source = f32(source_segment * source_gain)``, ``noise = f32(noise_segment * noise_gain)``,
    ``mixture = source + noise``; ``clip_gain`` is the part of both gains that prevents clipping.
    """

    mixture: np.ndarray
    source: np.ndarray
    noise: np.ndarray
    source_gain: float
    noise_gain: float
    clip_gain: float


def mix_segments(source: np.ndarray, noise: np.ndarray, snr: float) -> MixedSegments:
    """Mix equal-length segments at ``snr`` dB (energy ratio over the segments; see module doc)."""
    if len(source) != len(noise):
        raise ValueError(f"segments differ in length ({len(source)} and {len(noise)} samples)")
    s = _scratch("s64", len(source), np.float64)
    n = _scratch("n64", len(noise), np.float64)
    s[:] = source
    n[:] = noise
    es, en = _energy(s), _energy(n)
    if es <= 0:
        raise AudioError("target segment is silent: the SNR is undefined")
    if en <= 0:
        raise AudioError("noise segment is silent: the SNR is undefined")
    g = float(np.sqrt(es / (en * 10 ** (snr / 10))))
    work = np.multiply(n, g, out=_scratch("w64", len(n), np.float64))
    work += s
    peak = max(float(work.max()), -float(work.min()))
    clip = CLIP_PEAK / peak if peak > 1 else 1.0
    return gain_segments(s, n, clip, clip * g)


def gain_segments(source: np.ndarray, noise: np.ndarray, source_gain: float, noise_gain: float) -> MixedSegments:
    """Apply recorded gains (float64 product, then float32) and sum: how every row is written."""
    s32 = _scaled32(source, source_gain)
    n32 = _scaled32(noise, noise_gain)
    return MixedSegments(s32 + n32, s32, n32, float(source_gain), float(noise_gain), float(source_gain))


def _scaled32(x: np.ndarray, gain: float) -> np.ndarray:
    """``float32(float64(x) * gain)`` (a new array)."""
    x = np.asarray(x)
    if gain == 1.0:
        return x.astype(np.float32)  # exact: float64(x) * 1.0 == x
    work = _scratch("w64", len(x), np.float64)
    work[:] = x
    work *= gain
    return work.astype(np.float32)


def _energy(x: np.ndarray) -> float:
    """``sum(x^2)`` in float64 (einsum: no BLAS threads, no temporary)."""
    return float(np.einsum("i,i->", x, x))


def energy_snr(source: np.ndarray, noise: np.ndarray) -> float:
    """``10*log10(sum(source^2) / sum(noise^2))`` in dB, computed in float64."""
    s = np.asarray(source, dtype=np.float64)
    n = np.asarray(noise, dtype=np.float64)
    return float(10 * np.log10(_energy(s) / _energy(n)))


# --- planning: every random choice, no audio ------------------------------------------------------

@dataclass
class PlannedRow:
    """One mixture's choices. Offsets are in samples of the 16 kHz clips."""

    index: int
    target: Candidate
    noise: Candidate
    query: str
    snr: float
    rng: np.random.Generator = field(repr=False)
    target_offset: int = 0
    noise_offset: int = 0


def row_rng(seed: int, index: int, *extra: int) -> np.random.Generator:
    """The generator of row ``index``: ``SeedSequence(seed, spawn_key=(0, index, *extra))``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0, index, *extra)))


class Planner:
    """The pairing, query and SNR logic shared by :func:`make_mixtures` and the training Dataset.

    Units are the targets (or, with ``per_caption``, each (target, caption)); the rows take the
    units in order, cycling, and a seeded sorted subset for a last partial round. Row ``i``'s
    generator then draws, in this order: the noise (uniform among class-disjoint noises), a
    caption index, the SNR, the target's and the noise's crop offsets.
    """

    def __init__(self, targets: Sequence[Candidate], noises: Sequence[Candidate], spec: MixSpec):
        from lasskit.ontology import NoisePool

        self.spec = spec.validate()
        self.targets = list(targets)
        self.noises = list(noises)
        self.pool = NoisePool([n.label_set for n in self.noises], [n.key for n in self.noises])
        self.excluded: set[str] = set()
        self._noise_excluded = np.zeros(len(self.noises), dtype=bool)
        self.refresh()

    def exclude(self, keys: set[str]) -> None:
        """Leave these clips (by key) out of both roles, e.g. silent or unreadable ones."""
        self.excluded |= set(keys)
        self._noise_excluded = np.array([n.key in self.excluded for n in self.noises], dtype=bool)
        self.refresh()

    def valid_noises(self, target: Candidate) -> np.ndarray:
        """Positions in ``noises`` of the noises ``target`` may be mixed with."""
        return self.pool.valid(target.label_set, target.key, self._noise_excluded)

    def refresh(self) -> None:
        """Recompute the usable targets and the units."""
        self.usable: list[Candidate] = []
        self.without_noise: list[Candidate] = []
        for t in self.targets:
            if t.key in self.excluded:
                continue
            (self.usable if len(self.valid_noises(t)) else self.without_noise).append(t)
        self.units: list[tuple[Candidate, int | None]] = []
        for t in self.usable:
            if self.spec.per_caption:
                self.units += [(t, k) for k in range(len(t.captions))] if t.captions else [(t, -1)]
            else:
                self.units.append((t, None))
        self._schedules: dict[int, list[int]] = {}

    @property
    def num_rows(self) -> int:
        return self.spec.num if self.spec.num is not None else len(self.units)

    def schedule(self, epoch: int = 0) -> list[int]:
        """Unit index of every row: all units in order, repeated, then a sorted seeded subset."""
        if not self.units:
            return []
        cached = self._schedules.get(epoch)
        if cached is not None:
            return cached
        full, rest = divmod(self.num_rows, len(self.units))
        order = list(range(len(self.units))) * full
        if rest:
            key = (1,) if epoch == 0 else (1, epoch)
            rng = np.random.default_rng(np.random.SeedSequence(self.spec.seed, spawn_key=key))
            order += sorted(int(u) for u in rng.choice(len(self.units), rest, replace=False))
        if len(self._schedules) > 8:
            self._schedules.clear()
        self._schedules[epoch] = order
        return order

    def query_of(self, target: Candidate, caption: int | None, drawn: int) -> str:
        """Caption ``caption`` (``drawn`` when None); a labels-only clip gets one made from its labels."""
        from lasskit.corpora.common import caption_from_labels

        if not target.captions:
            return caption_from_labels(target.labels)
        return target.captions[drawn if caption is None else caption]

    def draw(self, index: int, unit: int, rng: np.random.Generator) -> PlannedRow:
        """Row ``index`` for ``units[unit]``: noise, query and SNR from ``rng`` (offsets come later)."""
        target, caption = self.units[unit]
        valid = self.valid_noises(target)
        noise = self.noises[int(valid[rng.integers(len(valid))])]
        drawn = int(rng.integers(max(1, len(target.captions))))
        snr = self.spec.draw_snr(rng)
        if noise.key == target.key:  # pragma: no cover - NoisePool leaves the target out
            raise WorkError(f"{target.path}: the target was drawn as its own noise (a bug; please report it)")
        return PlannedRow(index, target, noise, self.query_of(target, caption, drawn), snr, rng)

    def plan(self, epoch: int = 0) -> list[PlannedRow]:
        """Every row's noise, query and SNR."""
        out = []
        for i, unit in enumerate(self.schedule(epoch)):
            rng = row_rng(self.spec.seed, i) if epoch == 0 else row_rng(self.spec.seed, i, epoch)
            out.append(self.draw(i, unit, rng))
        return out

    def draw_offset(self, rng: np.random.Generator, active: np.ndarray, num_samples: int) -> int | None:
        """A crop offset (samples) among the usable windows, or None if the clip is silent."""
        offsets = usable_offsets(active, num_samples, self.spec.length, self.spec.hop)
        if not len(offsets):
            return None
        return int(offsets[rng.integers(len(offsets))])


@dataclass(frozen=True)
class ClipActivity:
    """A clip's length (samples at 16 kHz) and per-frame activity."""

    num_samples: int
    active: np.ndarray


def analyse_clip(path: str | os.PathLike, silence_db: float = SILENCE_DB) -> ClipActivity:
    """Decode a clip (16 kHz mono) and mark its active frames."""
    x = audio.load(path)
    return ClipActivity(len(x), frame_activity(x, silence_db))


def plan_mixtures(
    planner: Planner,
    activity: Callable[[list[Candidate]], dict[str, ClipActivity | str]],
) -> tuple[list[PlannedRow], dict[str, str]]:
    """Plan every row with offsets, leaving out silent and unreadable clips.

    ``activity`` maps clips to their :class:`ClipActivity` (or an error message); it is asked
    only about clips a plan uses. A silent or unreadable clip is excluded and the plan redone
    (deterministically) until every row's clips are usable. Returns the rows and, per excluded
    clip key, why (``"silent"`` or the error).
    """
    known: dict[str, ClipActivity | str] = {}
    why: dict[str, str] = {}
    while True:
        rows = planner.plan()
        needed = {}
        for r in rows:
            for c in (r.target, r.noise):
                if c.key not in known:
                    needed[c.key] = c
        if needed:
            known.update(activity(list(needed.values())))
        bad: set[str] = set()
        for r in rows:
            for c in (r.target, r.noise):
                a = known[c.key]
                if isinstance(a, str):
                    why[c.key] = a
                    bad.add(c.key)
                elif not len(usable_offsets(a.active, a.num_samples, planner.spec.length, planner.spec.hop)):
                    why[c.key] = "silent"
                    bad.add(c.key)
        if not bad:
            break
        planner.exclude(bad)
    for r in rows:
        ta, na = known[r.target.key], known[r.noise.key]
        r.target_offset = planner.draw_offset(r.rng, ta.active, ta.num_samples)
        r.noise_offset = planner.draw_offset(r.rng, na.active, na.num_samples)
    return rows, why


# --- writing ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class WriteJob:
    """One row to write: clips, offsets (samples), length (samples), SNR (dB), where."""

    name: str
    target_path: str
    target_offset: int
    noise_path: str
    noise_offset: int
    length: int
    snr: float
    split_dir: str


def _write_row(job: WriteJob) -> dict:
    """Read both segments, mix, write source and noise, then the mixture (so a mixture = a complete row).

    A row whose mixture is already complete is not written again (its gains are recomputed).
    """
    s = read_segment(job.target_path, job.target_offset, job.length, _scratch("s32", job.length, np.float32))
    n = read_segment(job.noise_path, job.noise_offset, job.length, _scratch("n32", job.length, np.float32))
    try:
        m = mix_segments(s, n, job.snr)
    except AudioError as exc:
        raise AudioError(f"{Path(job.target_path).name} + {Path(job.noise_path).name}: {exc}")
    root = Path(job.split_dir)
    out = {k: root / k / job.name for k in ("mixture", "source", "noise")}
    done = out["mixture"].exists() and all(_complete(p, job.length) for p in out.values())
    if not done:
        audio.write(out["source"], m.source, SAMPLE_RATE, "float")
        audio.write(out["noise"], m.noise, SAMPLE_RATE, "float")
        audio.write(out["mixture"], m.mixture, SAMPLE_RATE, "float")
    return {"source_gain": m.source_gain, "noise_gain": m.noise_gain, "clip_gain": m.clip_gain, "skipped": done}


def _complete(path: Path, length: int) -> bool:
    try:
        i = audio.info(path)
    except AudioError:
        return False
    return i.sample_rate == SAMPLE_RATE and i.channels == 1 and i.num_samples == length and i.subtype == "FLOAT"


def _activity_of(clips: list[Candidate], silence_db: float, jobs: int | None) -> dict[str, ClipActivity | str]:
    outcomes = run_parallel(partial(analyse_clip, silence_db=silence_db), [c.path for c in clips], jobs,
                            desc="mix: scan clips")
    return {c.key: (o.value if o.ok else o.error) for c, o in zip(clips, outcomes)}


@dataclass
class MixReport:
    """What :func:`make_mixtures` (or :func:`mix_from_official`) did."""

    split_dir: Path
    rows: int = 0  # rows in mixtures.csv
    written: int = 0  # rows written by this run
    resumed: int = 0  # rows already complete from an interrupted run
    audio_seconds: float = 0.0
    targets_available: int = 0  # targets and noises after filters, before skipping
    noises_available: int = 0
    distinct_targets: int = 0
    distinct_noises: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> clips
    without_noise: list[str] = field(default_factory=list)  # target ids with no class-disjoint noise
    snr_histogram: dict[int, int] = field(default_factory=dict)  # floor(snr dB) -> rows
    failures: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    notes: list[str] = field(default_factory=list)
    official_csv: Path | None = None
    complete: bool = True  # False when rows failed to write: re-run the same command
    seconds: float = 0.0

    @property
    def csv_path(self) -> Path:
        return self.split_dir / "mixtures.csv"


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _check_split_dir(split_dir: Path, options: dict, overwrite: bool) -> bool:
    """Refuse to replace a finished split (unless ``overwrite``); True when resuming an unfinished one."""
    from lasskit.splits import MIXTURES_CSV

    state_path = split_dir / MIX_JSON
    if split_dir.exists() and not split_dir.is_dir():
        raise UsageError(f"{split_dir}: exists and is not a folder; choose another --name")
    if overwrite:
        return False
    if (split_dir / MIXTURES_CSV).is_file():
        raise UsageError(f"{split_dir}: split already exists; pass --overwrite to replace it or choose another --name")
    if state_path.is_file():
        try:
            previous = json.loads(state_path.read_text(encoding="utf-8")).get("options")
        except (OSError, ValueError):
            previous = None
        if previous != json.loads(json.dumps(options)):
            raise UsageError(f"{split_dir}: an unfinished split made with other options or inputs is here; "
                             "re-run its own command to finish it, or pass --overwrite")
        return True
    if split_dir.is_dir() and any(split_dir.iterdir()):
        raise UsageError(f"{split_dir}: folder is not empty and was not made by `lasskit mix`; "
                         "pass --overwrite or choose another --name")
    return False


def _clear_split(split_dir: Path) -> None:
    """Remove what a previous mix wrote here (its CSVs, state and WAV files), nothing else."""
    if not split_dir.is_dir():
        return
    for name in ("mixtures.csv", MIX_JSON, "failures.csv"):
        (split_dir / name).unlink(missing_ok=True)
    _remove_leftovers(split_dir, every_wav=True)


def _remove_leftovers(split_dir: Path, every_wav: bool = False) -> None:
    """Temporary files an interrupted run left behind (and, with ``every_wav``, all WAVs)."""
    for sub in ("mixture", "source", "noise"):
        folder = split_dir / sub
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if p.is_file() and ((p.name.startswith(".") and p.name.endswith(".tmp")) or (every_wav and p.suffix == ".wav")):
                p.unlink()


def make_mixtures(
    split_dir: str | os.PathLike,
    spec: MixSpec,
    targets: Sequence[str | os.PathLike],
    noises: Sequence[str | os.PathLike] | None = None,
    *,
    splits: Sequence[str] = (),
    datasets: Sequence[str] = (),
    ontology: str | os.PathLike | None = None,
    official_csv: str | os.PathLike | None = None,
    jobs: int | None = None,
    overwrite: bool = False,
) -> MixReport:
    """Write a class-disjoint mixture set to ``split_dir`` (``mixture/``, ``source/``, ``noise/``, CSVs).

    ``targets`` and ``noises`` are manifest paths (``noises`` defaults to ``targets``); ``splits``
    and ``datasets`` keep only clips whose manifest split/dataset is listed. ``ontology`` is an
    AudioSet ``ontology.json``. An existing split is refused unless ``overwrite``; a split left
    unfinished by an interrupted run (``mix.json`` but no ``mixtures.csv``) is completed when
    called again with the same options and inputs. ``official_csv`` also writes the organizers'
    ``source, noise, snr, caption`` file there.
    """
    from lasskit.ontology import Ontology

    start = time.perf_counter()
    spec.validate()
    split_dir = Path(split_dir)
    target_paths = [Path(p).resolve() for p in targets]
    noise_paths = [Path(p).resolve() for p in (noises if noises else targets)]
    if not target_paths:
        raise UsageError("no manifest to draw targets from; run `lasskit prepare` or pass MANIFEST")
    onto = Ontology.from_json(ontology) if ontology else None
    options = {
        "spec": asdict(spec), "split": split_dir.name,
        "targets": [{"manifest": str(p), "sha256": _sha256(p)} for p in target_paths if p.is_file()],
        "noises": [{"manifest": str(p), "sha256": _sha256(p)} for p in noise_paths if p.is_file()],
        "splits": sorted(splits), "datasets": sorted(datasets),
        "ontology": {"file": str(Path(ontology).resolve()), "sha256": _sha256(Path(ontology))} if ontology else None,
    }
    target_pool = load_candidates(target_paths, onto, splits, datasets)
    noise_pool = target_pool if noise_paths == target_paths else load_candidates(noise_paths, onto, splits, datasets)
    report = MixReport(split_dir, targets_available=len(target_pool), noises_available=len(noise_pool))
    if not target_pool:
        raise UsageError(f"no target clip in {', '.join(map(str, target_paths))} after the split/dataset filters")
    if not noise_pool:
        raise UsageError(f"no noise clip in {', '.join(map(str, noise_paths))} after the split/dataset filters")

    skipped: Counter = Counter()
    usable_targets = _eligible(target_pool, spec, "target", skipped)
    usable_noises = _eligible(noise_pool, spec, "noise", skipped)
    if onto is not None:
        unknown = sorted({lab for c in (*target_pool, *noise_pool) for lab in c.labels if lab.strip() and lab not in onto})
        if unknown:
            report.notes.append(f"{len(unknown)} label(s) not in the ontology, compared by name only: "
                                + ", ".join(unknown[:8]) + (" ..." if len(unknown) > 8 else ""))
    if not usable_targets or not usable_noises:
        raise UsageError("no usable " + ("targets" if not usable_targets else "noises") + " (skipped: "
                         + ", ".join(f"{k}: {v}" for k, v in sorted(skipped.items())) + ")"
                         + ("; pass --allow-unlabeled to use clips without labels" if skipped else ""))
    planner = Planner(usable_targets, usable_noises, spec)
    resuming = _check_split_dir(split_dir, options, overwrite)
    rows, why = plan_mixtures(planner, lambda clips: _activity_of(clips, spec.silence_db, jobs))
    for key, reason in sorted(why.items()):
        if reason == "silent":
            skipped["silent clip"] += 1
        else:
            skipped["unreadable audio"] += 1
            report.failures.append((key, reason))
    report.without_noise = [t.id for t in planner.without_noise]
    if planner.without_noise:
        skipped["target with no class-disjoint noise"] += len(planner.without_noise)
    report.skipped = dict(sorted(skipped.items()))
    if not rows:
        raise UsageError("no mixture possible: no target has a usable noise that shares no class with it "
                         f"({len(planner.without_noise)} target(s) without one, e.g. {', '.join(report.without_noise[:3])})")

    # the state file goes first: a folder with audio but no mixtures.csv is an unfinished run
    if overwrite:
        _clear_split(split_dir)
    split_dir.mkdir(parents=True, exist_ok=True)
    from lasskit.atomic import write_text, write_text_if_changed

    write_text_if_changed(split_dir / MIX_JSON, _state_json(options, None))
    if resuming:
        _remove_leftovers(split_dir)
    for sub in ("mixture", "source", "noise"):
        (split_dir / sub).mkdir(exist_ok=True)
    total = len(rows)
    names = [mixture_name(split_dir.name, r.index, total) for r in rows]
    jobs_list = [WriteJob(name, str(r.target.path), r.target_offset, str(r.noise.path), r.noise_offset,
                          spec.length, r.snr, str(split_dir)) for name, r in zip(names, rows)]
    outcomes = run_parallel(_write_row, jobs_list, jobs, desc=f"mix {split_dir.name}", unit="mixture")
    records = []
    for name, r, o in zip(names, rows, outcomes):
        if not o.ok:
            report.failures.append((name, o.error))
            continue
        report.resumed += o.value["skipped"]
        records.append(_record(name, r, o.value, spec))
    report.written = len(records) - report.resumed
    report.distinct_targets = len({r.target.key for r in rows})
    report.distinct_noises = len({r.noise.key for r in rows})
    report.snr_histogram = dict(sorted(Counter(int(np.floor(r.snr)) for r in rows).items()))
    write_failures(split_dir / "failures.csv", report.failures, keep_empty=True)
    if len(records) < total:  # rows failed: leave the split unfinished so that a re-run retries them
        report.complete = False
        report.rows = len(records)
        report.seconds = time.perf_counter() - start
        return report
    import pandas as pd

    from lasskit.splits import write_split_csv

    if official_csv:
        report.official_csv = Path(official_csv)
        write_text(report.official_csv, official_csv_text(rows, spec))
    write_split_csv(split_dir, pd.DataFrame(records, columns=list(MIX_COLUMNS)))
    report.rows = len(records)
    report.audio_seconds = report.rows * spec.length / SAMPLE_RATE
    write_text_if_changed(split_dir / MIX_JSON, _state_json(options, report))
    report.seconds = time.perf_counter() - start
    return report


def _eligible(pool: list[Candidate], spec: MixSpec, role: str, skipped: Counter) -> list[Candidate]:
    out = []
    for c in pool:
        if not c.label_set and not spec.allow_unlabeled:
            skipped[f"{role} without labels"] += 1
        elif role == "target" and not c.captions and not c.labels:
            skipped["target without caption or labels"] += 1
        elif spec.min_duration and c.duration < spec.min_duration:
            skipped[f"{role} shorter than --min-duration"] += 1
        else:
            out.append(c)
    return out


def _record(name: str, r: PlannedRow, gains: dict, spec: MixSpec) -> dict:
    return {
        "mixture": name, "query": r.query, "source": f"source/{name}", "noise": f"noise/{name}",
        "snr": spec.format_snr(r.snr), "source_id": r.target.id, "noise_id": r.noise.id,
        "source_labels": json.dumps(r.target.labels, ensure_ascii=False),
        "noise_labels": json.dumps(r.noise.labels, ensure_ascii=False),
        "offsets": json.dumps({"source": r.target_offset, "noise": r.noise_offset}),
        "gains": json.dumps({"source": gains["source_gain"], "noise": gains["noise_gain"],
                             "clip": gains["clip_gain"]}),
        "source_corpus": r.target.corpus, "noise_corpus": r.noise.corpus, "seed": spec.seed,
    }


def _state_json(options: dict, report: MixReport | None) -> str:
    state = {"options": options, "status": "complete" if report is not None else "running"}
    if report is not None:
        state["counts"] = {
            "rows": report.rows, "distinct_targets": report.distinct_targets,
            "distinct_noises": report.distinct_noises, "skipped": report.skipped,
            "without_noise": report.without_noise,
            "snr_histogram": {str(k): v for k, v in report.snr_histogram.items()},
        }
    return json.dumps(state, indent=2, ensure_ascii=False) + "\n"


def official_csv_text(rows: Sequence[PlannedRow], spec: MixSpec) -> str:
    """The organizers' layout: ``source, noise, snr, caption`` with clip ids (header spaces as theirs)."""
    import csv
    import io

    buf = io.StringIO()
    buf.write(OFFICIAL_HEADER + "\n")
    writer = csv.writer(buf, lineterminator="\n")
    for r in rows:
        writer.writerow([r.target.id, r.noise.id, spec.format_snr(r.snr), r.query])
    return buf.getvalue()


def rebuild_row(row: dict, source_path: str | os.PathLike, noise_path: str | os.PathLike,
                length: int) -> MixedSegments:
    """Recompute a ``mixtures.csv`` row's audio (``length`` samples) from its clips, offsets and gains.

    Bit-exact: equal to the written float32 files.
    """
    offsets = json.loads(row["offsets"])
    gains = json.loads(row["gains"])
    s = read_segment(source_path, int(offsets["source"]), length)
    n = read_segment(noise_path, int(offsets["noise"]), length)
    m = gain_segments(s, n, gains["source"], gains["noise"])
    m.clip_gain = float(gains["clip"])
    return m


# --- rebuilding a split from an organizers' CSV ------------------------------------------------------

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


def mix_from_official(
    csv_path: str | os.PathLike,
    clips: str | os.PathLike,
    split_dir: str | os.PathLike,
    *,
    labels: dict[str, list[str]] | None = None,
    jobs: int | None = None,
    overwrite: bool = False,
) -> MixReport:
    """Rebuild the split an organizers' CSV describes with their formula (as ``prepare`` does for val_synth).

    ``clips`` is a folder of ``<id>.wav`` files, a corpus folder or a manifest (whose labels are
    then recorded). An existing split is refused unless ``overwrite``; without ``mixtures.csv``
    complete rows from an interrupted run are kept.
    """
    from lasskit.splits import MIXTURES_CSV

    start = time.perf_counter()
    csv_path, split_dir = Path(csv_path), Path(split_dir)
    if not csv_path.is_file():
        raise UsageError(f"{csv_path}: no such CSV; pass the organizers' source, noise, snr, caption file")
    paths, manifest_labels = official_clip_paths(clips)
    if overwrite:
        _clear_split(split_dir)
    elif (split_dir / MIXTURES_CSV).is_file():
        raise UsageError(f"{split_dir}: split already exists; pass --overwrite to replace it or choose another --name")
    table, failures, resumed, seconds = build_from_official(
        csv_path, paths, split_dir, labels={**manifest_labels, **(labels or {})}, jobs=jobs, overwrite=overwrite)

    write_failures(split_dir / "failures.csv", failures, keep_empty=True)
    snrs = [float(x) for x in table["snr"]] if len(table) else []
    return MixReport(
        split_dir, rows=len(table), written=len(table) - resumed, resumed=resumed, audio_seconds=seconds,
        distinct_targets=table["source_id"].nunique() if len(table) else 0,
        distinct_noises=table["noise_id"].nunique() if len(table) else 0,
        snr_histogram=dict(sorted(Counter(int(np.floor(s)) for s in snrs).items())),
        failures=failures, seconds=time.perf_counter() - start,
        notes=[f"rebuilt from {csv_path} with the organizers' formula"],
    )


def mixture_dataset(
    targets: Sequence[str | os.PathLike],
    spec: MixSpec,
    noises: Sequence[str | os.PathLike] | None = None,
    *,
    splits: Sequence[str] = (),
    datasets: Sequence[str] = (),
    ontology: str | os.PathLike | None = None,
):
    """A ``torch.utils.data.Dataset`` of class-disjoint mixtures made on the fly (imports torch).

    Item ``i`` is ``(mixture, reference, query)`` (float32 tensors of ``spec.length`` samples and
    a str) drawn with row ``i``'s generator; see :class:`lasskit.mixing_dataset.MixtureDataset`.
    """
    from lasskit.mixing_dataset import MixtureDataset
    from lasskit.ontology import Ontology

    onto = Ontology.from_json(ontology) if ontology else None
    target_pool = load_candidates([Path(p) for p in targets], onto, splits, datasets)
    noise_pool = load_candidates([Path(p) for p in noises], onto, splits, datasets) if noises else target_pool
    skipped: Counter = Counter()
    planner = Planner(_eligible(target_pool, spec, "target", skipped), _eligible(noise_pool, spec, "noise", skipped), spec)
    if not planner.units:
        raise UsageError("no target with a class-disjoint noise in these manifests"
                         + (f" (skipped: {dict(skipped)})" if skipped else ""))
    return MixtureDataset(planner)


def make_item(planner: Planner, index: int, epoch: int = 0, attempts: int = 8) -> tuple[MixedSegments, PlannedRow]:
    """Row ``index`` made on the fly (no files): the Dataset's item, in numpy.

    Same draws as :func:`make_mixtures` row ``index`` when no clip is silent. A silent target is
    replaced by the next unit (generator ``(0, index, epoch, k)``), a silent noise by a new draw.
    """
    schedule = planner.schedule(epoch)
    if not schedule:
        raise UsageError("no target with a class-disjoint noise: nothing to mix")
    spec = planner.spec
    for k in range(attempts):
        unit = schedule[(index + k) % len(schedule)]
        if k == 0:
            rng = row_rng(spec.seed, index) if epoch == 0 else row_rng(spec.seed, index, epoch)
        else:
            rng = row_rng(spec.seed, index, epoch, k)
        row = planner.draw(index, unit, rng)
        t = audio.load(row.target.path)
        t_off = planner.draw_offset(rng, frame_activity(t, spec.silence_db), len(t))
        if t_off is None:
            continue
        for _ in range(attempts):
            n = audio.load(row.noise.path)
            n_off = planner.draw_offset(rng, frame_activity(n, spec.silence_db), len(n))
            if n_off is not None:
                row.target_offset, row.noise_offset = t_off, n_off
                seg_t = take_segment(t, t_off, spec.length)
                seg_n = take_segment(n, n_off, spec.length)
                return mix_segments(seg_t, seg_n, row.snr), row
            valid = planner.valid_noises(row.target)
            row.noise = planner.noises[int(valid[rng.integers(len(valid))])]
    raise WorkError(f"item {index}: no non-silent target and noise after {attempts} tries; check the clips")
