"""``lasskit mix``: class-disjoint synthetic mixtures at exact SNRs -> ``data/splits/<name>/``."""

from __future__ import annotations

from pathlib import Path

import typer

from lasskit.cli.common import JOBS_HELP, check_jobs, console, option_error, print_failures, workspace

DEFAULT_NAME = "mix"
SNR_LIMIT = 60.0
"""Bounds of ``--snr`` (dB): at 60 dB one signal's amplitude is a thousandth of the other's, its
peaks near the last bits of a 16-bit mixture (about -90 dBFS for a full-scale partner), and a
separator is asked to find a sound no one can hear (the challenge uses -15 to 15)."""


def check_levels(snr: tuple[float, float] | None, silence_db: float | None) -> None:
    """``--snr`` bounds within +-:data:`SNR_LIMIT` dB, ``--silence-db`` below 0 dBFS (checked before any work)."""
    import math

    if snr is not None and not all(math.isfinite(v) and abs(v) <= SNR_LIMIT for v in snr):
        raise option_error("--snr", f"{snr[0]:g} {snr[1]:g}", f"each bound must be from {-SNR_LIMIT:g} to "
                           f"{SNR_LIMIT:g} dB (beyond, one signal is inaudible under the other; the challenge uses "
                           "-15 15)")
    if silence_db is not None and not (math.isfinite(silence_db) and silence_db < 0):
        raise option_error("--silence-db", f"{silence_db:g}", "must be a level below 0 dBFS (a 0.1 s frame is "
                           "active when its RMS reaches it; the default is -60)")


