"""The training Dataset: class-disjoint mixtures made on the fly (imports torch; load it lazily).

Build one with :func:`mixture_dataset` (also ``lasskit.mixing.mixture_dataset``, loaded lazily). It shares the pairing, query, SNR, crop
and gain logic of ``lasskit mix`` (:class:`lasskit.mixing.Planner`, :func:`lasskit.mixing.make_item`):
item ``i`` of epoch 0 is row ``i`` of ``lasskit mix`` with the same options and seed (as long as
no clip is silent), with no file written. :meth:`MixtureDataset.set_epoch` draws new pairs, SNRs
and crops for another epoch; items depend only on (seed, epoch, index), never on the worker.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset

from lasskit.errors import UsageError
from lasskit.mixing.items import make_item
from lasskit.mixing.planning import MixSpec, Planner, eligible, load_candidates


class MixtureDataset(Dataset):
    """Items ``(mixture, reference, query)``: float32 tensors of ``spec.length`` samples, and a str."""

    def __init__(self, planner: Planner, epoch: int = 0):
        self.planner = planner
        self.epoch = epoch

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
        mixed, row = self.row(index)
        return torch.from_numpy(mixed.mixture), torch.from_numpy(mixed.source), row.query


def mixture_dataset(
    targets: Sequence[str | os.PathLike],
    spec: MixSpec,
    noises: Sequence[str | os.PathLike] | None = None,
    *,
    splits: Sequence[str] = (),
    datasets: Sequence[str] = (),
    ontology: str | os.PathLike | None = None,
):
    """A ``torch.utils.data.Dataset`` of class-disjoint mixtures made on the fly (imports torch).

    Item ``i`` is ``(mixture, reference, query)`` (float32 tensors of ``spec.length`` samples and
    a str) drawn with row ``i``'s generator; see :class:`lasskit.mixing.torch_dataset.MixtureDataset`.
    """
    from lasskit.ontology import Ontology

    onto = Ontology.from_json(ontology) if ontology else None
    target_pool = load_candidates([Path(p) for p in targets], onto, splits, datasets)
    noise_pool = load_candidates([Path(p) for p in noises], onto, splits, datasets) if noises else target_pool
    skipped: Counter = Counter()
    planner = Planner(eligible(target_pool, spec, "target", skipped), eligible(noise_pool, spec, "noise", skipped), spec)
    if not planner.units:
        raise UsageError("no target with a class-disjoint noise in these manifests"
                         + (f" (skipped: {dict(skipped)})" if skipped else ""))
    return MixtureDataset(planner)
