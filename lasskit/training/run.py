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
import shutil
import sys
import time
from pathlib import Path

from lasskit import __version__
from lasskit.errors import LasskitError, UsageError, WorkError
from lasskit.training.config import TrainConfig, resume_mismatch

EMBED_BATCH = 64
"""Queries per ``embed_queries`` call when the embeddings are computed at the start."""
RUN_FILES = ("config.json", "data.json", "train.json", "last.ckpt", "best.ckpt", "metrics.csv", "hparams.yaml")


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


def _check_run_folder(folder: Path, config: TrainConfig) -> None:
    started = (folder / "config.json").is_file() or (folder / "last.ckpt").is_file()
    if config.resume:
        if not (folder / "last.ckpt").is_file():
            raise UsageError(f"--resume: {folder / 'last.ckpt'} not found; start the run without --resume")
        saved = json.loads((folder / "config.json").read_text()) if (folder / "config.json").is_file() else {}
        differ = resume_mismatch(saved.get("options", saved), config)
        if differ:
            raise UsageError(f"--resume {config.name}: options differ from the saved run ({', '.join(differ)}); "
                             f"use the same values (see {folder / 'config.json'}) or a new --name")
    elif started and not config.dry_run:
        if not config.overwrite:
            raise UsageError(f"{folder}: a run named {config.name!r} exists; pass --resume to continue it, "
                             "--overwrite to start it again, or another --name")
        for name in RUN_FILES:
            (folder / name).unlink(missing_ok=True)
        shutil.rmtree(folder / "tb", ignore_errors=True)


