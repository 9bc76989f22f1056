"""Benchmark of `lasskit check` on a full-size package, and of `lasskit package`.

1. check: a generated package of official size (eval_synth 3000 files, eval_real 200 files
   ``test-real-case-<i>.wav``, 10 s = 160000 samples each, 16-bit PCM of +-2 LSB noise, about
   1 GB of audio), checked outside a workspace (official counts and names), with 1 job and with
   all cores.
2. package: a workspace of --package-files eval_synth outputs (float32, 10 s) plus 20 eval_real,
   packaged with 1 job and with all cores; the time per file is extrapolated to 3200 files.

Run: .venv/bin/python benchmarks/bench_check.py [--jobs N] [--package-files N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lasskit.submission import (  # noqa: E402
    DeterministicZipWriter,
    deflate_entry,
    pcm16_wav_bytes,
    write_team_zip,
)
from lasskit.parallel import default_jobs  # noqa: E402
from lasskit.submission import check_submission  # noqa: E402

LABEL = "Bench_LSK_task9_1"
SAMPLES = 160000
PDF = b"%PDF-1.4\n%%EOF\n"
META = {
    "submission": {
        "label": LABEL, "name": "Benchmark system", "abbreviation": "Bench",
        "authors": [{"lastname": "Bench", "firstname": "Ada", "email": "ada@uni-bench.ac.uk",
                     "affiliation": "University of Benchmarks", "corresponding": True}],
    },
    "system": {
        "description": {"input_sampling_rate": 16000, "separation_model": "ResUNet", "text_encoder": "CLAP",
                        "training_data": ["Clotho v2", "FSD50K"], "external_data": [],
                        "pretrained_models": ["CLAP"], "ensemble_size": 1},
        "complexity": {"total_parameters": 29000000},
    },
    "results": {"validation_synth": {"SDR": 5.708, "SDRi": 5.673, "SI-SDR": 3.862}},
}


def noise_wav(seed: int) -> bytes:
    """10 s of +-2 LSB noise as 16-bit PCM WAV (not silent: peak 6.1e-5)."""
    rng = np.random.default_rng(seed)
    return pcm16_wav_bytes(rng.integers(-2, 3, SAMPLES) / 32768.0)[0]


def write_audio_zip(path: Path, names: list[str], seed0: int) -> None:
    with open(path, "wb") as f:
        writer = DeterministicZipWriter(f, str(path))
        for i, name in enumerate(sorted(names)):
            writer.add(deflate_entry(name, noise_wav(seed0 + i), level=1))
        writer.close()


def make_full_package(sub: Path) -> float:
    sub.mkdir(parents=True)
    start = time.perf_counter()
    write_audio_zip(sub / f"{LABEL}_eval_synth.zip", [f"lass_eval_synth_{i:04d}.wav" for i in range(3000)], 0)
    write_audio_zip(sub / f"{LABEL}_eval_real.zip", [f"test-real-case-{i}.wav" for i in range(200)], 10000)
    (sub / f"{LABEL}.meta.yaml").write_text(yaml.safe_dump(META, sort_keys=False))
    (sub / f"{LABEL}.technical_report.pdf").write_bytes(PDF)
    (sub / f"{LABEL}.audio_url.txt").write_text("Google Drive: https://drive.google.com/drive/folders/x\n")
    write_team_zip(sub, "Bench", "LSK")
    return time.perf_counter() - start


def bench_check(root: Path, jobs: int) -> None:
    sub = root / "submission"
    made = make_full_package(sub)
    size = sum(p.stat().st_size for p in sub.glob("*.zip")) / 1e6
    print(f"full-size package generated in {made:.1f} s ({size:.0f} MB of zips)")
    times = {}
    for j in sorted({1, jobs}):
        start = time.perf_counter()
        report = check_submission(sub, None, jobs=j)
        times[j] = time.perf_counter() - start
        assert report.ok, report.lines()[:5]
        assert report.audio_files == 3200
        print(f"check, {j} job(s): {times[j]:.1f} s for {report.audio_files} WAV files "
              f"({report.audio_files / times[j]:.0f} files/s, {size / times[j]:.0f} MB/s of zip)")
    if len(times) > 1:
        print(f"check speed-up with {jobs} jobs: {times[1] / times[jobs]:.2f}x")


def make_workspace(root: Path, n_synth: int, n_real: int) -> None:
    """The eval splits' outputs made by ``separate`` (the passthrough model over rain mixtures: its
    records and separate.json are what ``package`` checks) and a small val_synth separated and
    scored the same way (its summary.json ties the scores to those outputs)."""
    import pandas as pd
    import soundfile as sf

    from lasskit import soundgen
    from lasskit.scoring.run import score_workspace
    from lasskit.separation import separate_split
    from lasskit.splits import write_split_csv

    base = soundgen.generate("rain", 10.0, 16000, seed=1)
    for split, names in (("eval_synth", [f"synth_{i:04d}.wav" for i in range(n_synth)]),
                         ("eval_real", [f"test-real-case-{i}.wav" for i in range(n_real)]),
                         ("val_synth", [f"val_{i:04d}.wav" for i in range(10)])):
        split_dir = root / "data" / "splits" / split
        (split_dir / "mixture").mkdir(parents=True)
        rows = []
        for i, name in enumerate(names):
            source = np.roll(base, 997 * i) * 0.4
            mixture = source + np.roll(base, 5003 + 997 * i) * 0.3  # the passthrough scores a few dB
            sf.write(str(split_dir / "mixture" / name), mixture, 16000, subtype="FLOAT")
            row = {"mixture": name, "query": "rain"}
            if split == "val_synth":
                (split_dir / "source").mkdir(exist_ok=True)
                sf.write(str(split_dir / "source" / name), source, 16000, subtype="FLOAT")
                row["source"] = f"source/{name}"
            rows.append(row)
        write_split_csv(split_dir, pd.DataFrame(rows))
        separate_split(workspace=root, split=split, model="passthrough", name="bench", device="cpu")
    from lasskit.workspace import Workspace

    score_workspace(Workspace.open(root), splits=["val_synth"], models=["bench"])
    (root / "report.pdf").write_bytes(PDF)
    config = {"package": {"team": "Bench", "institute": "LSK", "name": "Benchmark", "abbreviation": "Bench",
                          "report": "report.pdf", "audio_url": "https://drive.google.com/x",
                          "system": {k: v for k, v in META["system"]["description"].items()
                                     if k not in ("input_sampling_rate",)}},
              "authors": META["submission"]["authors"]}
    config["package"]["system"]["total_parameters"] = 29000000
    (root / "lasskit.yaml").write_text(yaml.safe_dump(config))


def bench_package(root: Path, n_synth: int, jobs: int) -> None:
    from lasskit.submission import build_package
    from lasskit.workspace import Workspace

    n_real = 20
    make_workspace(root, n_synth, n_real)
    ws = Workspace.open(root)
    times = {}
    for j in sorted({1, jobs}):
        start = time.perf_counter()
        result = build_package(ws, jobs=j, overwrite=True)
        times[j] = time.perf_counter() - start
        files = sum(result.audio_counts.values())
        print(f"package, {j} job(s): {times[j]:.1f} s for {files} files of 10 s "
              f"({times[j] / files * 1000:.1f} ms/file; 3200 files: about {times[j] / files * 3200:.0f} s)")
    if len(times) > 1:
        print(f"package speed-up with {jobs} jobs: {times[1] / times[jobs]:.2f}x")
    zips = sorted((root / "submission").glob("*_eval_*.zip"))
    raw = (n_synth + n_real) * (44 + 2 * SAMPLES)
    packed = sum(p.stat().st_size for p in zips)
    print(f"pcm16 zip size: {packed / raw:.3f} of the WAV bytes ({packed / 1e6:.0f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=default_jobs())
    parser.add_argument("--package-files", type=int, default=300)
    parser.add_argument("--keep", type=Path, default=None, help="Build in this folder and keep it.")
    args = parser.parse_args()
    os.environ.setdefault("LASSKIT_PROGRESS", "0")
    root = args.keep or Path(tempfile.mkdtemp(prefix="lasskit_bench_check_"))
    try:
        bench_check(root / "check", args.jobs)
        bench_package(root / "package", args.package_files, args.jobs)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
