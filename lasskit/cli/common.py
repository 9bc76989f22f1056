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
