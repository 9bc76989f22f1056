"""Which weight files a model name stands for, for ``lasskit download NAME`` and ``models download``.

Three places declare them; a model author uses one:

- :mod:`lasskit.weights`: ``WEIGHTS`` (files by name), ``MODEL_WEIGHTS`` (a model's files) and
  ``TOKENIZERS``/``MODEL_TOKENIZERS`` (the tokenizer files its text encoder needs);
- the zoo's model cards (:func:`lasskit.models.cards.weight_files`): URL, size and SHA-256 where
  the publisher gives them, the Zenodo record when the file sits in one (its API then gives the
  MD5 and size), and the tokenizer;
- a plugin's model class, registered under the ``lasskit.models`` entry point, with a class
  attribute ``weight_files``: a tuple of :class:`lasskit.weights.WeightFile`.

Nothing else is needed for ``lasskit download <model>`` to fetch, resume and verify them into
``<cache>/weights/``. This module is the models layer's half of the downloader: the CLI hands
:func:`model_files` to :func:`lasskit.download.run.download` (which, on its own, knows only
:mod:`lasskit.weights`). A plugin's class is loaded only for a name declared nowhere else.
"""

from __future__ import annotations

from lasskit.download.run import ModelFiles, static_model_files


def from_card(name: str) -> ModelFiles | None:
    """The weight files of zoo model ``name`` from its card, or None (no card, no files). No torch."""
    from lasskit.models import cards
    from lasskit.weights import WeightFile

    card = cards.card(name)
    if card is None or not card.weights:
        return None
    files = tuple(WeightFile(f"{name}/{d.role}", d.filename, d.url, d.sha256, d.size, d.source, archive=d.archive)
                  for d in card.weights)
    records = {d.filename: d.zenodo_record for d in card.weights if d.zenodo_record}
    return ModelFiles(name, files, card.tokenizer, card.citation, records, card.licence)


def from_class(name: str) -> ModelFiles | None:
    """The ``weight_files`` of the plugin registered as ``name``, or None (not registered, none declared)."""
    from importlib.metadata import entry_points

    for ep in entry_points(group="lasskit.models"):
        if ep.name != name:
            continue
        try:
            cls = ep.load()
        except Exception:  # a broken plugin: `lasskit models` says why
            return None
        files = tuple(getattr(cls, "weight_files", ()) or ())
        if not files or not all(hasattr(f, "url") and hasattr(f, "filename") for f in files):
            return None
        return ModelFiles(name, files, getattr(cls, "tokenizer", None), str(getattr(cls, "description", "") or ""))
    return None


def model_files(name: str) -> ModelFiles | None:
    """What ``name`` (a model, a weight file or a tokenizer) needs downloaded, or None if unknown."""
    return static_model_files(name) or from_card(name) or from_class(name)


def card_names() -> list[str]:
    """Zoo models whose card declares weight files, sorted."""
    from lasskit.models import cards

    return sorted(n for n, c in cards.CARDS.items() if c.weights)
