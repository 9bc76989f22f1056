"""Benchmark the dcase2024-baseline network (ResUNet30, 26.4 M parameters) on 10 s clips.

Random weights (the speed does not depend on them); no checkpoint or download needed.

- CPU: forward time of one batch of 10 s clips (batch 1 and BENCH_BASELINE_BATCH, default 4),
  the real-time factor (audio seconds per wall second) and the peak resident memory each run
  adds (measured in a fresh process per batch size);
- the text side: RoBERTa-base + projection with random weights on 12-token queries, batch 32,
  queries per second (skipped without transformers);
- GPU (when torch sees one): 3000 clips (BENCH_BASELINE_CLIPS) at batch 16, clips per second
  and peak allocated memory.

Torch uses its default thread count; numbers from a busy machine are noisy.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

RATE = 16000
SECONDS = 10.0
BATCH = int(os.environ.get("BENCH_BASELINE_BATCH", "4"))
CLIPS = int(os.environ.get("BENCH_BASELINE_CLIPS", "3000"))


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def network(device: str = "cpu"):
    import torch

    from lasskit.models.resunet import ResUNet30

    torch.manual_seed(0)
    return ResUNet30().eval().to(device)


def cpu_worker(batch: int) -> dict:
    """Run in a fresh process: forward timings and the peak memory the forward adds."""
    import torch

    net = network()
    mixtures = torch.randn(batch, 1, int(RATE * SECONDS)) * 0.1
    conditions = torch.nn.functional.normalize(torch.randn(batch, 512), dim=-1)
    before = peak_rss_mib()
    times = []
    with torch.inference_mode():
        for _ in range(2 if batch == 1 else 1):
            t0 = time.perf_counter()
            net(mixtures, conditions)
            times.append(time.perf_counter() - t0)
    return {"batch": batch, "seconds": min(times), "added_peak_mib": peak_rss_mib() - before,
            "threads": torch.get_num_threads()}


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
    ids = torch.randint(3, 50000, (32, 12))
    ids[:, 0], ids[:, -1] = 0, 2
    mask = torch.ones_like(ids)
    with torch.inference_mode():
        roberta(input_ids=ids[:2], attention_mask=mask[:2])
        t0 = time.perf_counter()
        projection(roberta(input_ids=ids, attention_mask=mask).pooler_output)
        seconds = time.perf_counter() - t0
    return f"text encoder (RoBERTa-base, CPU): {32 / seconds:.0f} queries/s at batch 32 (12 tokens), " \
           f"{seconds * 1000 / 32:.1f} ms per query; each distinct query is embedded once"


def gpu_bench() -> str:
    import torch

    device = "cuda"
    net = network(device)
    batch = 16
    mixtures = torch.randn(batch, 1, int(RATE * SECONDS), device=device) * 0.1
    conditions = torch.nn.functional.normalize(torch.randn(batch, 512, device=device), dim=-1)
    with torch.inference_mode():
        net(mixtures, conditions)
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
    return (f"GPU {torch.cuda.get_device_name()}: {CLIPS} clips of 10 s in {seconds:.1f} s = {CLIPS / seconds:.1f} clips/s "
            f"(real-time factor {CLIPS * SECONDS / seconds:.0f}x) at batch {batch}; peak allocated {peak:.2f} GiB")


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--cpu-worker":
        print(json.dumps(cpu_worker(int(sys.argv[2]))))
        return
    import torch

    from lasskit.models.resunet import ResUNet30

    params = sum(p.numel() for p in ResUNet30().parameters())
    print(f"ResUNet30: {params / 1e6:.2f} M parameters, {SECONDS:g} s clips at {RATE} Hz")
    rows = []
    for batch in sorted({1, BATCH}):
        out = subprocess.run([sys.executable, __file__, "--cpu-worker", str(batch)], capture_output=True, text=True,
                             check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    for r in rows:
        rtf = r["batch"] * SECONDS / r["seconds"]
        print(f"CPU ({r['threads']} threads) batch {r['batch']}: {r['seconds']:.2f} s per batch, "
              f"{r['seconds'] / r['batch']:.2f} s per clip, real-time factor {rtf:.1f}x, "
              f"peak memory +{r['added_peak_mib']:.0f} MiB ({r['added_peak_mib'] / r['batch']:.0f} MiB per clip)")
    if len(rows) == 2:
        print(f"batch {rows[1]['batch']} vs 1: {rows[0]['seconds'] * rows[1]['batch'] / rows[1]['seconds']:.2f}x "
              "clips per second")
    print(text_bench())
    if torch.cuda.is_available():
        print(gpu_bench())
    else:
        print("GPU: none here (set CUDA_VISIBLE_DEVICES on a GPU machine for the 3000-clip throughput)")


if __name__ == "__main__":
    main()
