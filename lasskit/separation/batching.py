"""The separation engine on decoded rows, shared by every loop that separates files: batches of
equal length, decoding ahead in threads, the model runner (memory limits, long-audio windows) and
writing behind. A loop (a split's rows, a user's recordings) supplies the items, how to decode a
batch and what to do with each written batch."""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

import numpy as np

from lasskit import SAMPLE_RATE, audio
from lasskit.errors import AudioError, WorkError
from lasskit.separation.engine import separate_tensor
from lasskit.separation.outputs import Item, Written

MEMORY_FRACTION = 0.8
"""Share of the free memory (at the start of a run) one model call may take."""


def default_jobs(device: str) -> int:
    """Background threads by default: 2 (decode the next batches, write the last one). On a
    shared 2-core CPU, 0 and 2 were within noise of each other (bench_separate.py)."""
    return 2


def plan_batches(items: list[Item], batch_size: int, padding_invariant: bool) -> list[list[Item]]:
    """Batches of at most ``batch_size`` items, sorted by length; only items of equal length share a
    batch unless ``padding_invariant`` (then neighbours in length order are zero-padded together)."""
    ordered = sorted(items, key=lambda it: (it.num_samples, it.index))
    batches: list[list[Item]] = []
    for item in ordered:
        last = batches[-1] if batches else None
        if last is not None and len(last) < batch_size and (padding_invariant or last[0].num_samples == item.num_samples):
            last.append(item)
        else:
            batches.append([item])
    return batches


def load_batch(batch: list[Item]):
    """Decode a batch: (items, mixtures, references or None, failures)."""
    kept, mixtures, references, failures = [], [], [], []
    for item in batch:
        try:
            x = audio.load(item.mixture_path)
            r = None
            if item.reference_path is not None:
                r = audio.load(item.reference_path)
                if len(r) != len(x):
                    raise AudioError(f"{item.reference_path}: {len(r)} samples but the mixture has {len(x)}; "
                                     "re-create the split")
        except AudioError as exc:
            failures.append((item.name, str(exc)))
            continue
        except Exception as exc:  # decoding bugs of odd files are that row's failure, not the run's
            failures.append((item.name, f"{item.mixture_path}: {type(exc).__name__}: {exc}"))
            continue
        item.num_samples = len(x)
        kept.append(item)
        mixtures.append(x)
        references.append(r)
    return kept, mixtures, (references if batch and batch[0].reference_path is not None else None), failures


