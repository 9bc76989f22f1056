"""Benchmark `separate`: the pipeline's throughput and its overhead over the bare model call.

Generates N 10 s float32 mixtures (default 300; BENCH_SEPARATE_MIXTURES=3000 for the issue's
full figure, about 1.9 GB in and 1.9 GB out) and a split over them, then times, in one run:

- ``passthrough`` at batch 16 over all N mixtures: the pipeline's own cost (decode, checks,
  float WAV writes), in mixtures per second;
- a tiny conv model (3 Conv1d layers, query-conditioned gain) at batch 1 and 16 over the first
  M mixtures (default 100): the bare model call on tensors already in memory, then the whole
  pipeline; overhead = pipeline seconds / bare seconds - 1;
- each pipeline run with ``jobs`` 0 (decode and write in the main thread) and 2 (background
  threads), to show what decoding in the background buys;
- a small ResUNet30 (the baseline's network at width 8, random weights: convolution-bound like a
  real separator, where the tiny conv model is bound by memory traffic) over the first
  TWO_M mixtures (default 64) in one process and in two gloo CPU processes (``--devices 2``,
  issue 31), each process on one torch thread (two processes on two cores): wall times, the
  slowest rank's own time, the bytes compared;
- an unchanged re-run over 3000 mixtures (BENCH_SEPARATE_RERUN_MIXTURES) that were all separated
  already: in-process (median of 5) and as a whole ``lasskit separate`` command (imports
  included). It reads no audio (the mixtures' digests come from the digest cache, the outputs are
  checked by ``stat`` against provenance.json), so its cost does not depend on the clips' length;
  the clips are 1 s (BENCH_SEPARATE_RERUN_SECONDS) to keep the disk use small. Goal: under
  RERUN_LIMIT_S seconds in-process; the benchmark exits 1 when it is missed.

Torch uses its default thread count; numbers from a busy machine are noisy.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

N = int(os.environ.get("BENCH_SEPARATE_MIXTURES", "300"))
RERUN_N = int(os.environ.get("BENCH_SEPARATE_RERUN_MIXTURES", "3000"))
RERUN_SECONDS = float(os.environ.get("BENCH_SEPARATE_RERUN_SECONDS", "1"))
RERUN_LIMIT_S = 2.0
M = min(N, int(os.environ.get("BENCH_SEPARATE_CONV_MIXTURES", "100")))
TWO_M = min(M, int(os.environ.get("BENCH_SEPARATE_TWO_MIXTURES", "64")))
SECONDS = 10.0
RATE = 16000


def make_split(ws: Path) -> None:
    import pandas as pd

    from lasskit import audio, soundgen
    from lasskit.splits import write_split_csv

    names = list(soundgen.CLASSES)
    clips = [soundgen.generate(name, SECONDS, RATE, seed=i) for i, name in enumerate(names)]
    split_dir = ws / "data" / "splits" / "bench"
    rng = np.random.default_rng(0)
    rows = []
    for i in range(N):
        a, b = rng.choice(len(clips), 2, replace=False)
        mix = (clips[a] + rng.uniform(0.2, 1.0) * np.roll(clips[b], int(rng.integers(RATE * 10)))) * 0.6
        file = f"bench_{i:05d}.wav"
        audio.write(split_dir / "mixture" / file, mix.astype(np.float32), RATE, "float")
        rows.append({"mixture": file, "query": soundgen.CLASSES[names[a]].captions[0]})
    write_split_csv(split_dir, pd.DataFrame(rows))


def tiny_conv_model():
    """The model of :data:`TINY_CONV_FILE` in this process (one definition for both uses)."""
    namespace: dict = {}
    exec(compile(TINY_CONV_FILE, "tiny_conv.py", "exec"), namespace)
    return namespace["TinyConv"]()


TINY_CONV_FILE = """
import torch

from lasskit.models.base import SeparationModel


class TinyConv(SeparationModel, torch.nn.Module):
    # three Conv1d layers (1 -> 16 -> 16 -> 1, kernel 9) times a gain from the query's length
    name = "tiny-conv"

    def __init__(self, checkpoint=None, device="cpu"):
        torch.nn.Module.__init__(self)
        SeparationModel.__init__(self, checkpoint, device)
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(
            torch.nn.Conv1d(1, 16, 9, padding=4), torch.nn.ReLU(),
            torch.nn.Conv1d(16, 16, 9, padding=4), torch.nn.ReLU(),
            torch.nn.Conv1d(16, 1, 9, padding=4),
        ).eval()

    def separate(self, mixtures, queries):
        gain = torch.tensor([1.0 + len(q) / 1000 for q in queries], device=mixtures.device)
        return self.net(mixtures[:, None])[:, 0] * gain[:, None]
