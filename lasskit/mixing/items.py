"""Mixtures made on the fly, without files: the training Dataset's items."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from lasskit import audio
from lasskit.errors import UsageError, WorkError
from lasskit.mixing.planning import (
    MixSpec,
    PlannedRow,
    Planner,
    load_candidates,
    row_rng,
)
from lasskit.mixing.segments import (
    MixedSegments,
    frame_activity,
    mix_segments,
    take_segment,
)
from lasskit.mixing.writing import _eligible


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
    from lasskit.mixing.torch_dataset import MixtureDataset
    from lasskit.ontology import Ontology

    onto = Ontology.from_json(ontology) if ontology else None
    target_pool = load_candidates([Path(p) for p in targets], onto, splits, datasets)
    noise_pool = load_candidates([Path(p) for p in noises], onto, splits, datasets) if noises else target_pool
    skipped: Counter = Counter()
    planner = Planner(_eligible(target_pool, spec, "target", skipped), _eligible(noise_pool, spec, "noise", skipped), spec)
    if not planner.units:
        raise UsageError("no target with a class-disjoint noise in these manifests"
                         + (f" (skipped: {dict(skipped)})" if skipped else ""))
    return MixtureDataset(planner)


def make_item(planner: Planner, index: int, epoch: int = 0, attempts: int = 8) -> tuple[MixedSegments, PlannedRow]:
    """Row ``index`` made on the fly (no files): the Dataset's item, in numpy.

    Same draws as :func:`make_mixtures` row ``index`` when no clip is silent. A silent target is
    replaced by the next unit (generator ``(0, index, epoch, k)``), a silent noise by a new draw.
    """
    schedule = planner.schedule(epoch)
    if not schedule:
        raise UsageError("no target with a class-disjoint noise: nothing to mix")
    spec = planner.spec
    for k in range(attempts):
        unit = schedule[(index + k) % len(schedule)]
        if k == 0:
            rng = row_rng(spec.seed, index) if epoch == 0 else row_rng(spec.seed, index, epoch)
        else:
            rng = row_rng(spec.seed, index, epoch, k)
        row = planner.draw(index, unit, rng)
        t = audio.load(row.target.path)
        t_off = planner.draw_offset(rng, frame_activity(t, spec.silence_db), len(t))
        if t_off is None:
            continue
        for _ in range(attempts):
            n = audio.load(row.noise.path)
            n_off = planner.draw_offset(rng, frame_activity(n, spec.silence_db), len(n))
            if n_off is not None:
                row.target_offset, row.noise_offset = t_off, n_off
                seg_t = take_segment(t, t_off, spec.length)
                seg_n = take_segment(n, n_off, spec.length)
                return mix_segments(seg_t, seg_n, row.snr), row
            valid = planner.valid_noises(row.target)
            row.noise = planner.noises[int(valid[rng.integers(len(valid))])]
    raise WorkError(f"item {index}: no non-silent target and noise after {attempts} tries; check the clips")
