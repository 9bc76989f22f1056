"""``lasskit listen``: the challenge's listening test (REL and OVL) on a team's own systems."""

from __future__ import annotations

from pathlib import Path

import typer

from lasskit.cli.common import check_range, console, workspace

app = typer.Typer(
    help="Run the challenge's REL/OVL listening test on your systems' outputs, in a browser.\n\n"
         "Example: lasskit listen create --split eval_real --models base,mine --name t1 --items 40 "
         "&& lasskit listen serve t1 && lasskit listen results t1",
    no_args_is_help=True,
)


def _names(values: list[str] | None) -> list[str]:
    return list(dict.fromkeys(v.strip() for value in values or () for v in str(value).split(",") if v.strip()))


def _test(ctx: typer.Context, test: str) -> Path:
    from lasskit.listening.layout import resolve_test

    return resolve_test(test, workspace(ctx))


@app.command("create")
def create(
    ctx: typer.Context,
    split: str = typer.Option(..., "--split", "-s", help="Split whose outputs are rated (e.g. eval_real)."),
    models: list[str] = typer.Option(..., "--models", "-m", help="Systems under exp/<model>/<split>/ (repeatable or a,b,c)."),
    name: str = typer.Option(..., "--name", help="Test name: the test lives in <workspace>/listen/NAME/."),
    items: int = typer.Option(None, "--items", help="Rate this many items, a seeded sample stratified over recordings (default: all)."),
    raters_per_item: int = typer.Option(3, "--raters-per-item", help="Raters who rate each item."),
    raters: int = typer.Option(None, "--raters", help="Raters to register now (default: --raters-per-item); each rates items*k/raters items."),
    repeats: int = typer.Option(None, "--repeats", help="Hidden repeats per rater (default: 10% of their screens, at least 2)."),
    no_anchor: bool = typer.Option(False, "--no-anchor", help="Do not rate the unprocessed mixture as an anchor."),
    scales: Path = typer.Option(None, "--scales", metavar="FILE", help="YAML/JSON replacing the raters' wording (title, instructions, rel, ovl)."),
    target_lufs: float = typer.Option(-23.0, "--target-lufs", help="Loudness of the playback copies (K-weighted LUFS)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the item sample, hidden ids and rater orders."),
    force: bool = typer.Option(False, "--force", help="Replace an existing test of this name (its ratings are lost)."),
    gold: int = typer.Option(2, "--gold", help="Known-answer (gold) screens in every rater's session (0: none)."),
    no_trap: bool = typer.Option(False, "--no-trap", help="No trapping screen (an audible 'count the beeps' instruction)."),
    no_headphone_check: bool = typer.Option(False, "--no-headphone-check", help="No volume/headphone check page."),
    training: str = typer.Option("auto", "--training", metavar="auto|none|FILE",
                                 help="Training page: lasskit's proposed anchors (auto), none, or a CSV audio,query,aspect,level,note."),
) -> None:
    """Lay out a test: items, loudness-matched playback copies, hidden names, raters and their links.

    Example: lasskit listen create --split eval_real --models baseline,mine --name t1 --items 40 --raters 6
    """
    from lasskit.listening.layout import create_test

    check_range("--items", items, 1)
    check_range("--raters-per-item", raters_per_item, 1)
    check_range("--raters", raters, 1)
    check_range("--repeats", repeats, 0)
    check_range("--target-lufs", target_lufs, -60.0, -10.0)
    check_range("--seed", seed, 0)
    check_range("--gold", gold, 0, 20)
    if training not in ("auto", "none") and not Path(training).is_file():
        from lasskit.cli.common import option_error

        raise option_error("--training", training, "no such file", "pass auto, none or a CSV file of examples")
    r = create_test(workspace(ctx), split, _names(models), name, items=items, raters_per_item=raters_per_item,
                    raters=raters, repeats=repeats, seed=seed, anchor=not no_anchor, scales_file=scales,
                    target_lufs=target_lufs, force=force, gold=gold, trap=not no_trap,
                    headphone_check=not no_headphone_check, training=None if training == "none" else training)
    con = console()
    con.print(f"created {r.root}: {r.items} items x {len(r.systems)} systems ({', '.join(r.systems)}) = "
              f"{r.stimuli} stimuli at {r.target_lufs:g} LUFS; {r.raters} raters", soft_wrap=True, markup=False)
    if r.limited:
        worst = max(s for _, s in r.limited)
        con.print(f"  {len(r.limited)} copies are quieter than the target (peak limit; up to {worst:.1f} LU); see stimuli.csv")
    if r.silent:
        con.print(f"  {len(r.silent)} silent copies (left as they are); see stimuli.csv")
    if r.length_differs:
        con.print(f"  {len(r.length_differs)} output(s) differ in length from their mixture by more than 10 ms "
                  f"({', '.join(r.length_differs[:3])}{' ...' if len(r.length_differs) > 3 else ''}): rated as they "
                  "are, each timed by its own length; see stimuli.csv (a cut or padded output?)", markup=False)
    if r.links:
        from lasskit.listening.layout import load_test
        from lasskit.listening.store import Store

        first = Store(load_test(r.root)).state(r.links[0][1])
        con.print(f"  each rater: about {first['total']} screens, {first['minutes_left']} minutes "
                  "(checks and training included)")
    con.print(f"next: lasskit listen serve {Path(r.root).name}   (prints each rater's link)", markup=False)


