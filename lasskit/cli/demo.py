"""``lasskit demo``: not implemented yet (issue 8)."""

from __future__ import annotations

import typer


def demo(ctx: typer.Context) -> None:
    """Not available yet (issue 8)."""
    from lasskit.errors import WorkError

    raise WorkError("lasskit demo is not available yet")
