"""``lasskit label``: derive class labels again for a prepared corpus (no audio is converted)."""

from __future__ import annotations

from pathlib import Path

import typer

from lasskit.cli.common import console, workspace


def label(
    ctx: typer.Context,
    corpus: str = typer.Argument(..., help="Prepared corpus (data/<corpus>), its folder, or its manifest.csv."),
    vocabulary: Path = typer.Option(None, "--vocabulary", help="FSD50K's vocabulary.csv (default: the one under "
                                    "paths.fsd50k in lasskit.yaml)."),
    ontology: Path = typer.Option(None, "--ontology", help="AudioSet ontology.json: AudioSet's names and hierarchy."),
) -> None:
    """Derive class labels from keywords and captions for the clips without given labels.

    Given labels (and CLAP tags) are kept; labels derived before are derived again, so a new
    vocabulary or ontology takes effect. The manifest is rewritten; the audio is not touched.

    Example: lasskit label clotho --ontology ontology.json
    """
    from lasskit.errors import UsageError
    from lasskit.labels.corpus import label_manifest, resolve_labeler

    ws = workspace(ctx)
    path = Path(corpus)
    if path.is_dir():
        path = path / "manifest.csv"
    elif not path.is_file():
        path = ws.manifest_path(corpus)
    if not path.is_file():
        known = ", ".join(ws.corpora()) or "none yet"
        raise UsageError(f"{corpus}: no prepared corpus (looked for {path}); prepared: {known}")
    labeler = resolve_labeler(vocabulary, ontology, ws.raw_path("fsd50k"))
    if labeler is None:
        raise UsageError("no class vocabulary: pass --vocabulary FSD50K.ground_truth/vocabulary.csv or "
                         "--ontology ontology.json (or set paths.fsd50k in lasskit.yaml)")
    report = label_manifest(path, labeler)
    con = console()
    con.print(f"{path}: {report.clips} clip(s); " + report.notes()[0].removeprefix("labels: "))
    con.print("manifest rewritten" if report.written else "manifest unchanged")
