"""The split loop (:func:`separate_split`): check, build the model, scan the split against its
records, run the shared engine (each new output replacing its old one only once written) (:mod:`~lasskit.separation.batching`), record
what was written, describe the folder."""

from __future__ import annotations

import os
import stat
import time
from collections import Counter
from pathlib import Path
from typing import Any

from lasskit import SAMPLE_RATE, audio
from lasskit.atomic import remove_leftovers
from lasskit.errors import AudioError, LasskitError, UsageError, WorkError, os_error
from lasskit.provenance import DIGEST_CACHE_FILE, DigestCache, Ledger, text_digest
from lasskit.separation.batching import (
    MEMORY_FRACTION,
    Runner,
    default_jobs,
    load_batch,
    memory_budget,
    plan_batches,
    run_batches,
)
from lasskit.separation.chunking import DEFAULT_CHUNK_OVERLAP, chunk_starts, chunk_weights
from lasskit.separation.engine import DEFAULT_BATCH_SIZE, DEVICES, resolve_device, separate_tensor
from lasskit.separation.model import build_model, check_run_options
from lasskit.separation.outputs import Item, _write_outputs, expected_length, is_complete_output
from lasskit.separation.records import (
    LEDGER_SAVE_SECONDS,
    SeparationReport,
    SeparationStopped,
    StopRun,
    describe_outputs,
    finish_run,
    why_made,
)

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
            reason = "overwrite requested" if overwrite else why_made(ledger, name, output, digest, settings,
                                                                      reference_digest, str(row["query"]))
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
    from lasskit.splits import read_split
    from lasskit.workspace import Workspace

    started = time.perf_counter()
    check_run_options(batch_size, chunk_seconds, chunk_overlap, jobs)
    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    split_obj = read_split(resolve_split_dir(split, ws))  # a wrong split is said before torch loads
    device = resolve_device(device)
    from lasskit.separation.distributed import env_shard, init_group

    shard = env_shard()  # under torchrun/srun or --devices N: this process's rank (distributed.py)
    if shard is not None:
        device = init_group(shard, device)
    run_model = build_model(model, device=device, checkpoint=checkpoint, options=options, name=name,
                            chunk_seconds=chunk_seconds)
    if run_model.needs_reference and not split_obj.has_references:
        raise UsageError(f"model {run_model.name} needs references but split {split_obj.name} has no source column "
                         f"({split_obj.csv_path}); use a split made by `lasskit mix` or val_synth")
    out_dir = _make_out_dir(Path(out_dir) if out_dir is not None else ws.output_dir(run_model.name, split_obj.name))

    report = SeparationReport(run_model.name, split_obj.name, out_dir, device, len(split_obj), run_model.model_name)
    report.settings = run_model.settings(chunk_overlap)
    report.rate_note = getattr(run_model.model, "rate_note", None)
    if shard is None:
        report.removed_leftovers = remove_leftovers(out_dir, recursive=False)
        ledger = Ledger(out_dir)
        digests = DigestCache(out_dir / DIGEST_CACHE_FILE)
        current: set[str] = set()
        pending = _scan_split(split_obj, out_dir, run_model.needs_reference, overwrite, ledger, digests, current,
                              report)
        # nothing is removed before the model runs: each new output replaces its old one (and its
        # record) only once written, so a run that fails midway leaves every row old or new, never gone
    else:
        ledger, digests, current, pending = _prepare_ranks(shard, split_obj, out_dir, run_model.needs_reference,
                                                           overwrite, report)

    budget = memory_budget(run_model.model, device)
    if budget is not None and shard is not None and not str(device).startswith("cuda"):
        budget //= shard.local_world  # CPU ranks share this machine's memory
    runner = Runner(run_model.model, run_model.label, device, batch_size, run_model.chunk_seconds, chunk_overlap,
                    budget)
    readers = default_jobs(device) if jobs is None else jobs
    stopped: BaseException | None = None
    records = ledger if shard is None else shard.rank_ledger(out_dir)  # a rank records in its own ledger
    try:
        _run(pending, runner, readers, out_dir, records, current, report, f"separate {split_obj.name} with {run_model.model_name or run_model.name}"
             + ("" if shard is None else f" (rank {shard.rank} of {shard.world})"),
             select=None if shard is None else shard.select)
    except StopRun:
        pass  # a write failed (report.stopped says why): finish the records of what was written
    except BaseException as exc:
        stopped = exc
    report.seconds = time.perf_counter() - started
    report.rate_note = getattr(run_model.model, "rate_note", None)  # again: a model may add what it counted
    ranks = None
    if shard is not None:
        try:
            records.save()
        except OSError:
            pass  # a full disk: the outputs are redone by the next run
        if stopped is not None and not isinstance(stopped, LasskitError):
            raise stopped  # Ctrl-C, SIGTERM: what this rank wrote is in its ledger; the next run merges it
        ranks = _merge_ranks(shard, out_dir, ledger, current, report, stopped)
    report.failures.sort()
    report.silent.sort()
    if shard is not None and not shard.lead:
        if stopped is not None:
            raise stopped
        return report  # rank 0 writes provenance.json, separate.json and failures.csv
    kept = _kept_outputs(pending, out_dir, ledger, current, report)
    if stopped is None and report.stopped is None:
        _remove_gone_rows(split_obj, out_dir, ledger, report)  # only a finished run removes anything
    report.record = describe_outputs(report, ledger, list(split_obj.frame["mixture"]), current, run_model.model,
                                     run_model.checkpoint, batch_size, readers, stopped, kept)
    if ranks is not None:
        report.record["ranks"] = ranks
    finish_run(out_dir, report, ledger, digests, quiet=stopped is not None or report.stopped is not None)
    if stopped is not None:
        raise stopped
    if report.stopped is not None:
        raise SeparationStopped(report.stopped, report)
    return report


