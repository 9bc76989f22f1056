"""``lasskit init``: write a commented lasskit.yaml template."""

from __future__ import annotations

import typer

from lasskit.cli.common import console, workspace


def init(
    ctx: typer.Context,
    force: bool = typer.Option(False, "--force", help="Replace an existing lasskit.yaml."),
) -> None:
    """Write a commented lasskit.yaml template into the workspace.

    Example: lasskit --workspace ~/lass init
    """
    from lasskit.workspace import write_config_template

    ws = workspace(ctx)
    ws.root.mkdir(parents=True, exist_ok=True)
    path = write_config_template(ws.root, force=force)
    console().print(f"wrote {path}")
