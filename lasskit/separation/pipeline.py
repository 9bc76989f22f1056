"""The split-level pipeline (:func:`separate_split`): scan, batch, decode ahead, run, write, record."""

from __future__ import annotations

import json
import os
import stat
import time
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lasskit import SAMPLE_RATE, __version__, audio
from lasskit.atomic import remove_leftovers, write_text_if_changed
from lasskit.errors import AudioError, LasskitError, UsageError, WorkError, os_error
from lasskit.provenance import DIGEST_CACHE_FILE, LEDGER_FILE, DigestCache, Ledger, settings_id, summarize_reasons
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
    is_complete_output,
)


@dataclass
class SeparationReport:
    """What a run did: counts, why rows were (re)made, failures ``(mixture, reason)``, silent
    outputs, clips chunked for memory ``(mixture, note)`` and timing (s)."""

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
    reasons: Counter = field(default_factory=Counter)
    chunked: list[tuple[str, str]] = field(default_factory=list)
    converted: list[tuple[str, str]] = field(default_factory=list)
    """Mixtures separated now that were not 16 kHz mono ``(mixture, "44100 Hz, 2 channels")``:
    resampled and averaged before the model saw them (the output is 16 kHz mono)."""
    removed_stale: int = 0
    removed_leftovers: int = 0
    settings: dict = field(default_factory=dict)
    stopped: str | None = None
    """Why the run stopped early (an output could not be written: a full disk, a permission); the
    rows written before are kept and recorded, a re-run makes the rest."""

    @property
    def speed(self) -> float:
        """Mixtures written per second of wall time."""
        return self.written / self.seconds if self.seconds > 0 else 0.0

    @property
    def real_time_factor(self) -> float:
        """Seconds of audio separated per second of wall time."""
        return self.audio_seconds / self.seconds if self.seconds > 0 else 0.0

    @property
    def redone(self) -> str:
        """``"made 12 of 3000: input changed 12"`` (empty when nothing was made)."""
        return summarize_reasons(self.reasons, self.total)


def _why(ledger: Ledger, name: str, output: Path, digest: str, settings: dict,
         reference_digest: str | None) -> str | None:
    """Why an output must be made (None: it is current): the ledger's reason, refined."""
    reason = ledger.check(name, output, digest, settings)
    if reason == "new" and output.exists():
        return "no record of what made it"
    if reason is None and reference_digest is not None:
        extra = ledger.get(name).extra or {}
        if extra.get("reference") != reference_digest:
            return "reference changed"
    return reason


def _scan(split, out_dir: Path, needs_reference: bool, overwrite: bool, ledger: Ledger, digests: DigestCache,
          settings: dict, current: set[str], converted: list | None = None):
    """Pending items (with why), skipped count and per-row failures.

    An output is current when its record matches the mixture's content digest (a ``stat`` per
    file when the digest cache knows it) and the settings; only the rows to (re)make have their
    header read.
    """
    pending, failures, skipped = [], [], 0
    for index, row in enumerate(split.frame.to_dict("records")):
        name = row["mixture"]
        mixture_path = split.mixture_path(name)
        output = out_dir / name
        try:
            if Path(name).suffix.lower() != ".wav":
                raise AudioError(f"{mixture_path}: outputs are WAV files named like their mixture, so a mixture must "
                                 "be a .wav file; convert the split's mixtures to WAV (lasskit prepare folder)")
            try:
                st = os.stat(mixture_path)
            except FileNotFoundError:
                raise AudioError(f"{mixture_path}: no such mixture file; re-create the split or remove the row") from None
            except OSError as exc:
                raise AudioError(str(os_error(exc, mixture_path))) from None
            if not stat.S_ISREG(st.st_mode):
                raise AudioError(f"{mixture_path}: not a file; re-create the split or remove the row")
            digest = digests.digest(mixture_path, st)
            reference_path, reference_digest = None, None
            if needs_reference:
                reference_path = split.root / row["source"]
                if not reference_path.is_file():
                    raise AudioError(f"{reference_path}: no such reference file; re-create the split")
                reference_digest = digests.digest(reference_path)
            reason = "overwrite requested" if overwrite else _why(ledger, name, output, digest, settings,
                                                                   reference_digest)
            if reason is None:
                skipped += 1
                current.add(name)
                continue
            head = audio.info(mixture_path)
            if head.num_samples <= 0:
                raise AudioError(f"{mixture_path}: empty audio file")
            if converted is not None and (head.sample_rate != SAMPLE_RATE or head.channels != 1):
                converted.append((name, f"{head.sample_rate} Hz, {head.channels} channel(s)"))
        except AudioError as exc:
            failures.append((name, str(exc)))
            continue
        except OSError as exc:
            failures.append((name, str(os_error(exc, mixture_path))))
            continue
        pending.append(Item(index, name, row["query"], mixture_path, reference_path,
                            expected_length(head.num_samples, head.sample_rate), digest, reference_digest, reason))
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