def _make_out_dir(out_dir: Path) -> Path:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise os_error(exc, out_dir) from None
    return out_dir


def _scan_split(split_obj, out_dir: Path, needs_reference: bool, overwrite: bool, ledger: Ledger,
                digests: DigestCache, current: set[str], report: SeparationReport) -> list[Item]:
    """The rows to (re)make, with the report's skipped count, scan failures and reasons filled in;
    the digest cache is saved at once, so that even a killed run need not hash the mixtures again."""
    pending, failures, report.skipped = _scan(split_obj, out_dir, needs_reference, overwrite, ledger, digests,
                                              report.settings, current, report.converted)
    report.failures.extend(failures)
    report.reasons = Counter(it.reason for it in pending)
    try:
        digests.save()
    except OSError:
        pass  # a full disk: it only costs hashing again; the run itself says what failed
    return pending


def _kept_outputs(pending: list[Item], out_dir: Path, ledger: Ledger, current: set[str],
                  report: SeparationReport) -> set[str]:
    """Rows this run was to remake but did not (it stopped, or the row failed) whose old output is
    still there, exactly as its record describes it (size and mtime): kept, and described in
    ``separate.json`` with the settings that made them."""
    failed = {name for name, _ in report.failures}
    kept = set()
    for item in pending:
        if item.name in current or item.name in failed:
            continue
        rec = ledger.get(item.name)
        if rec is None:
            continue
        try:
            st = os.stat(out_dir / item.name)
        except OSError:
            continue
        if st.st_size == rec.size and st.st_mtime_ns == rec.mtime_ns:
            kept.add(item.name)
    return kept


def _remove_gone_rows(split_obj, out_dir: Path, ledger: Ledger, report: SeparationReport) -> None:
    """Outputs this folder's ledger records for rows the split no longer has (``mix --overwrite``
    made it smaller, a row was removed) are removed and counted: the folder holds outputs of the
    split's rows only. Audio files no record describes are left alone (not made by separate)."""
    rows = set(split_obj.frame["mixture"])
    for name in sorted(n for n in ledger.records if n not in rows):
        gone = out_dir / name
        ledger.forget(name)
        try:
            if gone.is_file() or gone.is_symlink():
                gone.unlink()
        except OSError as exc:
            raise os_error(exc, gone) from None
        report.removed_rows.append(name)


def _prepare_ranks(shard, split_obj, out_dir: Path, needs_reference: bool, overwrite: bool, report: SeparationReport):
    """Several ranks: rank 0 folds in the rank ledgers a killed run left, removes leftovers and
    hashes the mixtures; then every rank scans (the same pending rows; nothing is removed)."""
    from lasskit.separation.distributed import merge_rank_ledgers

    failure = None
    if shard.lead:
        try:
            report.removed_leftovers = remove_leftovers(out_dir, recursive=False)
            ledger = Ledger(out_dir)
            merge_rank_ledgers(out_dir, ledger)
            digests = DigestCache(out_dir / DIGEST_CACHE_FILE)
            current: set[str] = set()
            pending = _scan_split(split_obj, out_dir, needs_reference, overwrite, ledger, digests, current, report)
            ledger.save()
        except LasskitError as exc:
            failure = exc
    # the others wait for rank 0's scan, or for its one-line error, which stops them too (under srun a
    # rank that exits does not stop the others: they would wait at the barrier for the group's timeout)
    said = shard.from_lead(None if failure is None else (isinstance(failure, UsageError), str(failure)))
    if failure is not None:
        raise failure
    if said is not None:
        raise (UsageError if said[0] else WorkError)(f"rank 0 stopped: {said[1]}")
    if not shard.lead:
        ledger = Ledger(out_dir)
        digests = DigestCache(out_dir / DIGEST_CACHE_FILE)
        current = set()
        mine = SeparationReport(report.model, report.split, out_dir, report.device, report.total)
        mine.settings = report.settings
        pending = _scan_split(split_obj, out_dir, needs_reference, overwrite, ledger, digests, current, mine)
        report.skipped = mine.skipped
    shard.barrier()  # nobody writes before every rank has scanned
    return ledger, digests, current, pending


