"""Benchmark `prepare`: against a naive loop and against the floor, and an unchanged re-run.

Generates N (default 200) 10 s 44.1 kHz stereo 16-bit files once, then runs, alternating, for
ROUNDS rounds after one warm-up round (same files every time; medians and ranges printed):

- naive: one fresh process (its imports not timed), for each file soundfile.read, mean over
  channels, torchaudio resample to 16 kHz (torch default threads), soundfile.write;
- floor: the work that cannot be avoided, read (soundfile, float32) + soxr HQ + write (lasskit's
  WAV writer), one process, divided by the number of cores (perfect parallelism, no start-up);
- parallel floor (reported, not a goal): the same loop split over that many running processes,
  what the cores really give when busy at once;
- lasskit: ``prepare_corpus("folder", ...)`` in this process into a fresh folder (all cores,
  fingerprints, manifest, failures.csv);
- command: the whole ``lasskit prepare folder`` command in a fresh process (start-up included);
- re-run: the same call over the finished folder (nothing changed: stat only, no decoding);
- per core: the same call with ``jobs=1``, against the one-process floor (fair on a busy machine).

Goals (issue 18): lasskit >= 5x naive and <= 1.5x floor (medians). Exits 1 if either is missed.
"""

from __future__ import annotations

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

N = int(os.environ.get("BENCH_PREPARE_FILES", "200"))
ROUNDS = int(os.environ.get("BENCH_PREPARE_ROUNDS", "5"))
SECONDS = 10.0
GOAL_NAIVE, GOAL_FLOOR = 5.0, 1.5


def make_raw(root: Path) -> float:
    from lasskit import soundgen

    base = soundgen.generate("rain", SECONDS, 44100, seed=0, channels=2)
    for i in range(N):
        x = np.roll(base, i * 997, axis=1)
        sf.write(root / f"clip_{i:04d}.wav", x.T, 44100, subtype="PCM_16")
    return N * SECONDS


NAIVE_LOOP = """
import sys, time
from pathlib import Path
import soundfile as sf, torch, torchaudio.functional as taf
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
dst.mkdir()
start = time.perf_counter()
for path in sorted(src.glob("*.wav")):
    data, rate = sf.read(path, dtype="float32", always_2d=True)
    mono = data.mean(axis=1)
    y = taf.resample(torch.from_numpy(mono), rate, 16000).numpy()
    sf.write(dst / path.name, y, 16000, subtype="PCM_16")
print(time.perf_counter() - start)
"""


def naive(src: Path, dst: Path) -> float:
    """The user's plain loop, in a fresh process (imports not timed): its own allocator settings,
    not the ones lasskit sets in this process."""
    out = subprocess.run([sys.executable, "-c", NAIVE_LOOP, str(src), str(dst)], check=True, capture_output=True,
                         text=True)
    return float(out.stdout.strip().splitlines()[-1])


def floor(src: Path, dst: Path, cores: int) -> float:
    import soxr

    from lasskit import audio

    dst.mkdir()
    start = time.perf_counter()
    for path in sorted(src.glob("*.wav")):
        data, rate = sf.read(path, dtype="float32", always_2d=True)
        mono = data[:, 0] + data[:, 1]
        mono *= np.float32(0.5)
        y = soxr.resample(mono, rate, 16000, quality="HQ")
        audio.write(dst / path.name, y)
    return (time.perf_counter() - start) / cores


def _floor_part(args: tuple[list[str], str]) -> None:
    import soxr

    from lasskit import audio

    files, dst = args
    for path in files:
        data, rate = sf.read(path, dtype="float32", always_2d=True)
        mono = data[:, 0] + data[:, 1]
        mono *= np.float32(0.5)
        audio.write(Path(dst) / Path(path).name, soxr.resample(mono, rate, 16000, quality="HQ"))


def parallel_floor(src: Path, dst: Path, cores: int) -> float:
    """The floor's loop split over ``cores`` already running processes (no start-up counted): what
    the same work costs when the cores really run at once (shared caches and memory bandwidth)."""
    from concurrent.futures import ProcessPoolExecutor

    dst.mkdir()
    files = [str(p) for p in sorted(src.glob("*.wav"))]
    parts = [(files[k::cores], str(dst)) for k in range(cores)]
    with ProcessPoolExecutor(cores) as pool:
        list(pool.map(abs, range(cores)))  # the workers are up
        start = time.perf_counter()
        list(pool.map(_floor_part, parts))
        return time.perf_counter() - start


def lasskit_prepare(src: Path, data: Path, jobs: int | None = None) -> float:
    from lasskit.corpora import prepare_corpus

    start = time.perf_counter()
    (report,) = prepare_corpus("folder", src, data, name="bench", jobs=jobs)
    assert report.items == N and not report.failures, report
    return time.perf_counter() - start


