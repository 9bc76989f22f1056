"""lasskit: language-queried audio source separation toolkit (DCASE 2024 Task 9).

Layers (CONTRIBUTING.md has the map; ``tests/test_layout.py`` enforces it):

- ``cli``: one thin Typer module per command;
- ``demo``: runs every stage on generated audio;
- stages, one package per step of the pipeline: ``corpora`` (``prepare``), ``mixing`` (``mix``),
  ``training`` (``train``), ``separation`` (``separate``), ``scoring`` (``score``),
  ``listening`` (``listen``), ``submission`` (``package``/``check``);
- ``labels``: derived class labels for caption-only clips (used by ``corpora`` and ``mixing``);
- ``models``: the model protocol, registry and networks (the only place torch is at home);
- core modules: ``audio``, ``atomic``, ``manifest``, ``splits``, ``official`` (the organizers'
  formula), ``metrics``, ``ontology``, ``provenance``, ``parallel``, ``failures``, ``errors``,
  ``workspace``, ``weights``, ``soundgen``, ``miniature``;
- ``api``: the public Python API, ``lasskit.load_model(...)`` -> ``model.separate(wave, rate, query)``.
"""

__version__ = "0.1.0"

SAMPLE_RATE = 16000
"""The challenge's sample rate in Hz: every prepared clip, mixture and output uses it."""


_API = ("load_model", "Separator")


def __getattr__(name: str):
    """``lasskit.load_model`` / ``lasskit.Separator``, loaded from :mod:`lasskit.api` on first use
    (PEP 562), so that ``import lasskit`` stays light and imports no torch. ``importlib`` keeps
    this a runtime lookup, not an import of a higher layer by the package root."""
    if name in _API:
        import importlib

        return getattr(importlib.import_module("lasskit.api"), name)
    raise AttributeError(f"module 'lasskit' has no attribute {name!r}")
