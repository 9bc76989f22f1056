"""Corpus recipes: one module per raw corpus, each a plain function from the raw folder to manifests.

``prepare_corpus(corpus, src, data_dir, ...)`` dispatches to ``lasskit.corpora.<corpus>.prepare``
and returns one :class:`~lasskit.corpora.common.PrepareReport` per corpus or split it wrote.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from lasskit.corpora.common import PrepareReport, check_output_outside
from lasskit.errors import UsageError

CORPORA = {
    "clotho": "Clotho v2: development/validation/evaluation audio with 5 captions a clip",
    "fsd50k": "FSD50K: dev/eval audio with labels (and the organizers' generated captions)",
    "dcase2024": "DCASE 2024 Task 9 validation and evaluation sets (val_synth, eval_synth, eval_real)",
    "folder": "any folder of audio, with an optional CSV of captions and labels",
}


def prepare_corpus(corpus: str, src: Path, data_dir: Path, **options) -> list[PrepareReport]:
    """Prepare raw ``src`` of ``corpus`` into ``data_dir`` (``<workspace>/data`` by default).

    ``options`` are the recipe's keyword arguments: ``jobs``, ``overwrite``, ``resampler`` and
    recipe-specific ones (``captions`` for fsd50k, ``metadata``/``name`` for folder).
    """
    if corpus not in CORPORA:
        raise UsageError(f"unknown corpus {corpus!r}; choose one of {', '.join(CORPORA)}")
    src = Path(src)
    if not src.is_dir():
        raise UsageError(f"{src}: no such folder; pass the raw {corpus} download folder")
    check_output_outside(src, data_dir)
    module = importlib.import_module(f"lasskit.corpora.{corpus}")
    return module.prepare(src, data_dir, **{k: v for k, v in options.items() if v is not None})
