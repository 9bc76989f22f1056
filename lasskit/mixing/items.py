"""Mixtures made on the fly, without files: the training Dataset's items."""

from __future__ import annotations

from lasskit import audio
from lasskit.errors import UsageError, WorkError
from lasskit.mixing.planning import (
    PlannedRow,
    Planner,
    row_rng,
)
from lasskit.mixing.segments import (
    MixedSegments,
    frame_activity,
    mix_segments,
    take_segment,
)


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
