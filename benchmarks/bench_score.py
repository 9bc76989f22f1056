"""Benchmark `score`: 3000 (mixture, reference, estimate) triples of 10 s 16 kHz float32 WAV.

Builds a workspace with split ``bench`` (3000 rows, references known) and model ``bench_model``
(estimate = source + 0.3 * noise), from DISTINCT generated triples (lasskit.soundgen clips mixed
with the organizers' formula) hard-linked under 3000 names, so the disk holds 0.6 GB instead of
5.8 GB; every file is read in full either way (set BENCH_SCORE_DISTINCT=3000 for all-distinct files).
The page cache is warmed once, then it times, each as a fresh process with its start-up:

- lasskit: ``python -m lasskit -w WS score --model bench_model --split bench`` (scores.csv,
  summary.json with bootstrap intervals, the table), RUNS times, default jobs (all cores);
- the organizers' style: one process, for each row ``librosa.load`` the three files, compute SDR,
  SDR of the mixture and SI-SDR with their numpy formulas, append; print the means.

Prints seconds, the ratio, and the largest per-row difference between the two (dB).
Floor (issue 4): the whole lasskit command under 5 s for 3000 pairs.
"""

from __future__ import annotations

import csv
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

ROWS = int(os.environ.get("BENCH_SCORE_ROWS", "3000"))
DISTINCT = min(ROWS, int(os.environ.get("BENCH_SCORE_DISTINCT", "300")))
RUNS = int(os.environ.get("BENCH_SCORE_RUNS", "3"))
SECONDS = 10.0
LIMIT_S = 5.0

ORGANIZERS_STYLE = r'''
import csv, sys, time
import numpy as np
import librosa

def calculate_sdr(ref, est, eps=1e-10):
    noise = est - ref
    numerator = np.clip(np.mean(ref ** 2), eps, None)
    denominator = np.clip(np.mean(noise ** 2), eps, None)
    return 10.0 * np.log10(numerator / denominator)

def calculate_sisdr(ref, est):
    eps = np.finfo(ref.dtype).eps
    reference = ref.reshape(ref.size, 1)
    estimate = est.reshape(est.size, 1)
    a = (eps + np.dot(reference.T, estimate)) / (np.dot(reference.T, reference) + eps)
    e_true = a * reference
    e_res = estimate - e_true
    return 10 * np.log10((eps + (e_true ** 2).sum()) / (eps + (e_res ** 2).sum()))

split, estimates, out = sys.argv[1], sys.argv[2], sys.argv[3]
sdrs, sdris, sisdrs = [], [], []
with open(f"{split}/mixtures.csv", newline="") as f:
    for row in csv.DictReader(f):
        source, _ = librosa.load(f"{split}/{row['source']}", sr=16000, mono=True)
        mixture, _ = librosa.load(f"{split}/mixture/{row['mixture']}", sr=16000, mono=True)
        separated, _ = librosa.load(f"{estimates}/{row['mixture']}", sr=16000, mono=True)
        sdr = calculate_sdr(source, separated)
        sdrs.append(sdr)
        sdris.append(sdr - calculate_sdr(source, mixture))
        sisdrs.append(float(calculate_sisdr(source, separated)))
np.save(out, np.array([sdrs, sdris, sisdrs], dtype=np.float64))
print(f"SDR {np.mean(sdrs):.3f} SDRi {np.mean(sdris):.3f} SI-SDR {np.mean(sisdrs):.3f}")
'''


