"""``train(config)``: check everything, plan, then fit with Lightning; one-line errors for every mistake.

Order: options -> run folder (``--resume`` / ``--overwrite``) -> devices -> model (must be a
:class:`~lasskit.models.base.TrainableModel`) -> training data and validation subset -> query
embeddings (each distinct query once, sorted, in batches of :data:`EMBED_BATCH`, so a resumed run
uses the very same rows) -> parameters no step reaches are frozen -> the plan (printed; all that
``--dry-run`` does) -> ``Trainer.fit``. Under several processes (``--devices``/``--num-nodes``,
SLURM or ``torchrun``) every process runs the same preparation; only rank 0 checks and writes the
run folder. An out-of-memory error in the first steps is answered with the batch size that fits.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

from lasskit import __version__
from lasskit.errors import LasskitError, UsageError, WorkError
from lasskit.training.checks import check_checkpoint_file, check_init_file, check_resumed_data, check_run_folder, \
    clear_old_run, needs_download, saved_step
from lasskit.training.config import TrainConfig

EMBED_BATCH = 64
"""Queries per ``embed_queries`` call when the embeddings are computed at the start."""


def run_dir(workspace, name: str) -> Path:
    """``exp/train/<name>/`` of the workspace."""
    return workspace.exp_dir / "train" / name


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def _require_lightning():
    try:
        import lightning  # noqa: F401
    except ImportError:
        raise UsageError("lasskit train needs PyTorch Lightning: pip install 'lasskit[train]'") from None


def _progress_enabled() -> bool:
    force = os.environ.get("LASSKIT_PROGRESS")
    if force is not None:
        return force == "1"
    return sys.stderr.isatty()


def resolve_accelerator(accelerator: str, devices: int) -> str:
    """``cpu`` or ``gpu``: ``auto`` is gpu when torch sees one; asking for a GPU without one is an error."""
    import torch

    accelerator = (accelerator or "auto").lower()
    available = torch.cuda.is_available()
    if accelerator == "auto":
        return "gpu" if available else "cpu"
    if accelerator in ("gpu", "cuda"):
        if not available:
            raise UsageError(f"--accelerator {accelerator}: torch sees no CUDA GPU here; use --accelerator cpu "
                             "(or auto), or install a CUDA build of torch")
        if devices > torch.cuda.device_count():
            raise UsageError(f"--devices {devices}: only {torch.cuda.device_count()} GPU(s) visible here")
        return "gpu"
    return "cpu"


def build_model(config: TrainConfig, planning_stub: bool = False):
    """The model class (checked trainable) and an instance for training, with one-line errors."""
    import torch

    from lasskit.models import registry
    from lasskit.models.base import missing_training_methods

    cls, spec = registry.resolve(config.model)
    missing = missing_training_methods(cls)
    if missing:
        raise UsageError(f"model {spec} cannot be trained: it has no {', '.join(missing)} "
                         "(see lasskit.models.base.TrainableModel)")
    if config.init is not None:
        check_init_file(Path(config.init).expanduser())
    torch.manual_seed(config.seed)
    factory = getattr(cls, "for_training", None)
    options = dict(config.options)
    if planning_stub:  # a dry run without the weights: plan the network with a stand-in text encoder
        options["text_encoder"] = _PlanningTextEncoder()
    try:
        if callable(factory):
            model = factory(init=None if config.init is None else str(Path(config.init).expanduser()), **options)
        else:  # pragma: no cover - TrainableModel subclasses always have it
            model = registry.build(cls, spec, config.init, "cpu", options)
    except (UsageError, WorkError) as exc:
        if config.init is not None and str(Path(config.init).expanduser()) in str(exc) \
                and not str(exc).startswith("--init"):
            raise type(exc)(f"--init {exc}") from None
        raise
    except TypeError as exc:
        raise UsageError(f"model {spec}: bad options for training ({exc}); see its documentation") from None
    except Exception as exc:  # noqa: BLE001
        raise WorkError(f"model {spec} failed to load for training ({type(exc).__name__}: {exc}); "
                        "check --init and --option values") from None
    if not isinstance(model.trainable_network(), torch.nn.Module):
        raise UsageError(f"model {spec}: trainable_network() must return a torch.nn.Module")
    return model, spec


def embed_all(model, queries: list[str]) -> dict:
    """``{query: (D,) float32 CPU tensor}`` for every distinct query, in a fixed order and batching."""
    import torch

    out = {}
    ordered = sorted(set(queries))
    for start in range(0, len(ordered), EMBED_BATCH):
        chunk = ordered[start:start + EMBED_BATCH]
        rows = model.embed_queries(chunk)
        if not isinstance(rows, torch.Tensor) or rows.ndim != 2 or rows.shape[0] != len(chunk):
            raise WorkError(f"model {type(model).__name__}.embed_queries returned "
                            f"{getattr(rows, 'shape', type(rows).__name__)} for {len(chunk)} queries; "
                            "expected a (queries, D) tensor")
        for text, row in zip(chunk, rows.detach().to("cpu", torch.float32)):
            out[text] = row.clone()
    return out


def _versions() -> dict:
    import lightning
    import numpy
    import torch

    return {"lasskit": __version__, "torch": torch.__version__, "lightning": lightning.__version__,
            "numpy": numpy.__version__, "python": platform.python_version()}


class _Loader:
    """DataLoaders the trainer can resume: the position is the trainer's step, so their state is empty."""

    @staticmethod
    def make(dataset, batch_sampler, workers: int, pin: bool, collate=None):
        from torch.utils.data import DataLoader

        from lasskit.mixing.torch_dataset import MixtureLoader

        class Resumable:
            def state_dict(self) -> dict:
                return {}

            def load_state_dict(self, state: dict) -> None:
                pass

        if collate is None:  # training samples: fixed length, batches built in shared slots
            return type("ResumableMixtureLoader", (Resumable, MixtureLoader), {})(
                dataset, batch_sampler=batch_sampler, workers=workers, pin_memory=pin)
        kwargs = {"num_workers": workers, "pin_memory": pin, "batch_sampler": batch_sampler, "collate_fn": collate}
        if workers:
            kwargs["prefetch_factor"] = 4
        return type("ResumableLoader", (Resumable, DataLoader), {})(dataset, **kwargs)


