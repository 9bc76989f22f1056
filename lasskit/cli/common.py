"""Helpers shared by the CLI commands: the workspace, the console and summary tables."""

from __future__ import annotations

import typer

from lasskit.errors import UsageError


def workspace(ctx: typer.Context):
    """The :class:`~lasskit.workspace.Workspace` the root callback opened."""
    from lasskit.workspace import Workspace

    obj = ctx.find_root().obj
    return obj if isinstance(obj, Workspace) else Workspace.open()


def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def check_jobs(jobs: int | None) -> int | None:
    if jobs is not None and jobs < 0:
        raise UsageError(f"--jobs {jobs}: must be 0 (all cores) or a positive number")
    return jobs or None


JOBS_HELP = "Worker processes (default: all cores)."


def print_failures(con, failures: list[tuple[str, str]], listed_in, shown: int = 10) -> None:
    """The first ``shown`` failures, one line each (name once), then where the rest are listed."""
    from rich.markup import escape

    for name, reason in failures[:shown]:
        line = reason if name in reason else f"{name}: {reason}"
        con.print(f"  [red]failed[/red] {escape(line)}", soft_wrap=True)
    if len(failures) > shown:
        con.print(f"  ... and {len(failures) - shown} more in {listed_in}")
