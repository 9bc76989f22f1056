"""``lasskit check``: validate a submission package; every problem on its own line."""

from __future__ import annotations

from pathlib import Path

import typer

from lasskit.cli.common import JOBS_HELP, check_jobs, workspace


def check(
    ctx: typer.Context,
    path: Path = typer.Argument(None, help="Package folder or one of its zips (default: <workspace>/submission)."),
    all_lines: bool = typer.Option(False, "--all", help="List every problem (default: 20 per file, then a count)."),
    jobs: int = typer.Option(None, "--jobs", "-j", help=JOBS_HELP),
) -> None:
    """Check a submission package: names, metadata, report, link and every WAV in the zips.

    Example: lasskit check submission/   (exit 1 if anything is wrong; each line names the file
    and the fix). Expected file names come from data/splits/eval_*/mixtures.csv when present.
    """
    from lasskit.errors import WorkError
    from lasskit.submission import check_submission

    jobs = check_jobs(jobs)
    ws = workspace(ctx)
    report = check_submission(path if path is not None else ws.submission_dir, ws, jobs=jobs)
    for note in report.notes:
        typer.echo(f"note: {note}")
    for w in report.warnings:
        typer.echo(f"warning: {w.line()}")
    for line in report.lines(0 if all_lines else 20):
        typer.echo(line)
    systems = f"systems {', '.join(report.systems)}" if report.systems else "no system found"
    summary = (f"checked {report.path}: {systems}; {report.audio_files} WAV file(s); "
               f"{len(report.problems)} problem(s), {len(report.warnings)} warning(s) in {report.seconds:.1f} s")
    typer.echo(summary)
    if report.problems:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(report.kinds().items()))
        raise WorkError(f"{report.path}: {len(report.problems)} problem(s) ({kinds}); fix each line above "
                        "and run `lasskit check` again")
