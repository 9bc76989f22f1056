"""``lasskit models download``: not implemented yet (issue 6)."""

from __future__ import annotations

import typer


def download(ctx: typer.Context, name: str = typer.Argument(..., help="Registered model name.")) -> None:
    """Download a model's weights into the cache (not available yet, issue 6)."""
    from lasskit.errors import WorkError

    raise WorkError("lasskit models download is not available yet")
