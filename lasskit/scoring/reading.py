"""Matching estimates to mixtures by file name, reading the three files of a row, and the parallel row loop."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from lasskit import SAMPLE_RATE
from lasskit.errors import AudioError, LasskitError, UsageError
from lasskit.metrics import ORGANIZERS_EPS, PairScorer

_local = threading.local()

CHUNK = 50  # rows per task: few enough tasks to keep overhead low, enough for a smooth progress bar


def _name_list(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" (and {len(names) - limit} more)" if len(names) > limit else "")


def match_estimates(names: list[str], estimates_dir: Path, split: str, allow_missing: bool) -> tuple[list[bool], list[str]]:
    """Which mixtures have an estimate (same file name) and which are missing.

    Audio files in ``estimates_dir`` (top level) that match no mixture are an error; so are
    missing estimates unless ``allow_missing``.
    """
    from lasskit.audio import AUDIO_EXTENSIONS

    if not estimates_dir.is_dir():
        raise UsageError(f"{estimates_dir}: no such folder of estimates; run `lasskit separate` first or fix --estimates")
    with os.scandir(estimates_dir) as entries:  # scandir: no stat per file for thousands of outputs
        present = {
            e.name for e in entries
            if os.path.splitext(e.name)[1].lower() in AUDIO_EXTENSIONS and not e.name.startswith(".") and e.is_file()
        }
    wanted = set(names)
    extra = sorted(present - wanted)
    if extra:
        raise UsageError(f"{estimates_dir}: {len(extra)} audio file(s) match no mixture of split {split}: "
                         f"{_name_list(extra)}; remove them or score the right --split")
    has = [n in present for n in names]
    missing = [n for n, ok in zip(names, has) if not ok]
    if missing and not allow_missing:
        if len(missing) == len(names):
            raise UsageError(f"{estimates_dir}: no estimates for split {split} (expected files named like "
                             f"{names[0]}); run `lasskit separate` first")
        raise UsageError(f"{estimates_dir}: {len(missing)} of {len(names)} mixture(s) of split {split} have no "
                         f"estimate: {_name_list(missing)}; finish `lasskit separate` or pass --allow-missing")
    return has, missing


class _Reader:
    """Per-thread float32 read buffers and a :class:`PairScorer` (nothing allocated per file)."""

    def __init__(self) -> None:
        self.buffers = [np.empty(0, np.float32) for _ in range(3)]
        self.scorer = PairScorer(ORGANIZERS_EPS)
        self.channels = 1  # of the last file read

    def read(self, path: str, slot: int) -> np.ndarray:
        """Decode ``path`` (16 kHz, any channels -> mono) into buffer ``slot``; float32 view."""
        try:
            with _open(path) as f:
                rate, frames, channels = int(f.samplerate), int(f.frames), int(f.channels)
                self.channels = channels
                if rate != SAMPLE_RATE:
                    raise AudioError(f"{path}: sample rate {rate} Hz, expected {SAMPLE_RATE} Hz; "
                                     "write outputs at 16 kHz (resample the file)")
                if frames <= 0:
                    raise AudioError(f"{path}: empty audio file (0 samples)")
                if channels == 1:
                    if len(self.buffers[slot]) < frames:
                        self.buffers[slot] = np.empty(frames, np.float32)
                    data = f.read(dtype="float32", out=self.buffers[slot][:frames])
                else:
                    data = f.read(dtype="float32", always_2d=True).mean(axis=1, dtype=np.float32)
        except LasskitError:
            raise
        except Exception as exc:
            text = str(exc).strip().splitlines()
            raise AudioError(f"{path}: unreadable audio ({text[-1] if text else type(exc).__name__})") from exc
        if len(data) < frames:
            raise AudioError(f"{path}: truncated audio ({len(data)} of {frames} samples)")
        return data


def _open(path: str):
    import soundfile as sf

    try:
        return sf.SoundFile(os.fsencode(path))  # bytes: a name not in UTF-8 opens too
    except Exception:
        if not os.path.isfile(path):
            raise AudioError(f"{path}: no such audio file") from None
        raise


def _score_row(paths: tuple[str, str, str], trim: bool) -> tuple:
    """``(sdr, sdri, si_sdr, trimmed, ref_silent, est_silent, est_downmixed)`` of one row; raises
    naming the file. ``est_downmixed``: the estimate had several channels, averaged to mono (as
    the organizers' ``librosa.load(mono=True)`` does)."""
    reader = getattr(_local, "reader", None)
    if reader is None:
        reader = _local.reader = _Reader()
    mixture_path, reference_path, estimate_path = paths
    ref = reader.read(reference_path, 0)
    est = reader.read(estimate_path, 1)
    downmixed = reader.channels > 1
    mix = reader.read(mixture_path, 2)
    n = min(len(ref), len(est), len(mix))
    trimmed = not (len(ref) == len(est) == len(mix))
    if trimmed and not trim:
        raise AudioError(f"{estimate_path}: {len(est)} samples, but the reference {os.path.basename(reference_path)} has "
                         f"{len(ref)} and the mixture {len(mix)}; pass --trim to cut all to the shortest")
    sums = reader.scorer(ref[:n], est[:n], mix[:n])
    if not sums.is_finite():
        for path, x in ((estimate_path, est), (reference_path, ref), (mixture_path, mix)):
            if not np.isfinite(x[:n]).all():
                raise AudioError(f"{path}: holds NaN or infinite samples; fix or re-create the file")
    return (float(sums.sdr), float(sums.sdri), float(sums.si_sdr), trimmed,
            bool(sums.ref_energy == 0), bool(sums.est_energy == 0), downmixed)


def _score_chunk(chunk: list[tuple[str, str, str]], trim: bool) -> list:
    out = []
    for paths in chunk:
        try:
            out.append(_score_row(paths, trim))
        except LasskitError as exc:
            out.append(str(exc))
        except Exception as exc:  # a bug or an odd file: still one line, still the batch goes on
            out.append(f"{paths[1]}: {type(exc).__name__}: {exc}")
    return out


def _bss_row(paths: tuple[str, str], trim: bool = False) -> float:
    """bss_eval v3 SDR of one (reference, estimate) pair (runs in a worker process)."""
    from lasskit.audio import read, to_mono
    from lasskit.metrics import bss_sdr

    ref = to_mono(read(paths[0], dtype="float64")[0])
    est = to_mono(read(paths[1], dtype="float64")[0])
    n = min(len(ref), len(est)) if trim else len(ref)
    return float(bss_sdr(ref[:n], est[:n]))


def _score_rows(rows: list[tuple[str, str, str]], trim: bool, jobs: int | None, desc: str) -> list:
    """Score rows in chunks on ``jobs`` processes (run_parallel keeps the order): per row a result
    tuple or an error string. Processes, not threads: under load, threads lose time to the GIL."""
    from functools import partial

    from lasskit.parallel import run_parallel

    chunks = [rows[i:i + CHUNK] for i in range(0, len(rows), CHUNK)]
    outcomes = run_parallel(partial(_score_chunk, trim=trim), chunks, jobs, desc=desc, unit="chunk", chunk_size=1)
    results: list = []
    for chunk, outcome in zip(chunks, outcomes):
        results.extend(outcome.value if outcome.ok else [outcome.error] * len(chunk))
    return results


def check_provenance(names: list[str], mixtures: list[str], estimates_dir: Path, out_dir: Path,
                     queries: list[str] | None = None) -> list[str]:
    """Refuse estimates separated from a different version of their mixture, or from another
    query than the split's (where the record holds the query's digest); return notes.

    ``lasskit separate`` records, per output, the content digest of the mixture it read
    (``<estimates>/provenance.json``, see :mod:`lasskit.provenance`). Each estimate with a record
    is checked against the digest of the mixture file as it is now (a ``stat`` per file when the
    shared digest cache ``digests.json`` already knows it; hashed otherwise). A mismatch raises
    :class:`UsageError` naming the first such estimate and the fix; estimates without a record
    (made by another tool) are scored, and counted in a note.
    """
    from lasskit import provenance

    ledger_path = estimates_dir / provenance.LEDGER_FILE
    if not ledger_path.is_file():
        return [f"{estimates_dir} has no {provenance.LEDGER_FILE}: the estimates could not be checked "
                "against the mixtures they were separated from (not made by `lasskit separate`?)"]
    ledger = provenance.Ledger(estimates_dir)
    cache = provenance.DigestCache(out_dir / provenance.DIGEST_CACHE_FILE)
    if estimates_dir != out_dir:  # reuse what separate already hashed, write only into out_dir
        seed = provenance.DigestCache(estimates_dir / provenance.DIGEST_CACHE_FILE)
        for key, value in seed.entries.items():
            cache.entries.setdefault(key, value)
    stale, unrecorded, other_query = [], 0, []
    for i, (name, mixture) in enumerate(zip(names, mixtures)):
        rec = ledger.get(name)
        if rec is None:
            unrecorded += 1
            continue
        said = (rec.extra or {}).get("query")
        if queries is not None and said is not None and said != provenance.text_digest(queries[i]):
            other_query.append(name)
        try:
            digest = cache.digest(mixture)
        except OSError:
            continue  # the row loop names an unreadable mixture
        if digest != rec.input:
            stale.append(name)
    try:
        cache.save()
    except OSError:
        pass  # a cache that cannot be written only costs hashing again
    if other_query:
        split_dir = Path(mixtures[0]).parent.parent
        raise UsageError(
            f"{estimates_dir / other_query[0]}: separated with another query than split {split_dir.name} now gives "
            f"its mixture" + (f" (and {len(other_query) - 1} more estimate(s))" if len(other_query) > 1 else "")
            + f"; the queries changed since `lasskit separate` ran: run it again for split {split_dir.name}")
    if stale:
        split_dir = Path(mixtures[0]).parent.parent
        raise UsageError(
            f"{estimates_dir / stale[0]}: separated from a different version of {Path(split_dir) / 'mixture' / stale[0]}"
            + (f" (and {len(stale) - 1} more estimate(s))" if len(stale) > 1 else "")
            + f"; the mixtures changed since `lasskit separate` ran: run it again for split {split_dir.name}")
    notes = []
    if unrecorded:
        notes.append(f"{unrecorded} estimate(s) have no record in {ledger_path.name}: not checked against their mixtures")
    return notes
