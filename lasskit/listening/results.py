"""Results of a listening test: rater quality control, system means with intervals, the ranking.

Ratings used: each answer ``(rater, item, system, rel, ovl)``; its score is ``(rel + ovl) / 2``,
the challenge's ranking score. Hidden repeats serve quality control only; the means use each
rater's first answer to a stimulus. The anchor (the unprocessed mixture, system ``mixture``) gets
a row of its own and takes no part in the ranking.

Quality control, per rater (:class:`QCRule` holds the thresholds):

- consistency: over the hidden repeats, ``mean(|rel - rel0| + |ovl - ovl0|) / 2`` against the
  first answer to the same stimulus; flagged above ``max_repeat_diff`` (1.25 points; answering at
  random gives 1.6 on average) when the rater
  answered at least ``min_repeats`` (3) repeats;
- agreement: Pearson's correlation between the rater's scores and the mean score of the other
  raters on the same stimuli (leave-one-out); flagged below ``min_agreement`` (0.3) over at least
  ``min_shared`` (6) shared stimuli;
- anchor: the rater's mean REL of the panel's best system (highest mean score over all raters)
  minus their mean REL of the mixture, over the items where they rated both; flagged at or below
  ``max_anchor_gap`` (0.0: the mixture judged as relevant as the best separation) when the
  panel's median gap is at least ``min_panel_gap`` (1.0), i.e. when the panel clearly hears the
  difference, over at least ``min_anchor_items`` (2) items;
- no variation: every score the same over at least ``min_shared`` answers;
- gold: any answer to a known-answer screen outside its allowed REL range; trap: any answer to the
  trapping screen other than the number it asks for; headphones: the rater's headphone check
  failed (see :mod:`lasskit.listening.qc`; raters without a check, e.g. imported ones, are not
  judged on it);
- listening time: an answer is *fast* when the rater listened for less than the clip's length
  (less 0.25 s) before answering (``listened_ms``; webMUSHRA's ``rating_time`` for imports);
  flagged when more than ``max_fast_share`` (0.2) of at least ``min_fast_answers`` (3) timed
  answers are fast. Fast answers are also counted per item.

A rater is flagged when any rule fires; ``exclude`` names the rules whose flags exclude the rater
(default: every rule). The results are given with all raters and without the excluded ones, and
the raters excluded by each rule are listed.

Intervals: a two-way percentile bootstrap over items and raters. Draw ``b`` picks ``I`` items
and ``R`` raters with replacement (multiplicities ``w_i``, ``v_r``, from
``numpy.random.default_rng(seed)``); a system's mean in that draw is
``sum(w_i v_r x_ir) / sum(w_i v_r)`` over its answers (a draw where the sum is 0 is left out and
counted). The 95 % interval is the 2.5th and 97.5th percentile of the draws. The same draws
serve every system, so the ranking's certainty is the share of draws in which it holds: the whole
order, each adjacent pair, and each system's share of draws in first place.

CLAP: when ``exp/<system>/<split>/scores.csv`` has CLAP columns (``clap``, ``clap_gain``, any
``clap*`` but ``clap_mixture``), Spearman's rho between the column and the mean REL of each
(item, system) over the kept raters, over the systems' stimuli (not the anchor), and between the
systems' mean CLAP and mean REL when there are at least three systems. Absent columns are
reported as absent.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from lasskit.atomic import write_text
from lasskit.errors import UsageError
from lasskit.listening.layout import ANCHOR, ListenSpec
from lasskit.scoring.reports import _json_safe


RULES = ("consistency", "agreement", "anchor", "no_variation", "gold", "trap", "headphones", "fast")
FAST_TOLERANCE_MS = 250


@dataclass
class QCRule:
    max_repeat_diff: float = 1.25
    min_repeats: int = 3
    min_agreement: float = 0.3
    min_shared: int = 6
    max_anchor_gap: float = 0.0
    min_panel_gap: float = 1.0
    min_anchor_items: int = 2
    max_fast_share: float = 0.2
    min_fast_answers: int = 3
    exclude: tuple[str, ...] = RULES

    def describe(self) -> str:
        return (f"flagged when any holds: consistency (mean repeat difference > {self.max_repeat_diff}, "
                f">= {self.min_repeats} repeats); agreement (correlation with the other raters < {self.min_agreement}, "
                f">= {self.min_shared} shared stimuli); anchor (REL(best system) - REL(mixture) <= {self.max_anchor_gap} "
                f"while the panel's median gap >= {self.min_panel_gap}, >= {self.min_anchor_items} items); "
                f"no_variation (the same score everywhere, >= {self.min_shared} answers); gold (a known-answer "
                f"screen answered outside its range); trap (the trapping screen answered wrongly); headphones "
                f"(headphone check failed); fast (> {100 * self.max_fast_share:.0f}% of answers given before the "
                f"clip's length was heard, >= {self.min_fast_answers} answers); excluding: "
                f"{', '.join(self.exclude) if self.exclude else 'none'}")


@dataclass
class Results:
    test: str
    rule: QCRule
    raters: list[dict]
    flagged: list[str]  # raters excluded (a rule in rule.exclude fired)
    systems_all: list[dict]
    systems_kept: list[dict]
    ranking_all: dict
    ranking_kept: dict
    clap: dict
    counts: dict
    ratings: list[dict] = field(repr=False, default_factory=list)
    files: list[Path] = field(default_factory=list)
    by_rule: dict[str, list[str]] = field(default_factory=dict)  # rule -> raters it flags
    fast_by_item: list[dict] = field(default_factory=list)


def _nanmean(x) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(np.mean(x)) if len(x) else math.nan


def _pearson(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 2:
        return math.nan
    a, b = a - a.mean(), b - b.mean()
    den = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else math.nan


def spearman(a, b) -> float:
    """Spearman's rho: Pearson's correlation of the average ranks (ties share their mean rank)."""
    import pandas as pd

    if len(a) < 3:
        return math.nan
    return _pearson(pd.Series(a, dtype=float).rank().to_numpy(), pd.Series(b, dtype=float).rank().to_numpy())


def rating_rows(spec: ListenSpec, raw: list[dict]) -> list[dict]:
    """Answers joined with their item, system, mixture and query."""
    table = spec.stimulus_table()
    seconds = spec.stimulus_seconds()
    out = []
    for r in raw:
        s = table.get(r["stimulus"])
        if s is None:  # a stimulus of an older layout: cannot be attributed
            continue
        out.append({
            "rater": r["rater"], "source": r.get("source", "web"), "position": r["position"],
            "item": s["item"], "mixture": s["mixture"], "query": s["query"], "system": s["system"],
            "stimulus": r["stimulus"], "repeat": int(r["repeat"]), "rel": int(r["rel"]), "ovl": int(r["ovl"]),
            "score": (int(r["rel"]) + int(r["ovl"])) / 2, "listened_ms": r.get("listened_ms"),
            "created": r.get("created", ""), "fast": _fast(r.get("listened_ms"), seconds.get(r["stimulus"])),
        })
    return out


def _fast(listened_ms, seconds) -> int | str:
    """1 when the answer came after less listening than the clip lasts, 0 when not, "" unknown."""
    if listened_ms is None or not seconds:
        return ""
    return int(int(listened_ms) < 1000 * float(seconds) - FAST_TOLERANCE_MS)


def qc_answers(spec: ListenSpec, raw: list[dict]) -> list[dict]:
    """The answers to gold and trapping screens, judged: ``{rater, rule, stimulus, rel, ovl, passed}``."""
    from lasskit.listening.qc import judge

    qc = spec.data.get("qc", {})
    out = []
    for r in raw:
        verdict = judge(qc, r["stimulus"], int(r["rel"]), int(r["ovl"]))
        if verdict is not None:
            out.append({"rater": r["rater"], "rule": verdict[0], "stimulus": r["stimulus"], "rel": int(r["rel"]),
                        "ovl": int(r["ovl"]), "passed": int(verdict[1])})
    return out


def rater_qc(rows: list[dict], systems: list[str], rule: QCRule, qc_rows: list[dict] | None = None,
             checks: list[dict] | None = None) -> list[dict]:
    """Per-rater statistics and flags (see the module docstring)."""
    qc_rows, checks = qc_rows or [], checks or []
    primary = [r for r in rows if not r["repeat"]]
    raters = sorted({r["rater"] for r in rows} | {q["rater"] for q in qc_rows})
    headphones = {c["rater"]: c["passed"] for c in checks if c["kind"] == "headphones"}
    # panel means per stimulus and the panel's best system
    by_stim: dict[str, list[tuple[str, float]]] = {}
    for r in primary:
        by_stim.setdefault(r["stimulus"], []).append((r["rater"], r["score"]))
    sys_scores = {s: _nanmean([r["score"] for r in primary if r["system"] == s]) for s in systems if s != ANCHOR}
    sys_scores = {s: v for s, v in sys_scores.items() if math.isfinite(v)}
    best = max(sys_scores, key=lambda s: (sys_scores[s], s)) if sys_scores else None
    stats = []
    for rater in raters:
        mine = [r for r in rows if r["rater"] == rater]
        first = {r["stimulus"]: r for r in mine if not r["repeat"]}
        diffs = [(abs(r["rel"] - first[r["stimulus"]]["rel"]) + abs(r["ovl"] - first[r["stimulus"]]["ovl"])) / 2
                 for r in mine if r["repeat"] and r["stimulus"] in first]
        own, others = [], []
        for sid, r in first.items():
            rest = [v for who, v in by_stim.get(sid, []) if who != rater]
            if rest:
                own.append(r["score"])
                others.append(float(np.mean(rest)))
        gaps = []
        if best is not None:
            per_item: dict[str, dict[str, int]] = {}
            for r in first.values():
                per_item.setdefault(r["item"], {})[r["system"]] = r["rel"]
            gaps = [v[best] - v[ANCHOR] for v in per_item.values() if best in v and ANCHOR in v]
        scores = [r["score"] for r in first.values()]
        listened = [r["listened_ms"] for r in mine if r["listened_ms"] is not None]
        timed = [r["fast"] for r in mine if r["fast"] != ""]
        golds = [q["passed"] for q in qc_rows if q["rater"] == rater and q["rule"] == "gold"]
        traps = [q["passed"] for q in qc_rows if q["rater"] == rater and q["rule"] == "trap"]
        stats.append({
            "gold_answers": len(golds), "gold_failed": len(golds) - sum(golds),
            "trap_answers": len(traps), "trap_failed": len(traps) - sum(traps),
            "headphones": {1: "passed", 0: "failed"}.get(headphones.get(rater), ""),
            "timed": len(timed), "fast": sum(timed), "fast_share": sum(timed) / len(timed) if timed else math.nan,
            "rater": rater, "source": mine[0]["source"] if mine else "", "answers": len(mine),
            "primary": len(first), "mean_rel": _nanmean([r["rel"] for r in first.values()]),
            "mean_ovl": _nanmean([r["ovl"] for r in first.values()]),
            "std_score": float(np.std(scores, ddof=1)) if len(scores) > 1 else math.nan,
            "repeats": len(diffs), "repeat_diff": _nanmean(diffs),
            "shared": len(own), "agreement": _pearson(own, others) if len(own) >= 3 else math.nan,
            "anchor_items": len(gaps), "anchor_gap": _nanmean(gaps),
            "median_listen_s": float(np.median(listened)) / 1000 if listened else math.nan,
        })
    gaps = [s["anchor_gap"] for s in stats if s["anchor_items"] >= rule.min_anchor_items and math.isfinite(s["anchor_gap"])]
    panel_gap = float(np.median(gaps)) if gaps else math.nan
    for s in stats:
        reasons: dict[str, str] = {}
        if s["repeats"] >= rule.min_repeats and s["repeat_diff"] > rule.max_repeat_diff:
            reasons["consistency"] = f"inconsistent (repeats differ by {s['repeat_diff']:.2f})"
        if s["shared"] >= rule.min_shared and math.isfinite(s["agreement"]) and s["agreement"] < rule.min_agreement:
            reasons["agreement"] = f"disagrees with the panel (r = {s['agreement']:.2f})"
        if (s["anchor_items"] >= rule.min_anchor_items and math.isfinite(panel_gap) and panel_gap >= rule.min_panel_gap
                and s["anchor_gap"] <= rule.max_anchor_gap):
            reasons["anchor"] = f"mixture rated as relevant as the best system (gap {s['anchor_gap']:.2f}, panel {panel_gap:.2f})"
        if s["primary"] >= rule.min_shared and s["std_score"] == 0:
            reasons["no_variation"] = "the same score for everything"
        if s["gold_failed"]:
            reasons["gold"] = f"failed {s['gold_failed']} of {s['gold_answers']} known-answer screens"
        if s["trap_failed"]:
            reasons["trap"] = "answered the trapping screen wrongly"
        if s["headphones"] == "failed":
            reasons["headphones"] = "failed the headphone check"
        if s["timed"] >= rule.min_fast_answers and s["fast_share"] > rule.max_fast_share:
            reasons["fast"] = f"{s['fast']} of {s['timed']} answers before the clip's length was heard"
        s["panel_anchor_gap"] = panel_gap
        s["rules"] = ",".join(reasons)
        s["flagged"] = bool(reasons)
        s["excluded"] = any(k in rule.exclude for k in reasons)
        s["reasons"] = "; ".join(reasons.values())
    return stats


def bootstrap_systems(rows: list[dict], systems: list[str], *, seed: int = 0, resamples: int = 1000) -> tuple[list[dict], dict]:
    """Per system means and 95 % intervals of rel, ovl and score, and the ranking's certainty."""
    primary = [r for r in rows if not r["repeat"]]
    items = sorted({r["item"] for r in primary})
    raters = sorted({r["rater"] for r in primary})
    item_ix = {k: i for i, k in enumerate(items)}
    rater_ix = {k: i for i, k in enumerate(raters)}
    rng = np.random.default_rng(seed)
    if items and raters:
        w = rng.multinomial(len(items), np.full(len(items), 1 / len(items)), size=resamples).astype(np.float64)
        v = rng.multinomial(len(raters), np.full(len(raters), 1 / len(raters)), size=resamples).astype(np.float64)
    out, draws = [], {}
    for system in systems:
        mine = [r for r in primary if r["system"] == system]
        row = {"system": system, "anchor": system == ANCHOR, "ratings": len(mine),
               "items": len({r["item"] for r in mine}), "raters": len({r["rater"] for r in mine})}
        for metric in ("rel", "ovl", "score"):
            x = np.array([r[metric] for r in mine], dtype=np.float64)
            row[metric] = _nanmean(x)
            if len(x) == 0:
                row[f"{metric}_ci95"] = [math.nan, math.nan]
                continue
            weights = w[:, [item_ix[r["item"]] for r in mine]] * v[:, [rater_ix[r["rater"]] for r in mine]]
            total = weights.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                means = np.where(total > 0, weights @ x / np.where(total > 0, total, 1), np.nan)
            row[f"{metric}_ci95"] = [float(q) for q in np.nanpercentile(means, [2.5, 97.5])]
            row["empty_draws"] = int(np.isnan(means).sum())
            if metric == "score":
                draws[system] = means
        out.append(row)
    ranked = sorted((r for r in out if not r["anchor"] and r["ratings"]), key=lambda r: (-r["score"], r["system"]))
    order = [r["system"] for r in ranked]
    ranking: dict = {"order": order, "resamples": resamples, "pairs": [], "first": {}, "holds": math.nan}
    if order:
        m = np.stack([draws[s] for s in order])  # systems x draws
        ok = ~np.isnan(m).any(axis=0)
        m = m[:, ok]
        if m.shape[1]:
            ranking["holds"] = float(np.mean(np.all(m[:-1] > m[1:], axis=0))) if len(order) > 1 else 1.0
            best = m == m.max(axis=0)  # systems tied for first in a draw share it
            share = best / best.sum(axis=0)
            ranking["first"] = {s: float(np.mean(share[i])) for i, s in enumerate(order)}
            ranking["pairs"] = [{"better": order[i], "worse": order[i + 1], "share": float(np.mean(m[i] > m[i + 1]))}
                                for i in range(len(order) - 1)]
    for rank, system in enumerate(order, start=1):
        next(r for r in out if r["system"] == system)["rank"] = rank
    return out, ranking


