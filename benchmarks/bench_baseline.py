"""Benchmark the dcase2024-baseline separator (ResUNet30, 26.4 M parameters) on 10 s clips.

Random weights (the speed does not depend on them); no checkpoint or download needed.

- CPU, batch 1 (issue 18 §1): the separator as lasskit ships it (``DCASE2024Baseline`` built on
  the CPU, which tunes glibc's allocator at load, :mod:`lasskit.models.memory`, with in-place
  activations), against two references, each in a fresh process, ``ROUNDS`` rounds alternated,
  two timed passes per process after a warm-up:

  * ``env-tuned``: the same model with ``MALLOC_MMAP_THRESHOLD_=4294967296
    MALLOC_TRIM_THRESHOLD_=8589934592`` set by the environment and lasskit's own tuning off: the
    configuration in which issue 18 measured both the organizers' code and lasskit at their best
    (0.75-0.80 s a clip). The organizers' code itself is not part of lasskit and is not run here;
  * ``glibc-default``: lasskit's tuning off (``LASSKIT_MALLOC=default``), the speed before the fix.

  Reported: median and range of the wall time per 10 s clip, the CPU time, the minor page faults
  per pass and the peak resident memory the passes add. Goal: lasskit's median at most 1.1x the
  best of (lasskit, env-tuned); the benchmark exits 1 when missed. Batch BENCH_BASELINE_BATCH
  (default 4) is timed once for the throughput per clip.
- Text side: RoBERTa-base + projection with random weights, batch 32, queries of realistic length
  (20 to 40 tokens, like the captions of Clotho and the DCASE validation set, padded to the
  longest of the batch), queries per second.
- GPU (when torch sees one): 3000 clips (BENCH_BASELINE_CLIPS) at batch 16: clips per second and
  peak allocated memory in float32, then the same in bfloat16 autocast, and the relative L2
  difference between the bf16 and fp32 estimates. Not measured on the machine that wrote this
  (no GPU there).

Torch uses its default thread count; on a busy machine the wall times are noisy (the CPU times
and page faults much less so).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time

RATE = 16000
SECONDS = 10.0
BATCH = int(os.environ.get("BENCH_BASELINE_BATCH", "4"))
CLIPS = int(os.environ.get("BENCH_BASELINE_CLIPS", "3000"))
ROUNDS = int(os.environ.get("BENCH_BASELINE_ROUNDS", "3"))
GOAL = 1.1

CONFIGS = {
    "lasskit": {},
    "env-tuned": {"LASSKIT_MALLOC": "default", "MALLOC_MMAP_THRESHOLD_": "4294967296",
                  "MALLOC_TRIM_THRESHOLD_": "8589934592"},
    "glibc-default": {"LASSKIT_MALLOC": "default"},
}


class _Queries:
    """A stand-in text encoder: unit-norm rows (the separator's speed does not depend on them)."""

    def embed(self, queries):
        import torch

        torch.manual_seed(1)
        return torch.nn.functional.normalize(torch.randn(len(queries), 512), dim=-1)


def baseline(device: str = "cpu"):
    """The separator as ``lasskit separate`` builds it (random ResUNet30), on ``device``."""
    import torch

    from lasskit.models.baseline import DCASE2024Baseline

    torch.manual_seed(0)
    return DCASE2024Baseline(random_init=True, text_encoder=_Queries(), device=device)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def cpu_worker(batch: int) -> dict:
    """Run in a fresh process: build the model, warm up, time passes over ``batch`` 10 s clips."""
    import torch

    model = baseline()
    mixtures = torch.randn(batch, int(RATE * SECONDS)) * 0.1
    queries = ["a dog barks while cars pass by"] * batch
    passes = 2 if batch == 1 else 1
    with torch.inference_mode():
        model.separate(mixtures[:, : RATE], queries)  # warm-up: threads, kernels
        before = peak_rss_mib()
        walls, cpus, faults = [], [], []
        for _ in range(passes):
            r0 = resource.getrusage(resource.RUSAGE_SELF)
            t0 = time.perf_counter()
            model.separate(mixtures, queries)
            walls.append(time.perf_counter() - t0)
            r1 = resource.getrusage(resource.RUSAGE_SELF)
            cpus.append(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime)
            faults.append(r1.ru_minflt - r0.ru_minflt)
    from lasskit.models.memory import keep_freed_memory

    return {"batch": batch, "wall": min(walls), "cpu": min(cpus), "faults": min(faults),
            "added_peak_mib": peak_rss_mib() - before, "threads": torch.get_num_threads(),
            "allocator": keep_freed_memory()}


def run_worker(batch: int, env_extra: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "LASSKIT_MALLOC"}
    env.update(env_extra)
    out = subprocess.run([sys.executable, __file__, "--cpu-worker", str(batch)], capture_output=True, text=True,
                         check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def cpu_bench() -> bool:
    results: dict[str, list[dict]] = {name: [] for name in CONFIGS}
    for _ in range(ROUNDS):  # alternated, so a busy spell hits every configuration
        for name, env in CONFIGS.items():
            results[name].append(run_worker(1, env))

    def med(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    print(f"CPU separator, batch 1, one 10 s clip, {ROUNDS} rounds alternated (fresh process each, best of 2 "
          f"passes), {results['lasskit'][0]['threads']} torch threads:")
    for name in CONFIGS:
        walls = [r["wall"] for r in results[name]]
        print(f"  {name:<14} wall median {med(name, 'wall'):.2f} s (range {min(walls):.2f}-{max(walls):.2f}), "
              f"CPU {med(name, 'cpu'):.2f} s, {med(name, 'faults') / 1e3:.0f} k page faults a pass, "
              f"peak +{med(name, 'added_peak_mib'):.0f} MiB  [allocator: {results[name][0]['allocator']}]")
    best = min(med("lasskit", "wall"), med("env-tuned", "wall"))
    ratio = med("lasskit", "wall") / best
    cpu_ratio = med("lasskit", "cpu") / min(med("lasskit", "cpu"), med("env-tuned", "cpu"))
    load = os.getloadavg()[0]
    busy = load > (os.cpu_count() or 1)
    # on a machine busier than its cores, wall times measure the neighbours: judge by CPU time then
    ok = ratio <= GOAL or (busy and cpu_ratio <= GOAL)
    if busy:
        print(f"  (machine busy: load {load:.1f} on {os.cpu_count()} cores; wall times are unreliable, the CPU "
              "times and page faults are the figures to trust, and the goal is judged on CPU time too)")
    print(f"  lasskit / best of (lasskit, env-tuned): {ratio:.2f}x wall, {cpu_ratio:.2f}x CPU; "
          f"before the fix (glibc-default) / lasskit: {med('glibc-default', 'wall') / med('lasskit', 'wall'):.2f}x "
          f"wall; peak memory cost of the tuning: "
          f"{med('lasskit', 'added_peak_mib') - med('glibc-default', 'added_peak_mib'):+.0f} MiB; "
          f"goal <= {GOAL}x: {'PASS' if ok else 'FAIL'}")
    if BATCH > 1:
        r = run_worker(BATCH, {})
        print(f"CPU batch {BATCH}: {r['wall']:.2f} s per batch, {r['wall'] / BATCH:.2f} s per clip, "
              f"peak +{r['added_peak_mib']:.0f} MiB ({r['added_peak_mib'] / BATCH:.0f} MiB per clip)")
    return ok


def text_bench() -> str:
    try:
        import transformers
    except ImportError:
        return "text encoder: skipped (transformers not installed)"
    import torch

    from lasskit.models.text_encoder import build_projection

    roberta = transformers.RobertaModel(transformers.RobertaConfig(
        vocab_size=50265, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
        max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5, pad_token_id=1)).eval()
    projection = build_projection().eval()
    gen = torch.Generator().manual_seed(0)
    lengths = torch.randint(20, 41, (32,), generator=gen)
    width = int(lengths.max())
    ids = torch.ones(32, width, dtype=torch.long)  # <pad>
    mask = torch.zeros(32, width, dtype=torch.long)
    for i, n in enumerate(lengths.tolist()):
        ids[i, :n] = torch.randint(3, 50000, (n,), generator=gen)
        ids[i, 0], ids[i, n - 1] = 0, 2
        mask[i, :n] = 1
    with torch.inference_mode():
        roberta(input_ids=ids[:2], attention_mask=mask[:2])
        t0 = time.perf_counter()
        projection(roberta(input_ids=ids, attention_mask=mask).pooler_output)
        seconds = time.perf_counter() - t0
    return (f"text encoder (RoBERTa-base, CPU): {32 / seconds:.0f} queries/s at batch 32 (20-40 tokens, padded to "
            f"the longest, as real captions), {seconds * 1000 / 32:.1f} ms per query; each distinct query is "
            "embedded once")


def gpu_bench() -> str:
    import torch

    device = "cuda"
    model = baseline(device)
    net = model.network
    batch = 16
    mixtures = torch.randn(batch, 1, int(RATE * SECONDS), device=device) * 0.1
    conditions = torch.nn.functional.normalize(torch.randn(batch, 512, device=device), dim=-1)
    lines = []
    outputs = {}
    for dtype in (torch.float32, torch.bfloat16):
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
            outputs[dtype] = net(mixtures, conditions).float()
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
            done = 0
            while done < CLIPS:
                n = min(batch, CLIPS - done)
                net(mixtures[:n], conditions[:n])
                done += n
            torch.cuda.synchronize()
            seconds = time.perf_counter() - t0
        peak = torch.cuda.max_memory_allocated() / 2 ** 30
        name = "fp32" if dtype == torch.float32 else "bf16 autocast"
        lines.append(f"GPU {torch.cuda.get_device_name()} {name}: {CLIPS} clips of 10 s in {seconds:.1f} s = "
                     f"{CLIPS / seconds:.1f} clips/s (real-time factor {CLIPS * SECONDS / seconds:.0f}x) at batch "
                     f"{batch}; peak allocated {peak:.2f} GiB")
    ref, low = outputs[torch.float32], outputs[torch.bfloat16]
    rel = float((low - ref).norm() / ref.norm())
    lines.append(f"bf16 vs fp32 estimates: relative L2 difference {rel:.2e} (fp32 is what lasskit separate runs)")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--cpu-worker":
        print(json.dumps(cpu_worker(int(sys.argv[2]))))
        return
    import torch

    from lasskit.models.resunet import ResUNet30

    params = sum(p.numel() for p in ResUNet30().parameters())
    print(f"ResUNet30: {params / 1e6:.2f} M parameters, {SECONDS:g} s clips at {RATE} Hz; "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    ok = cpu_bench()
    print(text_bench())
    if torch.cuda.is_available():
        print(gpu_bench())
    else:
        print("GPU: none here, not measured (on a GPU machine this prints the 3000-clip throughput, peak memory "
              "and bf16 vs fp32)")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
