"""``lasskit separate``: run a model over a split -> exp/<model>/<split>/<mixture file name>, or
over recordings (``FILE_OR_DIR... --query Q --out DIR``) -> DIR/<stem>__<query-slug>.wav."""

from __future__ import annotations

from pathlib import Path

import typer

from lasskit.cli.common import console, print_failures, typed, workspace


FILE_DEFAULT_MODEL = "dcase2024-baseline"
SPLIT_DEFAULT_MODEL = "passthrough"


def separate(
    ctx: typer.Context,
    inputs: list[Path] = typer.Argument(None, metavar="FILE_OR_DIR", show_default=False,
                                        help="Recordings (any format libsndfile reads) or folders of them to separate "
                                             "with --query into --out (instead of --split)."),
    split: str = typer.Option(None, "--split", "-s", help="Split name under data/splits (or a split folder)."),
    query: list[str] = typer.Option(None, "--query", "-q",
                                    help="What to separate from every FILE_OR_DIR, e.g. 'a dog barking' (repeatable)."),
    queries: Path = typer.Option(None, "--queries", metavar="CSV",
                                 help="file,query rows (files relative to the CSV): recordings with their own queries."),
    out: Path = typer.Option(None, "--out", "-O", metavar="DIR",
                             help="Folder for the outputs of FILE_OR_DIR/--queries: <stem>__<query-slug>.wav, "
                                  "separations.csv, provenance.json."),
    residual: bool = typer.Option(False, "--residual",
                                  help="Also write <stem>__<query-slug>__residual.wav: the recording minus the estimate."),
    mono: bool = typer.Option(False, "--mono", help="Separate the channels' average (default: each channel)."),
    window_seconds: float = typer.Option(None, "--window-seconds",
                                         help="Recordings: window length (default: the model's trained length, 10 s "
                                              "for the baseline); a recording this short is one pass."),
    context_seconds: float = typer.Option(None, "--context-seconds",
                                          help="Recordings: context computed but not kept at each side of a window (default 1)."),
    crossfade_seconds: float = typer.Option(None, "--crossfade-seconds",
                                            help="Recordings: cross-fade between windows (default 1)."),
    model: str = typer.Option(None, "--model", "-m",
                              help="Registered name (see `lasskit models`), module:Class or path/file.py:Class "
                                   f"(default: {SPLIT_DEFAULT_MODEL} for --split, {FILE_DEFAULT_MODEL} for recordings)."),
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
    devices: int = typer.Option(1, "--devices",
                                help="--split: processes on this machine, one per GPU with --device cuda (or CPU "
                                     "processes); the same bytes as 1. Under torchrun/srun the launcher's ranks are used."),
    num_nodes: int = typer.Option(1, "--num-nodes", help="--split: machines (start the command on each with srun/torchrun)."),
) -> None:
    """Separate every mixture of a split with a model (one checked 16 kHz float WAV per row), or
    recordings of any length, rate and channels with text queries.

    A re-run makes again exactly the outputs whose input or settings changed (provenance.json).

    Examples: lasskit separate --split val_synth --model dcase2024-baseline --device cuda;
    lasskit separate walk.flac recordings/ --query "a dog barking" --out separated --residual
    """
    from lasskit.errors import UsageError, WorkError
    from lasskit.models.registry import parse_options
    from lasskit.separation import SeparationStopped, separate_split

    if inputs or queries is not None:
        if split:
            raise UsageError("--split and FILE_OR_DIR/--queries: separate a split or recordings, not both in one run")
        for flag, value in (("--name", name), ("--chunk-seconds", chunk_seconds), ("--jobs", jobs)):
            if value is not None and typed(ctx, flag[2:].replace("-", "_")):  # lasskit.yaml's split settings: unused here
                raise UsageError(f"{flag} applies to --split; recordings use --out, --window-seconds "
                                 "and --context-seconds")
        if out is None:
            raise UsageError("--out DIR is required with FILE_OR_DIR/--queries: the folder for the outputs")
        options = parse_options(option)
        if tokenizer is not None:
            options["tokenizer"] = str(tokenizer)
        if devices < 1 or num_nodes < 1:
            raise UsageError(f"--devices {devices} --num-nodes {num_nodes}: both must be at least 1")
        from lasskit.separation.distributed import env_shard, separate_split_on
        from lasskit.separation.files import separate_files

        kwargs = dict(inputs=[str(p) for p in (inputs or [])], queries=list(query or []), out_dir=str(out),
                      queries_csv=None if queries is None else str(queries), model=model or FILE_DEFAULT_MODEL,
                      checkpoint=checkpoint, device=device, options=options, residual=residual, mono=mono,
                      window_seconds=window_seconds, context_seconds=context_seconds,
                      crossfade_seconds=crossfade_seconds, batch_size=batch_size, overwrite=overwrite)
        shard = env_shard()
        if shard is None and devices * num_nodes > 1:
            report = separate_split_on(separate_files, devices, num_nodes, **kwargs)
        else:
            report = separate_files(**kwargs)
        if shard is not None and shard.rank != 0:
            console().print(f"rank {shard.rank}: wrote {report.written} output(s) in {report.seconds:.1f} s")
            return
        print_files_report(report)
        if report.failures and not keep_going:
            failed = len({name for name, _ in report.failures})  # an input can fail on several queries
            raise WorkError(f"{failed} input(s) failed; see {report.out_dir / 'failures.csv'}")
        return
    for flag, value in (("--query", query), ("--out", out), ("--window-seconds", window_seconds),
                        ("--context-seconds", context_seconds), ("--crossfade-seconds", crossfade_seconds)):
        if value is not None and value != [] and typed(ctx, flag[2:].replace("-", "_")):  # 0 too; not lasskit.yaml's
            raise UsageError(f"{flag} applies to recordings (lasskit separate FILE_OR_DIR... --query Q --out DIR), "
                             "not to --split")
    given = [flag for flag, value in (("--residual", residual), ("--mono", mono)) if value and typed(ctx, flag[2:])]
    if given:
        raise UsageError(f"{given[0]} applies to recordings "
                         "(lasskit separate FILE_OR_DIR... --query Q --out DIR), not to --split")
    model = model or SPLIT_DEFAULT_MODEL
    ws = workspace(ctx)
    if not split:
        known = ws.splits()
        raise UsageError("--split is required" + (f" (known splits: {', '.join(known)})" if known else
                                                 "; create a split first with `lasskit prepare` or `lasskit mix`"))
    if jobs is not None and jobs < 0:
        raise UsageError(f"--jobs {jobs}: must be 0 (decode in the main thread) or more")
    if devices < 1 or num_nodes < 1:
        raise UsageError(f"--devices {devices} --num-nodes {num_nodes}: both must be at least 1")
    options = parse_options(option)
    if tokenizer is not None:
        options["tokenizer"] = str(tokenizer)
    from lasskit.separation.distributed import env_shard, separate_split_on

    shard = env_shard()
    kwargs = dict(split=split, model=model, workspace=str(ws.root), name=name, device=device,
                  checkpoint=checkpoint, options=options, batch_size=batch_size, chunk_seconds=chunk_seconds,
                  chunk_overlap=chunk_overlap, overwrite=overwrite, jobs=jobs)
    try:
        if shard is None and devices * num_nodes > 1:
            report = separate_split_on(separate_split, devices, num_nodes, **kwargs)
        else:
            kwargs["workspace"] = ws
            report = separate_split(**kwargs)
    except SeparationStopped as stopped:  # an output could not be written (a full disk)
        print_report(stopped.report)
        raise
    if shard is not None and shard.rank != 0:  # rank 0 prints the summary of every rank
        console().print(f"rank {shard.rank}: separated {report.written} mixture(s) in {report.seconds:.1f} s")
        return
    print_report(report)
    if report.failures and not keep_going:
        raise WorkError(f"{len(report.failures)} of {report.total} mixture(s) failed; "
                        f"see {report.out_dir / 'failures.csv'}")


