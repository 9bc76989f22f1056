"""``lasskit models download NAME``: fetch a model's weights into the cache (checksum, progress bar)."""

from __future__ import annotations

import typer


def download(ctx: typer.Context, name: str = typer.Argument(..., help="Registered model name (or weight file name).")) -> None:
    """Download a model's weights into the cache ($LASSKIT_CACHE or ~/.cache/lasskit); already cached: no download.

    Example: lasskit models download dcase2024-baseline
    """
    from lasskit.weights import download_model_weights

    for path in download_model_weights(name):
        typer.echo(str(path))