def _merge_ranks(shard, out_dir: Path, ledger: Ledger, current: set[str], report: SeparationReport,
                 stopped: BaseException | None) -> list[dict]:
    """Every rank's summary to every rank; rank 0 merges the rank ledgers and the counts."""
    from lasskit.separation.distributed import merge_rank_ledgers

    mine = {"rank": shard.rank, "device": report.device, "written": report.written,
            "failed": len(report.failures), "seconds": round(report.seconds, 3),
            "audio_seconds": round(report.audio_seconds, 3), "stopped": report.stopped or (
                None if stopped is None else (str(stopped) if isinstance(stopped, LasskitError)
                                              else type(stopped).__name__)),
            "_failures": report.failures, "_silent": report.silent, "_chunked": report.chunked,
            "_model_seconds": report.model_seconds}
    finished = time.perf_counter()
    everyone = shard.gather(mine)  # every rank has saved its ledger when it gets here
    if shard.lead:
        current.update(merge_rank_ledgers(out_dir, ledger))
        report.seconds = max(r["seconds"] for r in everyone) + (time.perf_counter() - finished)
        for other in everyone[1:]:
            report.written += other["written"]
            report.failures.extend(other["_failures"])
            report.silent.extend(other["_silent"])
            report.chunked.extend(other["_chunked"])
            report.audio_seconds += other["audio_seconds"]
            report.model_seconds += other["_model_seconds"]
            if report.stopped is None and other["stopped"]:
                report.stopped = other["stopped"]
    return [{k: v for k, v in r.items() if not k.startswith("_")} for r in everyone]


def _run(pending: list[Item], runner: Runner, readers: int, out_dir: Path, ledger: Ledger, current: set[str],
         report: SeparationReport, title: str, select=None) -> None:
    """Separate ``pending`` with the shared engine, recording each written output in the ledger
    (saved every :data:`LEDGER_SAVE_SECONDS`); raises :class:`StopRun` when a write failed.
    ``select``: the batches this process does (a rank's share, :mod:`lasskit.separation.distributed`)."""
    from lasskit.parallel import progress_bar

    batches = plan_batches(pending, runner.batch_size, runner.padding_invariant)
    if select is not None:
        batches = select(batches)
        pending = [item for batch in batches for item in batch]
    settings = report.settings
    last_save = time.monotonic()

    with progress_bar(len(pending), title, "mixture") as bar:
        def written(done, memory_notes: dict[str, str]) -> None:
            nonlocal last_save
            for item in done.items:
                extra = {"query": text_digest(item.query)}  # a per-row input: part of what made it
                if item.reference_digest is not None:
                    extra["reference"] = item.reference_digest
                if item.name in memory_notes:
                    extra["chunked_for_memory"] = memory_notes[item.name]
                ledger.record(item.name, out_dir / item.name, item.digest, settings, extra)
                current.add(item.name)
            report.silent.extend(done.silent)
            report.written += len(done.items)
            bar.update(len(done.items))
            if done.error is not None:
                item, exc = done.error
                error = os_error(exc, out_dir / item.name)
                report.failures.append((item.name, str(error)))
                report.stopped = str(error)
                raise StopRun
            if time.monotonic() - last_save > LEDGER_SAVE_SECONDS:
                ledger.save()
                last_save = time.monotonic()

        def failed(failures: list[tuple[str, str]]) -> None:
            report.failures.extend(failures)
            bar.update(len(failures))

        try:
            run_batches(batches, runner, readers=readers, load=load_batch,
                        write=lambda items, estimates: _write_outputs(out_dir, items, estimates),
                        written=written, failed=failed)
        finally:
            report.model_seconds += runner.model_seconds
            report.audio_seconds += runner.audio_seconds
            report.chunked.extend(runner.chunked)


__all__ = [
    "DEVICES", "MEMORY_FRACTION", "Item", "SeparationReport", "SeparationStopped", "chunk_starts", "chunk_weights",
    "expected_length", "is_complete_output", "plan_batches", "resolve_device", "resolve_split_dir", "separate_split",
    "separate_tensor",
]