def print_files_report(report) -> None:
    """The summary of a run over recordings: outputs, audio seconds, speed, failures."""
    con = console()
    speed = (f", {report.real_time_factor:.1f}x real time" if report.written and report.seconds > 0 else "")
    con.print(f"separated {report.written} of {report.outputs} output(s) from {report.inputs} recording(s) with "
              f"{report.model} on {report.device}: {report.audio_seconds:.1f} s of audio in {report.seconds:.1f} s"
              f"{speed} ({report.windows} window(s); {report.skipped} already done, "
              f"{len({name for name, _ in report.failures})} input(s) failed)",
              soft_wrap=True)
    print_ranks(con, {"ranks": [{**r, "device": report.device} for r in report.ranks]})
    if report.redone and report.reasons.keys() != {"new"}:
        con.print(report.redone, soft_wrap=True)
    con.print(f"outputs: {report.out_dir} (list: {report.out_dir / 'separations.csv'})", soft_wrap=True)
    if report.rate_note:
        con.print(f"note: {report.rate_note}", soft_wrap=True)
    for line in getattr(report, "notes", None) or []:
        con.print(f"note: {line}", soft_wrap=True, markup=False)
    if report.silent:
        shown = ", ".join(report.silent[:5]) + (f" and {len(report.silent) - 5} more" if len(report.silent) > 5 else "")
        con.print(f"[yellow]warning[/yellow]: {len(report.silent)} output(s) are all zeros: {shown}", soft_wrap=True)
    print_failures(con, report.failures, report.out_dir / "failures.csv")


def print_ranks(con, record: dict) -> None:
    """One line per rank of a run on several processes."""
    for rank in record.get("ranks") or []:
        con.print(f"  rank {rank['rank']} on {rank['device']}: {rank['written']} written, {rank['failed']} failed, "
                  f"{rank['audio_seconds']:.0f} s of audio in {rank['seconds']:.1f} s", soft_wrap=True)


def _times(factor: float) -> str:
    """A real-time factor as the summary prints it: two significant digits under 10 (0.26x was printed 0x)."""
    return f"{factor:.0f}" if factor >= 10 else f"{factor:.2g}"


def print_report(report) -> None:
    """The summary: counts, speed, where the outputs are, silent outputs and failures."""
    con = console()
    speed = (f": {report.speed:.1f} mixtures/s, {_times(report.real_time_factor)}x real time"
             if report.written and report.seconds > 0 else "")
    made_by = report.model_name or report.model
    into = f" into exp/{report.model}" if made_by != report.model else ""
    con.print(f"separated {report.written} of {report.total} mixture(s) of {report.split} with {made_by}{into} "
              f"on {report.device} in {report.seconds:.1f} s{speed} "
              f"({report.skipped} already done, {len(report.failures)} failed)", soft_wrap=True)
    print_ranks(con, report.record)
    if report.removed_rows:
        shown = ", ".join(report.removed_rows[:3]) + (f" and {len(report.removed_rows) - 3} more"
                                                       if len(report.removed_rows) > 3 else "")
        con.print(f"removed {len(report.removed_rows)} output(s) of rows no longer in split {report.split} "
                  f"({shown})", soft_wrap=True)
    if report.redone and report.reasons.keys() != {"new"}:
        con.print(report.redone.replace("made ", "remade " if "new" not in report.reasons else "made ", 1),
                  soft_wrap=True)
    con.print(f"outputs: {report.out_dir}")
    if report.rate_note:
        con.print(f"note: {report.rate_note}", soft_wrap=True)
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