def build_model(config: TrainConfig):
    """The model class (checked trainable) and an instance for training, with one-line errors."""
    import torch

    from lasskit.models import registry
    from lasskit.models.base import missing_training_methods

    cls, spec = registry.resolve(config.model)
    missing = missing_training_methods(cls)
    if missing:
        raise UsageError(f"model {spec} cannot be trained: it has no {', '.join(missing)} "
                         "(see lasskit.models.base.TrainableModel)")
    if config.init is not None and not Path(config.init).expanduser().is_file():
        raise UsageError(f"--init {config.init}: no such checkpoint file")
    torch.manual_seed(config.seed)
    factory = getattr(cls, "for_training", None)
    options = dict(config.options)
    try:
        if callable(factory):
            model = factory(init=None if config.init is None else str(Path(config.init).expanduser()), **options)
        else:  # pragma: no cover - TrainableModel subclasses always have it
            model = registry.build(cls, spec, config.init, "cpu", options)
    except (UsageError, WorkError):
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
    """Train as ``config`` says (or only plan it with ``dry_run``); returns the plan / run record."""
    import torch

    from lasskit.workspace import Workspace

    config.validate()
    _require_lightning()
    ws = workspace if workspace is not None else Workspace.open()
    folder = run_dir(ws, config.name)
    accelerator = resolve_accelerator(config.accelerator, config.devices)
    if accelerator == "cpu" and config.precision == "16-mixed":
        raise UsageError("--precision 16-mixed needs a GPU; use 32-true or bf16-mixed on the CPU")
    world = config.devices * config.num_nodes

    trainer, checkpoints = None, None
    if not config.dry_run:
        trainer, checkpoints = _make_trainer(config, folder, accelerator)
    rank0 = trainer is None or trainer.is_global_zero
    if rank0:
        _check_run_folder(folder, config)

    model, spec = build_model(config)
    from lasskit.training.data import SampleDataset, StepBatchSampler, ValidationDataset, load_training_data, \
        load_validation, pad_collate

    data = load_training_data(config.targets, config.noises, workspace=ws, splits=config.splits,
                              datasets=config.datasets, ontology=config.ontology, snr=config.snr,
                              segment=config.segment, seed=config.seed, jobs=config.workers or None)
    val_rows, val_total = ([], 0)
    if config.val:
        val_rows, val_total = load_validation(config.val, ws, config.val_count, config.seed)
        if len(val_rows) < world:
            raise UsageError(f"--val {config.val}: {len(val_rows)} row(s) for {world} processes; "
                             "each process validates its share, so give at least one row per process")

    t0 = time.perf_counter()
    embeddings = embed_all(model, data.queries() + [r.query for r in val_rows])
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

    per_step = config.batch_size * config.accumulate * world
    total_mixtures = per_step * config.steps
    plan = {
        "model": spec, "init": config.init, "run_folder": str(folder),
        "data": data.summary(), "validation": {"split": config.val, "rows": len(val_rows), "split_rows": val_total,
                                               "every_steps": config.val_every},
        "steps": config.steps, "batch_size_per_device": config.batch_size, "accumulate": config.accumulate,
        "processes": world, "mixtures_per_step": per_step, "mixtures_total": total_mixtures,
        "mixing_epochs": total_mixtures / max(1, data.per_epoch), "segment_seconds": config.segment,
        "accelerator": accelerator, "precision": config.precision,
        "parameters": {"trainable": sum(p.numel() for p in network.parameters() if p.requires_grad),
                       "unused_frozen": sum(named[n].numel() for n in unused), "unused_names": len(unused)},
        "memory_estimate": mem, "distinct_queries_embedded": len(embeddings),
        "embedding_seconds": round(embed_seconds, 3),
    }
    if rank0:
        print_plan(plan, echo)
    if config.dry_run:
        return plan

    if rank0:
        from lasskit.atomic import write_text

        folder.mkdir(parents=True, exist_ok=True)
        write_text(folder / "config.json", json.dumps({"options": config.to_dict(), "versions": _versions(),
                                                       "argv": sys.argv}, indent=2, default=str))
        write_text(folder / "data.json", json.dumps({**data.summary(), "validation": plan["validation"]},
                                                    indent=2))

    from lasskit.training.module import LassTask, ReplicaDigests, Throughput

    record = {"model": spec, "options": config.options, "run": config.name}
    task = LassTask(model, embeddings, lr=config.lr, warmup_steps=config.warmup_steps,
                    batch_size=config.batch_size, record=record)
    workers = config.workers if config.workers is not None else min(8, os.cpu_count() or 1)
    sampler = StepBatchSampler(config.batch_size, config.steps * config.accumulate, trainer.global_rank, world,
                               start=lambda: trainer.global_step * config.accumulate)
    loader = _Loader.make(SampleDataset(data.planner, config.seed), sampler, workers, accelerator == "gpu")
    val_loader = None
    if val_rows:
        from torch.utils.data import BatchSampler, SequentialSampler

        mine = val_rows[trainer.global_rank::world]
        val_loader = _Loader.make(ValidationDataset(mine), BatchSampler(SequentialSampler(mine), config.batch_size,
                                  drop_last=False), min(workers, 4), accelerator == "gpu", collate=pad_collate)
    throughput = next(c for c in trainer.callbacks if isinstance(c, Throughput))
    throughput.mixtures_per_step = per_step
    ckpt_path = str(folder / "last.ckpt") if config.resume else None
    started = time.perf_counter()
    import warnings

    try:
        with warnings.catch_warnings():
            for text in (".*LeafSpec.*", ".*smaller than the logging interval.*", ".*is deprecated.*",
                         ".*defined a .validation_step. but have no .val_dataloader.*"):
                warnings.filterwarnings("ignore", message=text)
            trainer.fit(task, train_dataloaders=loader, val_dataloaders=val_loader, ckpt_path=ckpt_path)
    except LasskitError:
        raise
    except Exception as exc:
        if memory.is_out_of_memory(exc) and trainer.global_step < 10:
            raise _oom_error(exc, task, config, condition_size) from None
        raise
    seconds = time.perf_counter() - started
    result = {**plan, "global_step": trainer.global_step, "seconds": round(seconds, 2),
              "first_step_seconds": throughput.first_step_seconds,
              "best_val_sdri": checkpoints.best_score, "best_step": checkpoints.best_step,
              "last_checkpoint": str(checkpoints.last_path),
              "best_checkpoint": str(checkpoints.best_path) if checkpoints.best_score is not None else None,
              "resumed": bool(config.resume)}
    digests = next(c for c in trainer.callbacks if isinstance(c, ReplicaDigests))
    result["replica_parameter_digests"] = digests.parameters
    result["replica_buffer_digests"] = digests.buffers
    result["replicas_in_step"] = len(set(digests.parameters)) == 1
    if trainer.is_global_zero:
        from lasskit.atomic import write_text

        write_text(folder / "train.json", json.dumps(result, indent=2, default=str))
    result["trained_model"] = model  # in memory only (tests, notebooks)
    return result


