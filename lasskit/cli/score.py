"""``lasskit score``: not implemented yet (issue 4)."""

from __future__ import annotations

import typer


def score(ctx: typer.Context) -> None:
    """Not available yet (issue 4)."""
    from lasskit.errors import WorkError

    raise WorkError("lasskit score is not available yet")
