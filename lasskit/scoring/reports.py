"""Writing results: ``scores.csv``, ``summary.json``, breakdown CSVs, comparisons and plots."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from lasskit.atomic import atomic_path, write_text_if_changed
from lasskit.failures import write_failures
from lasskit.scoring.stats import summarize
from lasskit.scoring.types import Comparison, ScoreOptions, SplitScores


def _summary(result: SplitScores, options: ScoreOptions) -> dict:
    return {
        "model": result.model,
        "split": result.split,
        "count": result.count,
        "metrics": {m: summarize(v, seed=options.seed, resamples=options.resamples) for m, v in result.values.items()},
        "missing": len(result.missing),
        "trimmed": result.trimmed,
        "failed": len(result.failures),
        "bootstrap": {"seed": options.seed, "resamples": options.resamples, "method": "percentile"},
    }


def _num(x: float) -> str:
    return repr(float(x)) if math.isfinite(x) else ""


def _json_safe(obj):
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def scores_csv(result: SplitScores) -> str:
    """scores.csv text: mixture, query, snr, sdr, sdri, si_sdr[, bss_sdr] (dB, round-trip floats)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    metrics = list(result.values)
    w.writerow(["mixture", "query", "snr", *metrics])
    for i, name in enumerate(result.names):
        w.writerow([name, result.queries[i], result.snrs[i], *(_num(result.values[m][i]) for m in metrics)])
    return buf.getvalue()


def _rows_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: _num(v) if isinstance(v, float) else v for k, v in r.items()})
    return buf.getvalue()


def write_results(result: SplitScores, options: ScoreOptions) -> None:
    """Write scores.csv, summary.json, breakdown CSVs, failures and plots into ``result.out_dir``."""
    out = result.out_dir
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "scores.csv", out / "summary.json"]
    write_text_if_changed(files[0], scores_csv(result))
    write_text_if_changed(files[1], json.dumps(_json_safe(result.summary), indent=2) + "\n")
    for by, rows in result.breakdowns.items():
        path = out / f"scores_by_{by}.csv"
        write_text_if_changed(path, _rows_csv(rows))
        files.append(path)
    failures_path = write_failures(out / "score_failures.csv", result.failures, first_column="mixture")
    if failures_path:
        files.append(failures_path)
    if options.plot:
        files += plot_scores(result, out)
    result.files = files


def write_comparison(comparison: Comparison, out_dir: Path, options: ScoreOptions) -> Path:
    """``compare_<other>.json`` in ``out_dir``."""
    path = out_dir / f"compare_{comparison.other}.json"
    data = {
        "model": comparison.model, "other": comparison.other, "split": comparison.split,
        "count": comparison.count, "difference": "model - other (dB), paired per mixture",
        "metrics": comparison.metrics, "only_in_model": comparison.only_in_model,
        "only_in_other": comparison.only_in_other,
        "bootstrap": {"seed": options.seed, "resamples": options.resamples, "method": "percentile"},
    }
    write_text_if_changed(path, json.dumps(_json_safe(data), indent=2) + "\n")
    comparison.path = path
    return path


def plot_scores(result: SplitScores, out_dir: Path) -> list[Path]:
    """``sdri_hist.png`` (SDRi histogram) and ``sdri_vs_snr.png`` (SDRi against input SNR)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    sdri = result.values["sdri"]
    title = f"{result.model} on {result.split} ({result.count} mixtures)"
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.hist(sdri, bins=40, color="tab:blue", alpha=0.8)
    if len(sdri):
        ax.axvline(float(np.mean(sdri)), color="k", linestyle="--", label=f"mean {np.mean(sdri):.2f} dB")
        ax.legend()
    ax.set(xlabel="SDRi (dB)", ylabel="mixtures", title=title)
    written.append(_save(fig, out_dir / "sdri_hist.png"))
    plt.close(fig)
    snr = np.array([float(s) if _is_number(s) else math.nan for s in result.snrs])
    if np.isfinite(snr).any():
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.scatter(snr, sdri, s=12, alpha=0.5, label="mixtures")
        # mean per 1 dB bin (the organizers' integer SNRs each get their own point)
        finite = np.isfinite(snr)
        bins = np.round(snr[finite])
        levels = np.unique(bins)
        ax.plot(levels, [np.mean(sdri[finite][bins == v]) for v in levels], color="k", marker="o",
                markersize=3, label="mean per 1 dB of input SNR")
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set(xlabel="input SNR (dB)", ylabel="SDRi (dB)", title=title)
        ax.legend()
        written.append(_save(fig, out_dir / "sdri_vs_snr.png"))
        plt.close(fig)
    else:
        result.notes.append("no input SNRs in this split: sdri_vs_snr.png not drawn")
    return written


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    return path
