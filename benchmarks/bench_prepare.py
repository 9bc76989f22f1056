"""Benchmark `prepare`: throughput (times real time) against a naive single-process loop.

Generates N 10 s 44.1 kHz stereo 16-bit files, then times, in the same run:
- naive: for each file soundfile.read, mean over channels, torchaudio.functional.resample to
  16 kHz, soundfile.write (one process);
- lasskit: `prepare folder` (soxr HQ, all cores, manifest and failures written).
Prints seconds, times real time and the ratio. Floor (issue 2): lasskit >= 3x naive.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

N = int(os.environ.get("BENCH_PREPARE_FILES", "150"))
SECONDS = 10.0


def make_raw(root: Path) -> float:
    from lasskit import soundgen

    base = soundgen.generate("rain", SECONDS, 44100, seed=0, channels=2)
    for i in range(N):
        x = np.roll(base, i * 997, axis=1)
        sf.write(root / f"clip_{i:04d}.wav", x.T, 44100, subtype="PCM_16")
    return N * SECONDS


def naive(src: Path, dst: Path) -> float:
    import torch
    import torchaudio.functional as taf

    dst.mkdir()
    start = time.perf_counter()
    for path in sorted(src.glob("*.wav")):
        data, rate = sf.read(path, dtype="float32", always_2d=True)
        mono = data.mean(axis=1)
        y = taf.resample(torch.from_numpy(mono), rate, 16000).numpy()
        sf.write(dst / path.name, y, 16000, subtype="PCM_16")
    return time.perf_counter() - start


def lasskit_prepare(src: Path, data: Path) -> float:
    from lasskit.corpora import prepare_corpus

    start = time.perf_counter()
    (report,) = prepare_corpus("folder", src, data, name="bench")
    assert report.items == N and not report.failures
    return time.perf_counter() - start


def main() -> None:
    import torch  # noqa: F401  (imported before timing both sides, so neither pays for it)

    tmp = Path(tempfile.mkdtemp(prefix="lasskit-bench-prepare-"))
    try:
        src = tmp / "raw"
        src.mkdir()
        audio_seconds = make_raw(src)
        t_naive = naive(src, tmp / "naive")
        t_ours = lasskit_prepare(src, tmp / "data")
        print(f"prepare: {N} files x {SECONDS:.0f} s, 44.1 kHz stereo 16-bit -> 16 kHz mono, {os.cpu_count()} cores")
        print(f"  naive loop (sf.read, mean, torchaudio resample, sf.write): {t_naive:6.2f} s = {audio_seconds / t_naive:7.0f}x real time")
        print(f"  lasskit prepare (soxr HQ, all cores):                       {t_ours:6.2f} s = {audio_seconds / t_ours:7.0f}x real time")
        ratio = t_naive / t_ours
        print(f"  ratio lasskit / naive: {ratio:.2f}x (floor 3x) {'OK' if ratio >= 3 else 'BELOW FLOOR'}")
        if ratio < 3:
            sys.exit(1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
