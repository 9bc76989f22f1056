"""Benchmark the training data path: `mixture_dataset` in a torch DataLoader against an organizers'-style loader.

Both read the same CLIPS generated 10 s 16 kHz mono clips and yield batches of BATCH (mixture,
reference) pairs of 10 s:

- lasskit: `lasskit.mixing.mixture_dataset` (class-disjoint pairs, crops on active windows,
  exact SNRs, clipping guard; clips scanned once, read from its activity cache after that) in
  `lasskit.mixing.torch_dataset.MixtureLoader` (what `lasskit train` uses: batches stacked into
  reusable shared-memory slots, workers that keep freed memory);
- reference: a plain torch DataLoader over the organizers' way (their training loader reads a random 10 s crop of each clip and
  their batch mixer mixes each crop with another crop of the batch at a random integer SNR, with
  no class check), written here in plain numpy/soundfile: per item one partial read; per batch,
  item i's noise is item i+1's crop scaled to the SNR, and the pair scaled down if it would clip.

Each is run with 0 (in the main process), 1 and 2 workers, warm, alternated, ROUNDS rounds,
timed from the first batch on (worker start-up excluded); medians and ranges of mixtures per
second are printed. Worker counts above the machine's free cores measure the machine, not the
loader: run it on a quiet machine. Goals (issue 18): lasskit at parity per
core with the reference (0 workers), and more workers never slower than fewer.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CLIPS = int(os.environ.get("BENCH_DL_CLIPS", "200"))
ITEMS = int(os.environ.get("BENCH_DL_ITEMS", "1024"))
ROUNDS = int(os.environ.get("BENCH_DL_ROUNDS", "3"))
BATCH = 16
SECONDS = 10.0
PARITY = 0.9  # lasskit per core at least this share of the reference
SR = 16000


def make_corpus(root: Path) -> Path:
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_mix import SECONDS as _s  # noqa: F401  (same corpus recipe as bench_mix)
    from bench_mix import make_corpus as mk

    return mk(root)


class ReferenceDataset:
    """A random 10 s crop of a clip per item (one partial read), seeded per index."""

    def __init__(self, paths: list[str], frames: list[int], seed: int = 0):
        self.paths, self.frames, self.seed = paths, frames, seed

    def __len__(self) -> int:
        return ITEMS

    def __getitem__(self, i: int):
        import soundfile as sf
        import torch

        rng = np.random.default_rng((self.seed, i))
        k = int(rng.integers(len(self.paths)))
        length = int(SECONDS * SR)
        start = int(rng.integers(max(1, self.frames[k] - length + 1)))
        x, _ = sf.read(self.paths[k], start=start, frames=length, dtype="float32", fill_value=0.0)
        return torch.from_numpy(x)


def reference_collate(items):
    """The batch mixer: item i + the next item's crop at a random integer SNR in [-15, 15] dB."""
    import torch

    s = torch.stack(items).double()
    n = torch.roll(s, 1, 0)
    snr = torch.randint(-15, 16, (len(items), 1)).double()
    es = (s ** 2).sum(1, keepdim=True)
    en = (n ** 2).sum(1, keepdim=True).clamp_min(1e-12)
    n = n * torch.sqrt(es / (en * 10 ** (snr / 10)))
    mix = s + n
    peak = mix.abs().amax(1, keepdim=True)
    scale = torch.where(peak > 1, 0.9 / peak, torch.ones_like(peak))
    return (mix * scale).float(), (s * scale).float()


def run(dataset, collate, workers: int) -> float:
    from torch.utils.data import DataLoader

    from lasskit.mixing.torch_dataset import MixtureLoader

    if collate is None:  # lasskit's own loader (what `lasskit train` uses)
        loader = MixtureLoader(dataset, batch_size=BATCH, workers=workers, prefetch=4)
    else:
        loader = DataLoader(dataset, batch_size=BATCH, num_workers=workers, collate_fn=collate, shuffle=False,
                            persistent_workers=False, prefetch_factor=4 if workers else None)
    start, count = None, 0
    for batch in loader:  # timed from the first batch: worker start-up is not the data path
        if start is None:
            start = time.perf_counter()
            continue
        count += len(batch[0])
    return count / (time.perf_counter() - start)


def main() -> None:
    import torch

    torch.set_num_threads(1)  # one core per process, as a DataLoader worker runs
    tmp = Path(tempfile.mkdtemp(prefix="bench_dl_"))
    try:
        manifest = make_corpus(tmp / "corpus")
        from lasskit.manifest import read_manifest
        from lasskit.mixing import MixSpec, mixture_dataset

        m = read_manifest(manifest)
        paths = [str(m.audio_path(c)) for c in m.clips]
        frames = [c.num_samples for c in m.clips]
        t0 = time.perf_counter()
        ours = mixture_dataset([manifest], MixSpec(-15, 15, num=ITEMS, seed=0), cache_dir=tmp / "cache")
        print(f"mixture_dataset over {CLIPS} clips: {time.perf_counter() - t0:.2f} s to plan (first scan)")
        t0 = time.perf_counter()
        ours = mixture_dataset([manifest], MixSpec(-15, 15, num=ITEMS, seed=0), cache_dir=tmp / "cache")
        print(f"  again (activity cache): {time.perf_counter() - t0:.2f} s")
        ref = ReferenceDataset(paths, frames)
        run(ours, None, 0)  # warm-up: page cache, imports
        run(ref, reference_collate, 0)
        results: dict[tuple[str, int], list[float]] = {}
        for _ in range(ROUNDS):
            for workers in (0, 1, 2):
                results.setdefault(("lasskit", workers), []).append(run(ours, None, workers))
                results.setdefault(("reference", workers), []).append(run(ref, reference_collate, workers))
        med = {k: statistics.median(v) for k, v in results.items()}
        for (name, workers), values in sorted(results.items()):
            print(f"{name:9s} workers={workers}: median {med[(name, workers)]:6.0f} mixtures/s "
                  f"(range {min(values):.0f}-{max(values):.0f}, {ROUNDS} rounds of {ITEMS})")
        parity = med[("lasskit", 0)] / med[("reference", 0)]
        monotone = med[("lasskit", 1)] >= 0.9 * med[("lasskit", 0)] and med[("lasskit", 2)] >= 0.95 * med[("lasskit", 1)]
        print(f"lasskit / reference per core (0 workers): {parity:.2f} (goal >= {PARITY})")
        print(f"more workers never slower (within 5-10 % noise): {'PASS' if monotone else 'FAIL'}")
        if parity < PARITY or not monotone:
            sys.exit(1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
