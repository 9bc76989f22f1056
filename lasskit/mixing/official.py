"""``mix --from-official``: rebuild the split an organizers' CSV describes (formula in :mod:`lasskit.official`)."""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

import numpy as np

from lasskit.errors import UsageError
from lasskit.failures import write_failures
from lasskit.official import build_from_official, official_clip_paths, read_official_rows


def mix_from_official(
    csv_path: str | os.PathLike,
    clips: str | os.PathLike,
    split_dir: str | os.PathLike,
    *,
    labels: dict[str, list[str]] | None = None,
    jobs: int | None = None,
    overwrite: bool = False,
) -> "MixReport":  # noqa: F821
    """Rebuild the split an organizers' CSV describes with their formula (as ``prepare`` does for val_synth).

    ``clips`` is a folder of ``<id>.wav`` files, a corpus folder or a manifest (whose labels are
    then recorded). An existing split is refused unless ``overwrite``; without ``mixtures.csv``
    complete rows from an interrupted run are kept.
    """
    from lasskit.mixing.report import MixReport
    from lasskit.mixing.splitdir import clear_split
    from lasskit.splits import MIXTURES_CSV

    start = time.perf_counter()
    csv_path, split_dir = Path(csv_path), Path(split_dir)
    if not csv_path.is_file():
        raise UsageError(f"{csv_path}: no such CSV; pass the organizers' source, noise, snr, caption file")
    paths, manifest_labels = official_clip_paths(clips)
    _check_buildable(csv_path, paths, clips)  # before --overwrite deletes anything
    if overwrite:
        clear_split(split_dir)
    elif (split_dir / MIXTURES_CSV).is_file():
        raise UsageError(f"{split_dir}: split already exists; pass --overwrite to replace it or choose another --name")
    table, failures, resumed, seconds = build_from_official(
        csv_path, paths, split_dir, labels={**manifest_labels, **(labels or {})}, jobs=jobs, overwrite=overwrite)

    write_failures(split_dir / "failures.csv", failures, keep_empty=True)
    snrs = [float(x) for x in table["snr"]] if len(table) else []
    return MixReport(
        split_dir, rows=len(table), written=len(table) - resumed, resumed=resumed, audio_seconds=seconds,
        distinct_targets=table["source_id"].nunique() if len(table) else 0,
        distinct_noises=table["noise_id"].nunique() if len(table) else 0,
        snr_histogram=dict(sorted(Counter(int(np.floor(s)) for s in snrs).items())),
        failures=failures, seconds=time.perf_counter() - start,
        notes=[f"rebuilt from {csv_path} with the organizers' formula"],
    )


def _check_buildable(csv_path: Path, paths: dict[str, Path], clips) -> None:
    """The CSV is the organizers' (one line naming the problem) and some row has both its clips
    under ``clips``: otherwise the command is refused before an existing split is replaced."""
    rows = read_official_rows(csv_path)
    ids = {c for r in rows for c in (r.source.strip(), r.noise.strip())}
    if rows and not any(r.source.strip() in paths and r.noise.strip() in paths for r in rows):
        raise UsageError(f"{clips}: none of the {len(ids)} clip(s) of {csv_path} found (e.g. "
                         f"{sorted(ids - set(paths))[0]}.wav); pass --clips with the folder of <id>.wav clips "
                         "or the corpus they come from")
