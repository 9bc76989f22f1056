"""``lasskit mix``: not implemented yet (issue 3)."""

from __future__ import annotations

import typer


def mix(ctx: typer.Context) -> None:
    """Not available yet (issue 3)."""
    from lasskit.errors import WorkError

    raise WorkError("lasskit mix is not available yet")
