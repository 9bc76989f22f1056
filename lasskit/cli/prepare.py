"""``lasskit prepare``: raw corpus -> 16 kHz mono WAV + manifest."""

from __future__ import annotations

from pathlib import Path

import typer

from lasskit.cli.common import JOBS_HELP, check_jobs, console, print_failures, workspace


def prepare(
    ctx: typer.Context,
    corpus: str = typer.Argument(..., help="clotho, fsd50k, dcase2024, folder, audiocaps, wavcaps or autoacd."),
    src: Path = typer.Argument(None, help="Raw download folder (default: paths.<corpus> in lasskit.yaml)."),
    out: Path = typer.Option(None, "--out", help="Data folder to write into (default: <workspace>/data)."),
    jobs: int = typer.Option(None, "--jobs", "-j", help=JOBS_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Convert everything again, even outputs that are up to date."),
    keep_going: bool = typer.Option(False, "--keep-going", help="Exit 0 even if some files failed (they are still listed)."),
    resampler: str = typer.Option("soxr", "--resampler", help="soxr (default, HQ) or torchaudio."),
    captions: list[Path] = typer.Option(None, "--captions", help="fsd50k: organizers' caption JSON (repeatable)."),
    metadata: Path = typer.Option(None, "--metadata", help="folder: CSV with file, captions, labels, split."),
    name: str = typer.Option(None, "--name", help="folder: corpus name (default: the folder's name)."),
    vocabulary: Path = typer.Option(None, "--vocabulary", help="clotho, folder: FSD50K's vocabulary.csv, to derive "
                                    "labels from captions (default: the one under paths.fsd50k)."),
    ontology: Path = typer.Option(None, "--ontology", help="clotho, folder: AudioSet ontology.json, to derive labels "
                                  "onto AudioSet's names and hierarchy."),
    audioset_labels: list[Path] = typer.Option(
        None, "--audioset-labels", metavar="FILE",
        help="audiocaps, autoacd, wavcaps: AudioSet's segment CSVs and class_labels_indices.csv (repeatable)."),
    blacklist: list[Path] = typer.Option(
        None, "--blacklist", metavar="FILE",
        help="wavcaps: a blacklist JSON of WavCaps' to apply besides blacklist_exclude_test_ac.json (repeatable)."),
) -> None:
    """Convert a raw corpus to mono 16 kHz WAV and write its manifest.

    Example: lasskit prepare dcase2024 ~/downloads/dcase2024_task9
    """
    from lasskit.corpora import CORPORA, check_name, check_resampler, prepare_corpus
    from lasskit.errors import UsageError, WorkError

    ws = workspace(ctx)
    if corpus not in CORPORA:
        raise UsageError(f"unknown corpus {corpus!r}; choose one of {', '.join(CORPORA)}")
    check_resampler(resampler)  # option values are checked before any work
    if name is not None:
        check_name(name)
    if src is None:
        src = ws.raw_path(corpus)
        if src is None:
            fetch = f" (`lasskit download {corpus}` downloads it and sets it)" if corpus in ("clotho", "fsd50k",
                                                                                            "dcase2024") else ""
            raise UsageError(f"no raw folder for {corpus}: pass SRC or set paths.{corpus} in {ws.root / 'lasskit.yaml'}"
                             f"{fetch}")
    options = {"jobs": check_jobs(jobs), "overwrite": overwrite, "resampler": resampler}
    if corpus == "fsd50k":
        options["captions"] = list(captions or [])
    if corpus == "folder":
        options.update(metadata=metadata, name=name)
    typed = [f"--{n}" for n, v in (("vocabulary", vocabulary), ("ontology", ontology))  # lasskit.yaml's may be for clotho
             if v is not None and getattr(ctx.get_parameter_source(n), "name", "") == "COMMANDLINE"]
    if blacklist and corpus != "wavcaps":
        raise UsageError(f"--blacklist: WavCaps' blacklists apply to wavcaps only; leave it out for {corpus}")
    if audioset_labels and corpus not in ("audiocaps", "wavcaps", "autoacd"):
        raise UsageError(f"--audioset-labels: for audiocaps, autoacd and wavcaps (AudioSet audio) only; leave it out "
                         f"for {corpus}")
    if corpus in ("audiocaps", "wavcaps", "autoacd"):
        options["audioset_labels"] = list(audioset_labels or [])
    if corpus == "wavcaps":
        options["blacklist"] = list(blacklist or [])
    if corpus not in ("clotho", "folder", "audiocaps", "wavcaps", "autoacd") and typed:
        given = typed[0]
        raise UsageError(f"{given}: derives labels for clotho, folder, audiocaps, wavcaps and autoacd only ({corpus} "
                         "comes with its labels); "
                         f"leave it out, or run `lasskit label {corpus}` on the prepared corpus")
    if corpus in ("clotho", "folder", "audiocaps", "wavcaps", "autoacd"):
        from lasskit.labels.corpus import resolve_labeler

        options["labeler"] = resolve_labeler(vocabulary, ontology, ws.raw_path("fsd50k"))
    reports = prepare_corpus(corpus, src, out or ws.data_dir, **options)
    print_reports(reports)
    failed = [f for r in reports for f in r.failures]
    if failed and not keep_going:
        lists = ", ".join(str(r.path.parent / "failures.csv") for r in reports if r.failures)
        first = failed[0][1] if failed[0][0] in failed[0][1] else f"{failed[0][0]}: {failed[0][1]}"
        more = f"; {len(failed) - 1} more" if len(failed) > 1 else ""
        raise WorkError(f"{len(failed)} file(s) failed ({first}{more}); see {lists}")


def print_reports(reports) -> None:
    """The summary table: items, hours of audio, outputs made and up to date, float WAVs, failures,
    seconds, times real time; then each report's notes (why outputs were made, files written as
    float because 16-bit would clip) and failures."""
    from rich.table import Table

    con = console()
    table = Table(title="lasskit prepare")
    cols = ("output", "kind", "items", "hours", "made", "up to date", "float", "failures", "seconds", "x real time")
    for col in cols:
        table.add_column(col, justify="right" if col not in ("output", "kind") else "left")
    for r in reports:
        table.add_row(r.name, r.kind, str(r.items), f"{r.audio_seconds / 3600:.3f}",
                      str(getattr(r, "made_count", 0)), str(r.skipped), str(getattr(r, "float_files", 0)),
                      str(len(r.failures)), f"{r.seconds:.1f}", f"{r.speed:.0f}" if r.seconds > 0 else "-")
    con.print(table)
    for r in reports:
        con.print(f"{r.name}: {r.path}")
        for note in r.notes:
            con.print(f"  note: {note}")
        print_failures(con, r.failures, r.path.parent / "failures.csv")
