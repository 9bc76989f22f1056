"""lasskit: language-queried audio source separation toolkit (DCASE 2024 Task 9).

The library is organised one module per concept:

- :mod:`lasskit.audio`      reading, downmixing, resampling and atomic writing of audio;
- :mod:`lasskit.manifest`   corpus manifests (one CSV row per clip);
- :mod:`lasskit.splits`     mixture sets (``data/splits/<split>/mixtures.csv``);
- :mod:`lasskit.corpora`    one recipe module per raw corpus (``prepare``);
- :mod:`lasskit.mixing`     class-disjoint synthetic mixtures at exact SNRs (``mix``);
- :mod:`lasskit.models`     the separation-model protocol and registry (``separate``);
- :mod:`lasskit.metrics`    SDR, SDRi and SI-SDR as the organizers compute them;
- :mod:`lasskit.scoring`    scoring a model's outputs over a split (``score``);
- :mod:`lasskit.packaging`  submission packages and their validator (``package``/``check``).
"""

__version__ = "0.1.0"

SAMPLE_RATE = 16000
"""The challenge's sample rate in Hz: every prepared clip, mixture and output uses it."""
