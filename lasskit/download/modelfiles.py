"""What a downloadable model name stands for: :class:`ModelFiles` (its weight files, tokenizer,
description, licence and the Zenodo records holding its files) and the names :mod:`lasskit.weights`
declares (:func:`static_model_files`, :func:`static_names`).

:mod:`lasskit.download.run` fetches what a :class:`ModelFiles` lists; the models layer builds more
of them from the zoo's cards and plugins (:mod:`lasskit.models.downloads`). Moved out of ``run``
(which re-exports these names) when the weights' zip handling made it outgrow one room.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ModelFiles:
    """The weight files and tokenizer of one downloadable model name."""

    name: str
    files: tuple = ()
    """:class:`lasskit.weights.WeightFile` entries."""
    tokenizer: str | None = None
    description: str = ""
    records: dict[str, str] = field(default_factory=dict)
    """File name -> Zenodo record holding it (its API gives the MD5 and size)."""
    licence: str = ""


def static_model_files(name: str) -> ModelFiles | None:
    """What ``name`` needs per :mod:`lasskit.weights` (a model, a weight file or a tokenizer), or None."""
    from lasskit.weights import MODEL_TOKENIZERS, MODEL_WEIGHTS, TOKENIZERS, WEIGHTS

    if name in MODEL_WEIGHTS:
        files = tuple(WEIGHTS[w] for w in MODEL_WEIGHTS[name])
        return ModelFiles(name, files, MODEL_TOKENIZERS.get(name), files[0].description if files else "")
    if name in WEIGHTS:
        return ModelFiles(name, (WEIGHTS[name],), None, WEIGHTS[name].description)
    if name in TOKENIZERS:
        return ModelFiles(name, (), name, f"tokenizer files of {name}")
    return None


def static_names() -> list[str]:
    """Names declared in :mod:`lasskit.weights` (models, weight files, tokenizers), sorted."""
    from lasskit.weights import MODEL_WEIGHTS, TOKENIZERS, WEIGHTS

    return sorted(set(MODEL_WEIGHTS) | set(WEIGHTS) | set(TOKENIZERS))
