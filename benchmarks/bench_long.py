"""Benchmark the long-audio engine (``lasskit separate FILE --query Q --out DIR``, issue 26).

Three figures, on generated audio (:mod:`lasskit.soundgen` classes summed into a 16 kHz mono
recording; no download), CPU, random weights:

1. **Peak memory is flat in the recording's length.** For each length in ``BENCH_LONG_MINUTES``
   (default 1, 10, 60 minutes) a fresh process builds the baseline (random weights) and runs
   :func:`lasskit.separation.files.separate_files` over the recording, as the command does;
   reported: the process's peak RSS (``ru_maxrss``) after building the model and at the end, and
   the ratio of the longest to the shortest (goal: within 1.1; the benchmark exits 1 otherwise).
   The width of the ResUNet30 is ``BENCH_LONG_CHANNELS`` (default 32, the released baseline's;
   60 minutes are ~520 windows, about 7 minutes on an idle 2-core CPU; a smaller width such as 8
   keeps the same layers and streaming and is said in the output; 0 runs ``passthrough``, the
   engine's own memory without a network).
2. **Seam quality.** ``passthrough`` over a 60 s recording in windows: the largest difference to
   the input (goal 1e-6; the cross-fade weights sum to one). The baseline (``BENCH_LONG_SEAM_CHANNELS``,
   default 32) on the first ``BENCH_LONG_SEAM_SECONDS`` (default 60) s: windowed output against
   the one-pass output of the same model, as SNR in dB (aim >= 30 dB with the default 10 s
   windows, 1 s context, 1 s cross-fade). A one-pass 60 s clip needs ~5.8 GB with width 32.
3. **Throughput**: seconds of audio per second of the windowed run and of the one pass on the
   same clip (median of ``BENCH_LONG_ROUNDS``, default 3); windows compute ~1.4x the audio
   (10 s windows every 7 s).

Run: ``python benchmarks/bench_long.py`` (``make bench`` runs every benchmark).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RATE = 16000
MINUTES = [float(m) for m in os.environ.get("BENCH_LONG_MINUTES", "1,10,60").split(",")]
CHANNELS = int(os.environ.get("BENCH_LONG_CHANNELS", "32"))
SEAM_CHANNELS = int(os.environ.get("BENCH_LONG_SEAM_CHANNELS", "32"))
SEAM_SECONDS = float(os.environ.get("BENCH_LONG_SEAM_SECONDS", "60"))
ROUNDS = int(os.environ.get("BENCH_LONG_ROUNDS", "3"))
FLAT = 1.10


class _Queries:
    """A stand-in text encoder (the separator's cost and memory do not depend on the embedding)."""

    def embed(self, queries):
        import torch

        g = torch.Generator().manual_seed(1)
        return torch.nn.functional.normalize(torch.randn(len(queries), 512, generator=g), dim=-1)


def baseline(channels: int):
    import torch

    from lasskit.models.baseline import DCASE2024Baseline

    torch.manual_seed(0)
    return DCASE2024Baseline(random_init=True, text_encoder=_Queries(), device="cpu", channels=channels)


def write_recording(path: Path, seconds: float, seed: int = 0) -> None:
    """A 16 kHz mono float WAV of ``seconds``, written minute by minute (events from lasskit.soundgen)."""
    import soundfile as sf

    from lasskit import soundgen

    names = sorted(soundgen.CLASSES)
    rng = np.random.default_rng(seed)
    with sf.SoundFile(str(path), "w", RATE, 1, subtype="FLOAT") as f:
        left = int(seconds * RATE)
        k = 0
        while left > 0:
            n = min(left, 60 * RATE)
            a = soundgen.generate(names[k % len(names)], n / RATE, RATE, seed=seed + k)
            b = soundgen.generate(names[(k + 1) % len(names)], n / RATE, RATE, seed=seed + k + 100)
            x = (0.5 * a[:n] + 0.3 * b[:n] + 0.01 * rng.standard_normal(n)).astype(np.float32)
            f.write(x)
            left -= n
            k += 1


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def child(path: str, out: str, channels: int) -> None:
    """In a fresh process: build the model, separate the recording, print the figures as JSON."""
    import torch

    from lasskit.separation.files import separate_files

    model = baseline(channels) if channels else "passthrough"
    loaded = peak_rss_mib()
    t0 = time.perf_counter()
    report = separate_files([path], ["rain on a roof"], out, model=model, device="cpu")
    seconds = time.perf_counter() - t0
    assert not report.failures, report.failures
    print(json.dumps({"loaded_mib": loaded, "peak_mib": peak_rss_mib(), "seconds": seconds,
                      "audio_seconds": report.audio_seconds, "windows": report.windows,
                      "threads": torch.get_num_threads()}))


def memory_series(tmp: Path) -> bool:
    rows = []
    for minutes in MINUTES:
        path = tmp / f"rec_{minutes:g}min.wav"
        write_recording(path, minutes * 60)
        result = subprocess.run([sys.executable, __file__, "--child", str(path), str(tmp / f"out_{minutes:g}"),
                                 str(CHANNELS)], capture_output=True, text=True, check=False)
        if result.returncode:
            print(result.stdout + result.stderr)
            raise SystemExit(f"child for {minutes:g} min failed")
        row = json.loads(result.stdout.strip().splitlines()[-1])
        rows.append((minutes, row))
        path.unlink()
        print(f"  {minutes:5g} min: peak RSS {row['peak_mib']:7.0f} MiB (model built: {row['loaded_mib']:5.0f} MiB), "
              f"{row['windows']:4d} windows, {row['audio_seconds'] / row['seconds']:5.1f}x real time "
              f"({row['seconds']:.0f} s, {row['threads']} torch threads)", flush=True)
    peaks = [r["peak_mib"] for _, r in rows]
    ratio = max(peaks) / min(peaks)
    ok = ratio <= FLAT
    print(f"  peak RSS longest/shortest: {ratio:.3f} (goal <= {FLAT}) -> {'OK' if ok else 'MISSED'}")
    return ok


def snr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    err = float(np.sum((reference.astype(np.float64) - estimate) ** 2))
    return float("inf") if err == 0 else 10 * np.log10(float(np.sum(reference.astype(np.float64) ** 2)) / err)


def seams(tmp: Path) -> None:
    import soundfile as sf
    import torch

    import lasskit.api as api
    from lasskit.separation.files import separate_files
    from lasskit.separation.model import build_model

    path = tmp / "seam.wav"
    write_recording(path, 60.0, seed=7)
    separate_files([path], ["rain"], tmp / "pass", model="passthrough", device="cpu")
    x, _ = sf.read(str(path), dtype="float32")
    y, _ = sf.read(str(tmp / "pass" / "seam__rain.wav"), dtype="float32")
    print(f"  passthrough, 60 s in 10 s windows: max |output - input| = {float(np.abs(y - x).max()):.2e} "
          "(goal <= 1e-6)")

    clip = x[: int(SEAM_SECONDS * RATE)]
    model = baseline(SEAM_CHANNELS)
    sep = api.Separator(build_model(model, device="cpu"), "cpu")
    windowed_times, whole_times = [], []
    windowed = whole = None
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        windowed = sep.separate(clip, RATE, "rain")
        windowed_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        with torch.inference_mode():
            whole = model.separate(torch.from_numpy(clip)[None], ["rain"])[0].numpy()
        whole_times.append(time.perf_counter() - t0)
    width = "the released width 32" if SEAM_CHANNELS == 32 else f"width {SEAM_CHANNELS} (smaller than the released 32)"
    print(f"  baseline ({width}), {SEAM_SECONDS:g} s: windowed vs one pass SNR {snr_db(whole, windowed):.1f} dB "
          "(aim >= 30 dB)")
    w, o = statistics.median(windowed_times), statistics.median(whole_times)
    print(f"  throughput: windowed {SEAM_SECONDS / w:.1f} s of audio/s ({w:.1f} s), one pass {SEAM_SECONDS / o:.1f} "
          f"s of audio/s ({o:.1f} s): {o / w:.2f}x of the one pass (median of {ROUNDS})")


def main() -> int:
    what = ("passthrough (the engine alone)" if CHANNELS == 0 else f"the ResUNet30 at width {CHANNELS}"
            + ("" if CHANNELS == 32 else " (smaller than the released 32: same layers, less compute)"))
    print(f"bench_long: CPU, random weights; memory series with {what}")
    with tempfile.TemporaryDirectory(prefix="lasskit-bench-long-") as tmp:
        ok = memory_series(Path(tmp))
        seams(Path(tmp))
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        raise SystemExit(0)
    raise SystemExit(main())