"""


SMALL_RESUNET_FILE = """
import zlib

import torch

from lasskit.models.base import SeparationModel
from lasskit.models.resunet import ResUNet30


class SmallResUNet(SeparationModel, torch.nn.Module):
    # the baseline's ResUNet30 at width 8 (random weights, eval mode), conditioned on a seeded random
    # vector per query: a real separator's convolutions at a quarter of its width
    name = "small-resunet"

    def __init__(self, checkpoint=None, device="cpu"):
        torch.nn.Module.__init__(self)
        SeparationModel.__init__(self, checkpoint, device)
        torch.manual_seed(0)
        self.net = ResUNet30(channels=8).eval()

    def separate(self, mixtures, queries):
        seeds = [torch.Generator().manual_seed(zlib.crc32(q.encode())) for q in queries]
        conditions = torch.stack([torch.randn(512, generator=g) for g in seeds])
        with torch.no_grad():
            return self.net(mixtures[:, None], conditions)[:, 0]
"""


def two_processes_row(ws: Path) -> None:
    """The small ResUNet30 over the first TWO_M mixtures in one process and in two gloo CPU processes
    (``--devices 2``), every process on one torch thread: whole-call wall time (model build and,
    for two, process start included), the slowest rank's own time, and the outputs' bytes compared."""
    import torch

    from lasskit.separation import separate_split
    from lasskit.separation.distributed import separate_split_on
    from lasskit.splits import read_split, write_split_csv

    src, dst = ws / "data/splits/bench", ws / "data/splits/bench_two"
    frame = read_split(src).frame.head(TWO_M)
    (dst / "mixture").mkdir(parents=True, exist_ok=True)
    for name in frame["mixture"]:
        os.link(src / "mixture" / name, dst / "mixture" / name)
    write_split_csv(dst, frame)
    (ws / "small_resunet.py").write_text(SMALL_RESUNET_FILE, encoding="utf-8")
    common = dict(split="bench_two", model=f"{ws / 'small_resunet.py'}:SmallResUNet", device="cpu", batch_size=8)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        t0 = time.perf_counter()
        one = separate_split(workspace=ws, name="dist-1", **common)
        single = time.perf_counter() - t0
    finally:
        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    two = separate_split_on(separate_split, 2, threads_per_process=1, workspace=str(ws), name="dist-2", **common)
    double = time.perf_counter() - t0
    slowest = max(r["seconds"] for r in two.record["ranks"])
    same = all((one.out_dir / p.name).read_bytes() == p.read_bytes() for p in sorted(two.out_dir.glob("*.wav")))
    count = len(list(two.out_dir.glob("*.wav")))
    print(f"small ResUNet30 (width 8), {TWO_M} mixtures, batch 8, 1 torch thread a process: 1 process {single:.2f} s | "
          f"2 gloo processes (--devices 2) {double:.2f} s = {double / single:.2f}x (aim <= 0.6x on 2 cores); slowest "
          f"rank's own run {slowest:.2f} s = {slowest / one.seconds:.2f}x of the 1-process run's {one.seconds:.2f} s "
          f"(the rest is starting processes and importing torch); {count} outputs, bytes "
          f"{'identical' if same and count == TWO_M else 'DIFFERENT'}; load {os.getloadavg()[0]:.1f}")


def bare_seconds(model, ws: Path, batch: int) -> float:
    """The model alone over the first M mixtures, already decoded into tensors (best of 3)."""
    import torch

    from lasskit import audio
    from lasskit.splits import read_split

    split = read_split(ws / "data/splits/bench")
    rows = split.frame.head(M)
    x = torch.from_numpy(np.stack([audio.load(split.mixture_path(n)) for n in rows["mixture"]]))
    queries = list(rows["query"])
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        with torch.inference_mode():
            for i in range(0, M, batch):
                model.separate(x[i:i + batch], queries[i:i + batch])
        best = min(best, time.perf_counter() - start)
    return best


def pipeline_seconds(model, ws: Path, split: str, batch: int, jobs: int | None, name: str, repeat: int = 3) -> float:
    """The whole pipeline (decode, model, checks, atomic float WAV writes), best of ``repeat``."""
    from lasskit.separation import separate_split

    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        report = separate_split(split, model, workspace=ws, name=name, device="cpu", batch_size=batch,
                                overwrite=True, jobs=jobs)
        best = min(best, time.perf_counter() - start)
        assert report.written == report.total and not report.failures
    return best


def subset_split(ws: Path) -> None:
    """A split of the first M rows (same files) for the conv runs."""
    from lasskit.splits import read_split, write_split_csv

    src = ws / "data/splits/bench"
    dst = ws / "data/splits/bench_small"
    (dst / "mixture").mkdir(parents=True)
    frame = read_split(src).frame.head(M)
    for name in frame["mixture"]:
        os.link(src / "mixture" / name, dst / "mixture" / name)
    write_split_csv(dst, frame)


def rerun_figure(ws: Path) -> bool:
    """An unchanged re-run over RERUN_N mixtures: in-process median of 5, and the whole command."""
    import statistics
    import subprocess
    import sys

    import pandas as pd

    from lasskit import audio, soundgen
    from lasskit.separation import separate_split
    from lasskit.splits import write_split_csv

    split_dir = ws / "data" / "splits" / "rerun"
    names = list(soundgen.CLASSES)
    rows = []
    for i in range(RERUN_N):
        clip = soundgen.generate(names[i % len(names)], RERUN_SECONDS, RATE, seed=i).astype(np.float32)
        file = f"rerun_{i:05d}.wav"
        audio.write(split_dir / "mixture" / file, clip, RATE, "float")
        rows.append({"mixture": file, "query": soundgen.CLASSES[names[i % len(names)]].captions[0]})
    write_split_csv(split_dir, pd.DataFrame(rows))
    t0 = time.perf_counter()
    first = separate_split("rerun", "passthrough", workspace=ws, device="cpu")
    made = time.perf_counter() - t0
    assert first.written == RERUN_N
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        report = separate_split("rerun", "passthrough", workspace=ws, device="cpu")
        times.append(time.perf_counter() - t0)
        assert report.written == 0 and report.skipped == RERUN_N
    env = {**os.environ, "LASSKIT_PROGRESS": "0"}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "lasskit", "-w", str(ws), "separate", "--split", "rerun"], check=True,
                   env=env, capture_output=True)
    command = time.perf_counter() - t0
    med = statistics.median(times)
    ok = med < RERUN_LIMIT_S
    print(f"unchanged re-run of {RERUN_N} separated mixtures ({RERUN_SECONDS:g} s clips; first run {made:.1f} s): "
          f"in-process median {med:.2f} s (range {min(times):.2f}-{max(times):.2f}, "
          f"{1e6 * med / RERUN_N:.0f} us a mixture), whole command {command:.2f} s with imports; "
          f"goal < {RERUN_LIMIT_S:g} s in-process: {'PASS' if ok else 'FAIL'}")
    return ok


def main() -> None:
    import torch

    ws = Path(tempfile.mkdtemp(prefix="lasskit_bench_separate_"))
    try:
        t0 = time.perf_counter()
        make_split(ws)
        subset_split(ws)
        print(f"generated {N} mixtures of {SECONDS:g} s (float32 WAV) in {time.perf_counter() - t0:.1f} s; "
              f"torch threads {torch.get_num_threads()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
        for jobs in (0, 2):
            seconds = pipeline_seconds("passthrough", ws, "bench", 16, jobs, "passthrough", repeat=1)
            print(f"passthrough  batch 16  jobs {jobs}  {N} mixtures: {seconds:6.2f} s  {N / seconds:7.1f} mixtures/s  "
                  f"{N * SECONDS / seconds:6.0f}x real time  ({1000 * seconds / N:.2f} ms per mixture: "
                  "decode, checks, write)")
            if N < 3000:
                print(f"  extrapolated to 3000 mixtures: {3000 * seconds / N:.1f} s")
        model = tiny_conv_model()
        print(f"tiny conv model: {model.num_parameters()} parameters, {M} mixtures, best of 3 runs each")
        for batch in (1, 16):
            bare = bare_seconds(model, ws, batch)
            line = f"  batch {batch:2d}: bare model {M / bare:6.1f} mixtures/s"
            for jobs in (0, 2):
                piped = pipeline_seconds(model, ws, "bench_small", batch, jobs, f"tiny-conv-b{batch}-j{jobs}")
                line += f" | pipeline jobs {jobs} {M / piped:6.1f} mixtures/s ({100 * (piped / bare - 1):+5.1f} %)"
            print(line)
        two_processes_row(ws)
        ok = rerun_figure(ws)
    finally:
        shutil.rmtree(ws, ignore_errors=True)
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