def clap_agreement(spec: ListenSpec, workspace_root: Path | None, rows: list[dict]) -> dict:
    """Spearman between CLAP columns of the systems' scores.csv and REL (see the docstring)."""
    import pandas as pd

    if workspace_root is None:
        return {"available": False, "note": "no workspace"}
    primary = [r for r in rows if not r["repeat"] and r["system"] != ANCHOR]
    rel: dict[tuple[str, str], list[int]] = {}
    for r in primary:
        rel.setdefault((r["system"], r["mixture"]), []).append(r["rel"])
    values: dict[str, dict[tuple[str, str], float]] = {}
    missing = []
    for system in spec.data["systems"]:
        path = Path(workspace_root) / "exp" / system / spec.data["split"] / "scores.csv"
        if not path.is_file():
            missing.append(system)
            continue
        try:
            frame = pd.read_csv(path, dtype={"mixture": str})
        except Exception:
            missing.append(system)
            continue
        cols = [c for c in frame.columns if str(c).lower().startswith("clap") and str(c).lower() != "clap_mixture"]
        if "mixture" not in frame.columns or not cols:
            missing.append(system)
            continue
        for c in cols:
            col = pd.to_numeric(frame[c], errors="coerce")
            for mix, val in zip(frame["mixture"], col):
                if math.isfinite(val):
                    values.setdefault(c, {})[(system, mix)] = float(val)
    if not values:
        return {"available": False, "note": "no CLAP columns in exp/<system>/<split>/scores.csv "
                                            "(run `lasskit score` with CLAP to add them)", "missing": missing}
    out = {"available": True, "missing": missing, "columns": {}}
    for c, vals in sorted(values.items()):
        keys = [k for k in sorted(rel) if k in vals]
        x = [vals[k] for k in keys]
        y = [float(np.mean(rel[k])) for k in keys]
        entry = {"stimuli": len(keys), "spearman_stimuli": spearman(x, y)}
        sys_names = sorted({k[0] for k in keys})
        if len(sys_names) >= 3:
            sx = [float(np.mean([vals[k] for k in keys if k[0] == s])) for s in sys_names]
            sy = [float(np.mean([v for k in keys if k[0] == s for v in rel[k]])) for s in sys_names]
            entry["spearman_systems"] = spearman(sx, sy)
        entry["systems"] = len(sys_names)
        out["columns"][c] = entry
    return out


