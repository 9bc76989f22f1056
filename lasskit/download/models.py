"""Which weight files a model name stands for, for ``lasskit download NAME`` and ``models download``.

Two places declare them, and a model author uses either:

- :mod:`lasskit.weights`: ``WEIGHTS`` (files by name), ``MODEL_WEIGHTS`` (a model's files) and
  ``TOKENIZERS``/``MODEL_TOKENIZERS`` (the tokenizer files its text encoder needs);
- the model class itself, registered under the ``lasskit.models`` entry point, with a class
  attribute ``weight_files``: a tuple of :class:`lasskit.weights.WeightFile` (name, file name,
  URL, SHA-256, size). Nothing else is needed for ``lasskit download <model>`` to fetch, resume and
  verify them into ``<cache>/weights/``; the model finds them there with
  :func:`lasskit.weights.fetch_file`.

The entry point is loaded by name (like :mod:`lasskit.models.registry` does) only when the name
is not declared in :mod:`lasskit.weights`, so ``--list`` and known names import no model code.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ModelFiles:
    """The weight files and tokenizer of one downloadable name."""

    name: str
    files: tuple = ()
    """:class:`lasskit.weights.WeightFile` entries."""
    tokenizer: str | None = None
    description: str = ""


def declared_by_class(name: str) -> ModelFiles | None:
    """The ``weight_files`` of the model registered as ``name``, or None (not registered, none declared)."""
    from importlib.metadata import entry_points

    for ep in entry_points(group="lasskit.models"):
        if ep.name != name:
            continue
        try:
            cls = ep.load()
        except Exception:  # a broken plugin: `lasskit models` says why
            return None
        files = tuple(getattr(cls, "weight_files", ()) or ())
        if not files:
            return None
        from lasskit.weights import MODEL_TOKENIZERS

        return ModelFiles(name, files, getattr(cls, "tokenizer", None) or MODEL_TOKENIZERS.get(name),
                          str(getattr(cls, "description", "") or ""))
    return None


def model_files(name: str) -> ModelFiles | None:
    """What ``name`` (a model, a weight file or a tokenizer) needs downloaded, or None if unknown."""
    from lasskit.weights import MODEL_TOKENIZERS, MODEL_WEIGHTS, TOKENIZERS, WEIGHTS

    if name in MODEL_WEIGHTS:
        files = tuple(WEIGHTS[w] for w in MODEL_WEIGHTS[name])
        return ModelFiles(name, files, MODEL_TOKENIZERS.get(name), files[0].description if files else "")
    if name in WEIGHTS:
        return ModelFiles(name, (WEIGHTS[name],), None, WEIGHTS[name].description)
    if name in TOKENIZERS:
        return ModelFiles(name, (), name, f"tokenizer files of {name}")
    return declared_by_class(name)


def static_names() -> list[str]:
    """Names declared in :mod:`lasskit.weights` (models, weight files, tokenizers), sorted."""
    from lasskit.weights import MODEL_WEIGHTS, TOKENIZERS, WEIGHTS

    return sorted(set(MODEL_WEIGHTS) | set(WEIGHTS) | set(TOKENIZERS))


def registered_with_files() -> list[str]:
    """Registered models (entry points) whose class declares ``weight_files``; loads each model."""
    from importlib.metadata import entry_points

    return sorted({ep.name for ep in entry_points(group="lasskit.models")
                   if ep.name not in static_names() and declared_by_class(ep.name) is not None})
