"""Running one command on several processes (GPUs, nodes): the group, this process's rank, the launch.

``--devices N`` starts N processes on this machine (``torch.multiprocessing``, one per GPU, or N
CPU processes, :func:`run_on`); under ``torchrun`` or ``srun`` every process the launcher started
runs the same command and finds its rank in the environment (:func:`env_shard`:
``RANK``/``WORLD_SIZE``/``LOCAL_RANK``, else ``SLURM_PROCID``/``SLURM_STEP_NUM_TASKS``/
``SLURM_LOCALID``; ``MASTER_ADDR``/``MASTER_PORT`` as torch.distributed reads them, under srun by
default the step's first node and a port derived from the job id). The processes meet in a
``torch.distributed`` group (gloo on the CPU, nccl on GPUs, :func:`init_group`).

The work itself is shared by the commands' own rule (:meth:`Shard.select`: batch ``i`` to rank
``i mod world``, the batches planned exactly as one process plans them), so that the outputs are
the bytes of one process: ``separate`` (:mod:`lasskit.separation.distributed`) and the CLAP audio
embeddings of ``label --clap`` and ``score`` (:func:`lasskit.models.embedding_cache.embed_missing`).
torch is imported inside the functions.
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lasskit.errors import LasskitError, UsageError, WorkError

RANK_LEDGER = "provenance.rank{rank}.json"
"""A rank's own provenance ledger (``separate``), merged by rank 0."""
GROUP_TIMEOUT = 6 * 3600
"""Seconds a rank waits for the others in one collective (torch's default is 30 min for gloo and
10 min for nccl): the others wait while rank 0 alone works, e.g. ``score``'s SDR of every row
after the shared CLAP embeddings, or ``label``'s keyword step before them. A rank that dies is
noticed by the launcher (``--devices``, torchrun), which stops the group at once."""
RENDEZVOUS_TIMEOUT = 600
"""Seconds the ranks wait for each other to meet (``init_process_group``): the launchers start them
together, so a rank missing after this never comes (``RANK``/``WORLD_SIZE`` set by hand, a wrong
``MASTER_ADDR``): one line, not a wait of :data:`GROUP_TIMEOUT`, which applies once they have met."""


