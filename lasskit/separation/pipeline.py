"""The split-level pipeline (:func:`separate_split`): scan, batch, decode ahead, run, write, record."""

from __future__ import annotations

import json
import os
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lasskit import SAMPLE_RATE, __version__, audio
from lasskit.atomic import write_text
from lasskit.errors import AudioError, UsageError
from lasskit.separation.chunking import (
    DEFAULT_CHUNK_OVERLAP,
    chunk_starts,
    chunk_weights,
)
from lasskit.separation.engine import (
    DEFAULT_BATCH_SIZE,
    DEVICES,
    _model_label,
    resolve_device,
    separate_tensor,
)
from lasskit.separation.outputs import (
    SEPARATE_JSON,
    Item,
    _json_safe,
    _write_failures,
    _write_outputs,
    expected_length,
    file_sha256,
    is_complete_output,
)


@dataclass
class SeparationReport:
    """What a run did: counts, failures ``(mixture, reason)``, silent outputs and timing (s)."""

    model: str
    split: str
    out_dir: Path
    device: str
    total: int
    written: int = 0
    skipped: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    silent: list[str] = field(default_factory=list)
    seconds: float = 0.0
    model_seconds: float = 0.0
    audio_seconds: float = 0.0
    record: dict = field(default_factory=dict)

    @property
    def speed(self) -> float:
        """Mixtures written per second of wall time."""
        return self.written / self.seconds if self.seconds > 0 else 0.0

    @property
    def real_time_factor(self) -> float:
        """Seconds of audio separated per second of wall time."""
        return self.audio_seconds / self.seconds if self.seconds > 0 else 0.0


def _scan(split, out_dir: Path, needs_reference: bool, overwrite: bool):
    """Pending items, skipped count and per-row failures, from headers only."""
    pending, failures, skipped = [], [], 0
    for index, row in enumerate(split.frame.to_dict("records")):
        name = row["mixture"]
        mixture_path = split.mixture_path(name)
        try:
            if not mixture_path.is_file():
                raise AudioError(f"{mixture_path}: no such mixture file; re-create the split or remove the row")
            head = audio.info(mixture_path)
            if head.num_samples <= 0:
                raise AudioError(f"{mixture_path}: empty audio file")
            reference_path = None
            if needs_reference:
                reference_path = split.root / row["source"]
                if not reference_path.is_file():
                    raise AudioError(f"{reference_path}: no such reference file; re-create the split")
        except AudioError as exc:
            failures.append((name, str(exc)))
            continue
        item = Item(index, name, row["query"], mixture_path, reference_path,
                    expected_length(head.num_samples, head.sample_rate))
        if not overwrite and is_complete_output(out_dir / name, item.num_samples):
            skipped += 1
            continue
        pending.append(item)
    return pending, failures, skipped


def _load_batch(batch: list[Item]):
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


def default_jobs(device: str) -> int:
    """Background threads by default: 2 (decode the next batches, write the last one). On a
    shared 2-core CPU, 0 and 2 were within noise of each other (bench_separate.py)."""
    return 2


def _stack(signals: list[np.ndarray]) -> np.ndarray:
    if len(signals) == 1:
        return signals[0][None, :]
    width = max(len(s) for s in signals)
    out = np.zeros((len(signals), width), dtype=np.float32)
    for i, s in enumerate(signals):
        out[i, : len(s)] = s
    return out


def resolve_split_dir(split: str | os.PathLike, workspace=None) -> Path:
    """A split folder: ``split`` itself when it is a folder holding mixtures.csv, else
    ``<workspace>/data/splits/<split>``."""
    from lasskit.workspace import Workspace

    path = Path(split).expanduser()
    if (path / "mixtures.csv").is_file():
        return path
    if not isinstance(split, str) or "/" in split or "\\" in split:
        return path  # a path the user meant as a path: read_split names it in its error
    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    candidate = ws.split_dir(str(split))
    if not (candidate / "mixtures.csv").is_file():
        known = ws.splits()
        hint = f"known splits: {', '.join(known)}" if known else "none yet; create one with `lasskit prepare` or `lasskit mix`"
        raise UsageError(f"{candidate}: no such split ({hint})")
    return candidate


