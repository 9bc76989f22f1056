"""The options of a training run, their checks, and what must match for ``--resume``."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from lasskit.errors import UsageError

PRECISIONS = ("32-true", "32", "bf16-mixed", "16-mixed", "bf16-true", "64-true")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda")

RESUME_KEYS = (
    "model", "options", "init", "targets", "noises", "splits", "datasets", "ontology", "snr", "segment",
    "seed", "batch_size", "accumulate", "devices", "num_nodes", "lr", "warmup_steps", "val", "val_count",
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
    warmup_steps: int = 30_000  # three equal stages at x0.001, x0.01, x0.1
    val: str | None = None  # validation split (data/splits/<val>) or folder
    val_count: int = 200
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
        if self.warmup_steps < 0:
            raise UsageError(f"--warmup-steps {self.warmup_steps}: must be >= 0")
        if not self.lr > 0:
            raise UsageError(f"--lr {self.lr}: must be a positive learning rate")
        if self.bn_momentum is not None and not 0 < self.bn_momentum <= 1:
            raise UsageError(f"--bn-momentum {self.bn_momentum}: must be in (0, 1]")
        if not self.segment > 0.064:
            raise UsageError(f"--segment {self.segment}: must be longer than 0.064 s (one STFT window)")
        lo, hi = self.snr
        if not lo <= hi:
            raise UsageError(f"--snr {lo:g} {hi:g}: give LOW <= HIGH in dB")
        if self.seed < 0:
            raise UsageError(f"--seed {self.seed}: must be >= 0")
        if self.workers is not None and self.workers < 0:
            raise UsageError(f"--workers {self.workers}: must be 0 (load in the training process) or more")
        if str(self.precision) not in PRECISIONS:
            raise UsageError(f"--precision {self.precision}: use one of {', '.join(PRECISIONS)}")
        if self.accelerator not in ACCELERATORS:
            raise UsageError(f"--accelerator {self.accelerator}: use auto, cpu or gpu")
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
    return [k for k in RESUME_KEYS if _norm(saved.get(k)) != _norm(now.get(k))]


def _norm(value):
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in sorted(value.items())}
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value