@dataclass
class Shard:
    """This process's place in a group: ``rank`` of ``world``, ``local_rank`` on its node."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1
    """Processes of the group on this machine (they share its memory when they run on the CPU)."""

    @property
    def lead(self) -> bool:
        return self.rank == 0

    def select(self, batches: list) -> list:
        """This rank's batches: every ``world``-th, starting at its rank."""
        return batches[self.rank::self.world]

    def barrier(self) -> None:
        import torch.distributed as dist

        if self.world > 1 and dist.is_initialized():
            dist.barrier()

    def gather(self, value: Any) -> list:
        """``value`` of every rank, in rank order, on every rank."""
        import torch.distributed as dist

        if self.world == 1 or not dist.is_initialized():
            return [value]
        out: list = [None] * self.world
        dist.all_gather_object(out, value)
        return out

    def from_lead(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank (what the others pass is ignored)."""
        return self.gather(value if self.lead else None)[0]

    def rank_ledger(self, out_dir: Path):
        """An empty :class:`~lasskit.provenance.Ledger` in ``provenance.rank<r>.json`` (``separate``)."""
        from lasskit.provenance import Ledger

        ledger = Ledger(out_dir, file=RANK_LEDGER.format(rank=self.rank))
        ledger.records, ledger.settings = {}, {}
        return ledger


ONE = Shard()
"""One process: the whole work."""


def env_shard() -> Shard | None:
    """The shard a launcher (torchrun, srun) gave this process; None when not under one.

    SLURM: the task count of the job step (``SLURM_STEP_NUM_TASKS``, set by ``srun``), not the
    allocation's ``SLURM_NTASKS``, which a batch script also sees when it runs one process.
    Variables that cannot come from a launcher (a rank at or above the world size, a world size
    without a rank, a rank other than 0 without a world size, a local rank at or above
    ``LOCAL_WORLD_SIZE``, a value that is not a whole number) are one line
    (:class:`~lasskit.errors.UsageError`), never a run of the whole work or a group that waits
    for a rank that cannot come."""
    env = os.environ
    for rank_key, world_key, local_key in (("RANK", "WORLD_SIZE", "LOCAL_RANK"),
                                           ("SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "SLURM_LOCALID")):
        rank_text, world_text = env.get(rank_key), env.get(world_key)
        if rank_text is None and world_text is None:
            continue
        rank = _env_whole(rank_key) if rank_text is not None else None
        world = _env_whole(world_key) if world_text is not None else None
        if world is None:
            if rank:  # RANK=0 alone: one process
                raise UsageError(f"{rank_key}={rank_text.strip()} is set but {world_key} is not: start the command "
                                 f"with {_LAUNCHERS[rank_key]} (it sets both), or unset {rank_key}")
            continue
        if world <= 1:
            continue  # a group of one: the whole work here
        if rank is None:
            raise UsageError(f"{world_key}={world} is set but {rank_key} is not: start the command with "
                             f"{_LAUNCHERS[rank_key]} (it sets both), or unset {world_key}")
        if rank >= world:
            raise UsageError(f"{rank_key}={rank} with {world_key}={world}: a rank must be below the world size "
                             f"(0 to {world - 1}); start the command with {_LAUNCHERS[rank_key]}")
        local = _env_whole(local_key) if env.get(local_key, "").strip() else 0
        local_world_key = "LOCAL_WORLD_SIZE" if env.get("LOCAL_WORLD_SIZE") else "SLURM_NTASKS_PER_NODE"
        local_world = _env_whole(local_world_key) if env.get(local_world_key, "").strip().isdigit() else None
        if local_world is not None and local >= max(1, local_world):
            raise UsageError(f"{local_key}={local} with {local_world_key}={local_world}: a local rank must be "
                             f"below the processes on this machine; start the command with {_LAUNCHERS[rank_key]}")
        return Shard(rank, world, local, max(1, local_world or 1))
    return None


_LAUNCHERS = {"RANK": "torchrun", "SLURM_PROCID": "srun"}


def _env_whole(key: str) -> int:
    """The environment variable ``key`` as a whole number >= 0, or one line naming it."""
    text = os.environ.get(key, "").strip()
    if not text.isdigit() or not text.isascii():
        raise UsageError(f"{key}={os.environ.get(key, '')!r}: must be a whole number >= 0 (a launcher's "
                         f"process rank or count); fix or unset it")
    return int(text)


def first_host(nodelist: str) -> str:
    """The first host of a SLURM node list: ``gpu[03-05,09],cpu1`` -> ``gpu03``."""
    head = nodelist.strip()
    depth, cut = 0, len(head)
    for i, ch in enumerate(head):  # the first comma outside brackets ends the first group
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            cut = i
            break
    head = head[:cut]
    if "[" in head:
        prefix, rest = head.split("[", 1)
        return prefix + rest.split("]", 1)[0].split(",", 1)[0].split("-", 1)[0]
    return head


def _slurm_rendezvous() -> None:
    """Under srun without MASTER_ADDR/MASTER_PORT: the step's first node, a port from the job id."""
    env = os.environ
    if "SLURM_STEP_NUM_TASKS" not in env or "RANK" in env:
        return
    nodes = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST") or "127.0.0.1"
    env.setdefault("MASTER_ADDR", first_host(nodes))
    job = env.get("SLURM_JOB_ID", "0")
    env.setdefault("MASTER_PORT", str(20000 + int(job) % 20000 if job.isdigit() else 29500))


def init_group(shard: Shard, device: str) -> str:
    """Join the group (gloo on the CPU, nccl on CUDA) and return this rank's device."""
    import torch
    import torch.distributed as dist

    _slurm_rendezvous()
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError("--devices with --device cuda: torch sees no GPU here; use --device cpu")
        gpus = torch.cuda.device_count()
        # --devices and torchrun (LOCAL_RANK): every process here sees the same GPUs, so two on one
        # GPU is a mistake nccl refuses mid-run; srun may bind one GPU per task (its rank modulo)
        if shard.local_rank >= gpus and "LOCAL_RANK" in os.environ:
            raise UsageError(f"rank {shard.rank}: local rank {shard.local_rank} on this machine, but torch sees "
                             f"{gpus} GPU(s) here: start at most {gpus} process(es) per machine (--devices {gpus}, "
                             "torchrun --nproc-per-node, srun --ntasks-per-node) or use --device cpu")
        chosen = f"cuda:{shard.local_rank % gpus}"
        if device.strip().lower() not in ("cuda", chosen):  # a GPU index the group would silently not use
            raise UsageError(f"--device {device} on rank {shard.rank}: in a group each process takes the GPU of its "
                             f"local rank ({chosen} here); give --device cuda (CUDA_VISIBLE_DEVICES picks the GPUs)")
        device = chosen
        torch.cuda.set_device(device)
    if shard.world > 1 and not dist.is_initialized():
        from datetime import timedelta

        address, port = _meeting_point(shard)
        set_timeout = getattr(dist, "set_timeout", None)  # torch >= 2.6; before it, the long wait for both
        meet = RENDEZVOUS_TIMEOUT if set_timeout is not None else GROUP_TIMEOUT
        try:
            dist.init_process_group("nccl" if device.startswith("cuda") else "gloo", rank=shard.rank,
                                    world_size=shard.world, timeout=timedelta(seconds=meet))
        except (RuntimeError, ValueError, OSError) as exc:  # torch's DistError is a RuntimeError
            last = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
            raise WorkError(f"rank {shard.rank} of {shard.world}: the group did not meet at {address}:{port} "
                            f"within {meet} s ({last}); start every rank (torchrun, srun or --devices N) "
                            "and check MASTER_ADDR/MASTER_PORT") from None
        if set_timeout is not None:  # met: now the collectives' own, long wait (and nccl's store lookups)
            set_timeout(timedelta(seconds=GROUP_TIMEOUT))
            dist.distributed_c10d._get_default_store().set_timeout(timedelta(seconds=GROUP_TIMEOUT))
    return device


def _meeting_point(shard: Shard) -> tuple[str, int]:
    """``MASTER_ADDR``/``MASTER_PORT`` where the ranks meet, checked: set, a port number, a host
    that resolves (torch retries an unknown host until its timeout, hours here)."""
    env = os.environ
    address, port_text = env.get("MASTER_ADDR", "").strip(), env.get("MASTER_PORT", "").strip()
    if not address or not port_text:
        raise UsageError(f"rank {shard.rank} of {shard.world}, but MASTER_ADDR and MASTER_PORT (where the ranks "
                         "meet) are not both set: start the command with torchrun or srun, or --devices N on one "
                         "machine")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise UsageError(f"MASTER_PORT={port_text!r}: must be a port number from 1 to 65535")
    try:
        socket.getaddrinfo(address, int(port_text))
    except (OSError, UnicodeError) as exc:
        raise UsageError(f"MASTER_ADDR={address}: no such host ({exc}); set it to the first node of the job") from None
    return address, int(port_text)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _child(local_rank: int, run, devices: int, kwargs: dict, result_path: str, threads: int | None) -> None:
    """One process of ``--devices N``: its rank from the node rank and its index; runs ``run(**kwargs)``."""
    import signal

    import torch

    def stop(signum, frame):  # the launcher stops the group when a rank died: finish the records
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    node = int(os.environ.get("LASSKIT_NODE_RANK", "0"))
    os.environ["RANK"] = str(node * devices + local_rank)
    os.environ["LOCAL_RANK"] = str(local_rank)
    os.environ["LOCAL_WORLD_SIZE"] = str(devices)
    if threads:
        torch.set_num_threads(threads)
    try:
        report = run(**kwargs)
    except LasskitError as exc:  # said once, by the launching process (every rank may fail alike)
        report = getattr(exc, "report", None)
        with open(f"{result_path}.rank{local_rank}.err", "wb") as fh:
            pickle.dump(("UsageError" if isinstance(exc, UsageError) else "WorkError", str(exc)), fh)
        if report is not None and local_rank == 0:
            with open(result_path, "wb") as fh:
                pickle.dump(report, fh)
        raise SystemExit(2 if isinstance(exc, UsageError) else 1)
    if local_rank == 0:
        with open(result_path, "wb") as fh:
            pickle.dump(report, fh)
    _leave_group()


def _leave_group() -> None:
    """Leave the group together once every rank is done (rank 0 has merged): a rank that exits while
    the others still hold gloo connections can be aborted by them (exit -6 after finishing its work,
    which ``--devices`` then reported as a stopped rank)."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def run_on(run, devices: int, num_nodes: int = 1, threads_per_process: int | None = None, **kwargs):
    """Run ``run(**kwargs)`` (a module-level function that finds its rank with :func:`env_shard`) on
    ``devices`` processes here (and ``num_nodes`` machines, each started by its own launcher);
    rank 0's result. A rank's :class:`~lasskit.errors.LasskitError` is raised here as one line."""
    if devices < 1 or num_nodes < 1:
        raise UsageError(f"--devices {devices} --num-nodes {num_nodes}: both must be at least 1")
    if num_nodes > 1 and env_shard() is None:
        raise UsageError(f"--num-nodes {num_nodes}: start the command on every node with srun or torchrun "
                         "(they set the ranks); --devices alone runs on this machine")
    import torch.multiprocessing as mp

    saved = {key: os.environ.get(key) for key in ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE")}
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(_free_port()))
    os.environ["WORLD_SIZE"] = str(devices * num_nodes)
    with tempfile.TemporaryDirectory(prefix="lasskit-ranks-") as tmp:
        result = os.path.join(tmp, "report.pickle")
        spawn_log = logging.getLogger("torch.multiprocessing.spawn")  # "Terminating process ...": said below
        level = spawn_log.level
        spawn_log.setLevel(logging.ERROR)
        try:
            mp.start_processes(_child, args=(run, devices, kwargs, result, threads_per_process), nprocs=devices,
                               join=True, start_method="spawn")
        except (mp.ProcessExitedException, mp.ProcessRaisedException) as exc:  # a rank exited or raised
            errors = sorted(Path(tmp).glob("report.pickle.rank*.err"))
            if errors:
                kind, message = pickle.loads(errors[0].read_bytes())
                raise (UsageError if kind == "UsageError" else WorkError)(message) from None
            how = (f"exit code {exc.exit_code}" if isinstance(exc, mp.ProcessExitedException)
                   else str(exc).strip().splitlines()[-1])  # the exception's last line, not its traceback
            raise WorkError(f"rank {exc.error_index} stopped ({how}); "
                            "run the same command again to finish what is missing") from None
        finally:
            spawn_log.setLevel(level)
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        errors = sorted(Path(tmp).glob("report.pickle.rank*.err"))
        if errors:
            kind, message = pickle.loads(errors[0].read_bytes())
            raise (UsageError if kind == "UsageError" else WorkError)(message)
        with open(result, "rb") as fh:
            return pickle.load(fh)


__all__ = ["ONE", "RANK_LEDGER", "Shard", "env_shard", "first_host", "init_group", "run_on"]
