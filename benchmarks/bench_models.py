"""Benchmark the zoo's separators on the CPU (and a GPU when torch sees one): seconds per 10 s clip and
peak memory, side by side with the upstream code's own inference on the same machine.

For each model (audiosep, audiosep-dp-16k, audiosep-dp-32k, clapsep: see ``CLAPSEP_VENV``) two kinds of fresh process run,
``ROUNDS`` rounds alternated (BENCH_MODELS_ROUNDS, default 2), each one warm-up pass then
``PASSES`` timed passes (batch 1, a 10 s input at the network's rate, random weights: the speed
does not depend on them):

- ``lasskit``: the network as the zoo model runs it (``separate_embedded`` under inference mode,
  glibc's allocator tuned at load as every lasskit model on the CPU does);
- ``upstream``: the upstream repository's own ``ResUNet30`` (``ss_model({"mixture", "condition"})``
  under ``torch.no_grad``), imported from its checkout with its own virtual environment
  (``BENCH_MODELS_UPSTREAM_VENV``, default /work/scratch/venv; sources in
  ``BENCH_MODELS_UPSTREAM_SRC``, default /work/scratch; see CONTRIBUTING.md "Zoo parity harness").
  When that environment is absent the benchmark says so and reports lasskit alone.

Reported per model: median wall time per 10 s clip of each, the ratio lasskit / upstream (goal:
at most 1.1; the benchmark exits 1 when missed), and the peak resident memory of each process
(weights included). lasskit's soxr 16 <-> 32 kHz resampling of a 10 s clip is timed apart (the
upstream pipeline resamples at load with librosa, outside its model). BENCH_MODELS_ONLY=a,b limits
the models. Each side runs its own torch (lasskit's venv; the upstream's pinned 1.13.1), as people
run each. On a busy machine the wall
times are noisy; the rounds alternate so that load hits both sides alike.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = int(os.environ.get("BENCH_MODELS_ROUNDS", "2"))
PASSES = int(os.environ.get("BENCH_MODELS_PASSES", "2"))
SECONDS = 10.0
GOAL = 1.1
VENV = Path(os.environ.get("BENCH_MODELS_UPSTREAM_VENV", "/work/scratch/venv"))
SRC = Path(os.environ.get("BENCH_MODELS_UPSTREAM_SRC", "/work/scratch"))
MODELS = {  # name -> (upstream folder under SRC, module, keywords, rate)
    "audiosep": ("audiosep", "models.resunet", {}, 32000),
    "audiosep-dp-16k": ("tqsed/LASS_codes", "models.resunet", {"dprnn": True, "dprnn_layers": 6, "dprnn_hidden": 256}, 16000),
    "audiosep-dp-32k": ("tqsed/LASS_codes", "models.resunet_32k", {"dprnn": True, "dprnn_layers": 6, "dprnn_hidden": 256}, 32000),
    "clapsep": ("clapsep", "", {}, 32000),
}
CLAPSEP_VENV = Path(os.environ.get("BENCH_MODELS_CLAPSEP_VENV", "/work/scratch/clapsep-venv"))
"""clapsep's upstream side runs in its own venv (CONTRIBUTING.md "CLAPSep parity harness"): the authors'
Lightning module built by ``parity/clapsep_parity.py`` (their CLAP module holds the RoBERTa text tower,
~0.5 GB of its peak memory; lasskit's side here has no text tower), their ``test_step`` path on one
10 s window (``torchaudio`` Resample to 48 kHz included on both sides)."""

CLAPSEP_WORKER = r"""
import json, resource, sys, time
import torch
kind, root, src, passes = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
sys.path.insert(0, root)
torch.manual_seed(0)
x = torch.randn(1, 320000) * 0.1
e = torch.nn.functional.normalize(torch.randn(1, 1024), dim=1)
if kind == "upstream":
    sys.path.insert(0, root + "/parity")
    import clapsep_parity as h
    from pathlib import Path
    h._stub_hub()
    sys.path.insert(0, src)
    import torchaudio
    from torchlibrosa.stft import magphase
    clap, lm = h._build(Path(src), False)
    lm.eval()
    resampler = torchaudio.transforms.Resample(32000, 48000)
    def run():
        with torch.no_grad():
            real, imag = lm.stft(x)
            mag, cos, sin = magphase(real, imag)
            del lm.features[:]
            lm.features.append(mag)
            lm.audio_branch({"waveform": resampler(x)})
            mask = lm.decoder_model(hidden_state=lm.features[-1], skip_features=lm.features[:-1], embed=e)
            out = lm.wav_reconstruct(mask, mag, cos, sin, length=x.shape[-1])
            del lm.features[:]
            return out
else:
    from lasskit.models.memory import keep_freed_memory
    from lasskit.models.clap_audio import ClapAudioTower
    from lasskit.models.clapsep import ClapSep
    from lasskit.models.clapsep_net import ClapSepDecoder, ClapSepNetwork
    keep_freed_memory()
    model = ClapSep.__new__(ClapSep)
    model.network = ClapSepNetwork(ClapAudioTower(), ClapSepDecoder()).eval()
    def run():
        with torch.inference_mode():
            return model.separate_embedded(x, e)
run()
times = []
for _ in range(passes):
    start = time.perf_counter(); run(); times.append(time.perf_counter() - start)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"times": times, "peak_rss_mib": peak, "gpu_peak_mib": None, "torch": torch.__version__}))
