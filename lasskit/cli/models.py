"""``lasskit models``: list the registered separation models (``download`` fetches weights)."""

from __future__ import annotations

import typer

from lasskit.cli import models_download

app = typer.Typer(
    help="List registered separation models; `lasskit models download NAME` fetches weights.",
    invoke_without_command=True,
    no_args_is_help=False,
)


@app.callback()
def models(ctx: typer.Context,
           cards: bool = typer.Option(False, "--cards", help="Show the zoo's model cards as a table: network rate, "
                                      "trained length, batch padding, licence, parameters, weight files, citation.")) -> None:
    """List registered separation models, one line each (name, rate, package, description).

    Example: lasskit models --cards
    """
    if ctx.invoked_subcommand is not None:
        return
    if cards:
        from lasskit.models.cards import cards_table

        typer.echo(cards_table())
        return
    from lasskit.models.registry import list_models

    entries = list_models()
    if not entries:
        typer.echo("no models registered (is lasskit installed? try `pip install -e .`)")
        return
    width = max(len(e.name) for e in entries)
    for e in entries:
        if e.available:
            rate = getattr(e.cls, "network_rate", None) or getattr(e.cls, "sample_rate", 16000) or 16000
            line = f"{e.name:<{width}}  {rate / 1000:g} kHz  {e.description}  [{e.package}]"
        else:
            line = f"{e.name:<{width}}  unavailable: {e.error}  [{e.package}: {e.target}]"
        typer.echo(line.rstrip())


app.command("download")(models_download.download)
