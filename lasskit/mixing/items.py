"""Mixtures made on the fly, without files: the training Dataset's items.

Item ``index`` of epoch 0 is row ``index`` of ``lasskit mix`` with the same options and seed:
the same planner (same data rules, same clips left out after the same scan), the same draws,
the same partial reads and gains (:func:`make_item`).
"""

from __future__ import annotations

import numpy as np

from lasskit.errors import UsageError, WorkError
from lasskit.mixing.activity import ClipActivity, analyse_clip
from lasskit.mixing.planning import PlannedRow, Planner, row_rng
from lasskit.mixing.pool import Candidate
from lasskit.mixing.segments import (
    MixedSegments,
    _scratch,
    mix_segments,
    read_segment,
)


def _activity(planner: Planner, clip: Candidate) -> ClipActivity:
    """The clip's scanned activity; decoded now (and remembered) if the planner lacks it."""
    a = planner.activity.get(clip.key)
    if a is None:
        a = planner.activity[clip.key] = analyse_clip(clip.path, planner.spec.silence_db)
    return a


def make_item(planner: Planner, index: int, epoch: int = 0, attempts: int = 8,
              noise: bool = True) -> tuple[MixedSegments, PlannedRow]:
    """Row ``index`` made on the fly (no files): the Dataset's item, in numpy.

    The mixture and source are new arrays; with ``noise=False`` the noise is a buffer of this
    thread that the next item overwrites (saves a fresh 10 s array per item where it is unused).

    Same draws and bytes as :func:`make_mixtures` row ``index`` (epoch 0) whenever the planner's
    clips were scanned (:func:`lasskit.mixing.planning.prepare_planner`, as ``mixture_dataset``
    does). A clip the planner has not scanned is decoded here; if it turns out unusable, a target
    is replaced by the next unit (generator ``(0, index, epoch, k)``), a noise by a new draw.
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
        t = _activity(planner, row.target)
        t_off = planner.draw_offset(rng, t.active, t.num_samples, target=True)
        if t_off is None:
            continue
        for _ in range(attempts):
            n = _activity(planner, row.noise)
            n_off = planner.draw_offset(rng, n.active, n.num_samples, noise=True)
            if n_off is not None:
                row.target_offset, row.noise_offset = t_off, n_off
                length = spec.length
                seg_t = read_segment(row.target.path, t_off, length, _scratch("item_s", length, np.float32))
                seg_n = read_segment(row.noise.path, n_off, length, _scratch("item_n", length, np.float32))
                out = (np.empty(length, np.float32), np.empty(length, np.float32),
                       np.empty(length, np.float32) if noise else _scratch("item_nz", length, np.float32))
                return mix_segments(seg_t, seg_n, row.snr, out=out), row
            valid = planner.valid_noises(row.target)
            row.noise = planner.noises[int(valid[rng.integers(len(valid))])]
    raise WorkError(f"item {index}: no non-silent target and noise after {attempts} tries; check the clips")
