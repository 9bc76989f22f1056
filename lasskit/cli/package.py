"""``lasskit package``: not implemented yet (issue 7)."""

from __future__ import annotations

import typer


def package(ctx: typer.Context) -> None:
    """Not available yet (issue 7)."""
    from lasskit.errors import WorkError

    raise WorkError("lasskit package is not available yet")
