"""The LightningModule that trains a :class:`~lasskit.models.base.TrainableModel`, and its callbacks.

The module's only submodule is the trainable network, under the attribute ``ss_model``, so its
``state_dict`` is the organizers' ``ss_model.*`` layout as it is; checkpoints add the model's
``frozen_state()`` (the baseline: ``query_encoder.model.*``) and a ``lasskit`` record, and loading
a checkpoint for ``--resume`` drops those extra keys again. The optimizer state is saved in the
organizers' param-group layout and turned back on load (:mod:`lasskit.training.layout`).
Imports ``lightning``.
"""

from __future__ import annotations

import time

import lightning as L
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only
import numpy as np
import torch

from lasskit import __version__
from lasskit.training.layout import from_organizers_optimizer, to_organizers_optimizer


def warmup_factor(step: int, warmup_steps: int) -> float:
    """The organizers' step warm-up: x0.001, x0.01, x0.1 over three equal thirds of ``warmup_steps``, then 1."""
    if warmup_steps <= 0:
        return 1.0
    stage = int(step) * 3 // int(warmup_steps)
    return (0.001, 0.01, 0.1)[stage] if stage < 3 else 1.0


class LassTask(L.LightningModule):
    """Training step: ``loss(model.forward_train(mixture, embed(query)), source)``; validation: SDRi."""

    def __init__(self, model, embeddings: dict, *, lr: float = 1e-3, warmup_steps: int = 0,
                 batch_size: int = 1, record: dict | None = None) -> None:
        super().__init__()
        self.ss_model = model.trainable_network().train()  # models are built for inference (eval mode)
        object.__setattr__(self, "model", model)  # not a submodule: its frozen parts stay out of state_dict
        self.embeddings = embeddings  # query -> (D,) float32 CPU tensor
        self.lr = float(lr)
        self.warmup_steps = int(warmup_steps)
        self.batch_size = int(batch_size)
        self.record = dict(record or {})
        self._val: dict[int, list[tuple[float, float, float]]] = {}
        self.val_names: list[str] = []  # the validation splits, in --val order
        self.last_validation: dict[str, float] = {}
        self.strict_loading = True
        self.extra_state: dict = {}  # added to every checkpoint's state_dict (lasskit.training.layout)

    # --- steps ------------------------------------------------------------------------------
    def conditions(self, queries) -> torch.Tensor:
        return torch.stack([self.embeddings[q] for q in queries]).to(self.device)

    def training_step(self, batch, batch_idx):
        mixtures, sources, queries = batch
        estimates = self.model.forward_train(mixtures, self.conditions(queries))
        loss = self.model.training_loss(estimates.float(), sources)
        self.log("loss", loss, prog_bar=True, on_step=True, on_epoch=False, batch_size=len(queries))
        return loss

    VAL_METRICS = ("sdr", "sdri", "si_sdr")
    """Per validation row (float64, :mod:`lasskit.metrics`, the organizers' formulas): averaged over
    every row of a split on every rank, logged as ``val_<metric>`` for the first split and
    ``val_<metric>/<split>`` for the others; ``val_sdri`` (first split) picks ``best.ckpt``."""

    def validation_step(self, batch, batch_idx, dataloader_idx: int = 0):
        from lasskit.metrics import sdr, sdri, si_sdr

        mixtures, sources, queries, lengths = batch
        estimates = self.model.forward_train(mixtures, self.conditions(queries)).float()
        est, src, mix = (t.detach().to("cpu", torch.float64).numpy() for t in (estimates, sources, mixtures))
        rows = self._val.setdefault(int(dataloader_idx), [])
        for k, n in enumerate(lengths):
            s, e, x = src[k, :n], est[k, :n], mix[k, :n]
            rows.append((float(sdr(s, e)), float(sdri(s, e, x)), float(si_sdr(s, e))))

    def on_validation_epoch_start(self) -> None:
        self._val = {}

    def on_validation_epoch_end(self) -> None:
        names = list(self.val_names or ["val"])
        totals = torch.zeros(len(names), len(self.VAL_METRICS) + 1, dtype=torch.float64, device=self.device)
        for i, rows in self._val.items():
            if rows:
                totals[i, :-1] = torch.tensor(np.sum(rows, axis=0), dtype=torch.float64)
                totals[i, -1] = len(rows)
        if self.trainer.world_size > 1:
            totals = self.all_gather(totals).reshape(-1, len(names), len(self.VAL_METRICS) + 1).sum(0)
        logged = {}
        for i, split in enumerate(names):
            for j, metric in enumerate(self.VAL_METRICS):
                value = float(totals[i, j] / totals[i, -1]) if totals[i, -1] > 0 else float("nan")
                logged[f"val_{metric}" if i == 0 else f"val_{metric}/{split}"] = value
        self.log("val_sdri", logged["val_sdri"], prog_bar=True, sync_dist=False, logger=False)
        for logger in self.trainer.loggers:  # at the optimizer step it follows (train.json's best_step)
            logger.log_metrics(logged, step=self.trainer.global_step)
        self.last_validation = logged
        self._val = {}

    # --- optimisation -------------------------------------------------------------------------
    def configure_optimizers(self):
        params = [p for p in self.ss_model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=self.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                                      amsgrad=True)
        warmup = self.warmup_steps
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: warmup_factor(step, warmup))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}

    # --- checkpoints ------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint["state_dict"]
        for key, value in self.model.frozen_state().items():
            state.setdefault(key, value)
        for key, value in self.extra_state.items():  # the rest of the organizers' layout (layout.py)
            state.setdefault(key, value)
        checkpoint["lasskit"] = {"version": __version__, **self.record}
        if checkpoint.get("optimizer_states"):  # their param group: every ss_model parameter (layout.py)
            checkpoint["optimizer_states"][0] = to_organizers_optimizer(checkpoint["optimizer_states"][0],
                                                                        *self._parameter_names())

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        own = set(self.state_dict())
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in own}
        if checkpoint.get("optimizer_states"):  # back to lasskit's group before Lightning loads it
            checkpoint["optimizer_states"][0] = from_organizers_optimizer(checkpoint["optimizer_states"][0],
                                                                          *self._parameter_names())

    def _parameter_names(self) -> tuple[list[str], list[str]]:
        """(the optimizer's parameters, as configure_optimizers gives them; all of ``ss_model``'s)."""
        named = list(self.ss_model.named_parameters())
        return [n for n, p in named if p.requires_grad], [n for n, _ in named]


