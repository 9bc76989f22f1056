"""``lasskit demo``: the whole workflow offline on generated audio, ending in scores and a checked package."""

from __future__ import annotations

from pathlib import Path

import typer

from lasskit.cli.common import JOBS_HELP, check_jobs, check_range, console


def demo(
    directory: Path = typer.Argument(Path("demo_workspace"), metavar="DIR",
                                     help="Folder to create the demo workspace in."),
    duration: float = typer.Option(2.0, "--duration", help="Length of every generated clip (s), 0.5 to 30."),
    jobs: int = typer.Option(None, "--jobs", "-j", help=JOBS_HELP),
) -> None:
    """Run prepare, mix, separate, score, package and check on a generated miniature download.

    Example: lasskit demo /tmp/lass_demo   (no download, no GPU; about half a minute)
    """
    from lasskit.cli.score import print_run
    from lasskit.demo import MAX_DURATION, MIN_DURATION, check_demo_folder, run_demo

    check_range("--duration", duration, MIN_DURATION, MAX_DURATION, what="seconds")
    jobs = check_jobs(jobs)
    check_demo_folder(directory)
    con = console()
    result = run_demo(directory, duration=duration, jobs=jobs, log=lambda line: con.print(line, soft_wrap=True))
    print_run(result.score_run)
    con.print(f"checked package: {result.check.path} ({len(result.check.problems)} problems, "
              f"{result.check.audio_files} WAV files)")
    con.print(f"workspace: {result.root}  (total {result.seconds:.1f} s); try "
              f"`lasskit --workspace {result.root} score --by snr`", soft_wrap=True)
