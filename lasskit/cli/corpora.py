"""``lasskit corpora``: one table of every prepared corpus (clips, hours, labels, overlap, exclusions)."""

from __future__ import annotations

import typer

from lasskit.cli.common import console, workspace


def corpora(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON instead of a table."),
) -> None:
    """Summarize every prepared corpus: clips, hours, labelled share and how, shared recordings, exclusions.

    Example: lasskit corpora
    """
    import json

    from lasskit.corpora.summary import summarize_corpora

    ws = workspace(ctx)
    rows = summarize_corpora(ws)
    if as_json:
        typer.echo(json.dumps([r.as_dict() for r in rows], indent=2))
        return
    from rich.table import Table

    con = console()
    if not rows:
        con.print(f"no prepared corpus in {ws.data_dir}; run `lasskit prepare` first")
        return
    table = Table(title="lasskit corpora")
    for col in ("corpus", "clips", "hours", "labelled", "labels from", "shares recordings with", "excluded"):
        table.add_column(col, justify="right" if col in ("clips", "hours", "labelled") else "left")
    for r in rows:
        table.add_row(r.name, str(r.clips), f"{r.hours:.2f}", f"{100 * r.labelled_share:.0f}%",
                      ", ".join(f"{k} {v}" for k, v in r.label_sources.items()),
                      ", ".join(f"{k} {v}" for k, v in r.overlap.items()) or "-",
                      "; ".join(f"{k} {v}" for k, v in r.excluded.items()) or "-")
    con.print(table)
