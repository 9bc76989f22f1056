"""The training Dataset: class-disjoint mixtures made on the fly (imports torch; load it lazily).

Build one with :func:`mixture_dataset` (also ``lasskit.mixing.mixture_dataset``, loaded lazily).
It runs the same planning as ``lasskit mix`` (:func:`lasskit.mixing.planning.prepare_planner`:
the data rules, eligibility, the scan that leaves out silent, too little active and unreadable
clips) and the same item arithmetic (:func:`lasskit.mixing.make_item`), so item ``i`` of epoch 0
is row ``i`` of ``lasskit mix`` with the same options and seed, silent clips in the pool or not,
with no file written. :meth:`MixtureDataset.set_epoch` draws new pairs, SNRs and crops for
another epoch; items depend only on (seed, epoch, index), never on the worker.

The data rules are those of ``mix``: clips of a val/eval split only when ``splits`` names it;
the challenge's own corpora only when passed (all manifests given here count as named);
recordings of the challenge's clips (``reference`` manifests) left out. ``skipped``, ``pool`` and
``failures`` say what was left out and why.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from lasskit.errors import UsageError
from lasskit.mixing.items import make_item
from lasskit.mixing.planning import Planner, prepare_planner
from lasskit.mixing.spec import MixSpec


class MixtureDataset(Dataset):
    """Items ``(mixture, reference, query)``: float32 tensors of ``spec.length`` samples, and a str."""

    def __init__(self, planner: Planner, epoch: int = 0):
        self.planner = planner
        self.epoch = epoch
        self.skipped: dict[str, int] = {}
        self.failures: list[tuple[str, str]] = []
        self.pool = None

    def set_epoch(self, epoch: int) -> None:
        """Use epoch ``epoch``'s draws (0 is the same as ``lasskit mix``)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.planner.num_rows

    def row(self, index: int):
        """Item ``index``'s audio and choices, in numpy: ``(MixedSegments, PlannedRow)``."""
        if not 0 <= index < len(self):
            raise IndexError(index)
        return make_item(self.planner, index, self.epoch)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, str]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        mixed, row = make_item(self.planner, index, self.epoch, noise=False)
        return torch.from_numpy(mixed.mixture), torch.from_numpy(mixed.source), row.query


def mixture_dataset(
    targets: Sequence[str | os.PathLike],
    spec: MixSpec,
    noises: Sequence[str | os.PathLike] | None = None,
    *,
    splits: Sequence[str] = (),
    datasets: Sequence[str] = (),
    ontology: str | os.PathLike | None = None,
    named: Sequence[str | os.PathLike] | None = None,
    reference: Sequence[str | os.PathLike] = (),
    jobs: int | None = None,
    cache_dir: str | os.PathLike | None = None,
):
    """A ``torch.utils.data.Dataset`` of class-disjoint mixtures made on the fly (imports torch).

    Item ``i`` is ``(mixture, reference, query)`` (float32 tensors of ``spec.length`` samples and
    a str) drawn with row ``i``'s generator; see :class:`lasskit.mixing.torch_dataset.MixtureDataset`.
    Every clip is scanned once (``jobs`` processes); with ``cache_dir`` (e.g. the workspace's
    ``data/splits/.cache``, which ``lasskit mix`` uses) later runs read the activity from there.
    """
    prepared = prepare_planner(spec, targets, noises, splits=splits, datasets=datasets, ontology=ontology,
                               named=named, reference=reference, jobs=jobs, cache_dir=cache_dir)
    planner = prepared.planner
    if not planner.units:
        raise UsageError("no target with a class-disjoint noise in these manifests"
                         + (f" (skipped: {dict(prepared.skipped)})" if prepared.skipped else ""))
    dataset = MixtureDataset(planner)
    dataset.skipped = dict(sorted(prepared.skipped.items()))
    dataset.failures = prepared.failures
    dataset.pool = prepared.pool
    return dataset


# --- the loader: batches made in workers without a fresh shared-memory block per batch -----------

class _SlotBatch:
    """What a worker sends for a batch built in a reusable slot: where it is, and its stamp."""

    __slots__ = ("worker", "slot", "stamp", "rows", "queries")

    def __init__(self, worker: int, slot: int, stamp: int, rows: int, queries: list[str]):
        self.worker, self.slot, self.stamp, self.rows, self.queries = worker, slot, stamp, rows, queries


class _Slots:
    """Shared-memory batch slots, ``per_worker`` for each worker, made before the workers start.

    A worker claims a free slot (``busy`` 0 -> 1, ``stamp`` + 1), stacks its batch into it and
    sends only a :class:`_SlotBatch`; the main process checks the stamp, copies the batch out and
    frees the slot. Pages are touched only when a slot is first used, and then reused, instead of
    a new shared-memory block (and its page faults, about 1 ms a 10 s item) for every batch.
    """

    def __init__(self, workers: int, per_worker: int, batch_size: int, length: int):
        shape = (workers, per_worker, batch_size, length)
        count = workers * per_worker * batch_size * length
        # _new_shared maps the block without touching it: only slots in use take memory
        self.mixtures = _shared_float32(count).view(shape)
        self.references = _shared_float32(count).view(shape)
        self.busy = torch.zeros(workers, per_worker, dtype=torch.int64).share_memory_()
        self.stamp = torch.zeros(workers, per_worker, dtype=torch.int64).share_memory_()
        self.batch_size, self.length = batch_size, length


