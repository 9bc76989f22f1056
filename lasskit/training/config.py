"""The options of a training run, their checks, and what must match for ``--resume``."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from lasskit.errors import UsageError

PRECISIONS = ("32-true", "32", "bf16-mixed", "16-mixed", "bf16-true", "64-true")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda")
LOGGERS = ("auto", "tensorboard", "wandb", "mlflow", "none")

RESUME_KEYS = (
    "model", "options", "init", "targets", "noises", "splits", "datasets", "ontology", "snr", "segment",
    "seed", "batch_size", "accumulate", "devices", "num_nodes", "lr", "warmup_steps", "val", "val_count",
    "min_active", "silence_db", "integer_snr", "min_duration", "ema", "clip_grad", "continue_from",
    "aug_gain_db", "aug_eq_db", "extra_noises",
)
"""Options a resumed run must share with the run it continues (``steps`` may grow; the rest is free)."""


@dataclass
class TrainConfig:
    """Everything ``lasskit train`` was asked to do (defaults: the organizers' recipe where it applies)."""

    model: str = "dcase2024-baseline"
    name: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    init: str | None = None  # checkpoint to fine-tune from; None: fresh trainable network
    targets: list[str] = field(default_factory=list)  # manifests / corpus names; []: every prepared corpus
    noises: list[str] = field(default_factory=list)  # []: the targets' pool
    splits: list[str] = field(default_factory=list)  # manifest splits to draw from; []: train only
    datasets: list[str] = field(default_factory=list)
    ontology: str | None = None
    snr: tuple[float, float] = (-10.0, 10.0)  # dB: the organizers mix at +-10 dB
    segment: float = 10.0  # seconds per training mixture
    steps: int = 200_000
    batch_size: int = 16  # per device
    accumulate: int = 1
    lr: float = 1e-3
    bn_momentum: float | None = None  # batch-norm running-statistics momentum; None: the model's own
    warmup_steps: int | None = None  # three equal stages at x0.001, x0.01, x0.1; None: 30000, 0 with --init
    continue_from: str | None = None  # a Lightning checkpoint whose step, optimizer and schedule go on
    min_active: float | None = None  # mix's floors: s of active target per segment (None: segment / 10)
    silence_db: float = -60.0  # dBFS below which a 0.1 s frame is silent
    integer_snr: bool = False
    min_duration: float = 0.0  # s; shorter clips are left out (0: zero-pad them)
    keep_checkpoints: int = 0  # also keep step-<N>.ckpt of the last this many checkpoints
    ema: float | None = None  # decay of an exponential moving average of the weights
    clip_grad: float | None = None  # gradient norm clipping (L2, over all parameters)
    sync_bn: bool = True  # synchronised batch norm under data parallelism (the organizers')
    aug_gain_db: float = 0.0  # on-the-fly augmentation (lasskit.training.data.Augmentation)
    aug_eq_db: float = 0.0
    extra_noises: int = 0
    loggers: list[str] = field(default_factory=lambda: ["auto"])  # auto (TensorBoard when installed),
    # tensorboard, wandb, mlflow, none; metrics.csv is always written
    val: str | None = None  # validation split (data/splits/<val>) or folder
    val_count: int = 200
    val_more: list[str] = field(default_factory=list)  # more validation splits (metrics only; val picks best)
    val_every: int = 2_000
    checkpoint_every: int | None = None  # default: val_every
    log_every: int = 50
    seed: int = 0
    devices: int = 1
    num_nodes: int = 1
    accelerator: str = "auto"
    precision: str = "32-true"
    workers: int | None = None  # DataLoader workers per process; None: min(8, cores)
    resume: bool = False
    overwrite: bool = False
    dry_run: bool = False

    def validate(self) -> "TrainConfig":
        """Raise :class:`UsageError` naming the option for any impossible value; returns self."""
        if not self.name or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", self.name):
            raise UsageError(f"--name {self.name!r}: give a plain run name (letters, digits, . _ -); "
                             "the run folder is exp/train/<name>/")
        positive = {"--steps": self.steps, "--batch-size": self.batch_size, "--accumulate": self.accumulate,
                    "--devices": self.devices, "--num-nodes": self.num_nodes, "--val-count": self.val_count,
                    "--val-every": self.val_every, "--log-every": self.log_every}
        for option, value in positive.items():
            if int(value) < 1:
                raise UsageError(f"{option} {value}: must be a positive whole number")
        if self.checkpoint_every is not None and self.checkpoint_every < 1:
            raise UsageError(f"--checkpoint-every {self.checkpoint_every}: must be a positive number of steps")
        if self.init is not None and self.continue_from is not None:
            raise UsageError("--init and --continue-from exclude each other: --init takes the weights only (a new "
                             "optimizer and schedule), --continue-from continues a run's step, optimizer and schedule")
        if self.resume and self.continue_from is not None:
            raise UsageError("--resume and --continue-from exclude each other: --resume continues this run's own "
                             "last.ckpt")
        if self.warmup_steps is None:
            self.warmup_steps = 0 if self.init is not None else 30_000
        if self.warmup_steps < 0:
            raise UsageError(f"--warmup-steps {self.warmup_steps}: must be >= 0")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise UsageError(f"--lr {self.lr}: must be a positive learning rate")
        if self.bn_momentum is not None and not 0 < self.bn_momentum <= 1:
            raise UsageError(f"--bn-momentum {self.bn_momentum}: must be in (0, 1]")
        if not (math.isfinite(self.segment) and self.segment > 0.064):
            raise UsageError(f"--segment {self.segment}: must be longer than 0.064 s (one STFT window)")
        lo, hi = self.snr
        if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
            raise UsageError(f"--snr {lo:g} {hi:g}: give LOW <= HIGH in dB")
        if self.seed < 0:
            raise UsageError(f"--seed {self.seed}: must be >= 0")
        if self.min_active is not None and not (0 <= self.min_active <= self.segment):
            raise UsageError(f"--min-active {self.min_active}: give 0 to {self.segment:g} seconds (the --segment) "
                             "of active target")
        if not math.isfinite(self.silence_db):
            raise UsageError(f"--silence-db {self.silence_db}: must be a finite level in dBFS")
        if not (math.isfinite(self.min_duration) and self.min_duration >= 0):
            raise UsageError(f"--min-duration {self.min_duration}: must be >= 0 seconds")
        if self.keep_checkpoints < 0:
            raise UsageError(f"--keep-checkpoints {self.keep_checkpoints}: must be >= 0 (0 keeps last.ckpt only)")
        if self.ema is not None and not 0 < self.ema < 1:
            raise UsageError(f"--ema {self.ema}: give a decay between 0 and 1 (e.g. 0.999)")
        if self.clip_grad is not None and not (math.isfinite(self.clip_grad) and self.clip_grad > 0):
            raise UsageError(f"--clip-grad {self.clip_grad}: give a positive gradient norm (e.g. 1.0)")
        if self.workers is not None and self.workers < 0:
            raise UsageError(f"--workers {self.workers}: must be 0 (load in the training process) or more")
        if str(self.precision) not in PRECISIONS:
            raise UsageError(f"--precision {self.precision}: use one of {', '.join(PRECISIONS)}")
        if self.accelerator not in ACCELERATORS:
            raise UsageError(f"--accelerator {self.accelerator}: use auto, cpu or gpu")
        for option, value in (("--aug-gain", self.aug_gain_db), ("--aug-eq", self.aug_eq_db)):
            if not (math.isfinite(value) and 0 <= value <= 40):
                raise UsageError(f"{option} {value}: give 0 to 40 dB")
        if not 0 <= self.extra_noises <= 8:
            raise UsageError(f"--extra-noises {self.extra_noises}: give 0 to 8 more noises per mixture")
        unknown = [x for x in self.loggers if x not in LOGGERS]
        if unknown:
            raise UsageError(f"--logger {unknown[0]}: use one of {', '.join(LOGGERS)} (repeatable)")
        if self.resume and self.overwrite:
            raise UsageError("--resume and --overwrite exclude each other: continue the run or start it again")
        return self

    @property
    def every_checkpoint(self) -> int:
        return int(self.checkpoint_every or self.val_every)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["snr"] = [float(self.snr[0]), float(self.snr[1])]
        return out


def resume_mismatch(saved: dict[str, Any], config: TrainConfig) -> list[str]:
    """The :data:`RESUME_KEYS` whose values differ between a saved ``config.json`` and ``config``."""
    now = config.to_dict()
    defaults = TrainConfig().to_dict()  # a key an older lasskit did not save had its default then
    return [k for k in RESUME_KEYS if _norm(saved.get(k, defaults.get(k))) != _norm(now.get(k))]


def _norm(value):
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in sorted(value.items())}
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value