def mix(
    ctx: typer.Context,
    manifests: list[str] = typer.Argument(
        None, metavar="MANIFEST",
        help="Manifests, corpus folders or prepared corpus names (default: every prepared corpus)."),
    snr: tuple[float, float] = typer.Option(None, "--snr", metavar="LOW HIGH", help="SNR range in dB, drawn uniformly."),
    num: int = typer.Option(None, "--num", "-n", help="Mixtures (default: one per target, or per caption)."),
    name: str = typer.Option(DEFAULT_NAME, "--name", help="Split name: writes data/splits/<name>/."),
    seed: int = typer.Option(0, "--seed", help="Seed of every random choice."),
    targets: list[str] = typer.Option(None, "--targets", help="Draw targets from these manifests only (repeatable)."),
    noises: list[str] = typer.Option(None, "--noises", help="Draw noises from these manifests only (repeatable)."),
    split: list[str] = typer.Option(None, "--split", help="Keep clips of this manifest split, e.g. val (repeatable)."),
    dataset: list[str] = typer.Option(None, "--dataset", help="Keep clips of this dataset (repeatable)."),
    ontology: Path = typer.Option(None, "--ontology", help="AudioSet ontology.json: compare labels with their ancestors."),
    allow_unlabeled: bool = typer.Option(False, "--allow-unlabeled", help="Also use clips without labels (unchecked pairs)."),
    per_caption: bool = typer.Option(False, "--per-caption", help="One mixture per caption of each target."),
    integer_snr: bool = typer.Option(False, "--integer-snr", help="Integer SNRs (the organizers' style)."),
    duration: float = typer.Option(10.0, "--duration", help="Segment length in seconds."),
    min_duration: float = typer.Option(0.0, "--min-duration", help="Skip clips shorter than this (s); 0 pads them."),
    silence_db: float = typer.Option(-60.0, "--silence-db", help="A 0.1 s frame is active at RMS >= this (dBFS)."),
    min_active: float = typer.Option(
        None, "--min-active", metavar="SECONDS",
        help="Least active target time per mixture (s); default a tenth of --duration, 0 turns it off."),
    noise_min_active: float = typer.Option(
        None, "--noise-min-active", metavar="SECONDS",
        help="Least active noise time per mixture (s); default as --min-active, 0 turns it off."),
    official_csv: Path = typer.Option(None, "--official-csv", help="Also write the organizers' source,noise,snr,caption CSV."),
    from_official: Path = typer.Option(None, "--from-official", help="Rebuild a split from an organizers' CSV instead."),
    clips: Path = typer.Option(None, "--clips", help="With --from-official: folder of <id>.wav clips or a manifest."),
    jobs: int = typer.Option(None, "--jobs", "-j", help=JOBS_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing split of this name."),
    keep_going: bool = typer.Option(False, "--keep-going", help="Exit 0 even if some clips failed (they are listed)."),
) -> None:
    """Make class-disjoint mixtures (target + noise sharing no label) at exact SNRs.

    Validation/evaluation data (val/eval splits, the challenge's own corpora) is used only when
    named: --split val, or the corpus as MANIFEST.

    Examples: lasskit mix --snr -15 15 --num 5000 --name train (training data only);
    lasskit mix dcase2024_val --snr -15 15 --integer-snr --per-caption --name my_val
    """
    from lasskit.errors import UsageError, WorkError
    from lasskit.mixing import (
        MixSpec,
        make_mixtures,
        mix_from_official,
        resolve_manifest,
    )
    from lasskit.mixing.planning import challenge_manifests

    ws = workspace(ctx)
    jobs = check_jobs(jobs)
    check_levels(snr, silence_db)
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise UsageError(f"--name {name!r}: give a plain folder name (the split is written to data/splits/<name>/)")
    split_dir = ws.split_dir(name)
    if from_official is not None:
        if clips is None:
            raise UsageError("--from-official needs --clips DIR (the folder of <id>.wav clips, or a manifest)")
        report = mix_from_official(from_official, clips, split_dir, jobs=jobs, overwrite=overwrite)
    else:
        if snr is None:
            raise UsageError("pass --snr LOW HIGH (dB), or set mix: {snr: [LOW, HIGH]} in lasskit.yaml")
        named_words = [*(manifests or []), *(targets or []), *(noises or [])]
        words = list(manifests or []) or ws.corpora()
        if not words and not targets:
            raise UsageError(f"no prepared corpus in {ws.data_dir}; run `lasskit prepare` first or pass MANIFEST")
        target_paths = [resolve_manifest(w, ws) for w in (targets or words)]
        noise_paths = [resolve_manifest(w, ws) for w in (noises or words or targets)]
        spec = MixSpec(
            snr_low=float(snr[0]), snr_high=float(snr[1]), num=num, per_caption=per_caption, integer_snr=integer_snr,
            duration=duration, min_duration=min_duration, seed=seed, allow_unlabeled=allow_unlabeled,
            silence_db=silence_db, min_active=min_active, noise_min_active=noise_min_active,
        )
        report = make_mixtures(
            split_dir, spec, target_paths, noise_paths, splits=list(split or []), datasets=list(dataset or []),
            ontology=ontology, official_csv=official_csv, jobs=jobs, overwrite=overwrite,
            named=[resolve_manifest(w, ws) for w in named_words], reference=challenge_manifests(ws),
        )
    print_report(report)
    if not report.complete:
        raise WorkError(f"{len(report.failures)} mixture(s) failed, see {split_dir / 'failures.csv'}; "
                        "run the same command again to finish the split")
    if report.failures and not keep_going:
        raise WorkError(f"{len(report.failures)} clip(s) failed and were left out; see {split_dir / 'failures.csv'}")


def print_report(report) -> None:
    """Summary: rows, distinct clips, skipped clips by reason, SNR histogram."""
    from rich.table import Table

    con = console()
    table = Table(title=f"lasskit mix: {report.split_dir.name}")
    table.add_column("", justify="left")
    table.add_column("count", justify="right")
    table.add_row("mixtures", str(report.rows))
    table.add_row("  written now", str(report.written))
    for why, count in (getattr(report, "redone", None) or {}).items():
        table.add_row(f"    {why}", str(count))
    if report.resumed:
        table.add_row("  already current (kept)", str(report.resumed))
    if getattr(report, "removed", 0):
        table.add_row("  files of earlier rows removed", str(report.removed))
    if report.targets_available or report.noises_available:
        table.add_row("candidate targets / noises", f"{report.targets_available} / {report.noises_available}")
    table.add_row("distinct targets / noises used", f"{report.distinct_targets} / {report.distinct_noises}")
    for reason, count in report.skipped.items():
        table.add_row(f"skipped: {reason}", str(count))
    if getattr(report, "derived_rows", 0):
        table.add_row("rows resting on derived labels", str(report.derived_rows))
    if getattr(report, "active_quartiles", None):
        q1, q2, q3 = report.active_quartiles
        table.add_row("target active share (quartiles)", f"{q1:.0%} / {q2:.0%} / {q3:.0%}")
        table.add_row("  rows with target under half active", str(report.low_active_rows))
        table.add_row("  floor on active target time (s)", f"{report.min_active:g}")
    for kind, counts in (("zero-padded (clip shorter than --duration)", getattr(report, "padded", {})),
                         ("cut from a longer clip", getattr(report, "cropped", {}))):
        if any(counts.values()):
            table.add_row(f"rows {kind}: target / noise", f"{counts.get('target', 0)} / {counts.get('noise', 0)}")
    if getattr(report, "snr_active_median_gap", None) is not None:
        table.add_row("SNR over active target frames minus SNR (median dB)", f"{report.snr_active_median_gap:+.1f}")
    table.add_row("failures", str(len(report.failures)))
    table.add_row("hours of audio", f"{report.audio_seconds / 3600:.3f}")
    table.add_row("seconds", f"{report.seconds:.1f}")
    con.print(table)
    if report.snr_histogram:
        con.print(snr_histogram_text(report.snr_histogram))
    pool = getattr(report, "pool", None)
    if pool is not None and pool.used:
        con.print("clips used: " + "; ".join(
            f"{corpus} (" + ", ".join(f"{split} {n}" for split, n in splits.items()) + ")"
            for corpus, splits in pool.used.items()))
    con.print(f"{report.split_dir.name}: {report.csv_path}")
    if report.official_csv:
        con.print(f"organizers' CSV: {report.official_csv}")
    if report.without_noise:
        shown = ", ".join(report.without_noise[:5]) + (" ..." if len(report.without_noise) > 5 else "")
        con.print(f"  note: {len(report.without_noise)} target(s) have no noise sharing no class with them: {shown}")
    for note in report.notes:
        con.print(f"  note: {note}")
    for warning in getattr(report, "warnings", []):
        con.print(f"  warning: {warning}")
    print_failures(con, report.failures, report.split_dir / "failures.csv")


def snr_histogram_text(histogram: dict[int, int], max_bins: int = 16, width: int = 40) -> str:
    """Rows ``[lo, hi) dB  count  bar``, 1 dB bins merged so that at most ``max_bins`` rows show."""
    lo, hi = min(histogram), max(histogram)
    step = max(1, -(-(hi - lo + 1) // max_bins))
    bins = []
    for start in range(lo, hi + 1, step):
        bins.append((start, start + step, sum(histogram.get(k, 0) for k in range(start, start + step))))
    top = max(c for _, _, c in bins) or 1
    lines = ["SNR histogram (dB):"]
    for a, b, c in bins:
        label = f"{a:>4d}" if step == 1 else f"[{a}, {b})"
        lines.append(f"  {label:>10}  {c:>6d}  " + "#" * max(1 if c else 0, round(width * c / top)))
    return "\n".join(lines)
