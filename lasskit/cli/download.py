"""``lasskit download NAME...``: datasets and weights, verified, resumable, extracted (see lasskit.download.run)."""

from __future__ import annotations

from pathlib import Path

import typer

from lasskit.cli.common import console, workspace


def download(
    ctx: typer.Context,
    names: list[str] = typer.Argument(None, help="clotho, fsd50k, dcase2024, labels, a model name (see --list)."),
    to: Path = typer.Option(None, "--to", metavar="DIR", help="Folder to download into (default: <workspace>/downloads)."),
    from_dir: Path = typer.Option(None, "--from", metavar="DIR", help="Use the files already in DIR (same checks, no "
                                  "network; DIR is never modified)."),
    list_: bool = typer.Option(False, "--list", help="List every name with its size, licence and the command that follows."),
    keep_archives: bool = typer.Option(False, "--keep-archives", help="Keep the archives after extracting them."),
    parallel: int = typer.Option(4, "--parallel", help="Files downloaded at the same time."),
    token: str = typer.Option(None, "--token", metavar="TOKEN", help="Token for gated hub files (default: $HF_TOKEN)."),
) -> None:
    """Download datasets and model weights: checked against the records' MD5s, resumed after an
    interruption, extracted into the layout `prepare` expects; paths.<corpus> goes into lasskit.yaml.

    Example: lasskit download clotho fsd50k dcase2024 --to /data/lass && lasskit prepare clotho
    """
    from lasskit.download.run import download as run_download
    from lasskit.download.run import list_rows
    from lasskit.models.downloads import card_names, model_files

    con = console()
    if list_:
        rows = list_rows(model_files, tuple(card_names()))
        widths = [max(len(getattr(r, col)) for r in rows) for col in ("name", "kind", "size")]
        for r in rows:
            con.print(f"{r.name:<{widths[0]}}  {r.kind:<{widths[1]}}  {r.size:<{widths[2]}}  {r.title}", soft_wrap=True)
            con.print(f"{'':<{widths[0]}}  licence: {r.licence}; then: {r.next}", soft_wrap=True)
        con.print("A registered plugin model whose class declares weight_files downloads by its name too.",
                  soft_wrap=True)
        return
    from lasskit.errors import LasskitError

    ws = workspace(ctx)
    try:
        report = run_download(list(names or []), to or ws.root / "downloads", from_dir=from_dir,
                              keep_archives=keep_archives, parallel=parallel, token=token, workspace_root=ws.root,
                              model_files=model_files, model_names=tuple(card_names()))
    except LasskitError as exc:
        if getattr(exc, "report", None) is not None:  # some names failed: show what the others did
            print_report(con, exc.report)
        raise
    print_report(con, report)


def print_report(con, report) -> None:
    """One line per name (files, bytes, resumed, extracted), its notes, then what to run next."""
    for it in report.items:
        parts = [f"{it.files} file(s)", f"{it.fetched} downloaded ({it.downloaded_bytes} bytes)",
                 f"{it.cached} already there and verified"]
        if it.unchecked:
            parts.append(f"{it.unchecked} copied unchecked (no checksum known)")
        if it.resumed:
            parts.append(f"{it.resumed} resumed")
        if it.restarted:
            parts.append(f"{it.restarted} restarted (no range support)")
        if it.refetched:
            parts.append(f"{it.refetched} fetched again after a failed check")
        if it.extracted:
            parts.append(f"extracted {', '.join(it.extracted)}")
        if it.extracted_before:
            parts.append(f"{it.extracted_before} archive(s) extracted by an earlier run")
        if it.removed_archives:
            parts.append(f"{it.removed_archives} archive file(s) removed (--keep-archives keeps them)")
        con.print(f"{it.name}: " + "; ".join(parts) + f" -> {it.folder}", soft_wrap=True, markup=False)
        for p in it.paths:
            con.print(f"  {p}", soft_wrap=True, markup=False)
        for note in it.notes:
            con.print(f"  note: {note}", soft_wrap=True, markup=False)  # paths as they are: no wraps, no markup
    for corpus, folder in report.recorded.items():
        con.print(f"paths.{corpus} = {folder} (in {report.config})", soft_wrap=True, markup=False)
    nexts = [it.next for it in report.items if it.next]
    if nexts:
        con.print("next: " + "; ".join(nexts), soft_wrap=True, markup=False)