def train(config: TrainConfig, workspace=None, *, echo=print) -> dict:
    """Train as ``config`` says (or only plan it with ``dry_run``); returns the plan / run record.

    Everything is checked (options, run folder, model, data, validation split) before anything
    on disk changes; ``--overwrite`` removes the old run's files only then.
    """
    from lasskit.workspace import Workspace

    config.validate()
    _require_lightning()
    from lasskit.training.control import slurm_requeued, slurm_restart_count, stop_other_ranks

    ws = workspace if workspace is not None else Workspace.open()
    folder = run_dir(ws, config.name)
    notes: list[str] = []
    if not config.resume and not config.overwrite and not config.dry_run and slurm_requeued(folder):
        config.resume = True
        notes.append(f"SLURM restart {slurm_restart_count()}: resuming {folder / 'last.ckpt'}")
    accelerator = resolve_accelerator(config.accelerator, config.devices)
    if accelerator == "cpu" and config.precision == "16-mixed":
        raise UsageError("--precision 16-mixed needs a GPU; use 32-true or bf16-mixed on the CPU")
    world = config.devices * config.num_nodes
    if accelerator == "cpu" and world > 1:
        import torch

        why = "no GPU visible here" if not torch.cuda.is_available() else "--accelerator cpu"
        notes.append(f"{why}: --devices {config.devices} runs {config.devices} CPU processes per machine "
                     "(data-parallel, gloo), not GPUs" + ("; batch norm is not synchronised across them (torch "
                                                         "does that on GPUs only)" if config.sync_bn else ""))

    trainer, parts = None, None
    if not config.dry_run:
        trainer, parts = _make_trainer(config, folder, accelerator, echo)
    rank0 = trainer is None or trainer.is_global_zero
    try:
        return _train(config, ws, folder, accelerator, world, trainer, parts, rank0, notes, echo)
    except BaseException:
        if trainer is not None and world > 1 and rank0:  # the other processes must not linger
            stop_other_ranks(trainer)
        raise