def build_workspace(root: Path) -> None:
    """DISTINCT generated triples, hard-linked under ROWS names; mixtures.csv; the model's outputs."""
    from lasskit import soundgen
    from lasskit.mixing import official_mixture

    split = root / "data" / "splits" / "bench"
    est_dir = root / "exp" / "bench_model" / "bench"
    for d in (split / "mixture", split / "source", split / "noise", est_dir):
        d.mkdir(parents=True)
    classes = list(soundgen.CLASSES)
    n_clips = 16  # generated 10 s clips, paired and mixed at different SNRs for DISTINCT triples
    clips = [soundgen.generate(classes[i % len(classes)], SECONDS, 16000, seed=i) for i in range(n_clips)]
    rng = np.random.default_rng(0)
    rows = []
    for i in range(ROWS):
        name = f"bench_{i:04d}.wav"
        if i < DISTINCT:
            a = i % n_clips
            b = (a + 1 + (i // n_clips) % (n_clips - 1)) % n_clips
            if classes[a % len(classes)] == classes[b % len(classes)]:
                b = (b + 1) % n_clips
            snr = int(rng.integers(-15, 16))
            m = official_mixture(clips[a], clips[b], snr)
            for sub, x in (("mixture", m.mixture), ("source", m.source), ("noise", m.noise)):
                sf.write(str(split / sub / name), x, 16000, subtype="FLOAT")
            sf.write(str(est_dir / name), (m.source + np.float32(0.3) * m.noise).astype(np.float32), 16000,
                     subtype="FLOAT")
        else:
            first = f"bench_{i % DISTINCT:04d}.wav"
            for d in (split / "mixture", split / "source", split / "noise", est_dir):
                os.link(d / first, d / name)
            snr = rows[i % DISTINCT]["snr"]
        rows.append({"mixture": name, "query": "a generated sound", "source": f"source/{name}",
                     "noise": f"noise/{name}", "snr": str(snr)})
    with open(split / "mixtures.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def warm(root: Path) -> None:
    for p in sorted(root.rglob("*.wav"))[: 4 * DISTINCT]:
        p.read_bytes()


def timed(cmd: list[str], env: dict) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        print(proc.stdout, proc.stderr, sep="\n")
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}")
    return seconds, proc


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench_score_"))
    env = dict(os.environ, LASSKIT_PROGRESS="0", COLUMNS="160")
    try:
        t0 = time.perf_counter()
        ws = tmp / "ws"
        build_workspace(ws)
        print(f"built {ROWS} triples of {SECONDS:.0f} s ({DISTINCT} distinct, the rest hard links) "
              f"in {time.perf_counter() - t0:.1f} s")
        warm(ws)
        cmd = [sys.executable, "-m", "lasskit", "-w", str(ws), "score", "--model", "bench_model", "--split", "bench"]
        times = []
        for _ in range(RUNS):
            seconds, proc = timed(cmd, env)
            times.append(seconds)
        one_job, _ = timed(cmd + ["--jobs", "1"], env)
        lasskit_s = statistics.median(times)
        print(proc.stdout.strip())
        script = tmp / "organizers_style.py"
        script.write_text(ORGANIZERS_STYLE)
        split, est = ws / "data" / "splits" / "bench", ws / "exp" / "bench_model" / "bench"
        org_s, org = timed([sys.executable, str(script), str(split), str(est), str(tmp / "org.npy")], env)
        theirs = np.load(tmp / "org.npy")
        with open(est / "scores.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        ours = np.array([[float(r[m]) for r in rows] for m in ("sdr", "sdri", "si_sdr")])
        summary = json.loads((est / "summary.json").read_text())
        means = {m: summary["metrics"][m]["mean"] for m in ("sdr", "sdri", "si_sdr")}
        print(f"lasskit score: {ROWS} pairs in {lasskit_s:.2f} s (median of {RUNS}: "
              f"{', '.join(f'{t:.2f}' for t in times)}; start-up included; all cores = {os.cpu_count()}), "
              f"{one_job:.2f} s with --jobs 1")
        print(f"organizers' style (librosa.load x3, numpy, one process): {org_s:.2f} s")
        print(f"ratio organizers' style / lasskit: {org_s / lasskit_s:.1f}x")
        print(f"means: lasskit SDR {means['sdr']:.3f} SDRi {means['sdri']:.3f} SI-SDR {means['si_sdr']:.3f}; "
              f"organizers' style {org.stdout.strip()}")
        print(f"largest per-row difference (dB): SDR {np.max(np.abs(ours[0] - theirs[0])):.2e}, "
              f"SDRi {np.max(np.abs(ours[1] - theirs[1])):.2e}, SI-SDR {np.max(np.abs(ours[2] - theirs[2])):.2e}")
        ok = lasskit_s < LIMIT_S * ROWS / 3000
        print(f"floor of the issue: 3000 pairs < {LIMIT_S:.0f} s including start-up: {'PASS' if ok else 'FAIL'}")
        if not ok:
            sys.exit(1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
