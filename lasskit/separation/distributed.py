"""Separating a split on several processes (GPUs, nodes) with the bytes of one process.

``lasskit separate --split S --devices N [--num-nodes M]`` starts N processes on this machine
(or runs under ``torchrun``/``srun``); the group, the ranks and the launch are
:mod:`lasskit.distributed`'s (shared with ``label --clap`` and ``score``); this module holds what
is separate's own: the per-rank ledgers and their merge.

The rule (:class:`Shard`): every rank scans the split the same way and plans the same batches as
one process would (sorted by length, equal lengths together); batch ``i`` goes to rank
``i mod world``. So no row is done twice or missed, nothing is padded, and every output is
computed in exactly the batch a single process puts it in: the same bytes as ``--devices 1``
(on the CPU with the same number of torch threads per process). Rank 0 first folds in the
per-rank ledgers a killed run left, hashes the mixtures and removes stale outputs; the others
wait for it. Each rank records what it writes in its own ledger
(``provenance.rank<r>.json``, saved every 2 s); at the end rank 0 merges them into
``provenance.json`` and writes ``separate.json`` (with ``ranks``: what each rank did) and
``failures.csv``. A rank killed mid-run loses at most its last 2 s of records: the same command
again makes only what is missing.

``separate FILE_OR_DIR... --devices N`` (:func:`lasskit.separation.files.separate_files`) shares
the recordings the same way (recording ``i`` to rank ``i mod world``; a recording's outputs do not
depend on the others), with the same per-rank ledgers merged by rank 0 into ``provenance.json``
and ``separations.csv``. :func:`separate_split_on` starts the processes for either loop.
"""

from __future__ import annotations

from pathlib import Path

from lasskit.distributed import (  # noqa: F401  (moved there; importable from here as before)
    RANK_LEDGER,
    Shard,
    env_shard,
    first_host,
    init_group,
    run_on,
)
from lasskit.provenance import LEDGER_FILE, Ledger

separate_split_on = run_on
"""Run :func:`~lasskit.separation.pipeline.separate_split` (or ``separate_files``) on ``devices``
processes: :func:`lasskit.distributed.run_on`."""


def merge_rank_ledgers(out_dir: Path, ledger: Ledger) -> list[str]:
    """Fold every ``provenance.rank*.json`` in ``out_dir`` into ``ledger`` (a rank's records win),
    save it and remove those files; the names folded in."""
    folded = []
    for path in sorted(out_dir.glob("provenance.rank*.json")):
        part = Ledger(out_dir, file=path.name)
        for name, record in part.records.items():
            settings = part.settings.get(record.settings)
            if settings is not None:
                ledger.settings.setdefault(record.settings, settings)
            ledger.records[name] = record
            ledger._dirty = True
            folded.append(name)
    ledger.save()
    for path in sorted(out_dir.glob("provenance.rank*.json")):
        path.unlink(missing_ok=True)
    return folded


__all__ = ["LEDGER_FILE", "RANK_LEDGER", "Shard", "env_shard", "first_host", "init_group", "merge_rank_ledgers",
           "separate_split_on"]