"""

WORKER = r"""
import json, resource, sys, time
import torch
kind, name, src, module, kwargs, rate, passes, device = sys.argv[1:9]
kwargs, rate, passes = json.loads(kwargs), int(rate), int(passes)
torch.manual_seed(0)
x = torch.randn(1, 1, int(10 * rate)) * 0.1
c = torch.nn.functional.normalize(torch.randn(1, 512), dim=1)
if kind == "upstream":
    sys.path.insert(0, src)
    import importlib
    net = importlib.import_module(module).ResUNet30(input_channels=1, output_channels=1, condition_size=512, **kwargs)
    net = net.eval().to(device)
    def run():
        with torch.no_grad():
            return net({"mixture": x.to(device), "condition": c.to(device)})["waveform"]
else:
    from lasskit.models.memory import keep_freed_memory
    from lasskit.models.registry import resolve
    if device == "cpu":
        keep_freed_memory()
    cls, _ = resolve(name)
    model = cls.__new__(cls)
    model._dual_path_size = (None, None)
    model.network = model.build_network(32).eval().to(device)
    model.chunk_seconds = None
    def run():
        with torch.inference_mode():
            return model.separate_embedded(x[:, 0].to(device), c.to(device))
def sync():
    if device.startswith("cuda"):
        torch.cuda.synchronize()
run(); sync()
times = []
for _ in range(passes):
    start = time.perf_counter(); run(); sync(); times.append(time.perf_counter() - start)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
gpu = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None
print(json.dumps({"times": times, "peak_rss_mib": peak, "gpu_peak_mib": gpu, "torch": torch.__version__}))
"""


def worker(kind: str, name: str, device: str) -> dict:
    folder, module, kwargs, rate = MODELS[name]
    if name == "clapsep":
        python = str(CLAPSEP_VENV / "bin" / "python") if kind == "upstream" else sys.executable
        args = [python, "-c", CLAPSEP_WORKER, kind, str(ROOT), str(SRC / folder), str(PASSES)]
    else:
        python = str(VENV / "bin" / "python") if kind == "upstream" else sys.executable
        args = [python, "-c", WORKER, kind, name, str(SRC / folder), module, json.dumps(kwargs), str(rate), str(PASSES),
                device]
    proc = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} {name}: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def resample_seconds() -> float:
    import numpy as np
    import torch

    from lasskit.models.zoo import resample

    x = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 160000)).astype(np.float32))
    times = []
    for _ in range(5):
        start = time.perf_counter()
        resample(resample(x, 16000, 32000), 32000, 16000)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench(device: str) -> bool:
    have_upstream = (VENV / "bin" / "python").is_file() and all(
        (SRC / f).is_dir() for n, (f, *_) in MODELS.items() if n != "clapsep")
    if not have_upstream:
        print(f"upstream: not run (no venv at {VENV} or no sources under {SRC}; see CONTRIBUTING.md "
              "'Zoo parity harness'); lasskit alone")
    ok = True
    print(f"{'model':<16} {'device':<6} {'lasskit s/clip':>14} {'upstream s/clip':>15} {'ratio':>6} "
          f"{'lasskit MiB':>11} {'upstream MiB':>12}")
    only = [n for n in os.environ.get("BENCH_MODELS_ONLY", "").split(",") if n]
    for name in (only or MODELS):
        if name == "clapsep" and device != "cpu":
            continue  # its worker runs on the CPU only
        upstream_here = have_upstream if name != "clapsep" else (
            (CLAPSEP_VENV / "bin" / "python").is_file() and (SRC / "clapsep" / "model").is_dir())
        runs = {"lasskit": [], "upstream": []}
        for _ in range(ROUNDS):
            runs["lasskit"].append(worker("lasskit", name, device))
            if upstream_here:
                runs["upstream"].append(worker("upstream", name, device))
        mem_key = "gpu_peak_mib" if device.startswith("cuda") else "peak_rss_mib"
        ours = statistics.median(t for r in runs["lasskit"] for t in r["times"])
        ours_mem = max(r[mem_key] for r in runs["lasskit"])
        if runs["upstream"]:
            theirs = statistics.median(t for r in runs["upstream"] for t in r["times"])
            theirs_mem = max(r[mem_key] for r in runs["upstream"])
            ratio = ours / theirs
            ok &= ratio <= GOAL
            print(f"{name:<16} {device:<6} {ours:>14.2f} {theirs:>15.2f} {ratio:>6.2f} {ours_mem:>11.0f} "
                  f"{theirs_mem:>12.0f}   (upstream torch {runs['upstream'][0]['torch']})")
        else:
            print(f"{name:<16} {device:<6} {ours:>14.2f} {'-':>15} {'-':>6} {ours_mem:>11.0f} {'-':>12}")
    return ok


def main() -> None:
    import torch

    print(f"zoo separators, batch 1, one {SECONDS:g} s clip; {ROUNDS} round(s) x {PASSES} pass(es), medians; "
          f"torch {torch.__version__}")
    ok = bench("cpu")
    if torch.cuda.is_available():
        ok &= bench("cuda")
    else:
        print("GPU: none here (not measured)")
    print(f"soxr HQ 16 -> 32 -> 16 kHz of a 10 s clip (the 32 kHz models, lasskit side only): "
          f"{resample_seconds() * 1000:.0f} ms")
    if not ok:
        print(f"lasskit was slower than {GOAL}x the upstream path for some model (see above)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
