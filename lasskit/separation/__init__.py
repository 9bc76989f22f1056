"""Run a separation model over a split: one checked 16 kHz mono float WAV per mixture.

``separate_split`` reads ``data/splits/<split>/mixtures.csv`` and writes
``exp/<model>/<split>/<mixture file name>`` for every row, plus ``separate.json`` (what ran, on
what, how long) and, when rows failed, ``failures.csv`` (``mixture, reason``).

The pipeline:

- rows whose output is already complete (a readable 16 kHz mono WAV of the mixture's length) are
  skipped unless ``overwrite``; every write is atomic, so an interrupted run is simply re-run;
- the other rows are sorted by length and grouped into batches of ``batch_size``; shorter rows of
  a batch are zero-padded at the end and their estimates cropped back;
- mixtures are decoded by ``jobs`` background threads (default 2) while the model runs, and
  outputs are written by another thread; ``jobs=0`` does everything in the calling thread;
- on the device: resampling to the model's rate and back (``torchaudio.functional.resample``)
  when it is not 16 kHz, and chunking with overlap-add for inputs longer than ``chunk_seconds``
  (default: the model's ``max_seconds``), all under ``torch.inference_mode()``;
- every estimate is checked: a tensor of the input's shape, finite (else a :class:`WorkError`
  naming the model and the inputs), not all zeros (else a warning naming the file);
- outputs are 32-bit float WAV at 16 kHz, mono, exactly the mixture's length, so scoring loses
  no precision (``lasskit package`` converts when a submission needs another format).

Chunking: windows of ``L = chunk_seconds * rate`` samples start every ``H = L * (1 - overlap)``
samples, the last one aligned to the end of the input. Each window's estimate is weighted by a
linear cross-fade over the samples it shares with its neighbours (``(i + 0.5) / o`` rising over
an overlap of ``o`` samples, the mirror image falling) and the overlap-add is divided by the sum
of the weights, so a model that returns its input reproduces the input exactly.

Modules (a stage; imports models and core modules; torch only inside functions):
:mod:`~lasskit.separation.pipeline` (the split loop), :mod:`~lasskit.separation.engine` (one batch
on the device), :mod:`~lasskit.separation.chunking` (windows and weights),
:mod:`~lasskit.separation.outputs` (files and records).
"""

from __future__ import annotations

from lasskit.separation.chunking import (  # noqa: F401
    DEFAULT_CHUNK_OVERLAP,
    chunk_starts,
    chunk_weights,
)
from lasskit.separation.engine import (  # noqa: F401
    DEFAULT_BATCH_SIZE,
    DEVICES,
    resolve_device,
    separate_tensor,
)
from lasskit.separation.outputs import (  # noqa: F401
    FAILURES_CSV,
    SEPARATE_JSON,
    Item,
    expected_length,
    file_sha256,
    is_complete_output,
)
from lasskit.separation.pipeline import (  # noqa: F401
    SeparationReport,
    default_jobs,
    resolve_split_dir,
    separate_split,
)