def _train(config, ws, folder, accelerator, world, trainer, parts, rank0, notes, echo) -> dict:
    import torch

    from lasskit.training.control import SecondInterrupt, disk_full, requeue_slurm_job, resume_command, \
        signal_number, stopped_error

    if rank0:
        check_run_folder(folder, config)
    continued = None
    if config.continue_from is not None:
        continued = check_checkpoint_file(Path(config.continue_from).expanduser(), "--continue-from",
                                          "give a Lightning checkpoint (the organizers' or lasskit's last.ckpt)")

    from lasskit.training.data import SampleDataset, StepBatchSampler, ValidationDataset, equal_length_batches, \
        load_training_data, load_validation, pad_collate, resolve_inputs, row_lengths

    if config.init is not None:  # the named files first, then the data, then the model (which may download)
        check_init_file(Path(config.init).expanduser())
    resolve_inputs(config.targets, config.noises, ws)  # a missing corpus or split is said before any model loads
    if config.val_more and not config.val:
        raise UsageError("more validation splits need a first one: --val SPLIT (it picks best.ckpt)")
    val_splits = [config.val, *config.val_more] if config.val else []
    validation = []  # (split, rows, split size, row lengths)
    for split in val_splits:
        rows, total = load_validation(split, ws, config.val_count, config.seed)
        if len(rows) < world:
            raise UsageError(f"--val {split}: {len(rows)} row(s) for {world} processes; "
                             "each process validates its share, so give at least one row per process")
        validation.append((split, rows, total, row_lengths(rows)))
    val_rows, val_total, val_lengths = (validation[0][1:] if validation else ([], 0, []))

    planning_stub = config.dry_run and needs_download(config)
    model, spec = build_model(config, planning_stub=planning_stub)
    if planning_stub:
        notes.append(f"dry run: {planning_stub} is not in the cache; a real run downloads it first (or pass "
                     "-o clap_checkpoint=FILE); planned with a stand-in text encoder")
    floors = {"min_active": config.min_active, "silence_db": config.silence_db, "integer_snr": config.integer_snr,
              "min_duration": config.min_duration}
    data = load_training_data(config.targets, config.noises, workspace=ws, splits=config.splits,
                              datasets=config.datasets, ontology=config.ontology, snr=config.snr,
                              segment=config.segment, seed=config.seed, jobs=config.workers or None, floors=floors)
    if config.resume:
        check_resumed_data(folder, data.digests)
    t0 = time.perf_counter()
    embeddings = embed_all(model, data.queries() + [r.query for _, rows, _, _ in validation for r in rows])
    embed_seconds = time.perf_counter() - t0
    condition_size = int(next(iter(embeddings.values())).shape[0])

    from lasskit.training import memory

    unused = memory.unused_parameters(model, condition_size)
    network = model.trainable_network()
    if config.bn_momentum is not None:  # short runs: the running statistics must catch up within them
        for module in network.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.momentum = float(config.bn_momentum)
    named = dict(network.named_parameters())
    for name in unused:
        named[name].requires_grad_(False)
    frozen_state = model.frozen_state()
    frozen_bytes = sum(v.numel() * v.element_size() for v in frozen_state.values())
    mem = memory.estimate(model, frozen_bytes, config.batch_size, config.segment, condition_size)
    available = memory.available_bytes(accelerator)
    if available is not None and accelerator == "cpu":  # the processes of one machine share its memory
        available //= config.devices
    if available is not None and mem["total_bytes"] > available:
        fits = memory.batch_that_fits(mem, available)
        notes.append(f"warning: the estimate ({_gib(mem['total_bytes'])}) exceeds the {_gib(available)} "
                     f"{'GPU memory' if accelerator == 'gpu' else 'memory available'} here; "
                     + (f"--batch-size {fits} fits (with --accumulate {-(-config.batch_size // fits)} for the "
                        "same effective batch)" if fits else "even one row does not fit: use a shorter --segment"))

    per_step = config.batch_size * config.accumulate * world
    total_mixtures = per_step * config.steps
    if config.batch_size * world > data.per_epoch:
        notes.append(f"note: {config.batch_size * world} mixtures per micro-batch from {data.per_epoch} per mixing "
                     "epoch: each batch repeats target clips (with new noises, SNRs and crops)")
    start_step = int(continued["global_step"]) if continued is not None else 0
    if config.resume:
        start_step = saved_step(folder) or 0
    from lasskit.training.module import warmup_factor

    plan = {
        "model": spec, "init": config.init, "continue_from": config.continue_from, "run_folder": str(folder),
        "data": data.summary(), "validation": {"split": config.val, "rows": len(val_rows), "split_rows": val_total,
                                               "every_steps": config.val_every,
                                               "batches": len(equal_length_batches(val_lengths, config.batch_size)),
                                               "metrics": ["sdr", "sdri", "si_sdr"],
                                               "more": [{"split": sp, "rows": len(r), "split_rows": t}
                                                        for sp, r, t, _ in validation[1:]]},
        "steps": config.steps, "start_step": start_step, "batch_size_per_device": config.batch_size,
        "accumulate": config.accumulate, "processes": world, "mixtures_per_step": per_step,
        "mixtures_total": total_mixtures, "mixing_epochs": total_mixtures / max(1, data.per_epoch),
        "segment_seconds": config.segment, "accelerator": accelerator, "precision": config.precision,
        "lr": config.lr, "warmup_steps": config.warmup_steps,
        "first_step_lr": config.lr * warmup_factor(start_step, config.warmup_steps),
        "parameters": {"trainable": sum(p.numel() for p in network.parameters() if p.requires_grad),
                       "unused_frozen": sum(named[n].numel() for n in unused), "unused_names": len(unused)},
        "memory_estimate": mem, "memory_available_bytes": available, "distinct_queries_embedded": len(embeddings),
        "embedding_seconds": round(embed_seconds, 3), "notes": list(notes),
    }
    if rank0:
        print_plan(plan, echo)
    if config.dry_run:
        return plan

    from lasskit.training.layout import organizers_extra_state
    from lasskit.training.module import LassTask

    record = {"model": spec, "options": {k: v for k, v in config.options.items() if k != "text_encoder"},
              "run": config.name}
    task = LassTask(model, embeddings, lr=config.lr, warmup_steps=config.warmup_steps,
                    batch_size=config.batch_size, record=record)
    task.extra_state = organizers_extra_state(
        network.state_dict().keys(), frozen_state,
        [config.init, config.continue_from, config.options.get("clap_checkpoint"), config.options.get("checkpoint")],
        n_fft=int(getattr(getattr(network, "base", None), "n_fft", 1024)))
    workers = config.workers if config.workers is not None else min(8, os.cpu_count() or 1)
    sampler = StepBatchSampler(config.batch_size, config.steps * config.accumulate, trainer.global_rank, world,
                               start=lambda: trainer.global_step * config.accumulate)
    from lasskit.training.data import Augmentation

    samples = SampleDataset(data.planner, config.seed, Augmentation(
        config.aug_gain_db, config.aug_eq_db, config.extra_noises, tuple(config.snr)))
    loader = _Loader.make(samples, sampler, workers, accelerator == "gpu")
    val_loader = []
    for _, rows, _, lengths in validation:
        mine = rows[trainer.global_rank::world]
        batches = equal_length_batches(lengths[trainer.global_rank::world], config.batch_size)
        val_loader.append(_Loader.make(ValidationDataset(mine), batches, min(workers, 4), accelerator == "gpu",
                                       collate=pad_collate))
    val_loader = val_loader[0] if len(val_loader) == 1 else (val_loader or None)
    task.val_names = [split for split, *_ in validation]
    parts.throughput.mixtures_per_step = per_step
    ckpt_path = None
    if config.resume:
        ckpt_path = str(folder / "last.ckpt")
    elif continued is not None:
        ckpt_path = str(_continuation_file(folder, continued, task, config))

    if rank0:  # everything is checked: only now the old run (--overwrite) goes, and the new one is written
        from lasskit.atomic import write_text

        if config.overwrite:
            clear_old_run(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_text(folder / "config.json", json.dumps({"options": config.to_dict(), "versions": _versions(),
                                                       "argv": sys.argv}, indent=2, default=str))
        write_text(folder / "data.json", json.dumps({**data.summary(), "validation": plan["validation"]},
                                                    indent=2))
    for logger in trainer.loggers:  # TensorBoard's HPARAMS tab, W&B's config, MLflow's params
        if not isinstance(logger, type(trainer.loggers[0])):
            logger.log_hyperparams({k: (v if isinstance(v, (int, float, str, bool)) else json.dumps(v, default=str))
                                    for k, v in config.to_dict().items()})
    started = time.perf_counter()
    import warnings

    try:
        with warnings.catch_warnings():
            for text in (".*LeafSpec.*", ".*smaller than the logging interval.*", ".*is deprecated.*",
                         ".*defined a .validation_step. but have no .val_dataloader.*", ".*does not have many workers.*"):
                warnings.filterwarnings("ignore", message=text)
            trainer.fit(task, train_dataloaders=loader, val_dataloaders=val_loader, ckpt_path=ckpt_path)
    except LasskitError:
        raise
    except (KeyboardInterrupt, SecondInterrupt):  # a second Ctrl-C: the checkpoint on disk is whole (atomic)
        raise stopped_error(folder, signal_number("SIGINT"), None) from None
    except Exception as exc:
        if memory.is_out_of_memory(exc) and trainer.global_step < 10:
            raise memory.oom_error(task, config, condition_size) from None
        if memory.is_out_of_memory(exc):
            raise WorkError(f"out of memory at step {trainer.global_step} on {task.device}; free memory (other "
                            f"processes) and continue with `{resume_command()}`") from None
        full = disk_full(exc)
        if full is not None:
            saved = saved_step(folder)
            again = (resume_command() if saved is not None
                     else resume_command().replace(" --resume", " --overwrite"))  # nothing to resume from yet
            raise WorkError(f"{full}: no space left on the device at step {trainer.global_step}; free some space "
                            f"and continue with `{again}`"
                            + (f" (last.ckpt holds step {saved})" if saved is not None else "")) from None
        raise
    finally:
        parts.stopper.restore()
        if continued is not None and ckpt_path and Path(ckpt_path).name == CONTINUATION:
            Path(ckpt_path).unlink(missing_ok=True)
    if parts.stopper.stopped_at is not None:
        if rank0 and parts.stopper.received == signal_number("SIGUSR1"):
            job = requeue_slurm_job()
            if job:
                echo(f"requeued SLURM job {job}; it resumes from {folder / 'last.ckpt'}")
        raise stopped_error(folder, parts.stopper.received, parts.stopper.stopped_at)
    seconds = time.perf_counter() - started
    checkpoints = parts.checkpoints
    result = {**plan, "global_step": trainer.global_step, "steps_this_run": trainer.global_step - start_step,
              "seconds": round(seconds, 2), "first_step_seconds": parts.throughput.first_step_seconds,
              "best_val_sdri": checkpoints.best_score, "best_step": checkpoints.best_step,
              "last_checkpoint": str(checkpoints.last_path),
              "best_checkpoint": str(checkpoints.best_path) if checkpoints.best_score is not None else None,
              "resumed": bool(config.resume), "samples_redrawn_in_this_process": samples.redrawn}
    digests = parts.digests
    result["replica_parameter_digests"] = digests.parameters
    result["replica_buffer_digests"] = digests.buffers
    result["replicas_in_step"] = len(set(digests.parameters)) == 1
    if trainer.is_global_zero:
        from lasskit.atomic import write_text

        write_text(folder / "train.json", json.dumps(result, indent=2, default=str))
    result["trained_model"] = model  # in memory only (tests, notebooks)
    return result


CONTINUATION = ".continue-from.ckpt"


def _continuation_file(folder: Path, ckpt: dict, task, config) -> Path:
    """``--continue-from``: the checkpoint as this run's Lightning resumes it (written beside, removed after)."""
    from lasskit.training.continuation import continuation_checkpoint

    path = folder / CONTINUATION
    folder.mkdir(parents=True, exist_ok=True)
    import io

    import torch

    from lasskit.atomic import write_bytes

    buffer = io.BytesIO()
    torch.save(continuation_checkpoint(ckpt, task, config), buffer)
    write_bytes(path, buffer.getvalue())
    return path


class _PlanningTextEncoder:
    """A stand-in text encoder for a dry run without the weights: zero embeddings of the right size."""

    def __init__(self, size: int = 512) -> None:
        self.size = size

    def embed(self, queries):
        import torch

        return torch.zeros(len(queries), self.size)


class _Parts:
    """The callbacks :func:`train` reads after ``fit``."""

    def __init__(self, checkpoints, throughput, digests, stopper) -> None:
        self.checkpoints, self.throughput, self.digests, self.stopper = checkpoints, throughput, digests, stopper


def _extra_loggers(config: TrainConfig, folder: Path) -> list:
    """TensorBoard (``tb/``; by default when installed), Weights & Biases (offline unless WANDB_MODE says
    otherwise; ``wandb/``) and MLflow (a file store, ``mlruns/``) as ``--logger`` asks: none needs a network."""
    import importlib.util

    wanted = set(config.loggers)
    out = []
    if "none" in wanted:
        return out
    has = {name: importlib.util.find_spec(name) is not None for name in ("tensorboard", "wandb", "mlflow")}
    for name in ("wandb", "mlflow", "tensorboard"):
        if name in wanted and not has[name]:
            raise UsageError(f"--logger {name}: {name} is not installed; pip install {name} (or leave --logger out)")
    if "tensorboard" in wanted or ("auto" in wanted and has["tensorboard"]):
        from lightning.pytorch.loggers import TensorBoardLogger

        out.append(TensorBoardLogger(save_dir=str(folder), name="tb", version="", default_hp_metric=False))
    if "wandb" in wanted:
        from lightning.pytorch.loggers import WandbLogger

        out.append(WandbLogger(name=config.name, save_dir=str(folder), offline=os.environ.get("WANDB_MODE") != "online"))
    if "mlflow" in wanted:
        from lightning.pytorch.loggers import MLFlowLogger

        out.append(MLFlowLogger(experiment_name="lasskit", run_name=config.name,
                                tracking_uri=os.environ.get("MLFLOW_TRACKING_URI") or (folder / "mlruns").as_uri()))
    return out


def _make_trainer(config: TrainConfig, folder: Path, accelerator: str, echo=print):
    import logging

    import lightning as L
    from lightning.pytorch.callbacks import LearningRateMonitor

    from lasskit.training.control import ProgressLines, StopOnSignal, slurm_requeued
    from lasskit.training.module import Checkpoints, ReplicaDigests, StepCSVLogger, Throughput, atomic_checkpoint_io

    for name in ("lightning.pytorch", "lightning.fabric", "pytorch_lightning"):  # no banners; warnings stay
        logging.getLogger(name).setLevel(logging.WARNING)
    world = config.devices * config.num_nodes
    resume = config.resume or (not config.overwrite and slurm_requeued(folder))
    csv_logger = StepCSVLogger(folder, resume_step=saved_step(folder) if resume else None)
    loggers = [csv_logger, *_extra_loggers(config, folder)]
    checkpoints = Checkpoints(folder, config.every_checkpoint, config.val_every if config.val else 10**12,
                              keep=config.keep_checkpoints)
    throughput, digests = Throughput(config.batch_size * config.accumulate * world), ReplicaDigests()
    stopper = StopOnSignal(checkpoints._save_last)
    callbacks = [throughput, checkpoints, LearningRateMonitor(logging_interval="step"), digests, stopper]
    if config.ema is not None:
        from lasskit.training.ema import EMA

        callbacks.insert(0, EMA(config.ema))
    if _progress_enabled():
        from lightning.pytorch.callbacks import TQDMProgressBar

        callbacks.append(TQDMProgressBar(refresh_rate=1))
    else:  # SLURM logs, CI: a plain line every --log-every steps
        callbacks.append(ProgressLines(config.log_every, config.steps, echo))
    plugins = [atomic_checkpoint_io()]
    from lightning.pytorch.plugins.environments import SLURMEnvironment

    if SLURMEnvironment.detect():  # lasskit saves and requeues on SIGUSR1 itself (lasskit.training.control)
        plugins.append(SLURMEnvironment(auto_requeue=False))
    strategy = "auto"
    if world > 1:
        from datetime import timedelta

        from lightning.pytorch.strategies import DDPStrategy

        strategy = DDPStrategy(timeout=timedelta(minutes=10))  # a lost process ends the others in minutes
    kwargs = dict(
        accelerator=accelerator, devices=config.devices, num_nodes=config.num_nodes,
        strategy=strategy, precision=config.precision, max_steps=config.steps, sync_batchnorm=bool(
            config.sync_bn and world > 1 and accelerator == "gpu"),
        max_epochs=-1, accumulate_grad_batches=config.accumulate, num_sanity_val_steps=0,
        log_every_n_steps=config.log_every, logger=loggers, callbacks=callbacks, enable_checkpointing=False,
        enable_progress_bar=_progress_enabled(), enable_model_summary=False, use_distributed_sampler=False,
        plugins=plugins, default_root_dir=str(folder),
    )
    if config.clip_grad is not None:
        kwargs.update(gradient_clip_val=float(config.clip_grad), gradient_clip_algorithm="norm")
    if config.val:
        kwargs.update(val_check_interval=config.val_every * config.accumulate, check_val_every_n_epoch=None)
    else:
        kwargs.update(limit_val_batches=0)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = L.Trainer(**kwargs)
    csv_logger.step_source = trainer
    return trainer, _Parts(checkpoints, throughput, digests, stopper)


def print_plan(plan: dict, echo=print) -> None:
    """The plan in a few lines: data, steps, devices, memory."""
    d, v, m, p = plan["data"], plan["validation"], plan["memory_estimate"], plan["parameters"]
    if plan.get("continue_from"):
        source = f" (continuing {plan['continue_from']} at step {plan['start_step']}: its weights, optimizer, schedule)"
    elif plan["init"]:
        source = f" (fine-tuning {plan['init']}: its weights, a new optimizer and schedule)"
    else:
        source = " (fresh weights)"
    echo(f"model: {plan['model']}" + source
         + f"; {p['trainable']:,} trainable parameters"
         + (f" ({p['unused_frozen']:,} never used by the forward pass, frozen)" if p["unused_frozen"] else ""))
    splits = ", ".join(d["splits"]) if d["splits"] else "all but val/eval"
    echo(f"data: {d['usable_targets']} target clips of {d['target_clips']} (splits: {splits}; "
         f"{d['targets_without_noise']} without a class-disjoint noise), {d['noise_clips']} noise clips, "
         f"{d['distinct_queries']} distinct queries; {d['mixtures_per_epoch']} mixtures per mixing epoch")
    if d.get("skipped"):
        echo("  left out: " + ", ".join(f"{k}: {v}" for k, v in d["skipped"].items()))
    if v["split"]:
        echo(f"validation: {v['rows']} of {v['split_rows']} rows of {v['split']} every {v['every_steps']} steps "
             "(SDR, SDRi, SI-SDR; SDRi picks best.ckpt)"
             + "".join(f"; {m['rows']} of {m['split_rows']} rows of {m['split']}" for m in v.get("more", ())))
    else:
        echo("validation: none (pass --val SPLIT to keep a best.ckpt)")
    echo(f"steps: {plan['steps']} x {plan['mixtures_per_step']} mixtures ({plan['batch_size_per_device']} per device"
         f" x {plan['accumulate']} accumulated x {plan['processes']} process(es)) = {plan['mixtures_total']:,} "
         f"mixtures of {plan['segment_seconds']:g} s, {plan['mixing_epochs']:.1f} mixing epochs")
    echo(f"device: {plan['accelerator']}, precision {plan['precision']}; memory estimate per device (float32): "
         f"{_gib(m['total_bytes'])} = weights+grads+AdamW {_gib(m['trainable_parameters_bytes'] * 5)} + frozen "
         f"{_gib(m['frozen_bytes'])} + activations {_gib(m['activation_bytes'])}")
    warm = plan["warmup_steps"]
    echo(f"learning rate: {plan['lr']:g}" + (f", warm-up over {warm} steps (x0.001, x0.01, x0.1)" if warm else
                                             ", no warm-up")
         + f"; step {plan['start_step'] + 1} uses {plan['first_step_lr']:.3g}")
    for note in plan.get("notes", ()):
        echo(note)
    echo(f"run folder: {plan['run_folder']}")