def compute_results(spec: ListenSpec, raw: list[dict], *, workspace_root: Path | None = None,
                    rule: QCRule | None = None, seed: int = 0, resamples: int = 1000,
                    checks: list[dict] | None = None) -> Results:
    """Everything ``lasskit listen results`` reports, from the raw answers."""
    rule = rule or QCRule()
    if resamples < 10:
        raise UsageError(f"--resamples {resamples}: use at least 10")
    rows = rating_rows(spec, raw)
    qc_rows = qc_answers(spec, raw)
    systems = spec.systems
    qc = rater_qc(rows, systems, rule, qc_rows, checks)
    flagged = [s["rater"] for s in qc if s["excluded"]]
    by_rule = {k: [s["rater"] for s in qc if k in s["rules"].split(",")] for k in RULES}
    kept_rows = [r for r in rows if r["rater"] not in set(flagged)]
    fast_items: dict[str, list[int]] = {}
    for r in rows:
        if r["fast"] != "":
            fast_items.setdefault(r["item"], []).append(r["fast"])
    fast_by_item = [{"item": k, "timed": len(v), "fast": sum(v)} for k, v in sorted(fast_items.items())]
    sys_all, rank_all = bootstrap_systems(rows, systems, seed=seed, resamples=resamples)
    sys_kept, rank_kept = bootstrap_systems(kept_rows, systems, seed=seed, resamples=resamples)
    counts = {"answers": len(rows), "raters": len(qc), "flagged": len(flagged),
              "flagged_any": sum(s["flagged"] for s in qc), "qc_answers": len(qc_rows),
              "unattributed": len(raw) - len(rows) - len(qc_rows), "repeats": sum(r["repeat"] for r in rows),
              "fast": sum(r["fast"] == 1 for r in rows), "items": len(spec.items)}
    return Results(spec.name, rule, qc, flagged, sys_all, sys_kept, rank_all, rank_kept,
                   clap_agreement(spec, workspace_root, kept_rows), counts, rows, by_rule=by_rule,
                   fast_by_item=fast_by_item)


