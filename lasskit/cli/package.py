"""``lasskit package``: the submission files of one system, built from the workspace."""

from __future__ import annotations

from pathlib import Path

import typer

from lasskit.cli.common import JOBS_HELP, check_jobs, check_range, console, option_error, workspace


def package(
    ctx: typer.Context,
    team: str = typer.Option(None, "--team", help="Corresponding author's last name (default: from authors:)."),
    institute: str = typer.Option(None, "--institute", help="Institute abbreviation, letters and digits (e.g. UOS)."),
    index: int = typer.Option(1, "--index", help="System number, 1 to 4."),
    name: str = typer.Option(None, "--name", help="System name for the results tables."),
    abbreviation: str = typer.Option(None, "--abbreviation", help="System name in at most 10 characters."),
    model: str = typer.Option(None, "--model", help="Model whose outputs to package (default: the only one)."),
    audio_url: str = typer.Option(None, "--audio-url", help="Public link to the uploaded audio zips."),
    report: Path = typer.Option(None, "--report", help="Technical report (PDF)."),
    audio_format: str = typer.Option("pcm16", "--audio-format", help="pcm16 (default, half the size) or float (outputs as-is)."),
    out: Path = typer.Option(None, "--out", help="Folder to write into (default: <workspace>/submission)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace this system's existing package."),
    jobs: int = typer.Option(None, "--jobs", "-j", help=JOBS_HELP),
) -> None:
    """Build the DCASE 2024 Task 9 submission files of one system under submission/.

    Example: lasskit package --team Lovelace --institute UOS --index 1 --name "ResUNet CLAP"
    --abbreviation ResCLAP --report report.pdf --audio-url https://drive.google.com/...
    System details (authors:, package.system) come from lasskit.yaml.
    """
    from lasskit.submission import build_package
    from lasskit.submission.archive import AUDIO_FORMATS
    from lasskit.submission.rules import MAX_SYSTEMS

    check_range("--index", index, 1, MAX_SYSTEMS, what="(a team submits at most 4 systems)")
    if audio_format not in AUDIO_FORMATS:
        raise option_error("--audio-format", audio_format, f"use one of {', '.join(AUDIO_FORMATS)}")
    jobs = check_jobs(jobs)
    ws = workspace(ctx)
    result = build_package(
        ws, team=team, institute=institute, index=index, name=name, abbreviation=abbreviation, model=model,
        audio_url=audio_url, report=report, audio_format=audio_format, out_dir=out, overwrite=overwrite,
        jobs=jobs,
    )
    con = console()
    con.print(f"[bold]{result.label}[/bold] in {result.out_dir} ({result.seconds:.1f} s)")
    for path in [*result.files, result.team_zip]:
        con.print(f"  {path.name}  ({path.stat().st_size / 1e6:.1f} MB)")
    counts = ", ".join(f"{split} {n} files" for split, n in result.audio_counts.items())
    results = ", ".join(f"{k} {v:.3f} dB" for k, v in result.results.items())
    con.print(f"audio: {counts}; validation (synth): {results}", soft_wrap=True)
    for warning in result.warnings:
        con.print(f"[yellow]warning[/yellow]: {warning}", soft_wrap=True)
    con.print(f"next: lasskit check {result.out_dir}")
