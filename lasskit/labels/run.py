"""``lasskit label``'s steps: derive labels from keywords and captions, then (``--clap``) tag from the
audio, on one process or a group (``--devices N``, torchrun, srun; :mod:`lasskit.distributed`).

In a group every rank loads the CLAP towers on its device; rank 0 alone derives the labels and
writes the manifest, the others wait for it (or for its one-line error, which stops every rank:
under srun a rank that exits does not stop the others), then every rank reads the same manifest, and the
clips to tag are embedded in the plan of :func:`lasskit.models.embedding_cache.embed_missing`
(batch ``i`` on rank ``i mod world``, gathered to rank 0, stored in the disk cache as they come).
Rank 0 picks the labels and writes the manifest: the bytes of one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from lasskit.errors import LasskitError, UsageError, WorkError


@dataclass
class LabelRun:
    """What ``lasskit label`` did (rank 0's view)."""

    report: Any
    """The :class:`~lasskit.labels.corpus.LabelReport` of the keyword and caption step."""
    written: bool = False
    clap_done: int | None = None
    """Clips tagged by CLAP (None without --clap)."""
    without: int = 0
    checkpoint: str = ""
    cached: int = 0
    by_rank: list = field(default_factory=list)
    """Audio embeddings each rank computed."""
    rank: int = 0
    world: int = 1


def label_corpus(manifest: str | os.PathLike, vocabulary: str | os.PathLike | None = None,
                 ontology: str | os.PathLike | None = None, fsd50k_root: str | os.PathLike | None = None,
                 clap: dict | None = None) -> LabelRun:
    """Label the corpus whose manifest is ``manifest`` (see the module doc). ``clap``: ``None``, or
    the CLAP step's settings: ``checkpoint``, ``tokenizer``, ``device``, ``batch`` (clips per
    tower call), ``replace_derived``, ``top_k``, ``min_score``, ``path``. The CLAP weights are loaded before the manifest is touched
    (a refusal changes nothing)."""
    from lasskit.distributed import ONE, env_shard, init_group
    from lasskit.labels.corpus import label_manifest, resolve_labeler

    labeler = resolve_labeler(vocabulary, ontology, fsd50k_root)
    if labeler is None:
        raise UsageError("no class vocabulary: pass --vocabulary FSD50K.ground_truth/vocabulary.csv or "
                         "--ontology ontology.json (or set paths.fsd50k in lasskit.yaml)")
    shard = env_shard() or ONE
    clap = dict(clap) if clap is not None else None
    model = None
    if clap is not None:
        from lasskit.models.clap_model import load_clap_model

        device = str(clap.pop("device", "auto") or "auto").strip().lower()
        if shard.world > 1:
            if device == "auto":
                import torch

                device = "cuda" if torch.cuda.is_available() else "cpu"
            device = init_group(shard, device)
        model = load_clap_model(clap.pop("checkpoint", None), clap.pop("tokenizer", None), device,
                                audio_batch_size=clap.pop("batch", 4))
    report, failure = None, None
    if shard.lead:
        try:
            report = label_manifest(manifest, labeler)
        except LasskitError as exc:
            failure = exc
    if model is not None and shard.world > 1:  # the others wait for the manifest rank 0 writes, or its error
        said = shard.from_lead(None if failure is None else (isinstance(failure, UsageError), str(failure)))
        if said is not None and failure is None:  # under srun a rank that stops does not stop the others
            raise (UsageError if said[0] else WorkError)(f"rank 0 stopped: {said[1]}")
    if failure is not None:
        raise failure
    run = LabelRun(report, written=bool(report and report.written), rank=shard.rank, world=shard.world)
    if model is None:
        return run
    from lasskit.labels.clap import class_names, clap_label_manifest

    record: list = []
    done, run.without, changed = clap_label_manifest(manifest, class_names(labeler.vocabulary), model, shard=shard,
                                                     record=record, **clap)
    run.clap_done, run.written = done, run.written or changed
    run.checkpoint = model.checkpoint
    if record:
        run.cached, run.by_rank = record[0].cached, list(record[0].by_rank)
    return run


__all__ = ["LabelRun", "label_corpus"]