@app.command("raters")
def raters(
    ctx: typer.Context,
    test: str = typer.Argument(..., help="Test name (under <workspace>/listen/) or folder."),
    add: int = typer.Option(0, "--add", help="Register this many more raters first."),
    url: str = typer.Option("http://127.0.0.1:8765", "--url", help="Address the raters reach the server at."),
) -> None:
    """List raters, their progress and links (optionally adding raters).

    Example: lasskit listen raters t1 --add 2 --url http://10.0.0.5:8765
    """
    from lasskit.listening.layout import rater_links

    check_range("--add", add, 0)
    if not url.startswith(("http://", "https://")):
        from lasskit.cli.common import option_error

        raise option_error("--url", url, "must start with http:// or https://")
    for r in rater_links(_test(ctx, test), add):
        if r["source"] == "web":
            typer.echo(f"{r['rater']}  {r['answered']:>4}/{r['planned']:<4}  {url.rstrip('/')}/r/{r['token']}")
        else:  # imported: no plan, no link
            typer.echo(f"{r['rater']}  {r['answered']:>4} answers  (imported from {r['source']}: {r['label'].rsplit('#', 1)[0]})")


@app.command("serve")
def serve(
    ctx: typer.Context,
    test: str = typer.Argument(..., help="Test name (under <workspace>/listen/) or folder."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (0.0.0.0: every interface, for a lab network)."),
    port: int = typer.Option(8765, "--port", help="Port to listen on."),
) -> None:
    """Serve the test to raters' browsers until Ctrl-C; answers are saved one by one.

    Example: lasskit listen serve t1 --host 0.0.0.0 --port 8765
    """
    from lasskit.listening.app import serve as run
    from lasskit.listening.layout import load_test
    from lasskit.listening.layout import rater_links

    check_range("--port", port, 0, 65535, what="(0: any free port)")
    root = _test(ctx, test)
    spec = load_test(root)
    links = rater_links(root)

    def ready(base: str) -> None:
        shown = base.replace("0.0.0.0", "<this machine's address>")
        typer.echo(f"serving {spec.name} at {base} (Ctrl-C stops; answers are already saved)")
        for r in links:
            if r["source"] == "web":
                typer.echo(f"  {r['rater']}  {r['answered']:>4}/{r['planned']:<4}  {shown}/r/{r['token']}")

    try:
        run(spec, host, port, on_ready=ready)
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after shutting down cleanly
        pass
    typer.echo("stopped; every answer received is saved in ratings.sqlite")


@app.command("results")
def results(
    ctx: typer.Context,
    test: str = typer.Argument(..., help="Test name (under <workspace>/listen/) or folder."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    resamples: int = typer.Option(1000, "--resamples", help="Bootstrap draws (items and raters resampled)."),
    no_plots: bool = typer.Option(False, "--no-plots", help="Skip systems.png and rel_vs_ovl.png."),
    max_repeat_diff: float = typer.Option(1.25, "--max-repeat-diff", help="Flag raters whose hidden repeats differ by more (points)."),
    min_agreement: float = typer.Option(0.3, "--min-agreement", help="Flag raters correlating less with the other raters."),
    max_fast_share: float = typer.Option(0.2, "--max-fast-share", help="Flag raters answering more often than this before the clip's length was heard."),
    exclude: str = typer.Option("all", "--exclude", metavar="all|none|RULE,...",
                                help="Rules whose flagged raters are left out of the second ranking: consistency, agreement, "
                                     "anchor, no_variation, gold, trap, headphones, fast."),
) -> None:
    """Means with 95% intervals, the ranking and how sure it is, rater flags, CSVs and plots.

    Example: lasskit listen results t1 --resamples 2000
    """
    from lasskit.listening.results import RULES, QCRule, results_for_test

    check_range("--seed", seed, 0)
    check_range("--max-fast-share", max_fast_share, 0.0, 1.0)
    wanted = RULES if exclude == "all" else () if exclude == "none" else tuple(_names([exclude]))
    unknown = [r for r in wanted if r not in RULES]
    if unknown:
        from lasskit.cli.common import option_error

        raise option_error("--exclude", exclude, f"unknown rule(s) {', '.join(unknown)}",
                           f"use all, none or some of {', '.join(RULES)}")
    check_range("--resamples", resamples, 10)
    check_range("--max-repeat-diff", max_repeat_diff, 0.0)
    check_range("--min-agreement", min_agreement, -1.0, 1.0)
    ws = workspace(ctx)
    root = _test(ctx, test)
    res = results_for_test(root, workspace_root=ws.root, seed=seed, resamples=resamples, plots=not no_plots,
                           rule=QCRule(max_repeat_diff=max_repeat_diff, min_agreement=min_agreement,
                                       max_fast_share=max_fast_share, exclude=wanted))
    print_results(res, root / "results")


def print_results(res, out_dir: Path) -> None:
    from rich.markup import escape
    from rich.table import Table

    con = console()
    c = res.counts
    con.print(f"{res.test}: {c['answers']} answers from {c['raters']} raters ({c['repeats']} hidden repeats, "
              f"{c['qc_answers']} gold/trap answers); {c['flagged_any']} flagged, {c['flagged']} excluded", soft_wrap=True)
    if c["unattributed"]:
        con.print(f"  {c['unattributed']} answers name stimuli no longer in the test and were left out")
    for title, systems, ranking in (("all raters", res.systems_all, res.ranking_all),
                                    ("without excluded raters", res.systems_kept, res.ranking_kept)):
        if title.startswith("without") and not res.flagged:
            continue
        table = Table(title=f"mean [95% CI], {title}")
        for col in ("rank", "system", "REL", "OVL", "(REL+OVL)/2", "first"):
            table.add_column(col, justify="left" if col == "system" else "right")
        for s in sorted(systems, key=lambda s: (s.get("rank", 99), s["system"])):
            def ci(m, s=s):
                lo, hi = s[f"{m}_ci95"]
                return "-" if s[m] != s[m] else f"{s[m]:.2f} [{lo:.2f}, {hi:.2f}]"
            first = ranking["first"].get(s["system"])
            table.add_row(str(s.get("rank", "anchor" if s["anchor"] else "-")), escape(s["system"]), ci("rel"),
                          ci("ovl"), ci("score"), "" if first is None else f"{100 * first:.0f}%")
        con.print(table)
        if len(ranking["order"]) > 1:
            pairs = ", ".join(f"{p['better']} > {p['worse']} in {100 * p['share']:.0f}%" for p in ranking["pairs"])
            con.print(f"  ranking holds in {100 * ranking['holds']:.0f}% of {ranking['resamples']} draws ({pairs})", soft_wrap=True)
    con.print(f"rater flags: {res.rule.describe()}", soft_wrap=True)
    for rule, raters in res.by_rule.items():
        if raters:
            verb = "excluded" if rule in res.rule.exclude else "flagged (kept)"
            con.print(f"  {rule}: {len(raters)} {verb} ({', '.join(raters)})", soft_wrap=True)
    for r in res.raters:
        if r["flagged"]:
            word = "[yellow]excluded[/yellow]" if r["excluded"] else "flagged"
            con.print(f"  {word} {r['rater']}: {escape(r['reasons'])}", soft_wrap=True)
    if c.get("fast"):
        worst = sorted(res.fast_by_item, key=lambda x: (-x["fast"], x["item"]))[:3]
        con.print(f"  {c['fast']} answers came before the clip's length was heard (most: "
                  + ", ".join(f"{x['item']} {x['fast']}/{x['timed']}" for x in worst) + "; see ratings.csv column fast)",
                  soft_wrap=True)
    clap = res.clap
    if clap.get("available"):
        for col, e in clap["columns"].items():
            line = f"CLAP '{col}' vs REL: Spearman {e['spearman_stimuli']:.2f} over {e['stimuli']} stimuli"
            if "spearman_systems" in e:
                line += f", {e['spearman_systems']:.2f} over {e['systems']} system means"
            con.print(line, markup=False)
    else:
        con.print(f"CLAP: {clap.get('note', 'not available')}")
    con.print(f"wrote {', '.join(p.name for p in res.files)} in {out_dir}", soft_wrap=True, markup=False)


@app.command("export-webmushra")
def export_webmushra(
    ctx: typer.Context,
    test: str = typer.Argument(..., help="Test name (under <workspace>/listen/) or folder."),
    out: Path = typer.Option(None, "--out", metavar="DIR", help="Output folder (default: <test>/webmushra)."),
) -> None:
    """Write the test as a webMUSHRA experiment (likert_single_stimulus, two scales) with its audio.

    Example: lasskit listen export-webmushra t1 --out /srv/webMUSHRA
    """
    from lasskit.listening.layout import load_test
    from lasskit.listening.webmushra import export_webmushra as export

    root = _test(ctx, test)
    spec = load_test(root)
    files = export(spec, out or root / "webmushra")
    typer.echo(f"wrote {files[0]} and {len(files) - 1} audio files; copy configs/ into webMUSHRA's root and "
               f"open ?config={files[0].name}; import its results/lasskit_{spec.name}/lss.csv with "
               f"`lasskit listen import-webmushra {spec.name} lss.csv`")


@app.command("import-webmushra")
def import_webmushra(
    ctx: typer.Context,
    test: str = typer.Argument(..., help="Test name (under <workspace>/listen/) or folder."),
    csv_files: list[Path] = typer.Argument(..., metavar="LSS_CSV...", help="webMUSHRA's results/<testId>/lss.csv file(s)."),
) -> None:
    """Add the answers of webMUSHRA result files to the test (one rater per webMUSHRA session).

    Example: lasskit listen import-webmushra t1 results/lasskit_t1/lss.csv
    """
    from lasskit.listening.layout import load_test
    from lasskit.listening.webmushra import import_webmushra as run

    rep = run(load_test(_test(ctx, test)), csv_files)
    typer.echo(f"imported {rep.answers} answers from {len(rep.raters)} raters (one per webMUSHRA session)"
               + (f"; skipped {rep.skipped_na} unanswered (NA) rows" if rep.skipped_na else "")
               + (f"; skipped {rep.skipped_unknown} rows naming stimuli not in this test" if rep.skipped_unknown else "")
               + (f"; {len(rep.already)} sessions were already imported" if rep.already else ""))
    for name, sessions in rep.duplicates.items():
        typer.echo(f"warning: {sessions} sessions give the rater name {name!r}; they are kept as {sessions} "
                   "raters (check whether one person took the test twice)", err=True)