def separate_split(
    split: str | os.PathLike,
    model: Any = "passthrough",
    *,
    workspace=None,
    out_dir: str | os.PathLike | None = None,
    name: str | None = None,
    device: str = "auto",
    checkpoint: str | os.PathLike | None = None,
    options: dict[str, Any] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    chunk_seconds: float | None = None,
    chunk_overlap: float = DEFAULT_CHUNK_OVERLAP,
    overwrite: bool = False,
    jobs: int | None = None,
) -> SeparationReport:
    """Separate every mixture of ``split`` with ``model`` into ``exp/<name>/<split>/``.

    ``split`` is a split name under ``<workspace>/data/splits`` or a split folder. ``model`` is a
    registered name, ``module:Class``, ``path/to/file.py:Class`` (built with ``checkpoint``,
    ``device`` and ``options``) or an already-built model object. ``name`` (default: the
    registered name or the class's ``name``) is the output folder under ``exp/``. ``jobs``:
    threads decoding the next batches and writing outputs while the model runs (0: all in this
    thread; default :func:`default_jobs`). Per-row failures are returned (and written to
    ``failures.csv``), not raised; a model that returns a wrong shape or NaN raises
    :class:`WorkError`.
    """
    import torch

    from lasskit.models import registry
    from lasskit.splits import read_split
    from lasskit.workspace import Workspace

    started = time.perf_counter()
    if batch_size < 1:
        raise UsageError(f"--batch-size {batch_size}: must be at least 1")
    if not 0.0 <= chunk_overlap < 1.0:
        raise UsageError(f"--chunk-overlap {chunk_overlap}: must be in [0, 1)")
    if chunk_seconds is not None and chunk_seconds <= 0:
        raise UsageError(f"--chunk-seconds {chunk_seconds}: must be positive")
    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    split_obj = read_split(resolve_split_dir(split, ws))
    device = resolve_device(device)

    options = dict(options or {})
    if checkpoint is not None and Path(checkpoint).expanduser().exists():
        checkpoint = Path(checkpoint).expanduser().resolve()
    if isinstance(model, str):
        cls, default = registry.resolve(model)
        spec = model
        model_obj = registry.build(cls, spec, None if checkpoint is None else str(checkpoint), device, options)
    else:
        model_obj = model
        registry.check_model_class(type(model_obj), type(model_obj).__name__)
        default = registry.default_name(type(model_obj))
        spec = f"{type(model_obj).__module__}:{type(model_obj).__qualname__}"
        options = options or dict(getattr(model_obj, "options", {}) or {})
    out_name = registry.sanitize_name(name) if name else default
    if name and out_name != name:
        raise UsageError(f"--name {name!r}: use only lower-case letters, digits, '.', '_' and '-' (e.g. {out_name!r})")
    label = _model_label(model_obj, out_name)

    needs_reference = bool(getattr(model_obj, "needs_reference", False))
    if needs_reference and not split_obj.has_references:
        raise UsageError(f"model {out_name} needs references but split {split_obj.name} has no source column "
                         f"({split_obj.csv_path}); use a split made by `lasskit mix` or val_synth")
    max_seconds = getattr(model_obj, "max_seconds", None)
    if chunk_seconds is None:
        chunk_seconds = max_seconds
    elif max_seconds and chunk_seconds > max_seconds:
        raise UsageError(f"--chunk-seconds {chunk_seconds}: model {out_name} takes at most {max_seconds} s per call")

    out_dir = Path(out_dir) if out_dir is not None else ws.output_dir(out_name, split_obj.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = SeparationReport(out_name, split_obj.name, out_dir, device, len(split_obj))
    pending, failures, report.skipped = _scan(split_obj, out_dir, needs_reference, overwrite)
    report.failures.extend(failures)

    pending.sort(key=lambda it: (it.num_samples, it.index))
    batches = [pending[i:i + batch_size] for i in range(0, len(pending), batch_size)]
    if isinstance(model_obj, torch.nn.Module):
        model_obj.eval()

    from lasskit.parallel import progress_bar

    readers = default_jobs(device) if jobs is None else jobs
    with (ThreadPoolExecutor(readers, thread_name_prefix="lasskit-read") if readers else _Inline()) as reader, \
            (ThreadPoolExecutor(1, thread_name_prefix="lasskit-write") if readers else _Inline()) as writer, \
            progress_bar(len(pending), f"separate {split_obj.name} with {out_name}", "mixture") as bar:
        loads = deque()
        writes = deque()
        next_batch = 0

        def refill() -> None:
            nonlocal next_batch
            while next_batch < len(batches) and len(loads) < readers + 1:
                loads.append(reader.submit(_load_batch, batches[next_batch]))
                next_batch += 1

        def drain(limit: int) -> None:
            while len(writes) > limit:
                count, future = writes.popleft()
                report.silent.extend(future.result())
                report.written += count
                bar.update(count)

        try:
            refill()
            while loads:
                items, mixtures, references, load_failures = loads.popleft().result()
                refill()
                report.failures.extend(load_failures)
                bar.update(len(load_failures))
                if not items:
                    continue
                t0 = time.perf_counter()
                with torch.inference_mode():
                    x = torch.from_numpy(_stack(mixtures)).to(device)
                    r = torch.from_numpy(_stack(references)).to(device) if references is not None else None
                    y = separate_tensor(model_obj, x, [it.query for it in items], references=r,
                                        names=[it.name for it in items], label=label, batch_size=batch_size,
                                        chunk_seconds=chunk_seconds, chunk_overlap=chunk_overlap)
                    estimates = y.cpu().numpy()
                report.model_seconds += time.perf_counter() - t0
                report.audio_seconds += sum(it.num_samples for it in items) / SAMPLE_RATE
                writes.append((len(items), writer.submit(_write_outputs, out_dir, items, estimates)))
                drain(2)
            drain(0)
        except BaseException:
            for future in loads:
                future.cancel()
            raise
    report.seconds = time.perf_counter() - started

    report.failures.sort()
    report.silent.sort()
    _write_failures(out_dir, report.failures)
    checkpoint_used = getattr(model_obj, "checkpoint", None)
    count_fn = getattr(model_obj, "num_parameters", None)
    if callable(count_fn):
        parameters = count_fn()
    else:
        from lasskit.models.base import count_parameters

        parameters = count_parameters(model_obj)
    report.record = {
        "model": out_name,
        "split": split_obj.name,
        "options": _json_safe(options),
        "checkpoint": None if checkpoint_used is None else str(checkpoint_used),
        "checkpoint_sha256": getattr(model_obj, "checkpoint_sha256", None) or file_sha256(checkpoint_used),
        "device": device,
        "lasskit_version": __version__,
        "seconds": round(report.seconds, 3),
        "count": report.written + report.skipped,
        "parameters": parameters,
        "sample_rate": SAMPLE_RATE,
        "model_class": spec if ":" in spec else f"{type(model_obj).__module__}:{type(model_obj).__qualname__}",
        "model_sample_rate": int(getattr(model_obj, "sample_rate", SAMPLE_RATE) or SAMPLE_RATE),
        "batch_size": batch_size,
        "chunk_seconds": chunk_seconds,
        "chunk_overlap": chunk_overlap if chunk_seconds else None,
        "written": report.written,
        "skipped": report.skipped,
        "failed": len(report.failures),
        "silent": sorted(report.silent),
        "total": report.total,
    }
    write_text(out_dir / SEPARATE_JSON, json.dumps(report.record, indent=2, ensure_ascii=False) + "\n")
    return report


__all__ = [
    "DEVICES", "Item", "SeparationReport", "chunk_starts", "chunk_weights", "expected_length",
    "is_complete_output", "resolve_device", "resolve_split_dir", "separate_split", "separate_tensor",
]