def _make_trainer(config: TrainConfig, folder: Path, accelerator: str):
    import logging

    import lightning as L
    from lightning.pytorch.callbacks import LearningRateMonitor

    from lasskit.training.module import Checkpoints, ReplicaDigests, StepCSVLogger, Throughput, atomic_checkpoint_io

    for name in ("lightning.pytorch", "lightning.fabric", "pytorch_lightning"):  # no banners; warnings stay
        logging.getLogger(name).setLevel(logging.WARNING)
    world = config.devices * config.num_nodes
    loggers = [StepCSVLogger(folder, resume_step=_saved_step(folder) if config.resume else None)]
    try:
        import tensorboard  # noqa: F401
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(save_dir=str(folder), name="tb", version=""))
    except ImportError:
        pass
    checkpoints = Checkpoints(folder, config.every_checkpoint, config.val_every if config.val else 10**12)
    callbacks = [Throughput(config.batch_size * config.accumulate * world), checkpoints,
                 LearningRateMonitor(logging_interval="step"), ReplicaDigests()]
    if _progress_enabled():
        from lightning.pytorch.callbacks import TQDMProgressBar

        callbacks.append(TQDMProgressBar(refresh_rate=1))
    kwargs = dict(
        accelerator=accelerator, devices=config.devices, num_nodes=config.num_nodes,
        strategy="ddp" if world > 1 else "auto", precision=config.precision, max_steps=config.steps,
        max_epochs=-1, accumulate_grad_batches=config.accumulate, num_sanity_val_steps=0,
        log_every_n_steps=config.log_every, logger=loggers, callbacks=callbacks, enable_checkpointing=False,
        enable_progress_bar=_progress_enabled(), enable_model_summary=False, use_distributed_sampler=False,
        plugins=[atomic_checkpoint_io()], default_root_dir=str(folder),
    )
    if config.val:
        kwargs.update(val_check_interval=config.val_every * config.accumulate, check_val_every_n_epoch=None)
    else:
        kwargs.update(limit_val_batches=0)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = L.Trainer(**kwargs)
    return trainer, checkpoints


def _saved_step(folder: Path) -> int | None:
    """The global step stored in ``last.ckpt`` (None when unreadable)."""
    import torch

    try:
        return int(torch.load(folder / "last.ckpt", map_location="cpu", weights_only=False, mmap=True)["global_step"])
    except Exception:  # noqa: BLE001 - the resume itself reports a bad checkpoint
        return None


def _oom_error(exc, task, config: TrainConfig, condition_size: int) -> UsageError:
    """The out-of-memory answer: which batch size fits on this device."""
    import torch

    from lasskit.training import memory

    device = task.device
    samples = int(round(config.segment * 16000))

    def step(b: int) -> None:
        g = torch.Generator().manual_seed(0)
        mixtures = (torch.randn(b, samples, generator=g) * 0.1).to(device)
        conditions = torch.nn.functional.normalize(torch.randn(b, condition_size, generator=g), dim=-1).to(device)
        task.model.forward_train(mixtures, conditions).abs().mean().backward()
        for p in task.ss_model.parameters():
            p.grad = None

    fits = memory.largest_fitting_batch(step, config.batch_size)
    where = f"{device}"
    if fits is None:
        return UsageError(f"--batch-size {config.batch_size}: out of memory on {where} even with one "
                          f"{config.segment:g} s row; use a shorter --segment or a larger device")
    return UsageError(f"--batch-size {config.batch_size}: out of memory on {where} at the start; --batch-size {fits} "
                      f"fits (with --accumulate {-(-config.batch_size // fits)} for the same effective batch)")


def print_plan(plan: dict, echo=print) -> None:
    """The plan in a few lines: data, steps, devices, memory."""
    d, v, m, p = plan["data"], plan["validation"], plan["memory_estimate"], plan["parameters"]
    echo(f"model: {plan['model']}" + (f" (fine-tuning {plan['init']})" if plan["init"] else " (fresh weights)")
         + f"; {p['trainable']:,} trainable parameters"
         + (f" ({p['unused_frozen']:,} never used by the forward pass, frozen)" if p["unused_frozen"] else ""))
    splits = ", ".join(d["splits"]) if d["splits"] else "all but val/eval"
    echo(f"data: {d['usable_targets']} target clips of {d['target_clips']} (splits: {splits}; "
         f"{d['targets_without_noise']} without a class-disjoint noise), {d['noise_clips']} noise clips, "
         f"{d['distinct_queries']} distinct queries; {d['mixtures_per_epoch']} mixtures per mixing epoch")
    if d.get("skipped"):
        echo("  left out: " + ", ".join(f"{k}: {v}" for k, v in d["skipped"].items()))
    if v["split"]:
        echo(f"validation: {v['rows']} of {v['split_rows']} rows of {v['split']} every {v['every_steps']} steps (SDRi)")
    else:
        echo("validation: none (pass --val SPLIT to keep a best.ckpt)")
    echo(f"steps: {plan['steps']} x {plan['mixtures_per_step']} mixtures ({plan['batch_size_per_device']} per device"
         f" x {plan['accumulate']} accumulated x {plan['processes']} process(es)) = {plan['mixtures_total']:,} "
         f"mixtures of {plan['segment_seconds']:g} s, {plan['mixing_epochs']:.1f} mixing epochs")
    echo(f"device: {plan['accelerator']}, precision {plan['precision']}; memory estimate per device (float32): "
         f"{_gib(m['total_bytes'])} = weights+grads+AdamW {_gib(m['trainable_parameters_bytes'] * 5)} + frozen "
         f"{_gib(m['frozen_bytes'])} + activations {_gib(m['activation_bytes'])}")
    echo(f"run folder: {plan['run_folder']}")
