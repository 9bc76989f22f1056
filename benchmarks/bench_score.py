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

The two run alternately, RUNS rounds, after one warm-up run of each (so neither is compared
cold); medians and ranges are printed, with the largest per-row difference between the two (dB).
Then bss_eval: ``score --bss-eval`` on BSS_ROWS pairs against a plain single-process loop of
``mir_eval.separation.bss_eval_sources`` over the same pairs (also warm, alternated).

Floors: the whole lasskit command under 5 s for 3000 pairs (issue 4); bss_eval at least 1.4x
faster than the single-process mir_eval loop (issue 18).
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
BSS_ROWS = int(os.environ.get("BENCH_SCORE_BSS_ROWS", "100"))
BSS_FLOOR = 1.4
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

MIR_EVAL_LOOP = r'''
import csv, sys, warnings
import numpy as np
import soundfile as sf
from mir_eval.separation import bss_eval_sources

split, estimates, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
out = []
with open(f"{split}/mixtures.csv", newline="") as f:
    for i, row in enumerate(csv.DictReader(f)):
        if i >= rows:
            break
        s = sf.read(f"{split}/{row['source']}", dtype="float64")[0]
        e = sf.read(f"{estimates}/{row['mixture']}", dtype="float64")[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out.append(bss_eval_sources(s[None], e[None], compute_permutation=False)[0][0])
print(f"bss_sdr mean {np.mean(out):.6f}")
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


def _range(times: list[float]) -> str:
    return f"median {statistics.median(times):.2f} s (range {min(times):.2f}-{max(times):.2f}, {len(times)} runs)"


def bss_eval_section(ws: Path, tmp: Path, env: dict) -> bool:
    """score --bss-eval on BSS_ROWS pairs vs a single-process mir_eval loop; True if the floor holds."""
    import csv as _csv

    src = ws / "data" / "splits" / "bench"
    small = ws / "data" / "splits" / "bss"
    for sub in ("mixture", "source", "noise"):
        (small / sub).mkdir(parents=True, exist_ok=True)
    est_small = ws / "exp" / "bench_model" / "bss"
    est_small.mkdir(parents=True, exist_ok=True)
    with open(src / "mixtures.csv", newline="") as f:
        rows = list(_csv.DictReader(f))[:BSS_ROWS]
    for r in rows:
        for sub in ("mixture", "source", "noise"):
            os.link(src / sub / r["mixture"], small / sub / r["mixture"])
        os.link(ws / "exp" / "bench_model" / "bench" / r["mixture"], est_small / r["mixture"])
    with open(small / "mixtures.csv", "w", newline="") as f:
        w = _csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    script = tmp / "mir_eval_loop.py"
    script.write_text(MIR_EVAL_LOOP)
    ours_cmd = [sys.executable, "-m", "lasskit", "-w", str(ws), "score", "--model", "bench_model", "--split", "bss",
                "--bss-eval"]
    theirs_cmd = [sys.executable, str(script), str(small), str(est_small), str(BSS_ROWS)]
    timed(ours_cmd, env)  # warm-up
    timed(theirs_cmd, env)
    ours, theirs = [], []
    for _ in range(RUNS):
        ours.append(timed(ours_cmd, env)[0])
        t, proc = timed(theirs_cmd, env)
        theirs.append(t)
    summary = json.loads((est_small / "summary.json").read_text())
    ratio = statistics.median(theirs) / statistics.median(ours)
    print(f"score --bss-eval, {BSS_ROWS} pairs: lasskit {_range(ours)}; single-process mir_eval loop "
          f"{_range(theirs)}; ratio {ratio:.2f}x (floor {BSS_FLOOR}x)")
    print(f"  bss_sdr mean: lasskit {summary['metrics']['bss_sdr']['mean']:.6f}, mir_eval {proc.stdout.strip()}")
    return ratio >= BSS_FLOOR


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
        script = tmp / "organizers_style.py"
        script.write_text(ORGANIZERS_STYLE)
        split, est = ws / "data" / "splits" / "bench", ws / "exp" / "bench_model" / "bench"
        org_cmd = [sys.executable, str(script), str(split), str(est), str(tmp / "org.npy")]
        timed(cmd, env)  # warm-up of both, so neither is compared cold
        timed(org_cmd, env)
        times, org_times = [], []
        for _ in range(RUNS):
            seconds, proc = timed(cmd, env)
            times.append(seconds)
            seconds, org = timed(org_cmd, env)
            org_times.append(seconds)
        one_job, _ = timed(cmd + ["--jobs", "1"], env)
        lasskit_s, org_s = statistics.median(times), statistics.median(org_times)
        print(proc.stdout.strip())
        theirs = np.load(tmp / "org.npy")
        with open(est / "scores.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        ours = np.array([[float(r[m]) for r in rows] for m in ("sdr", "sdri", "si_sdr")])
        summary = json.loads((est / "summary.json").read_text())
        means = {m: summary["metrics"][m]["mean"] for m in ("sdr", "sdri", "si_sdr")}
        print(f"lasskit score: {ROWS} pairs, {_range(times)}, start-up included, all cores = {os.cpu_count()}; "
              f"{one_job:.2f} s with --jobs 1")
        print(f"organizers' style (librosa.load x3, numpy, one process), warm: {_range(org_times)}")
        print(f"ratio organizers' style / lasskit (medians, both warm): {org_s / lasskit_s:.1f}x")
        print(f"means: lasskit SDR {means['sdr']:.3f} SDRi {means['sdri']:.3f} SI-SDR {means['si_sdr']:.3f}; "
              f"organizers' style {org.stdout.strip()}")
        print(f"largest per-row difference (dB): SDR {np.max(np.abs(ours[0] - theirs[0])):.2e}, "
              f"SDRi {np.max(np.abs(ours[1] - theirs[1])):.2e}, SI-SDR {np.max(np.abs(ours[2] - theirs[2])):.2e}")
        ok = lasskit_s < LIMIT_S * ROWS / 3000
        print(f"floor of the issue: 3000 pairs < {LIMIT_S:.0f} s including start-up: {'PASS' if ok else 'FAIL'}")
        bss_ok = bss_eval_section(ws, tmp, env)
        print(f"bss_eval floor ({BSS_FLOOR}x the mir_eval loop): {'PASS' if bss_ok else 'FAIL'}")
        if not (ok and bss_ok):
            sys.exit(1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
