"""``lasskit separate``: run a model over a split -> exp/<model>/<split>/<mixture file name>."""

from __future__ import annotations

from pathlib import Path

import typer

from lasskit.cli.common import console, print_failures, workspace


def separate(
    ctx: typer.Context,
    split: str = typer.Option(None, "--split", "-s", help="Split name under data/splits (or a split folder)."),
    model: str = typer.Option("passthrough", "--model", "-m",
                              help="Registered name (see `lasskit models`), module:Class or path/file.py:Class."),
    device: str = typer.Option("auto", "--device", help="auto (cuda if available), cpu, cuda or cuda:N."),
    checkpoint: Path = typer.Option(None, "--checkpoint", help="Weights file passed to the model."),
    option: list[str] = typer.Option(None, "--option", "-o", metavar="KEY=VALUE",
                                     help="Model option passed to its constructor (repeatable)."),
    tokenizer: Path = typer.Option(None, "--tokenizer", metavar="DIR",
                                   help="Tokenizer folder for the text encoder (dcase2024-baseline: roberta-base files)."),
    name: str = typer.Option(None, "--name", help="Output folder under exp/ (default: the model's name)."),
    batch_size: int = typer.Option(4, "--batch-size", "-b",
                                   help="Mixtures per model call; only mixtures of equal length share a call "
                                        "(unless the model declares padding harmless)."),
    chunk_seconds: float = typer.Option(None, "--chunk-seconds",
                                        help="Separate longer inputs in overlapping windows of this many seconds "
                                             "(default: one pass over the whole clip, or the model's max_seconds)."),
    chunk_overlap: float = typer.Option(0.5, "--chunk-overlap", help="Fraction of a window shared with the next."),
    overwrite: bool = typer.Option(False, "--overwrite",
                                   help="Separate every mixture again, even outputs made from the same mixture "
                                        "with the same settings."),
    jobs: int = typer.Option(None, "--jobs", "-j",
                             help="Threads decoding/writing while the model runs; 0: none (default 2)."),
    keep_going: bool = typer.Option(False, "--keep-going", help="Exit 0 even if some rows failed (they are still listed)."),
) -> None:
    """Separate every mixture of a split with a model; one checked 16 kHz float WAV per row.

    A re-run makes again exactly the outputs whose mixture or settings changed (provenance.json).

    Example: lasskit separate --split val_synth --model dcase2024-baseline --device cuda
    """
    from lasskit.errors import UsageError, WorkError
    from lasskit.models.registry import parse_options
    from lasskit.separation import SeparationStopped, separate_split

    ws = workspace(ctx)
    if not split:
        known = ws.splits()
        raise UsageError("--split is required" + (f" (known splits: {', '.join(known)})" if known else
                                                 "; create a split first with `lasskit prepare` or `lasskit mix`"))
    if jobs is not None and jobs < 0:
        raise UsageError(f"--jobs {jobs}: must be 0 (decode in the main thread) or more")
    options = parse_options(option)
    if tokenizer is not None:
        options["tokenizer"] = str(tokenizer)
    try:
        report = separate_split(
            split, model, workspace=ws, name=name, device=device, checkpoint=checkpoint,
            options=options, batch_size=batch_size, chunk_seconds=chunk_seconds,
            chunk_overlap=chunk_overlap, overwrite=overwrite, jobs=jobs,
        )
    except SeparationStopped as stopped:  # an output could not be written (a full disk)
        print_report(stopped.report)
        raise
    print_report(report)
    if report.failures and not keep_going:
        raise WorkError(f"{len(report.failures)} of {report.total} mixture(s) failed; "
                        f"see {report.out_dir / 'failures.csv'}")


def print_report(report) -> None:
    """The summary: counts, speed, where the outputs are, silent outputs and failures."""
    con = console()
    speed = (f": {report.speed:.1f} mixtures/s, {report.real_time_factor:.0f}x real time"
             if report.written and report.seconds > 0 else "")
    con.print(f"separated {report.written} of {report.total} mixture(s) of {report.split} with {report.model} "
              f"on {report.device} in {report.seconds:.1f} s{speed} "
              f"({report.skipped} already done, {len(report.failures)} failed)", soft_wrap=True)
    if report.redone and report.reasons.keys() != {"new"}:
        con.print(report.redone.replace("made ", "remade " if "new" not in report.reasons else "made ", 1),
                  soft_wrap=True)
    con.print(f"outputs: {report.out_dir}")
    for name, note in report.chunked:
        con.print(f"[yellow]warning[/yellow]: {name}: {note}", soft_wrap=True)
    if report.converted:
        shown = ", ".join(f"{n} ({what})" for n, what in report.converted[:3])
        more = f" and {len(report.converted) - 3} more" if len(report.converted) > 3 else ""
        con.print(f"[yellow]warning[/yellow]: {len(report.converted)} mixture(s) were not 16 kHz mono: {shown}{more}; "
                  "resampled to 16 kHz and averaged to mono before separation (a resampled mixture's output has "
                  "another number of samples; challenge mixtures are 16 kHz mono)", soft_wrap=True)
    if not report.record.get("consistent", True):
        con.print(f"[yellow]warning[/yellow]: {report.record.get('warning')}", soft_wrap=True)
    if report.silent:
        shown = ", ".join(report.silent[:5]) + (f" and {len(report.silent) - 5} more" if len(report.silent) > 5 else "")
        con.print(f"[yellow]warning[/yellow]: {len(report.silent)} output(s) are all zeros: {shown}")
    print_failures(con, report.failures, report.out_dir / "failures.csv")