def _shared_float32(count: int) -> torch.Tensor:
    """A float32 tensor of ``count`` elements in shared memory whose pages are not touched yet."""
    storage = torch.UntypedStorage._new_shared(4 * count)
    return torch.empty(0, dtype=torch.float32).set_(storage, 0, (count,))


class _SlotCollate:
    """The collate function: ``(mixtures, references, queries)``; in a worker, built in a slot."""

    def __init__(self, slots: _Slots | None):
        self.slots = slots

    def __call__(self, items):
        from torch.utils.data import get_worker_info

        queries = [item[2] for item in items]
        info = get_worker_info()
        slots = self.slots
        if (info is not None and slots is not None and info.id < slots.busy.shape[0]
                and len(items) <= slots.batch_size
                and all(item[0].shape == (slots.length,) == item[1].shape
                        and item[0].dtype == torch.float32 == item[1].dtype for item in items)):
            free = (slots.busy[info.id] == 0).nonzero()
            if len(free):
                k = int(free[0])
                slots.busy[info.id, k] = 1
                slots.stamp[info.id, k] += 1
                n = len(items)
                torch.stack([item[0] for item in items], out=slots.mixtures[info.id, k, :n])
                torch.stack([item[1] for item in items], out=slots.references[info.id, k, :n])
                return _SlotBatch(info.id, k, int(slots.stamp[info.id, k]), n, queries)
        # in the main process, or no free slot: a plain batch (correct, only slower)
        return torch.stack([item[0] for item in items]), torch.stack([item[1] for item in items]), queries


def _init_loader_worker(worker_id: int) -> None:
    from lasskit.allocator import keep_freed_memory

    keep_freed_memory()


class MixtureLoader(DataLoader):
    """A DataLoader for fixed-length ``(mixture, reference, query)`` items (:class:`MixtureDataset`,
    the training samples): batches ``(mixtures, references, queries)``.

    With workers, each batch is stacked into a reusable shared-memory slot and copied out once
    in this process (into pinned memory with ``pin_memory``), so that moving 10 s items between
    processes costs a copy, not a fresh shared block per batch: one worker is then not slower
    than none (``make bench``). Every batch handed out is this process's own memory, which later
    batches never overwrite; a slot whose stamp does not match is an error, never a wrong batch.
    Items of another length, and the rare batch that finds no free slot, travel the ordinary way.
    Workers keep freed memory (:func:`lasskit.allocator.keep_freed_memory`), as the model does.
    """

    def __init__(self, dataset, *, length: int | None = None, batch_size: int | None = 1, batch_sampler=None,
                 workers: int = 0, pin_memory: bool = False, prefetch: int = 4, persistent_workers: bool = False,
                 **kwargs):
        if length is None:
            planner = getattr(dataset, "planner", None)
            length = planner.spec.length if planner is not None else None
        if batch_sampler is not None:
            size = int(getattr(batch_sampler, "batch_size", 0) or 0)
        else:
            size = int(batch_size or 1)
        # persistent workers keep batches of an abandoned iteration: they take the ordinary way
        reuse = workers and size and length and not persistent_workers
        self._slot_args = (workers, prefetch + 1, size, length) if reuse else None
        collate = _SlotCollate(None)  # slots are made for each iteration's workers (__iter__)
        options = dict(num_workers=workers, pin_memory=pin_memory, collate_fn=collate,
                       worker_init_fn=_init_loader_worker if workers else None,
                       persistent_workers=bool(persistent_workers and workers))
        if workers:
            options["prefetch_factor"] = prefetch
        if batch_sampler is not None:
            options["batch_sampler"] = batch_sampler
        else:
            options["batch_size"] = batch_size
        super().__init__(dataset, **options, **kwargs)

    def __iter__(self):
        collate = self.collate_fn
        if not self.num_workers:
            _init_loader_worker(0)  # the items are made in this process
        if self._slot_args:
            collate.slots = _Slots(*self._slot_args)  # this iterator's workers get their own slots
        iterator = super().__iter__()
        slots = collate.slots
        pin = self.pin_memory and torch.cuda.is_available()
        return _unslot(iterator, slots, pin)


def _unslot(iterator, slots, pin: bool):
    for batch in iterator:
        if isinstance(batch, _SlotBatch):
            w, k, n = batch.worker, batch.slot, batch.rows
            if int(slots.busy[w, k]) != 1 or int(slots.stamp[w, k]) != batch.stamp:
                raise RuntimeError(f"internal error: batch slot {w}/{k} was reused before it was read")
            out = []
            for source in (slots.mixtures[w, k, :n], slots.references[w, k, :n]):
                copy = torch.empty(source.shape, dtype=source.dtype, pin_memory=pin)
                copy.copy_(source)
                out.append(copy)
            if int(slots.stamp[w, k]) != batch.stamp:
                raise RuntimeError(f"internal error: batch slot {w}/{k} changed while it was read")
            slots.busy[w, k] = 0
            batch = (out[0], out[1], batch.queries)
        yield batch
