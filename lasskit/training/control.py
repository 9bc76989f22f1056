"""How a training run stops and reports while it runs: signals, requeue, plain progress lines.

- :class:`StopOnSignal`: Ctrl-C (SIGINT), SIGTERM (what SLURM and most schedulers send at a time
  limit) and SIGUSR1 (SLURM's ``--signal=USR1@SECONDS`` warning) are caught while the trainer
  runs. At the end of the optimizer step under way, every process agrees to stop (one boolean
  all-reduce per micro-batch under data parallelism), ``last.ckpt`` is written (atomically) and
  the trainer stops; :func:`lasskit.training.run.train` then raises :class:`Stopped`, one line
  naming the step and the command that continues, with exit code 128 + the signal number (130
  for Ctrl-C, 143 for SIGTERM, 138 for SIGUSR1). Under SLURM, SIGUSR1 also requeues the job
  (``scontrol requeue``, rank 0) and the requeued job resumes by itself (``SLURM_RESTART_COUNT``).
  A second Ctrl-C stops at once (the last checkpoint on disk stays intact: writes are atomic).
- :class:`ProgressLines`: when no progress bar is shown (stdout/stderr not a terminal: SLURM
  logs, CI), one plain line every ``every`` optimizer steps: step, loss, learning rate, steps/s
  and the time left.
"""

from __future__ import annotations

import os
import signal
import shlex
import subprocess
import sys
import threading
import time

import lightning as L

from lasskit.errors import LasskitError

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)
NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM", signal.SIGUSR1: "SIGUSR1"}


class SecondInterrupt(BaseException):
    """A second Ctrl-C: stop now. Not a KeyboardInterrupt, which Lightning turns into a silent exit 1."""


