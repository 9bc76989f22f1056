"""``lasskit models download NAME``: fetch a model's weights into the cache (the downloader of ``lasskit download``)."""

from __future__ import annotations

import typer


def download(ctx: typer.Context, name: str = typer.Argument(..., help="Registered model name (or weight file name).")) -> None:
    """Download a model's weights into the cache ($LASSKIT_CACHE or ~/.cache/lasskit); already cached: no download.

    The same as `lasskit download NAME` for a model: resumed, retried and verified.

    Example: lasskit models download dcase2024-baseline
    """
    from lasskit.download.run import download_model
    from lasskit.models.downloads import card_names, model_files

    for path in download_model(name, model_files=model_files, model_names=tuple(card_names())).paths:
        typer.echo(str(path))
