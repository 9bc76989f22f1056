"""``lasskit score``: SDR, SDRi and SI-SDR of separated outputs, as the organizers compute them."""

from __future__ import annotations

import math
from pathlib import Path

import typer

from lasskit.cli.common import JOBS_HELP, check_jobs, clap_weight_options, console, print_failures, workspace

CLAP_OPTIONS = clap_weight_options()


def score(
    ctx: typer.Context,
    split: list[str] = typer.Option(None, "--split", "-s", help="Split(s) to score (repeatable or a,b; default: every split with references)."),
    model: list[str] = typer.Option(None, "--model", "-m", help="Model(s) under exp/ to score (repeatable or a,b; default: all)."),
    estimates: Path = typer.Option(
        None, "--estimates", metavar="DIR",
        help="Score this folder of outputs against --split instead of exp/<model>/<split>; "
             "scores go into DIR unless --out, named after --model or DIR.",
    ),
    out: Path = typer.Option(None, "--out", metavar="DIR", help="Folder for scores.csv and summary.json (one model and split only)."),
    by: list[str] = typer.Option(None, "--by", help="Breakdown(s): snr, label, query_length (repeatable or a,b)."),
    compare: str = typer.Option(None, "--compare", metavar="OTHER_MODEL", help="Paired per-mixture difference against another model's outputs."),
    bss_eval: bool = typer.Option(False, "--bss-eval", help="Also bss_eval v3 SDR (mir_eval, 512-tap filter; slow)."),
    trim: bool = typer.Option(False, "--trim", help="Trim files of different lengths to the shortest (counted) instead of failing."),
    allow_missing: bool = typer.Option(False, "--allow-missing", help="Score the estimates that exist; report how many are missing."),
    plot: bool = typer.Option(False, "--plot", help="Write sdri_hist.png and sdri_vs_snr.png next to the scores."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap confidence intervals."),
    resamples: int = typer.Option(1000, "--resamples", help="Bootstrap resamples for the 95% intervals."),
    jobs: int = typer.Option(None, "--jobs", "-j", help=JOBS_HELP),
    clap: bool = typer.Option(False, "--clap", help="CLAPScore columns on splits with references too, and how well "
                              "the CLAP gain tracks SDRi (splits without references always get them)."),
    clap_path: str = typer.Option("paper", "--clap-path", metavar="PATH", help="paper (the published double-speed "
                                  "input, default) or physical (true 16->48 kHz)."),
    checkpoint: Path = CLAP_OPTIONS[0],
    tokenizer: Path = CLAP_OPTIONS[1],
    device: str = CLAP_OPTIONS[2],
    clap_batch: int = CLAP_OPTIONS[3],
    devices: int = CLAP_OPTIONS[4],
    num_nodes: int = CLAP_OPTIONS[5],
) -> None:
    """Score separated outputs: writes exp/<model>/<split>/scores.csv and summary.json.

    Example: lasskit score --split val_synth --model baseline --by snr --compare passthrough

    Splits without references (eval_real, eval_synth) are scored by CLAPScore (needs the CLAP weights):
    lasskit score --split eval_real --model baseline --compare passthrough

    On 8 GPUs (the CLAP audio embeddings shared, the same bytes as one process):
    lasskit score --split eval_real --model baseline --device cuda --devices 8
    """
    from lasskit.errors import UsageError, WorkError
    from lasskit.scoring import ScoreOptions, score_workspace

    if devices < 1 or num_nodes < 1:
        raise UsageError(f"--devices {devices} --num-nodes {num_nodes}: both must be at least 1")
    ws = workspace(ctx)
    options = ScoreOptions(
        bss_eval=bss_eval, trim=trim, allow_missing=allow_missing, by=tuple(_names(by)), plot=plot,
        jobs=check_jobs(jobs), seed=seed, resamples=resamples, clap=clap, clap_path=clap_path,
        checkpoint=str(checkpoint) if checkpoint else None, tokenizer=str(tokenizer) if tokenizer else None,
        device=device, clap_batch_size=max(1, clap_batch),
    )
    kwargs = dict(splits=_names(split) or None, models=_names(model) or None, estimates=estimates, out=out,
                  compare=compare, options=options)
    from lasskit.distributed import env_shard, run_on
    from lasskit.scoring.run import score_in_group

    shard = env_shard()
    if shard is None and devices * num_nodes > 1:
        run = run_on(score_in_group, devices, num_nodes, workspace=str(ws.root), **kwargs)
    elif shard is not None:  # under torchrun/srun: this process is one rank
        run = score_in_group(str(ws.root), **kwargs)
        if not shard.lead:
            console().print(f"rank {shard.rank}: CLAP audio embeddings shared with rank 0")
            return
    else:
        run = score_workspace(ws, **kwargs)
    if run.targets == 1 and run.errors and not run.results:
        raise run.errors[0][2]
    print_run(run)
    if run.errors:
        raise UsageError(f"{len(run.errors)} model/split pair(s) could not be scored (see the errors above)")
    if run.failed_rows:
        where = ", ".join(str(r.out_dir / "score_failures.csv") for r in run.results if r.failures and r.out_dir)
        raise WorkError(f"{run.failed_rows} mixture(s) could not be scored; see {where}")


def _names(values: list[str] | None) -> list[str]:
    """Repeated options and comma-separated values (``--split a,b``), in order, without repeats."""
    return list(dict.fromkeys(v.strip() for value in values or () for v in str(value).split(",") if v.strip()))


def _ci(stats: dict, digits: int = 2) -> str:
    """``mean`` over ``[lo, hi]`` on two lines (narrow terminals keep the table readable)."""
    mean, (lo, hi) = stats.get("mean"), stats.get("ci95", (None, None))
    if mean is None or mean != mean:
        return "-"
    return f"{mean:.3f}\n[{lo:.{digits}f}, {hi:.{digits}f}]"


def _digits(metric: str) -> int:
    """Decimals of an interval: CLAP scores are cosines (hundredths matter), SDRs dB."""
    return 3 if metric.startswith("clap") else 2


def print_run(run) -> None:
    """The summary table (mean [95% CI] per model and split), breakdowns, comparisons, notes."""
    from rich.markup import escape
    from rich.table import Table

    con = console()
    if run.results:
        metrics = list(dict.fromkeys(m for r in run.results for m in r.summary["metrics"]))
        titles = {"sdr": "SDR", "sdri": "SDRi", "si_sdr": "SI-SDR", "bss_sdr": "bss SDR", "clap": "CLAP",
                  "clap_mixture": "CLAP mix", "clap_gain": "CLAP gain"}
        # missing/trimmed/failed only when some row has them
        counts = [c for c in ("missing", "trimmed", "failed") if any(r.summary[c] for r in run.results)]
        unit = "SDR in dB, CLAP a cosine" if any(m.startswith("clap") for m in metrics) else "in dB"
        table = Table(title=f"lasskit score: mean [95% CI] {unit}")
        for col in ("model", "split", "count", *(titles[m] for m in metrics), *counts):
            table.add_column(col, justify="left" if col in ("model", "split") else "right",
                             min_width=min(len(col), 5) if col != "model" else 8, overflow="fold")
        for r in run.results:
            s = r.summary
            table.add_row(escape(r.model), escape(r.split), str(s["count"]),
                          *(_ci(s["metrics"].get(m, {}), _digits(m)) for m in metrics), *(str(s[c]) for c in counts))
        con.print(table)
    for r in run.results:
        for by, rows in r.breakdowns.items():
            key = "sdri" if "sdri" in r.values else "clap_gain"
            table = Table(title=f"{r.model} on {r.split} by {by} (mean)")
            cols = ["group", "count", *(f"{m}_mean" for m in r.values)]
            for col in cols:
                table.add_column(col.replace("_mean", ""), justify="left" if col == "group" else "right")
            table.add_column(f"{'SDRi' if key == 'sdri' else 'CLAP gain'} 95% CI", justify="right")
            shown, d = rows[:25], _digits(key)
            for row in shown:
                table.add_row(escape(row["group"]), str(row["count"]), *(f"{row[c]:.3f}" for c in cols[2:]),
                              f"[{row[key + '_ci95_low']:.{d}f}, {row[key + '_ci95_high']:.{d}f}]")
            con.print(table)
            if len(rows) > len(shown):
                con.print(f"  ... {len(rows) - len(shown)} more groups in {r.out_dir / f'scores_by_{by}.csv'}")
    for c in run.comparisons:
        unit = "dB; CLAP: cosine" if any(m.startswith("clap") for m in c.metrics) else "dB"
        table = Table(title=f"{c.model} - {c.other} on {c.split}: paired difference over {c.count} mixtures ({unit})")
        for col in ("metric", "mean difference", "95% CI", "improved"):
            table.add_column(col, justify="left" if col == "metric" else "right")
        for m, s in c.metrics.items():
            lo, hi = s["ci95"]
            verdict = " (real gain)" if lo > 0 else " (real loss)" if hi < 0 else " (within noise)"
            d = _digits(m)
            table.add_row(m, f"{s['mean']:+.3f}", f"[{lo:+.{d}f}, {hi:+.{d}f}]{verdict}", f"{100 * s['improved']:.1f}%")
        con.print(table)
        if c.only_in_model or c.only_in_other:
            con.print(f"  note: {c.only_in_model} mixture(s) scored only for {c.model}, "
                      f"{c.only_in_other} only for {c.other}; not compared")
    for r in run.results:
        if r.out_dir is not None:
            con.print(f"{r.model}/{r.split}: {r.out_dir / 'scores.csv'} ({r.seconds:.1f} s)")
        clap = r.summary.get("clap")
        if clap:
            how = "the published double-speed input" if clap["path"] == "paper" else "true-speed 16 -> 48 kHz input"
            con.print(f"  CLAP: {escape(clap['checkpoint'])}, {how} (--clap-path {clap['path']})")
            vs = clap.get("vs_sdri")
            if vs and vs["spearman"] is not None and math.isfinite(vs["spearman"]):
                lo, hi = vs["ci95"]
                con.print(f"  CLAP gain vs SDRi: Spearman rho {vs['spearman']:.3f} [{lo:.2f}, {hi:.2f}] "
                          f"over {vs['count']} mixtures")
        for note in r.notes:
            con.print(f"  note: {escape(note)}")
        print_failures(con, r.failures, r.out_dir / "score_failures.csv")
    for note in run.notes:
        con.print(f"note: {escape(note)}")
    embedded = run.clap_embeddings
    if embedded.get("computed") or embedded.get("cached"):
        ranks = embedded.get("by_rank")
        by_rank = f" ({', '.join(f'rank {r}: {n}' for r, n in enumerate(ranks))})" if ranks else ""
        con.print(f"CLAP audio embeddings: {embedded['computed']} computed{by_rank}, {embedded['cached']} read from "
                  "the disk cache (lasskit.models.embedding_cache)")
    for model, split, exc in run.errors:
        con.print(f"[red]error[/red] {escape(model)}/{escape(split)}: {escape(str(exc))}")
