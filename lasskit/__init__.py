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
  ``workspace``, ``weights``, ``soundgen``, ``miniature``.
"""

__version__ = "0.1.0"

SAMPLE_RATE = 16000
"""The challenge's sample rate in Hz: every prepared clip, mixture and output uses it."""
