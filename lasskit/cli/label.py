"""``lasskit label``: derive class labels again for a prepared corpus (no audio is converted)."""

from __future__ import annotations

from pathlib import Path

import typer

from lasskit.cli.common import clap_weight_options, console, typed, workspace

CLAP_OPTIONS = clap_weight_options("With --clap: ")


def label(
    ctx: typer.Context,
    corpus: str = typer.Argument(..., help="Prepared corpus (data/<corpus>), its folder, or its manifest.csv."),
    vocabulary: Path = typer.Option(None, "--vocabulary", help="FSD50K's vocabulary.csv (default: the one under "
                                    "paths.fsd50k in lasskit.yaml)."),
    ontology: Path = typer.Option(None, "--ontology", help="AudioSet ontology.json: AudioSet's names and hierarchy."),
    clap: bool = typer.Option(False, "--clap", help="Then tag the clips still without labels with CLAP (zero-shot, "
                              "from the audio; label_source clap)."),
    replace_derived: bool = typer.Option(False, "--replace-derived", help="With --clap: CLAP also replaces labels "
                                         "derived from keywords and captions (given labels are never touched)."),
    top_k: int = typer.Option(3, "--top-k", help="With --clap: labels a clip gets, best first."),
    min_score: float = typer.Option(None, "--min-score", help="With --clap: drop classes whose cosine with the "
                                    "clip is below this (sweep it on bench_labels first)."),
    clap_path: str = typer.Option("physical", "--clap-path", metavar="PATH", help="With --clap: physical (true-speed "
                                  "48 kHz input, default) or paper (CLAPScore's double-speed reading)."),
    checkpoint: Path = CLAP_OPTIONS[0],
    tokenizer: Path = CLAP_OPTIONS[1],
    device: str = CLAP_OPTIONS[2],
    clap_batch: int = CLAP_OPTIONS[3],
    devices: int = CLAP_OPTIONS[4],
    num_nodes: int = CLAP_OPTIONS[5],
) -> None:
    """Derive class labels from keywords and captions for the clips without given labels.

    Given labels (and CLAP tags) are kept; labels derived before are derived again, so a new
    vocabulary or ontology takes effect. The manifest is rewritten; the audio is not touched.
    With --clap, the clips still without labels (and those CLAP tagged before, so new weights or
    options take effect) are then tagged from their audio by CLAP against the vocabulary's class
    names (its accuracy is not measured here: see bench_labels).

    Example: lasskit label clotho --ontology ontology.json --clap --min-score 0.2
    (on 8 GPUs: lasskit label wavcaps --clap --device cuda --devices 8)
    """
    from lasskit.errors import UsageError

    clap_options = {"replace_derived": replace_derived, "top_k": top_k != 3, "min_score": min_score is not None,
                    "clap_path": clap_path != "physical", "checkpoint": checkpoint is not None,
                    "tokenizer": tokenizer is not None, "device": device != "auto", "clap_batch": clap_batch != 4,
                    "devices": devices != 1, "num_nodes": num_nodes != 1}
    if not clap and any(given and typed(ctx, name) for name, given in clap_options.items()):  # not lasskit.yaml's
        raise UsageError("--replace-derived, --top-k, --min-score, --clap-path, --checkpoint, --tokenizer, --device, "
                         "--clap-batch, --devices and --num-nodes go with --clap; add --clap or leave them out")
    if clap_batch < 1:
        raise UsageError(f"--clap-batch {clap_batch}: must be at least 1")
    if devices < 1 or num_nodes < 1:
        raise UsageError(f"--devices {devices} --num-nodes {num_nodes}: both must be at least 1")
    if top_k < 1:
        raise UsageError(f"--top-k {top_k}: must be at least 1")
    if clap_path not in ("physical", "paper"):
        raise UsageError(f"--clap-path {clap_path}: must be physical or paper")
    if min_score is not None and not -1.0 <= min_score <= 1.0:
        raise UsageError(f"--min-score {min_score}: a cosine, must be in [-1, 1]")

    ws = workspace(ctx)
    path = Path(corpus)
    if path.is_dir():
        path = path / "manifest.csv"
    elif not path.is_file():
        path = ws.manifest_path(corpus)
    if not path.is_file():
        known = ", ".join(ws.corpora()) or "none yet"
        raise UsageError(f"{corpus}: no prepared corpus (looked for {path}); prepared: {known}")
    from lasskit.distributed import env_shard, run_on
    from lasskit.labels.run import label_corpus

    kwargs = dict(manifest=str(path), vocabulary=vocabulary, ontology=ontology, fsd50k_root=ws.raw_path("fsd50k"),
                  clap=None if not clap else dict(checkpoint=checkpoint, tokenizer=tokenizer, device=device, batch=clap_batch,
                                                  replace_derived=replace_derived, top_k=top_k, min_score=min_score,
                                                  path=clap_path))
    shard = env_shard()
    run = run_on(label_corpus, devices, num_nodes, **kwargs) if shard is None and devices * num_nodes > 1 \
        else label_corpus(**kwargs)
    con = console()
    if run.rank != 0:  # under torchrun/srun: rank 0 prints the summary
        con.print(f"rank {run.rank}: done (rank 0 writes the manifest and prints the summary)")
        return
    report = run.report
    con.print(f"{path}: {report.clips} clip(s); " + report.notes()[0].removeprefix("labels: "))
    if run.clap_done is not None:
        floor = f", min score {min_score}" if min_score is not None else ""
        ranks = f" ({', '.join(f'rank {r}: {n}' for r, n in enumerate(run.by_rank))})" if run.by_rank and run.world > 1 else ""
        con.print(f"CLAP ({run.checkpoint}): {run.clap_done} clip(s) tagged (top {top_k}{floor}, --clap-path "
                  f"{clap_path}); {run.without} clip(s) without labels; audio embeddings: "
                  f"{sum(run.by_rank)} computed{ranks}, {run.cached} read from the disk cache")
    con.print("manifest rewritten" if run.written else "manifest unchanged")
