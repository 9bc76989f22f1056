"""What a separation run reports and leaves beside its outputs: the run's report, the stop on a
failed write, the reason an output is (re)made, ``separate.json`` (what the outputs in the folder
are) and the end-of-run writes (ledger, digest cache, failures.csv)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from lasskit import SAMPLE_RATE, __version__
from lasskit.atomic import write_text_if_changed
from lasskit.errors import LasskitError, WorkError, os_error
from lasskit.provenance import LEDGER_FILE, DigestCache, Ledger, settings_id, summarize_reasons, text_digest
from lasskit.separation.outputs import SEPARATE_JSON, _write_failures

LEDGER_SAVE_SECONDS = 2.0
"""The ledger is saved at least this often during a run (a killed run loses at most that much)."""


@dataclass
class SeparationReport:
    """What a run did: counts, why rows were (re)made, failures ``(mixture, reason)``, silent
    outputs, clips chunked for memory ``(mixture, note)`` and timing (s)."""

    model: str
    split: str
    out_dir: Path
    device: str
    total: int
    model_name: str = ""
    """The model that made the outputs (its registered or class name), whatever folder ``model`` names."""
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
    removed_rows: list[str] = field(default_factory=list)
    """Outputs removed because their row left the split (``mix --overwrite`` made it smaller)."""
    removed_leftovers: int = 0
    rate_note: str | None = None
    """One line when the network runs at another rate than 16 kHz (the zoo's 32 kHz models): the
    mixtures were resampled to it and the estimates back, said once in the summary."""
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


def why_made(ledger: Ledger, name: str, output: Path, digest: str, settings: dict,
             reference_digest: str | None, query: str | None = None) -> str | None:
    """Why an output must be made (None: it is current): the ledger's reason, refined. The
    row's other inputs count like the mixture: its reference (oracle models) and its query (every
    model takes it; recorded as :func:`lasskit.provenance.text_digest`, a record without one is
    from an older lasskit and is remade)."""
    reason = ledger.check(name, output, digest, settings)
    if reason == "new" and output.exists():
        return "no record of what made it"
    if reason is None:
        extra = ledger.get(name).extra or {}
        if reference_digest is not None and extra.get("reference") != reference_digest:
            return "reference changed"
        if query is not None and extra.get("query") != text_digest(query):
            return "query changed" if "query" in extra else "query not recorded (older lasskit)"
    return reason


class SeparationStopped(WorkError):
    """An output could not be written (a full disk, a permission): the run stopped early.

    The message names the file and the fix; ``report`` is the run's :class:`SeparationReport`
    (what was written and recorded, the failed row). Run the same command again to finish.
    """

    def __init__(self, message: str, report: SeparationReport):
        super().__init__(message)
        self.report = report


class StopRun(Exception):
    """Internal: an output could not be written; stop reading and running, keep what is done."""


def describe_outputs(report: SeparationReport, ledger: Ledger, rows: list[str], current: set[str], model_obj,
                     checkpoint_used, batch_size: int, jobs: int, stopped: BaseException | None,
                     kept: set[str] | None = None) -> dict:
    """``separate.json``: the outputs in the folder (grouped by the settings that made them) and this run.

    ``rows``: the output names of every row, in order; ``current``: those whose output is current;
    ``kept``: older outputs this run was to remake but did not (it stopped), left with their records."""
    kept = kept or set()
    names = [n for n in rows if (n in current or n in kept) and ledger.get(n) is not None]
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
        "model_name": report.model_name or report.model,
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
        "rate_note": report.rate_note if ours else None,
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
        "kept": len([n for n in names if n in kept]),
        "skipped": report.skipped,
        "made": dict(sorted(report.reasons.items())),
        "failed": len(report.failures),
        "removed_rows": len(report.removed_rows),
        "silent": sorted(report.silent),
        "stopped": report.stopped if stopped is None else (
            str(stopped) if isinstance(stopped, LasskitError) else type(stopped).__name__),
    }
    if not consistent:
        record["warning"] = (f"the {len(names)} outputs were made with {len(made_with)} different settings "
                             "(see made_with); run separate again with --overwrite to make them all with one")
    return record


def finish_run(out_dir: Path, report: SeparationReport, ledger: Ledger, digests: DigestCache, quiet: bool) -> None:
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