# --- writing ----------------------------------------------------------------------------------

def _fmt(x) -> str:
    if isinstance(x, float):
        return "" if not math.isfinite(x) else f"{x:.4f}"
    return str(x)


def _csv(rows: list[dict], columns: list[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([_fmt(r.get(c, "")) for c in columns])
    return buf.getvalue()


def _system_rows(systems: list[dict], raters: str) -> list[dict]:
    out = []
    for s in systems:
        row = {"raters_used": raters, "system": s["system"], "anchor": int(s["anchor"]), "rank": s.get("rank", ""),
               "ratings": s["ratings"], "items": s["items"], "raters": s["raters"]}
        for m in ("rel", "ovl", "score"):
            row[m] = s[m]
            row[f"{m}_lo"], row[f"{m}_hi"] = s[f"{m}_ci95"]
        out.append(row)
    return out




def write_results(res: Results, out_dir: Path, plots: bool = True) -> list[Path]:
    """``ratings.csv``, ``systems.csv``, ``raters.csv``, ``summary.json`` and (``plots``)
    ``systems.png`` and ``rel_vs_ovl.png`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    cols = ["rater", "source", "position", "item", "mixture", "query", "system", "stimulus", "repeat",
            "rel", "ovl", "score", "listened_ms", "fast", "created"]
    files.append(write_text(out_dir / "ratings.csv", _csv(res.ratings, cols)))
    sys_cols = ["raters_used", "system", "anchor", "rank", "ratings", "items", "raters",
                "rel", "rel_lo", "rel_hi", "ovl", "ovl_lo", "ovl_hi", "score", "score_lo", "score_hi"]
    files.append(write_text(out_dir / "systems.csv", _csv(
        _system_rows(res.systems_all, "all") + _system_rows(res.systems_kept, "unflagged"), sys_cols)))
    rater_cols = ["rater", "source", "answers", "primary", "mean_rel", "mean_ovl", "std_score", "repeats",
                  "repeat_diff", "shared", "agreement", "anchor_items", "anchor_gap", "panel_anchor_gap",
                  "median_listen_s", "gold_answers", "gold_failed", "trap_answers", "trap_failed", "headphones",
                  "timed", "fast", "fast_share", "rules", "flagged", "excluded", "reasons"]
    files.append(write_text(out_dir / "raters.csv", _csv(res.raters, rater_cols)))
    summary = {
        "test": res.test, "counts": res.counts, "rule": asdict(res.rule), "rule_text": res.rule.describe(),
        "flagged": res.flagged, "excluded": res.flagged, "by_rule": res.by_rule, "fast_by_item": res.fast_by_item,
        "all_raters": {"systems": res.systems_all, "ranking": res.ranking_all},
        "unflagged_raters": {"systems": res.systems_kept, "ranking": res.ranking_kept},
        "clap": res.clap,
    }
    files.append(write_text(out_dir / "summary.json", json.dumps(_json_safe(summary), indent=1) + "\n"))
    if plots and res.ratings:
        files += plot_results(res, out_dir)
    res.files = files
    return files


def plot_results(res: Results, out_dir: Path) -> list[Path]:
    """Bars of REL, OVL and score per system with 95 % intervals; per-stimulus REL vs OVL."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lasskit.atomic import atomic_path

    def save(fig, path):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
        plt.close(fig)
        return path

    systems = [s for s in res.systems_kept if s["ratings"]]
    fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(systems)), 3.6))
    width = 0.27
    for k, metric in enumerate(("rel", "ovl", "score")):
        xs = np.arange(len(systems)) + (k - 1) * width
        means = np.array([s[metric] for s in systems])
        lo = np.array([s[f"{metric}_ci95"][0] for s in systems])
        hi = np.array([s[f"{metric}_ci95"][1] for s in systems])
        ax.bar(xs, means, width, label={"rel": "REL", "ovl": "OVL", "score": "(REL+OVL)/2"}[metric],
               yerr=np.nan_to_num(np.vstack([means - lo, hi - means])), capsize=3)
    ax.set_xticks(np.arange(len(systems)), [s["system"] for s in systems])
    ax.set_ylim(1, 5)
    ax.set_ylabel("mean rating (95% CI)")
    ax.set_title(f"{res.test}: unflagged raters ({res.counts['raters'] - res.counts['flagged']} of {res.counts['raters']})")
    ax.legend(fontsize=8, loc="upper right")
    paths = [save(fig, out_dir / "systems.png")]

    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    primary = [r for r in res.ratings if not r["repeat"] and r["rater"] not in set(res.flagged)]
    for s in systems:
        per: dict[str, list] = {}
        for r in primary:
            if r["system"] == s["system"]:
                per.setdefault(r["item"], []).append((r["rel"], r["ovl"]))
        pts = np.array([np.mean(v, axis=0) for v in per.values()]) if per else np.zeros((0, 2))
        ax.scatter(pts[:, 0], pts[:, 1], s=14, alpha=0.6, label=s["system"])
    ax.set_xlim(0.8, 5.2)
    ax.set_ylim(0.8, 5.2)
    ax.set_xlabel("REL (mean over raters, per item)")
    ax.set_ylabel("OVL")
    if ax.get_legend_handles_labels()[0]:  # no points (every rater excluded): no legend, no warning
        ax.legend(fontsize=8)
    paths.append(save(fig, out_dir / "rel_vs_ovl.png"))
    return paths


def results_for_test(root: Path, *, workspace_root: Path | None = None, rule: QCRule | None = None,
                     seed: int = 0, resamples: int = 1000, plots: bool = True, out_dir: Path | None = None) -> Results:
    """Read the test's database, compute and write the results (``<test>/results/`` by default)."""
    from lasskit.listening.layout import load_test
    from lasskit.listening.store import Store

    spec = load_test(root)
    if not spec.db_path.is_file():
        raise UsageError(f"{spec.db_path}: no ratings database; serve the test first (`lasskit listen serve {spec.name}`)")
    store = Store(spec)
    raw, checks = store.all_ratings(), store.all_checks()
    if not raw:
        raise UsageError(f"{spec.db_path}: no answers yet; send the raters their links (`lasskit listen raters {spec.name}`)")
    res = compute_results(spec, raw, workspace_root=workspace_root, rule=rule, seed=seed, resamples=resamples,
                          checks=checks)
    write_results(res, out_dir or (Path(root) / "results"), plots=plots)
    return res
