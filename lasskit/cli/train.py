"""``lasskit train``: train or fine-tune a model on class-disjoint mixtures made on the fly -> exp/train/<name>/."""

from __future__ import annotations

from pathlib import Path

import typer

from lasskit.cli.common import workspace


def train(
    ctx: typer.Context,
    manifests: list[str] = typer.Argument(
        None, metavar="MANIFEST",
        help="More target corpora (names, folders or manifest CSVs), added to --targets."),
    targets: list[str] = typer.Option(None, "--targets", help="Target corpora (repeatable; default: every prepared corpus); "
                                      "CORPUS:WEIGHT draws rows per corpus in those proportions (wavcaps:0.5)."),
    noises: list[str] = typer.Option(None, "--noises", help="Noise corpora (repeatable; default: the targets)."),
    split: list[str] = typer.Option(None, "--split", help="Manifest splits to draw from (repeatable; default: train only)."),
    dataset: list[str] = typer.Option(None, "--dataset", help="Keep clips of this dataset only (repeatable)."),
    ontology: Path = typer.Option(None, "--ontology", help="AudioSet ontology.json: labels are compared with their ancestors."),
    model: str = typer.Option("dcase2024-baseline", "--model", "-m",
                              help="A trainable registered model, module:Class or path/file.py:Class."),
    option: list[str] = typer.Option(None, "--option", "-o", metavar="KEY=VALUE",
                                     help="Model option passed to its constructor (repeatable)."),
    tokenizer: Path = typer.Option(None, "--tokenizer", metavar="DIR", help="Tokenizer folder for the text encoder."),
    init: Path = typer.Option(None, "--init", metavar="FILE",
                              help="Fine-tune: take this checkpoint's weights only (new optimizer; warm-up default 0)."),
    continue_from: Path = typer.Option(None, "--continue-from", metavar="FILE",
                                       help="Continue a Lightning checkpoint's step, optimizer and schedule "
                                            "(e.g. the organizers' baseline) in a new run."),
    name: str = typer.Option(None, "--name", help="Run name: exp/train/<name>/ (default: the model's name)."),
    steps: int = typer.Option(200_000, "--steps", help="Optimizer steps."),
    batch_size: int = typer.Option(16, "--batch-size", "-b", help="Mixtures per device per micro-batch."),
    accumulate: int = typer.Option(1, "--accumulate", help="Micro-batches per optimizer step."),
    lr: float = typer.Option(1e-3, "--lr", help="Learning rate (AdamW, amsgrad)."),
    bn_momentum: float = typer.Option(None, "--bn-momentum",
                                      help="Batch-norm statistics momentum (default: the model's; short runs: 0.1)."),
    warmup_steps: int = typer.Option(None, "--warmup-steps", metavar="N",
                                     help="Steps of warm-up: LR x0.001, x0.01, x0.1 over three equal thirds "
                                          "(default 30000; 0 with --init)."),
    snr: tuple[float, float] = typer.Option((-10.0, 10.0), "--snr", metavar="LOW HIGH", help="SNR range in dB."),
    segment: float = typer.Option(10.0, "--segment", help="Seconds per training mixture."),
    min_active: float = typer.Option(None, "--min-active", metavar="SECONDS",
                                     help="As mix: active target seconds per segment (default: a tenth of it)."),
    silence_db: float = typer.Option(-60.0, "--silence-db", metavar="DB",
                                     help="As mix: frames below this level (dBFS) are silent."),
    integer_snr: bool = typer.Option(False, "--integer-snr", help="As mix: whole-dB SNRs."),
    min_duration: float = typer.Option(0.0, "--min-duration", metavar="SECONDS",
                                       help="As mix: leave out clips shorter than this (0: zero-pad them)."),
    val: list[str] = typer.Option(None, "--val", metavar="SPLIT",
                                  help="Validation split with references (repeatable: SDR, SDRi, SI-SDR on each; "
                                       "the first one's SDRi picks best.ckpt)."),
    val_count: int = typer.Option(200, "--val-count", help="Validation rows (a fixed seeded subset)."),
    val_every: int = typer.Option(2000, "--val-every", help="Validate every this many steps."),
    checkpoint_every: int = typer.Option(None, "--checkpoint-every", help="Write last.ckpt every this many steps (default: --val-every)."),
    log_every: int = typer.Option(50, "--log-every", help="Log the loss every this many steps."),
    seed: int = typer.Option(0, "--seed", help="Seed of the data order, mixing and fresh weights."),
    devices: int = typer.Option(1, "--devices", help="Devices (GPUs, or CPU processes) per node."),
    num_nodes: int = typer.Option(1, "--num-nodes", help="Machines (SLURM or torchrun sets the rest)."),
    accelerator: str = typer.Option("auto", "--accelerator", help="auto (gpu if available), gpu or cpu."),
    precision: str = typer.Option("32-true", "--precision", help="32-true, bf16-mixed (GPUs), 16-mixed, ..."),
    workers: int = typer.Option(None, "--workers", "-j", help="DataLoader workers per process (default: min(8, cores))."),
    aug_gain: float = typer.Option(0.0, "--aug-gain", metavar="DB",
                                   help="Augment: a random gain of up to +-DB on mixture and reference alike."),
    aug_eq: float = typer.Option(0.0, "--aug-eq", metavar="DB",
                                 help="Augment: a random spectral tilt of up to +-DB (mixture and reference alike)."),
    extra_noises: int = typer.Option(0, "--extra-noises", metavar="N",
                                     help="Augment: up to N more class-disjoint noises per mixture (at --snr)."),
    keep_checkpoints: int = typer.Option(0, "--keep-checkpoints", metavar="N",
                                         help="Also keep step-<S>.ckpt of the last N checkpoints (for `lasskit average`)."),
    clip_grad: float = typer.Option(None, "--clip-grad", metavar="NORM", help="Clip the gradients' L2 norm to this."),
    ema: float = typer.Option(None, "--ema", metavar="DECAY",
                              help="Keep a moving average of the weights (e.g. 0.999): validated and saved."),
    sync_bn: bool = typer.Option(True, "--sync-bn/--no-sync-bn",
                                 help="Synchronised batch norm across GPU processes (the organizers')."),
    logger: list[str] = typer.Option(None, "--logger", metavar="NAME",
                                     help="tensorboard (default when installed), wandb (offline), mlflow (file "
                                          "store), none; repeatable. metrics.csv is always written."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run from its last.ckpt."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start the run again, replacing its folder's files."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan (data, steps, memory) and stop."),
    config_file: Path = typer.Option(None, "--config", metavar="FILE",
                                     help="YAML of these options (keys: the long option names, e.g. `steps: 1000`, "
                                          "`val: [val_synth]`); the command line wins over it, it over lasskit.yaml."),
) -> None:
    """Train or fine-tune a model on class-disjoint mixtures made on the fly; checkpoints for `separate`.

    Example: lasskit train --model dcase2024-baseline --targets fsd50k --targets clotho --val val_synth
    --steps 200000 --batch-size 16 --devices 1 --name base
    """
    from lasskit.models.registry import parse_options, resolve
    from lasskit.training import TrainConfig
    from lasskit.training import train as run_training

    ws = workspace(ctx)
    if config_file is not None:  # the file's values replace defaults (and lasskit.yaml), never the command line
        given = config_values(ctx, config_file)
        values = {**locals(), **given}
        (manifests, targets, noises, split, dataset, ontology, model, option, tokenizer, init, continue_from, name,
         steps, batch_size, accumulate, lr, bn_momentum, warmup_steps, snr, segment, min_active, silence_db,
         integer_snr, min_duration, val, val_count, val_every, checkpoint_every, log_every, seed, devices, num_nodes,
         accelerator, precision, workers, keep_checkpoints, clip_grad, ema, sync_bn, logger, resume, overwrite,
         dry_run, aug_gain, aug_eq, extra_noises) = (values[k] for k in (
             "manifests", "targets", "noises", "split", "dataset", "ontology", "model", "option", "tokenizer", "init",
             "continue_from", "name", "steps", "batch_size", "accumulate", "lr", "bn_momentum", "warmup_steps", "snr",
             "segment", "min_active", "silence_db", "integer_snr", "min_duration", "val", "val_count", "val_every",
             "checkpoint_every", "log_every", "seed", "devices", "num_nodes", "accelerator", "precision", "workers",
             "keep_checkpoints", "clip_grad", "ema", "sync_bn", "logger", "resume", "overwrite", "dry_run",
             "aug_gain", "aug_eq", "extra_noises"))
    options = parse_options(option)
    if tokenizer is not None:
        options["tokenizer"] = str(tokenizer)
    if not name:
        _, name = resolve(model)
    config = TrainConfig(
        model=model, name=name, options=options, init=None if init is None else str(init),
        continue_from=None if continue_from is None else str(continue_from), min_active=min_active,
        silence_db=silence_db, integer_snr=integer_snr, min_duration=min_duration,
        keep_checkpoints=keep_checkpoints, clip_grad=clip_grad, sync_bn=sync_bn, ema=ema,
        loggers=list(logger or ["auto"]), aug_gain_db=aug_gain, aug_eq_db=aug_eq, extra_noises=extra_noises,
        targets=[*(targets or []), *(manifests or [])], noises=list(noises or []), splits=list(split or []),
        datasets=list(dataset or []), ontology=None if ontology is None else str(ontology),
        snr=(float(snr[0]), float(snr[1])), segment=segment, steps=steps, batch_size=batch_size,
        accumulate=accumulate, lr=lr, bn_momentum=bn_momentum, warmup_steps=warmup_steps, val=(val or [None])[0], val_more=list((val or [])[1:]), val_count=val_count, val_every=val_every,
        checkpoint_every=checkpoint_every, log_every=log_every, seed=seed, devices=devices, num_nodes=num_nodes,
        accelerator=accelerator, precision=precision, workers=workers, resume=resume, overwrite=overwrite,
        dry_run=dry_run,
    )
    result = run_training(config, ws, echo=typer.echo)
    if not dry_run and result.get("global_step") is not None and _is_rank_zero():
        best = result.get("best_val_sdri")
        this_run = result.get("steps_this_run", result["global_step"])
        done = (f"trained {this_run} steps (to step {result['global_step']})" if this_run != result["global_step"]
                else f"trained {result['global_step']} steps")
        typer.echo(f"{done} in {result['seconds']:.1f} s; "
                   f"last: {result['last_checkpoint']}"
                   + (f"; best: {result['best_checkpoint']} (val SDRi {best:.2f} dB at step {result['best_step']})"
                      if best is not None else ""))


def _is_rank_zero() -> bool:
    import os

    return all(os.environ.get(k, "0") == "0" for k in ("LOCAL_RANK", "NODE_RANK", "RANK"))


def config_values(ctx: typer.Context, path: Path) -> dict:
    """``--config FILE``: its keys (long option names, ``-`` or ``_``) as parameter values, cast by each
    option's own type; keys given on the command line are left out. One line for any mistake in it."""
    from lasskit import safeyaml
    from lasskit.errors import UsageError

    try:
        data = safeyaml.load(path.read_bytes())
    except OSError as exc:
        from lasskit.errors import os_error

        raise os_error(exc, path) from None
    except Exception as exc:  # noqa: BLE001 - the YAML parser's errors
        raise UsageError(f"{path}: not valid YAML ({' '.join(str(exc).split())[:160]}); fix the file") from None
    if data is None:
        return {}
    if isinstance(data, dict) and isinstance(data.get("train"), dict) and len(data) == 1:
        data = data["train"]  # a lasskit.yaml-style `train:` section
    if not isinstance(data, dict):
        raise UsageError(f"{path}: give a mapping of train's options (e.g. `steps: 1000`), not a "
                         f"{type(data).__name__}")
    params = {p.name: p for p in ctx.command.params if p.name not in ("config_file",)}
    aliases = {"targets": "targets", "val": "val", "option": "option", "options": "option", "split": "split",
               "splits": "split", "dataset": "dataset", "datasets": "dataset", "logger": "logger",
               "loggers": "logger"}
    out = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        name = aliases.get(name, name)
        param = params.get(name)
        if param is None or name == "manifests":
            raise UsageError(f"{path}: unknown key {key!r}; use train's long option names (see `lasskit train --help`)")
        if getattr(ctx.get_parameter_source(name), "name", "") in ("COMMANDLINE", "ENVIRONMENT"):
            continue
        if name == "option" and isinstance(value, dict):
            value = [f"{k}={v}" for k, v in value.items()]
        if getattr(param, "multiple", False) and not isinstance(value, list):
            value = [value]
        try:
            out[name] = param.process_value(ctx, value)
        except Exception as exc:  # noqa: BLE001 - the parser's BadParameter (typer's own click)
            why = exc.format_message() if hasattr(exc, "format_message") else str(exc)
            raise UsageError(f"{path}: {key}: {' '.join(why.split())}; fix the file") from None
        if isinstance(out[name], tuple) and getattr(param, "multiple", False):
            out[name] = list(out[name])
    return out
