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
from torch.utils.data import Dataset

from lasskit.errors import UsageError
from lasskit.mixing.items import make_item
from lasskit.mixing.planning import MixSpec, Planner, prepare_planner


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
