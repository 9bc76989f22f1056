"""``lasskit separate``: not implemented yet (issue 5)."""

from __future__ import annotations

import typer


def separate(ctx: typer.Context) -> None:
    """Not available yet (issue 5)."""
    from lasskit.errors import WorkError

    raise WorkError("lasskit separate is not available yet")