def command(src: Path, ws: Path) -> float:
    exe = Path(sys.executable).with_name("lasskit")
    args = [str(exe)] if exe.is_file() else [sys.executable, "-m", "lasskit"]
    start = time.perf_counter()
    subprocess.run([*args, "-w", str(ws), "prepare", "folder", str(src), "--name", "bench"], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def _stats(values: list[float]) -> str:
    return f"median {statistics.median(values):6.3f} s (range {min(values):.3f}-{max(values):.3f})"


def main() -> None:
    import torch  # noqa: F401  (imported before timing both sides, so neither pays for it)

    from lasskit.parallel import default_jobs

    cores = default_jobs()
    tmp = Path(tempfile.mkdtemp(prefix="lasskit-bench-prepare-"))
    times: dict[str, list[float]] = {k: [] for k in ("naive", "floor", "lasskit", "command", "rerun", "one_core",
                                                     "parallel_floor")}
    loads = []
    try:
        src = tmp / "raw"
        src.mkdir()
        audio_seconds = make_raw(src)
        for round_ in range(ROUNDS + 1):  # round 0 warms caches and imports up, and is not counted
            out = tmp / f"r{round_}"
            out.mkdir()
            t = {
                "naive": naive(src, out / "naive"),
                "floor": floor(src, out / "floor", cores),
                "parallel_floor": parallel_floor(src, out / "pfloor", cores),
                "lasskit": lasskit_prepare(src, out / "data"),
            }
            t["rerun"] = lasskit_prepare(src, out / "data")
            t["command"] = command(src, out / "ws")
            t["one_core"] = lasskit_prepare(src, out / "data1", jobs=1)
            loads.append(os.getloadavg()[0])
            if round_:
                for k, v in t.items():
                    times[k].append(v)
            shutil.rmtree(out)
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"prepare: {N} files x {SECONDS:.0f} s, 44.1 kHz stereo 16-bit -> 16 kHz mono, {cores} cores, "
              f"{ROUNDS} rounds after a warm-up")
        print(f"  naive loop (sf.read, mean, torchaudio, sf.write), 1 process: {_stats(times['naive'])}")
        print(f"  floor (sf.read + soxr HQ + write) / {cores} cores:            {_stats(times['floor'])}"
              f" = {1e3 * med['floor'] * cores / N:.2f} ms a file a core")
        print(f"  the floor's loop on {cores} running processes at once:        {_stats(times['parallel_floor'])}")
        print(f"  lasskit prepare (in process, all cores, fingerprints):     {_stats(times['lasskit'])}"
              f" = {audio_seconds / med['lasskit']:.0f}x real time")
        print(f"  whole `lasskit prepare folder` command (start-up incl.):   {_stats(times['command'])}")
        print(f"  unchanged re-run (stat only, no decoding):                 {_stats(times['rerun'])}")
        print(f"  lasskit prepare --jobs 1 (per core):                       {_stats(times['one_core'])}"
              f" = {1e3 * med['one_core'] / N:.2f} ms a file, {med['one_core'] / (med['floor'] * cores):.2f}x "
              "the one-process floor")
        vs_naive = med["naive"] / med["lasskit"]
        vs_floor = med["lasskit"] / med["floor"]
        ok_naive, ok_floor = vs_naive >= GOAL_NAIVE, vs_floor <= GOAL_FLOOR
        print(f"  lasskit vs naive: {vs_naive:.2f}x faster (goal >= {GOAL_NAIVE}x) {'OK' if ok_naive else 'MISSED'}")
        print(f"  lasskit vs floor: {vs_floor:.2f}x the floor (goal <= {GOAL_FLOOR}x) {'OK' if ok_floor else 'MISSED'}")
        print(f"  command vs floor: {med['command'] / med['floor']:.2f}x the floor (start-up and imports included)")
        print(f"  lasskit vs the floor's loop on {cores} processes at once: {med['lasskit'] / med['parallel_floor']:.2f}x; "
              f"the naive loop is {med['naive'] / med['floor']:.2f}x the floor here, so 5x the naive loop needs "
              f"<= {med['naive'] / med['floor'] / GOAL_NAIVE:.2f}x the floor")
        if max(loads) > cores:
            print(f"  note: load average up to {max(loads):.1f} on {cores} cores during the runs: other processes "
                  "took CPU, so the all-core figures understate lasskit (its workers share one scheduling "
                  "group); the --jobs 1 line is the fair per-core comparison")
        if not (ok_naive and ok_floor):
            sys.exit(1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