class Throughput(L.Callback):
    """Steps/s and mixtures/s (all processes) over the last ``window`` optimizer steps, on the progress bar."""

    def __init__(self, mixtures_per_step: int, window: int = 20) -> None:
        self.mixtures_per_step = int(mixtures_per_step)
        self.window = int(window)
        self.times: list[float] = []
        self.first_step_seconds: float | None = None

    def on_train_start(self, trainer, pl_module) -> None:
        self.times = [time.perf_counter()]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.perf_counter()
        if self.first_step_seconds is None and len(self.times) == 1:
            self.first_step_seconds = now - self.times[0]
        self.times.append(now)
        self.times = self.times[-(self.window + 1):]
        if len(self.times) >= 2:
            batches = len(self.times) - 1
            rate = batches / max(self.times[-1] - self.times[0], 1e-9) / max(1, trainer.accumulate_grad_batches)
            pl_module.log("steps/s", rate, prog_bar=True, on_step=True, on_epoch=False, logger=False)
            pl_module.log("mix/s", rate * self.mixtures_per_step, prog_bar=True, on_step=True, on_epoch=False,
                          logger=False)


class Checkpoints(L.Callback):
    """``last.ckpt`` every ``every`` optimizer steps and at the end; ``best.ckpt`` at each higher ``val_sdri``.

    At a step with validation, ``last.ckpt`` is written after it, so it carries the best score so
    far (this callback's state: ``best_score``, ``best_step``), which ``--resume`` restores. A
    checkpoint due at step ``s`` is written when step ``s + 1`` begins (or the run ends), after the
    metrics of step ``s`` reached ``metrics.csv``, so a run killed later resumes with every row of
    the steps it keeps. ``keep`` > 0 also keeps ``step-<s>.ckpt`` (a hard link to that
    ``last.ckpt``) for the last ``keep`` checkpoints (for ``lasskit average``).
    """

    def __init__(self, folder, every: int, val_every: int, monitor: str = "val_sdri", keep: int = 0) -> None:
        from pathlib import Path

        self.folder = Path(folder)
        self.every, self.val_every, self.monitor = int(every), int(val_every), monitor
        self.keep = int(keep)
        self.best_score: float | None = None
        self.best_step: int | None = None
        self._saved_at = -1

    @property
    def last_path(self):
        return self.folder / "last.ckpt"

    @property
    def best_path(self):
        return self.folder / "best.ckpt"

    def state_dict(self) -> dict:
        return {"best_score": self.best_score, "best_step": self.best_step}

    def load_state_dict(self, state_dict: dict) -> None:
        self.best_score = state_dict.get("best_score")
        self.best_step = state_dict.get("best_step")

    def on_train_start(self, trainer, pl_module) -> None:
        self._saved_at = trainer.global_step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        step = trainer.global_step
        if step != self._saved_at and step % self.every == 0 and step % self.val_every != 0:
            self._save_last(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        step = trainer.global_step
        if value is not None:
            value = float(value)
            if value == value and (self.best_score is None or value > self.best_score):
                self.best_score, self.best_step = value, step
                trainer.save_checkpoint(self.best_path, weights_only=False)
        if step != self._saved_at and (step % self.every == 0 or step >= (trainer.max_steps or 0)):
            self._save_last(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        if trainer.global_step != self._saved_at:
            self._save_last(trainer)

    def _save_last(self, trainer) -> None:
        for logger in trainer.loggers:  # rows up to this step on disk before the checkpoint
            if isinstance(logger, StepCSVLogger):
                logger.save()
        trainer.save_checkpoint(self.last_path, weights_only=False)
        self._saved_at = trainer.global_step
        if self.keep and trainer.is_global_zero:
            self._keep_history(trainer.global_step)

    def _keep_history(self, step: int) -> None:
        import os

        kept = self.folder / f"step-{step:08d}.ckpt"
        kept.unlink(missing_ok=True)
        try:
            os.link(self.last_path, kept)  # last.ckpt is replaced by rename: the link keeps this one
        except OSError:
            import shutil

            shutil.copyfile(self.last_path, kept)
        history = sorted(self.folder.glob("step-*.ckpt"))
        for old in history[:-self.keep]:
            old.unlink(missing_ok=True)


def state_digest(tensors) -> int:
    """A 63-bit integer digest (SHA-256 prefix) of tensors' bytes, in order."""
    import hashlib

    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().to("cpu").contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return int.from_bytes(h.digest()[:8], "big") >> 1


class ReplicaDigests(L.Callback):
    """At the end of training, every process's parameter and buffer digests (gathered on all ranks).

    Data-parallel replicas must end with identical parameters; ``train.json`` records both lists.
    Buffers (batch-norm running statistics) follow each rank's own last batch.
    """

    def __init__(self) -> None:
        self.parameters: list[int] = []
        self.buffers: list[int] = []

    def on_train_end(self, trainer, pl_module) -> None:
        net = pl_module.ss_model
        mine = torch.tensor([state_digest(net.parameters()), state_digest(net.buffers())], dtype=torch.int64,
                            device=pl_module.device)
        gathered = pl_module.all_gather(mine).reshape(-1, 2).cpu() if trainer.world_size > 1 else mine[None].cpu()
        self.parameters = [int(v) for v in gathered[:, 0]]
        self.buffers = [int(v) for v in gathered[:, 1]]


class StepCSVLogger(Logger):
    """``metrics.csv`` in long form, ``step,metric,value``: rows are appended as they are logged.

    ``step`` is the optimizer step a value belongs to (1-based: the loss and learning rate of the
    ``s``-th step, a validation after ``s`` steps), the numbering of ``train.json``. On ``--resume``
    from step ``s`` the rows after ``s`` (logged by the interrupted run after its last checkpoint)
    are dropped first, so the log reads as one uninterrupted run.
    """

    def __init__(self, folder, resume_step: int | None = None) -> None:
        super().__init__()
        from pathlib import Path

        self.path = Path(folder) / "metrics.csv"
        self.resume_step = resume_step
        self._rows: list[tuple[int, str, float]] = []
        self._started = False

    @property
    def name(self) -> str:
        return "csv"

    @property
    def version(self) -> str:
        return ""

    @property
    def log_dir(self) -> str:
        return str(self.path.parent)

    @rank_zero_only
    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass

    @rank_zero_only
    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        trainer = getattr(self, "step_source", None)  # the Trainer, set by lasskit.training.run
        for key, value in sorted(metrics.items()):
            if key == "epoch":
                continue
            if trainer is not None:  # the optimizer step (1-based) the value belongs to
                at = trainer.global_step + 1 if key.startswith("lr-") else trainer.global_step
            else:
                at = int(step or 0)
            self._rows.append((int(at), key, float(value)))
        self.save()

    @rank_zero_only
    def save(self) -> None:
        import csv
        import io

        from lasskit.atomic import write_text

        if not self._started:
            self._started = True
            kept = ""
            if self.resume_step is not None and self.path.is_file():
                from lasskit.csvfile import open_csv

                with open_csv(self.path) as fh:  # rows of the steps kept; a line a kill cut short is dropped
                    rows = [r for r in csv.reader(fh) if len(r) == 3 and r[0].isdigit() and int(r[0]) <= self.resume_step]
                out = io.StringIO()
                csv.writer(out, lineterminator="\n").writerows(rows)
                kept = out.getvalue()
            write_text(self.path, "step,metric,value\n" + kept)
        if not self._rows:
            return
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows((s, k, repr(v)) for s, k, v in self._rows)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(buffer.getvalue())
        self._rows = []

    @rank_zero_only
    def finalize(self, status: str) -> None:
        self.save()


def atomic_checkpoint_io():
    """A Lightning CheckpointIO that writes each checkpoint file atomically (:mod:`lasskit.atomic`)."""
    import io

    from lightning.pytorch.plugins.io import TorchCheckpointIO

    from lasskit.atomic import write_bytes

    class AtomicCheckpointIO(TorchCheckpointIO):
        def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
            buffer = io.BytesIO()
            torch.save(checkpoint, buffer)
            write_bytes(path, buffer.getvalue())

    return AtomicCheckpointIO()
