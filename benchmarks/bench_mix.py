"""Benchmark `mix`: 3000 class-disjoint mixtures of 10 s from generated clips, against the I/O floor.

Generates CLIPS 10 s 16 kHz mono 16-bit clips (the eight lasskit.soundgen classes) with a
manifest, then, ROUNDS times, alternating and with the same number of processes (JOBS):
- lasskit: `make_mixtures` into a new split (scan of every clip with the activity cache removed
  first, pairing, cropping, gains, three float32 WAVs a row, mixtures.csv, ledger), 3000 rows;
- lasskit, unchanged re-run: the same call again on the finished split (nothing to redo: no
  decoding, one stat per clip and per output);
- I/O floor: for the same 3000 rows, soundfile.read of both input clips and soundfile.write of
  three float32 10 s outputs, nothing else;
- raw I/O floor: the same reads, and the three outputs written as lasskit writes them (header
  and samples in plain writes): the cost of the bytes alone.
Outputs are deleted after each measurement. Prints medians and ranges, mixtures per second and
the ratios to both floors. Goal (issue 18): lasskit within 1.15x of the I/O floor (median).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import soundfile as sf

CLIPS = int(os.environ.get("BENCH_MIX_CLIPS", "200"))
ROWS = int(os.environ.get("BENCH_MIX_ROWS", "3000"))
JOBS = int(os.environ.get("BENCH_MIX_JOBS", "2"))
SECONDS = 10.0
ROUNDS = int(os.environ.get("BENCH_MIX_ROUNDS", "3"))
LIMIT_S = 20.0
LIMIT_RATIO = 1.15


def make_corpus(root: Path) -> Path:
    from lasskit import soundgen
    from lasskit.manifest import Clip, write_manifest

    names = list(soundgen.CLASSES)
    clips = []
    for i in range(CLIPS):
        cls = soundgen.CLASSES[names[i % len(names)]]
        rel = f"audio/clip_{i:04d}.wav"
        soundgen.write_clip(root / rel, cls.name, SECONDS, seed=i)
        clips.append(Clip(f"clip_{i:04d}", rel, SECONDS, 16000, int(SECONDS * 16000), "bench", "train",
                          list(cls.captions), list(cls.labels)))
    write_manifest(root / "manifest.csv", clips)
    return root / "manifest.csv"


def lasskit_mix(manifest: Path, split_dir: Path, rows: int | None = None):
    from lasskit.mixing import MixSpec, make_mixtures

    rows = rows or ROWS
    start = time.perf_counter()
    report = make_mixtures(split_dir, MixSpec(-15, 15, num=rows, seed=0), [manifest], jobs=JOBS)
    seconds = time.perf_counter() - start
    assert report.rows == rows and not report.failures, report
    return seconds, report


def _floor_chunk(rows: list[tuple[str, str, str]], raw: bool = False) -> None:
    from lasskit.audio import encode_wav

    for source, noise, out in rows:
        s, _ = sf.read(source, dtype="float32")
        n, _ = sf.read(noise, dtype="float32")
        for path, x in zip(out.split("|"), (s, n, s + n)):
            if raw:
                with open(path, "wb") as f:
                    f.write(encode_wav(x, 16000, "float"))
            else:
                sf.write(path, x, 16000, subtype="FLOAT")


def _raw_chunk(rows):
    _floor_chunk(rows, raw=True)


def io_floor(split_dir: Path, manifest: Path, out: Path, raw: bool = False) -> float:
    """Read the inputs and write the outputs of the same rows with soundfile, on JOBS processes."""
    import pandas as pd

    frame = pd.read_csv(split_dir / "mixtures.csv", dtype=str)
    audio_dir = manifest.parent / "audio"
    for sub in ("source", "noise", "mixture"):
        (out / sub).mkdir(parents=True)
    rows = [
        (str(audio_dir / f"{sid}.wav"), str(audio_dir / f"{nid}.wav"),
         "|".join(str(out / sub / f"r{i:05d}.wav") for sub in ("source", "noise", "mixture")))
        for i, (sid, nid) in enumerate(zip(frame["source_id"], frame["noise_id"]))
    ]
    start = time.perf_counter()
    with ProcessPoolExecutor(JOBS) as pool:
        list(pool.map(_raw_chunk if raw else _floor_chunk, [rows[i::JOBS] for i in range(JOBS)]))
    return time.perf_counter() - start


def main() -> None:
    import statistics

    from lasskit.mixing.planning import ACTIVITY_CACHE

    tmp = Path(tempfile.mkdtemp(prefix="bench_mix_", dir=os.environ.get("BENCH_MIX_DIR")))
    try:
        t0 = time.perf_counter()
        manifest = make_corpus(tmp / "ws" / "data" / "corpus")
        print(f"generated {CLIPS} clips of {SECONDS:.0f} s in {time.perf_counter() - t0:.1f} s")
        split_dir = tmp / "ws" / "data" / "splits" / "bench"
        times: dict[str, list[float]] = {"lasskit": [], "rerun": [], "floor": [], "raw": []}
        # warm-up: imports, page cache, the pools' first start (300 rows of each, not timed)
        lasskit_mix(manifest, split_dir, rows=300)
        io_floor(split_dir, manifest, tmp / "floor")
        shutil.rmtree(tmp / "floor")
        report = None
        for k in range(1, ROUNDS + 1):
            shutil.rmtree(split_dir.parent / ACTIVITY_CACHE, ignore_errors=True)
            shutil.rmtree(split_dir, ignore_errors=True)
            mix_s, report = lasskit_mix(manifest, split_dir)
            start = time.perf_counter()
            again = make_mixtures_again(manifest, split_dir)
            rerun_s = time.perf_counter() - start
            assert again.written == 0 and again.rows == ROWS, again
            floor_s = io_floor(split_dir, manifest, tmp / "floor")
            shutil.rmtree(tmp / "floor")
            raw_s = io_floor(split_dir, manifest, tmp / "raw", raw=True)
            shutil.rmtree(tmp / "raw")
            if k:
                for key, value in (("lasskit", mix_s), ("rerun", rerun_s), ("floor", floor_s), ("raw", raw_s)):
                    times[key].append(value)
        med = {k: statistics.median(v) for k, v in times.items()}

        def rng(key: str) -> str:
            return f"median {med[key]:.2f} s (range {min(times[key]):.2f}-{max(times[key]):.2f}, {ROUNDS} rounds)"

        print(f"lasskit mix: {ROWS} mixtures of {SECONDS:.0f} s: {rng('lasskit')} = {ROWS / med['lasskit']:.0f} "
              f"mixtures/s (jobs={JOBS}; {report.distinct_targets} targets, {report.distinct_noises} noises; "
              "clip scan included)")
        print(f"lasskit mix, unchanged re-run of the same {ROWS} rows: {rng('rerun')}")
        print(f"I/O floor (soundfile read 2 + write 3 float WAVs a row): {rng('floor')} = {ROWS / med['floor']:.0f} rows/s")
        print(f"raw I/O floor (same reads, plain writes): {rng('raw')} = {ROWS / med['raw']:.0f} rows/s")
        ratio = med["lasskit"] / med["floor"]
        print(f"ratio lasskit / floor: {ratio:.2f}; lasskit / raw floor: {med['lasskit'] / med['raw']:.2f}")
        ok = ratio <= LIMIT_RATIO and med["lasskit"] < LIMIT_S * ROWS / 3000
        print(f"goal: within {LIMIT_RATIO}x of the I/O floor and 3000 mixtures < {LIMIT_S:.0f} s: "
              f"{'PASS' if ok else 'FAIL'}")
        if not ok:
            sys.exit(1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def make_mixtures_again(manifest: Path, split_dir: Path):
    from lasskit.mixing import MixSpec, make_mixtures

    return make_mixtures(split_dir, MixSpec(-15, 15, num=ROWS, seed=0), [manifest], jobs=JOBS)


if __name__ == "__main__":
    main()
