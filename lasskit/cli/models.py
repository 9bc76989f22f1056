"""``lasskit models``: not implemented yet (issue 5)."""

from __future__ import annotations

import typer

app = typer.Typer(help="List registered separation models.", invoke_without_command=True)


@app.callback()
def models(ctx: typer.Context) -> None:
    """List registered separation models (not available yet, issue 5)."""
    from lasskit.errors import WorkError

    raise WorkError("lasskit models is not available yet")