def _equal_length_groups(indices: list[int], lengths: list[int]) -> list[list[int]]:
    groups: dict[int, list[int]] = {}
    for i in indices:
        groups.setdefault(lengths[i], []).append(i)
    return list(groups.values())


class _Runner:
    """Runs the model on decoded rows: equal-length groups, memory limits, chunking, checks."""

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

    def _row_bytes(self, samples: int) -> float:
        return samples * self.rate / SAMPLE_RATE * (self.bytes_per_sample or 0.0)

    def run(self, items: list[Item], mixtures: list[np.ndarray], references, chunked: list[tuple[str, str]]):
        """One estimate (float32 numpy, the row's length) per item, in order."""
        lengths = [len(x) for x in mixtures]
        every = list(range(len(items)))
        groups = [every] if self.padding_invariant else _equal_length_groups(every, lengths)
        out: list[np.ndarray | None] = [None] * len(items)
        for group in groups:
            rows_per_call, chunk, windows_per_call = len(group), self.chunk_seconds, self.batch_size
            if self.budget is not None and self.bytes_per_sample:
                need = self._row_bytes(max(lengths[i] for i in group))
                if need * rows_per_call > self.budget:
                    rows_per_call = max(1, int(self.budget // need)) if need <= self.budget else 1
                if need > self.budget:
                    fit = int(self.budget / self.bytes_per_sample / self.rate)  # whole seconds that fit
                    if fit < 1:
                        raise WorkError(f"{items[group[0]].mixture_path}: not enough free memory for even 1 s of "
                                        f"model {self.label} ({self.budget / 2**30:.1f} GiB free); free memory or "
                                        "use a machine with more")
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
    thread; default :func:`default_jobs`). Only the outputs whose record (``provenance.json``) does
    not match the current mixture and settings are (re)made; ``overwrite`` remakes all. Per-row
    failures are returned (and written to ``failures.csv``), not raised; a model that returns a
    wrong shape or NaN raises :class:`WorkError`, an output that cannot be written (a full disk)
    :class:`SeparationStopped` (a WorkError carrying the report).
    """
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
    if jobs is not None and jobs < 0:
        raise UsageError(f"--jobs {jobs}: must be 0 (decode in the main thread) or more")
    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    split_obj = read_split(resolve_split_dir(split, ws))  # a wrong split is said before torch loads
    import torch

    device = resolve_device(device)

    options = dict(options or {})
    if checkpoint is not None and Path(checkpoint).expanduser().exists():
        checkpoint = Path(checkpoint).expanduser().resolve()
    if isinstance(model, str):
        cls, default = registry.resolve(model)
        model_obj = registry.build(cls, model, None if checkpoint is None else str(checkpoint), device, options)
    else:
        model_obj = model
        registry.check_model_class(type(model_obj), type(model_obj).__name__)
        default = registry.default_name(type(model_obj))
        options = options or dict(getattr(model_obj, "options", {}) or {})
    model_class = f"{type(model_obj).__module__}:{type(model_obj).__qualname__}"
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
    if isinstance(model_obj, torch.nn.Module):
        model_obj.eval()
    if str(device).startswith("cpu"):
        from lasskit.models.memory import keep_freed_memory

        keep_freed_memory()

    out_dir = Path(out_dir) if out_dir is not None else ws.output_dir(out_name, split_obj.name)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise os_error(exc, out_dir) from None
    report = SeparationReport(out_name, split_obj.name, out_dir, device, len(split_obj))
    report.removed_leftovers = remove_leftovers(out_dir, recursive=False)
    checkpoint_used = getattr(model_obj, "checkpoint", None)
    settings = {
        "model": model_class,
        "checkpoint_sha256": _checkpoint_sha256(model_obj, checkpoint_used),
        "options": _json_safe(options),
        "model_sample_rate": int(getattr(model_obj, "sample_rate", SAMPLE_RATE) or SAMPLE_RATE),
        "chunk_seconds": chunk_seconds,
        "chunk_overlap": chunk_overlap if chunk_seconds else None,
        "lasskit_version": __version__,
    }
    report.settings = settings
    ledger = Ledger(out_dir)
    digests = DigestCache(out_dir / DIGEST_CACHE_FILE)
    current: set[str] = set()
    pending, failures, report.skipped = _scan(split_obj, out_dir, needs_reference, overwrite, ledger, digests,
                                              settings, current, report.converted)
    report.failures.extend(failures)
    report.reasons = Counter(it.reason for it in pending)
    try:
        digests.save()  # now, so that even a killed run need not hash the mixtures again
    except OSError:
        pass  # a full disk: it only costs hashing again; the run itself says what failed
    # an output that is not current is removed now: the folder never holds an output that its
    # record does not describe, even if this run stops early
    for item in pending:
        ledger.forget(item.name)
        stale = out_dir / item.name
        try:
            if stale.is_file() or stale.is_symlink():
                stale.unlink()
                report.removed_stale += 1
        except OSError as exc:
            raise os_error(exc, stale) from None

    padding_invariant = bool(getattr(model_obj, "padding_invariant", False))
    batches = plan_batches(pending, batch_size, padding_invariant)
    from lasskit.models.memory import available_bytes

    free = available_bytes(device) if getattr(model_obj, "bytes_per_sample", None) else None
    runner = _Runner(model_obj, label, device, batch_size, chunk_seconds, chunk_overlap,
                     None if free is None else int(free * MEMORY_FRACTION))

    from lasskit.parallel import progress_bar

    readers = default_jobs(device) if jobs is None else jobs
    stopped: BaseException | None = None
    last_save = time.monotonic()
    try:
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
                nonlocal last_save
                while len(writes) > limit:
                    memory_notes, future = writes.popleft()
                    done = future.result()
                    for item in done.items:
                        extra = {}
                        if item.reference_digest is not None:
                            extra["reference"] = item.reference_digest
                        if item.name in memory_notes:
                            extra["chunked_for_memory"] = memory_notes[item.name]
                        ledger.record(item.name, out_dir / item.name, item.digest, settings, extra or None)
                        current.add(item.name)
                    report.silent.extend(done.silent)
                    report.written += len(done.items)
                    bar.update(len(done.items))
                    if done.error is not None:
                        item, exc = done.error
                        error = os_error(exc, out_dir / item.name)
                        report.failures.append((item.name, str(error)))
                        report.stopped = str(error)
                        raise _Stop
                if time.monotonic() - last_save > LEDGER_SAVE_SECONDS:
                    ledger.save()
                    last_save = time.monotonic()

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
                    notes: list[tuple[str, str]] = []
                    with torch.inference_mode():
                        estimates = runner.run(items, mixtures, references, notes)
                    report.chunked.extend(notes)
                    report.model_seconds += time.perf_counter() - t0
                    report.audio_seconds += sum(it.num_samples for it in items) / SAMPLE_RATE
                    writes.append((dict(notes), writer.submit(_write_outputs, out_dir, items, estimates)))
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
    except _Stop:
        pass  # a write failed (report.stopped says why): finish the records of what was written
    except BaseException as exc:
        stopped = exc
    report.seconds = time.perf_counter() - started
    report.failures.sort()
    report.silent.sort()
    report.record = _describe(report, ledger, split_obj, current, model_obj, checkpoint_used, batch_size,
                              readers, stopped)
    _finish(out_dir, report, ledger, digests, quiet=stopped is not None or report.stopped is not None)
    if stopped is not None:
        raise stopped
    if report.stopped is not None:
        raise SeparationStopped(report.stopped, report)
    return report


class SeparationStopped(WorkError):
    """An output could not be written (a full disk, a permission): the run stopped early.

    The message names the file and the fix; ``report`` is the run's :class:`SeparationReport`
    (what was written and recorded, the failed row). Run the same command again to finish.
    """

    def __init__(self, message: str, report: SeparationReport):
        super().__init__(message)
        self.report = report


class _Stop(Exception):
    """Internal: an output could not be written; stop reading and running, keep what is done."""


MEMORY_FRACTION = 0.8
"""Share of the free memory (at the start of a run) one model call may take."""
LEDGER_SAVE_SECONDS = 2.0
"""The ledger is saved at least this often during a run (a killed run loses at most that much)."""


def _checkpoint_sha256(model_obj, checkpoint_used) -> str | None:
    value = getattr(model_obj, "checkpoint_sha256", None)
    if value:
        return str(value)
    if checkpoint_used is None or not Path(checkpoint_used).is_file():
        return None
    from lasskit.weights import sha256_cached

    return sha256_cached(checkpoint_used)


def _describe(report: SeparationReport, ledger: Ledger, split_obj, current: set[str], model_obj, checkpoint_used,
              batch_size: int, jobs: int, stopped: BaseException | None) -> dict:
    """``separate.json``: the outputs in the folder (grouped by the settings that made them) and this run."""
    names = [n for n in split_obj.frame["mixture"] if n in current and ledger.get(n) is not None]
    groups = ledger.settings_in_use(names)
    made_with = [{"outputs": n, "settings_id": sid, **(ledger.settings.get(sid) or {})}
                 for sid, n in sorted(groups.items(), key=lambda kv: (-kv[1], kv[0]))]
    consistent = len(made_with) <= 1
    mine = settings_id(report.settings)
    ours = consistent and (not made_with or made_with[0]["settings_id"] == mine)
    described = report.settings if ours else (made_with[0] if consistent else {})
    count_fn = getattr(model_obj, "num_parameters", None)
    if callable(count_fn):
        parameters = count_fn()
    else:
        from lasskit.models.base import count_parameters

        parameters = count_parameters(model_obj)
    chunked = sorted((n, (ledger.get(n).extra or {}).get("chunked_for_memory")) for n in names
                     if (ledger.get(n).extra or {}).get("chunked_for_memory"))
    record = {
        "model": report.model,
        "split": report.split,
        "count": len(names),
        "total": report.total,
        "complete": len(names) == report.total,
        "consistent": consistent,
        "options": described.get("options"),
        "checkpoint": (None if checkpoint_used is None else str(checkpoint_used)) if ours else None,
        "checkpoint_sha256": described.get("checkpoint_sha256"),
        "model_class": described.get("model"),
        "model_sample_rate": described.get("model_sample_rate"),
        "chunk_seconds": described.get("chunk_seconds"),
        "chunk_overlap": described.get("chunk_overlap"),
        "lasskit_version": described.get("lasskit_version", __version__),
        "parameters": parameters if ours else None,
        "sample_rate": SAMPLE_RATE,
        "made_with": made_with,
        "chunked_for_memory": [{"mixture": n, "note": note} for n, note in chunked],
        "provenance": LEDGER_FILE,
        "device": report.device,
        "batch_size": batch_size,
        "jobs": jobs,
        "seconds": round(report.seconds, 3),
        "written": report.written,
        "skipped": report.skipped,
        "made": dict(sorted(report.reasons.items())),
        "failed": len(report.failures),
        "silent": sorted(report.silent),
        "stopped": report.stopped if stopped is None else (
            str(stopped) if isinstance(stopped, LasskitError) else type(stopped).__name__),
    }
    if not consistent:
        record["warning"] = (f"the {len(names)} outputs were made with {len(made_with)} different settings "
                             "(see made_with); run separate again with --overwrite to make them all with one")
    return record


def _finish(out_dir: Path, report: SeparationReport, ledger: Ledger, digests: DigestCache, quiet: bool) -> None:
    """Write the ledger, the digest cache, failures.csv and separate.json; on a stopped run (a full
    disk, Ctrl-C) as far as the disk allows, without hiding why it stopped."""
    steps = (ledger.save, digests.save, lambda: _write_failures(out_dir, report.failures),
             lambda: write_text_if_changed(out_dir / SEPARATE_JSON,
                                           json.dumps(report.record, indent=2, ensure_ascii=False) + "\n"))
    for step in steps:
        try:
            step()
        except OSError as exc:
            if not quiet:
                raise os_error(exc, out_dir) from None


__all__ = [
    "DEVICES", "Item", "SeparationReport", "SeparationStopped", "chunk_starts", "chunk_weights", "expected_length",
    "is_complete_output", "plan_batches", "resolve_device", "resolve_split_dir", "separate_split",
    "separate_tensor",
]