class Stopped(LasskitError):
    """A run stopped by a signal after saving ``last.ckpt``; exit code 128 + the signal number."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + int(signum)
        self.signum = int(signum)


def resume_command(argv: list[str] | None = None) -> str:
    """The command line that continues this run: this one, without ``--overwrite``, with ``--resume``."""
    args = list(sys.argv[1:] if argv is None else argv)
    args = [a for a in args if a not in ("--overwrite", "--debug")]
    if "--resume" not in args:
        args.append("--resume")
    return "lasskit " + " ".join(shlex.quote(a) for a in args)


def slurm_restart_count() -> int:
    """``SLURM_RESTART_COUNT`` (0 outside SLURM or on a job's first start)."""
    try:
        return max(0, int(os.environ.get("SLURM_RESTART_COUNT", "0")))
    except ValueError:
        return 0


def requeue_slurm_job() -> str | None:
    """``scontrol requeue`` this SLURM job; returns the job id, or None outside SLURM or on failure."""
    array = os.environ.get("SLURM_ARRAY_JOB_ID")
    job = f"{array}_{os.environ.get('SLURM_ARRAY_TASK_ID', '')}" if array else os.environ.get("SLURM_JOB_ID")
    if not job or not all(c.isdigit() or c == "_" for c in job):
        return None
    try:
        done = subprocess.run(["scontrol", "requeue", job], capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return job if done.returncode == 0 else None


class StopOnSignal(L.Callback):
    """Catch SIGINT/SIGTERM/SIGUSR1 during ``fit``; save ``last.ckpt`` at the next step boundary and stop."""

    def __init__(self, save_last) -> None:
        self.save_last = save_last  # callable(trainer): writes last.ckpt now
        self.received: int | None = None
        self.stopped_at: int | None = None
        self._previous: dict[int, object] = {}
        self._step = -1

    def _handler(self, signum, frame) -> None:
        if signum == signal.SIGINT and self.received == signal.SIGINT:
            raise SecondInterrupt  # a second Ctrl-C: stop now
        if self.received is None:
            self.received = int(signum)

    def _install(self) -> None:
        if threading.current_thread() is not threading.main_thread() or self._previous:
            return
        for signum in SIGNALS:
            try:
                self._previous[signum] = signal.signal(signum, self._handler)
            except (ValueError, OSError):  # pragma: no cover - not the main thread / not supported
                pass

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            try:
                signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
            except (ValueError, OSError, TypeError):  # pragma: no cover
                pass
        self._previous = {}

    def on_train_start(self, trainer, pl_module) -> None:  # after Lightning's own handlers are set
        self._step = trainer.global_step
        self._install()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        stop = self.received is not None
        if trainer.world_size > 1:
            stop = bool(trainer.strategy.reduce_boolean_decision(stop, all=False))
        boundary = trainer.global_step != self._step
        self._step = trainer.global_step
        if stop and boundary and self.stopped_at is None:
            if self.received is None:  # another process got the signal
                self.received = int(signal.SIGTERM)
            self.save_last(trainer)
            self.stopped_at = trainer.global_step
            trainer.should_stop = True

    def on_train_end(self, trainer, pl_module) -> None:
        self.restore()

    def teardown(self, trainer, pl_module, stage) -> None:
        self.restore()


class ProgressLines(L.Callback):
    """``step S/N: loss L, lr X, R steps/s, T left`` every ``every`` optimizer steps (rank 0)."""

    def __init__(self, every: int, total: int, echo=print) -> None:
        self.every, self.total, self.echo = int(every), int(total), echo
        self._start: tuple[float, int] | None = None
        self._step = -1
        self._loss = float("nan")

    def on_train_start(self, trainer, pl_module) -> None:
        self._start = (time.perf_counter(), trainer.global_step)
        self._step = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is not None:
            self._loss = float(loss.detach()) if hasattr(loss, "detach") else float(loss)
        step = trainer.global_step
        if step == self._step:
            return
        self._step = step
        if not trainer.is_global_zero or step % self.every and step < self.total:
            return
        t0, s0 = self._start or (time.perf_counter(), 0)
        elapsed = time.perf_counter() - t0
        rate = (step - s0) / elapsed if elapsed > 0 else 0.0
        lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else float("nan")
        left = (self.total - step) / rate if rate > 0 else float("nan")
        self.echo(f"step {step}/{self.total}: loss {self._loss:.4f}, lr {lr:.3g}, {rate:.2f} steps/s, "
                  f"{_duration(left)} left")


def _duration(seconds: float) -> str:
    if seconds != seconds:
        return "? "
    seconds = int(round(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def signal_number(name: str) -> int:
    return int(getattr(signal, name))


def stopped_error(folder, signum: int | None, step: int | None) -> Stopped:
    """The one line of a run stopped by a signal: the step, what ``last.ckpt`` holds, the command that continues."""
    from lasskit.training.checks import saved_step

    signum = int(signum or signal.SIGINT)
    what = NAMES.get(signum, f"signal {signum}")
    saved = saved_step(folder)
    if saved is None:
        return Stopped(f"interrupted ({what}) before the first checkpoint; start the run again with `"
                       + resume_command().replace(" --resume", " --overwrite") + "`", signum)
    at = f" at step {step}" if step is not None else ""
    return Stopped(f"interrupted ({what}){at}; {folder / 'last.ckpt'} holds step {saved}; continue with `"
                   + resume_command() + "`", signum)


def disk_full(exc: BaseException) -> str | None:
    """The file of an ENOSPC/EDQUOT error anywhere in the chain ('the run folder' without one); None otherwise."""
    import errno

    seen = 0
    while exc is not None and seen < 6:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return str(exc.filename or "the run folder")
        if "No space left on device" in str(exc):
            return "the run folder"
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def slurm_requeued(folder) -> bool:
    """True in a SLURM job that was requeued (``SLURM_RESTART_COUNT`` > 0) and whose run has a last.ckpt."""
    return slurm_restart_count() > 0 and (folder / "last.ckpt").is_file()


def stop_other_ranks(trainer) -> None:
    """Rank 0 failed under data parallelism: end the processes it launched instead of leaving them waiting."""
    launcher = getattr(trainer.strategy, "launcher", None)
    kill = getattr(launcher, "kill", None)
    if callable(kill):
        try:
            kill(signal.SIGKILL)
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass
