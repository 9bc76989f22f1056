"""Benchmark `prepare wavcaps` at scale and the mixer's candidate pool at WavCaps' size.

1. Generates a WavCaps-like corpus of N clips (default 20,000; ``BENCH_LARGE_CLIPS``) in the real
   layout (``json_files/FreeSound/fsd_final.json`` + ``FreeSound_flac/<id>.flac``, 32 kHz mono
   flac, ``BENCH_LARGE_SECONDS`` s each, default 1 s: the per-clip costs of a 400k-clip corpus
   without hours of audio), then times, for ROUNDS rounds after a warm-up, medians and ranges:

   - lasskit: ``prepare_corpus("wavcaps", ..., jobs=1)`` into a fresh folder (metadata, blacklist,
     conversion, fingerprints, manifest): clips/s on one core;
   - floor: the work that cannot be avoided on one core: read the flac (soundfile), soxr HQ to
     16 kHz, write (lasskit's WAV writer); the same floor as ``bench_prepare.py``, per core;
   - all cores: the same prepare with every core (reported).

2. Memory of the mixer's pool at 400k candidates (``BENCH_LARGE_POOL``): a 400k-row manifest in
   WavCaps' shape is written (no audio), then a fresh process reads it with ``load_candidates``
   (what ``mix`` and ``train`` hold) and reports its peak RSS over the interpreter's baseline.
   Goal: within 1 GB (exits 1 if not), and prepare per core within 1.5x the floor (as bench_prepare).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

N = int(os.environ.get("BENCH_LARGE_CLIPS", "20000"))
SECONDS = float(os.environ.get("BENCH_LARGE_SECONDS", "1.0"))
ROUNDS = int(os.environ.get("BENCH_LARGE_ROUNDS", "3"))
POOL = int(os.environ.get("BENCH_LARGE_POOL", "400000"))
GOAL_FLOOR, GOAL_POOL_BYTES = 1.5, 1 << 30


def make_raw(root: Path) -> None:
    from lasskit import soundgen

    folder = root / "FreeSound_flac"
    folder.mkdir(parents=True)
    base = soundgen.generate("rain", SECONDS + 1, 32000, seed=0)
    n = int(SECONDS * 32000)
    data = []
    for i in range(N):
        off = (i * 797) % 32000
        sf.write(folder / f"{500000 + i}.flac", base[off:off + n], 32000, subtype="PCM_16", format="FLAC")
        data.append({"id": str(500000 + i), "file_name": f"clip {i}.wav", "href": f"/people/b/sounds/{500000 + i}/",
                     "tags": ["rain", "water"], "description": "rain", "author": "bench", "duration": SECONDS,
                     "download_link": "", "caption": f"Rain falls steadily, take {i}.", "audio": "wav_path"})
    meta = root / "json_files" / "FreeSound"
    meta.mkdir(parents=True)
    (meta / "fsd_final.json").write_text(json.dumps({"num_captions_per_audio": 1, "data": data}))


def floor(src: Path, dst: Path) -> float:
    import soxr

    from lasskit import audio

    dst.mkdir()
    start = time.perf_counter()
    for path in sorted((src / "FreeSound_flac").glob("*.flac")):
        x, rate = sf.read(path, dtype="float32")
        audio.write(dst / (path.stem + ".wav"), soxr.resample(x, rate, 16000, quality="HQ"))
    return time.perf_counter() - start


def lasskit_prepare(src: Path, data: Path, jobs: int | None) -> float:
    from lasskit.corpora import prepare_corpus

    start = time.perf_counter()
    (report,) = prepare_corpus("wavcaps", src, data, jobs=jobs)
    assert report.items == N and not report.failures, report
    return time.perf_counter() - start


POOL_PROBE = """
import resource, sys, time
from lasskit.mixing.pool import load_candidates
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
pool = load_candidates([sys.argv[1]])
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(len(pool), before * 1024, peak * 1024, seconds)
"""


def pool_memory(tmp: Path) -> tuple[int, int, float]:
    """(candidates, peak RSS over the start, seconds) of load_candidates on a POOL-row manifest."""
    from lasskit.manifest import Clip, write_manifest

    root = tmp / "pool"
    clips = [Clip(f"FreeSound/{600000 + i}", f"audio/FreeSound/{600000 + i}.wav", 7.3, 16000, 116800, "wavcaps",
                  "train", [f"A dog barks twice near a road, take {i}."], [], "", ["dog", "bark", "street"],
                  str(600000 + i), "", f"{i:032x}", "-12.00", f"{i:016x}-bd38a750038f572a") for i in range(POOL)]
    write_manifest(root / "manifest.csv", clips)
    del clips
    out = subprocess.run([sys.executable, "-c", POOL_PROBE, str(root / "manifest.csv")], check=True,
                         capture_output=True, text=True).stdout.split()
    count, before, peak, seconds = int(out[0]), int(out[1]), int(out[2]), float(out[3])
    return count, peak - before, seconds


def _stats(values: list[float]) -> str:
    return f"median {statistics.median(values):7.2f} s (range {min(values):.2f}-{max(values):.2f})"


def main() -> None:
    from lasskit.parallel import default_jobs

    cores = default_jobs()
    tmp = Path(tempfile.mkdtemp(prefix="lasskit-bench-large-"))
    try:
        t0 = time.perf_counter()
        make_raw(tmp / "raw")
        print(f"generated {N} WavCaps-like clips of {SECONDS:g} s in {time.perf_counter() - t0:.1f} s")
        times: dict[str, list[float]] = {"floor": [], "one": [], "all": []}
        loads = []
        for r in range(ROUNDS + 1):
            out = tmp / f"r{r}"
            out.mkdir()
            t = {"floor": floor(tmp / "raw", out / "floor"), "one": lasskit_prepare(tmp / "raw", out / "d1", 1),
                 "all": lasskit_prepare(tmp / "raw", out / "dn", None)}
            loads.append(os.getloadavg()[0])
            if r:
                for k, v in t.items():
                    times[k].append(v)
            shutil.rmtree(out)
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"prepare wavcaps: {N} clips x {SECONDS:g} s, 32 kHz flac -> 16 kHz WAV, {ROUNDS} rounds after a warm-up")
        print(f"  floor (read + soxr HQ + write), 1 core: {_stats(times['floor'])} = {N / med['floor']:.0f} clips/s")
        print(f"  lasskit, --jobs 1:                      {_stats(times['one'])} = {N / med['one']:.0f} clips/s "
              f"per core, {med['one'] / med['floor']:.2f}x the floor (goal <= {GOAL_FLOOR}x)")
        print(f"  lasskit, {cores} cores:                     {_stats(times['all'])} = {N / med['all']:.0f} clips/s")
        count, grown, seconds = pool_memory(tmp)
        print(f"  mixer pool: load_candidates of {count} candidates: peak RSS +{grown / 2**20:.0f} MiB "
              f"(goal < {GOAL_POOL_BYTES / 2**20:.0f} MiB) in {seconds:.1f} s")
        if max(loads) > cores:
            print(f"  note: load average up to {max(loads):.1f} on {cores} cores: figures are noisy")
        ok = med["one"] / med["floor"] <= GOAL_FLOOR and grown <= GOAL_POOL_BYTES
        print("  OK" if ok else "  MISSED")
        if not ok:
            sys.exit(1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