class _Inline:
    """An executor that runs each task at once in the calling thread (``jobs=0``)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def submit(self, fn, *args):
        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as exc:
            future.set_exception(exc)
        return future


def _stack(signals: list[np.ndarray]) -> np.ndarray:
    if len(signals) == 1:
        return signals[0][None, :]
    width = max(len(s) for s in signals)
    out = np.zeros((len(signals), width), dtype=np.float32)
    for i, s in enumerate(signals):
        out[i, : len(s)] = s
    return out


def _equal_length_groups(indices: list[int], lengths: list[int]) -> list[list[int]]:
    groups: dict[int, list[int]] = {}
    for i in indices:
        groups.setdefault(lengths[i], []).append(i)
    return list(groups.values())


class Runner:
    """Runs the model on decoded rows: equal-length groups, memory limits, chunking, checks.

    ``budget``: bytes one model call may take (None: no limit; see :func:`memory_budget`). Counts
    the seconds spent in the model, the seconds of audio it separated and the clips it chunked
    for memory (``chunked``: ``(name, note)``)."""

    def __init__(self, model, label: str, device: str, batch_size: int, chunk_seconds: float | None,
                 chunk_overlap: float, budget: int | None):
        self.model = model
        self.label = label
        self.device = device
        self.batch_size = batch_size
        self.chunk_seconds = chunk_seconds
        self.chunk_overlap = chunk_overlap
        self.budget = budget
        self.rate = int(getattr(model, "sample_rate", SAMPLE_RATE) or SAMPLE_RATE)
        self.padding_invariant = bool(getattr(model, "padding_invariant", False))
        per_sample = getattr(model, "bytes_per_sample", None)
        self.bytes_per_sample = float(per_sample) if per_sample else None
        self.model_seconds = 0.0
        self.audio_seconds = 0.0
        self.chunked: list[tuple[str, str]] = []

    def _row_bytes(self, samples: int) -> float:
        return samples * self.rate / SAMPLE_RATE * (self.bytes_per_sample or 0.0)

    def run(self, items: list[Item], mixtures: list[np.ndarray], references, chunked: list[tuple[str, str]]):
        """One estimate (float32 numpy, the row's length) per item, in order; clips separated in
        windows because one pass would not fit in memory are appended to ``chunked`` with a note."""
        import torch

        t0 = time.perf_counter()
        noted = len(chunked)
        lengths = [len(x) for x in mixtures]
        every = list(range(len(items)))
        groups = [every] if self.padding_invariant else _equal_length_groups(every, lengths)
        out: list[np.ndarray | None] = [None] * len(items)
        with torch.inference_mode():
            for group in groups:
                rows_per_call, chunk, windows_per_call = len(group), self.chunk_seconds, self.batch_size
                if self.budget is not None and self.bytes_per_sample:
                    need = self._row_bytes(max(lengths[i] for i in group))
                    if need * rows_per_call > self.budget:
                        rows_per_call = max(1, int(self.budget // need)) if need <= self.budget else 1
                    if need > self.budget:
                        fit = int(self.budget / self.bytes_per_sample / self.rate)  # whole seconds that fit
                        if fit < 1:
                            raise WorkError(f"{items[group[0]].mixture_path}: not enough free memory for even 1 s "
                                            f"of model {self.label} ({self.budget / 2**30:.1f} GiB free); free "
                                            "memory or use a machine with more")
                        chunk = float(fit) if chunk is None else min(chunk, float(fit))
                        windows_per_call = max(1, min(self.batch_size, int(self.budget // self._row_bytes(
                            int(chunk * SAMPLE_RATE)))))
                        for i in group:
                            chunked.append((items[i].name, f"{lengths[i] / SAMPLE_RATE:.0f} s clip needs about "
                                            f"{self._row_bytes(lengths[i]) / 2**30:.1f} GiB in one pass, "
                                            f"{self.budget / 2**30:.1f} GiB free: separated in windows of "
                                            f"{chunk:g} s (the estimate differs from a single pass)"))
                for start in range(0, len(group), rows_per_call):
                    part = group[start:start + rows_per_call]
                    self._call(part, items, mixtures, references, chunk, windows_per_call, out)
        self.model_seconds += time.perf_counter() - t0
        self.chunked.extend(chunked[noted:])
        self.audio_seconds += sum(it.num_samples for it in items) / SAMPLE_RATE
        return out

    def _call(self, part, items, mixtures, references, chunk, windows_per_call, out) -> None:
        import torch

        rows = [items[i] for i in part]
        x = torch.from_numpy(_stack([mixtures[i] for i in part])).to(self.device)
        r = None
        if references is not None:
            r = torch.from_numpy(_stack([references[i] for i in part])).to(self.device)
        y = separate_tensor(self.model, x, [it.query for it in rows], references=r,
                            names=[it.name for it in rows], label=self.label, batch_size=windows_per_call,
                            chunk_seconds=chunk, chunk_overlap=self.chunk_overlap)
        estimates = y.cpu().numpy()
        for k, i in enumerate(part):
            out[i] = estimates[k, : len(mixtures[i])]


def memory_budget(model, device: str) -> int | None:
    """Bytes one model call may take: :data:`MEMORY_FRACTION` of the memory free now, for a model
    that declares ``bytes_per_sample`` (None otherwise: no limit)."""
    if not getattr(model, "bytes_per_sample", None):
        return None
    from lasskit.models.memory import available_bytes

    return int(available_bytes(device) * MEMORY_FRACTION)


def run_batches(batches: list[list[Item]], runner: Runner, *, readers: int,
                load: Callable[[list[Item]], tuple] = load_batch,
                write: Callable[[list[Item], list[np.ndarray]], Written],
                written: Callable[[Written, dict[str, str]], None],
                failed: Callable[[list[tuple[str, str]]], None]) -> None:
    """Decode ahead, run, write behind: ``readers`` threads decode the next batches with ``load``
    while ``runner`` runs the model, one more thread writes each batch's estimates with ``write``
    (``readers=0``: everything in this thread, in order). ``written(done, memory_notes)`` is called
    in this thread for each finished write, in batch order (it may raise to stop the run: the
    writes already handed over are finished and reported first); ``failed`` gets each batch's
    decoding failures ``(name, reason)``."""
    with (ThreadPoolExecutor(readers, thread_name_prefix="lasskit-read") if readers else _Inline()) as reader, \
            (ThreadPoolExecutor(1, thread_name_prefix="lasskit-write") if readers else _Inline()) as writer:
        loads: deque = deque()
        writes: deque = deque()
        next_batch = 0

        def refill() -> None:
            nonlocal next_batch
            while next_batch < len(batches) and len(loads) < readers + 1:
                loads.append(reader.submit(load, batches[next_batch]))
                next_batch += 1

        def drain(limit: int) -> None:
            while len(writes) > limit:
                memory_notes, future = writes.popleft()
                written(future.result(), memory_notes)

        try:
            refill()
            while loads:
                items, mixtures, references, load_failures = loads.popleft().result()
                refill()
                failed(load_failures)
                if not items:
                    continue
                notes: list[tuple[str, str]] = []
                estimates = runner.run(items, mixtures, references, notes)
                writes.append((dict(notes), writer.submit(write, items, estimates)))
                drain(2)
            drain(0)
        except BaseException:
            for future in loads:
                future.cancel()
            try:  # outputs already handed to the writer are finished and recorded
                drain(0)
            except BaseException:  # noqa: BLE001 - the first reason to stop is the one reported
                pass
            raise
