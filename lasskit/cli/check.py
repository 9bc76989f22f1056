"""``lasskit check``: not implemented yet (issue 7)."""

from __future__ import annotations

import typer


def check(ctx: typer.Context) -> None:
    """Not available yet (issue 7)."""
    from lasskit.errors import WorkError

    raise WorkError("lasskit check is not available yet")
