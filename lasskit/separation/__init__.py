"""Run a separation model over a split: one checked 16 kHz mono float WAV per mixture.

``separate_split`` reads ``data/splits/<split>/mixtures.csv`` and writes
``exp/<model>/<split>/<mixture file name>`` for every row, plus ``provenance.json`` (what made
each output), ``separate.json`` (what the outputs in the folder are, and what this run did) and,
when rows failed, ``failures.csv`` (``mixture, reason``).

**Provenance (the contract with ``score``).** ``exp/<model>/<split>/provenance.json`` is a
:class:`lasskit.provenance.Ledger`: one record per output, named by the output (= mixture) file
name, whose ``input`` is the content digest (:func:`lasskit.provenance.file_digest`, BLAKE2b-128)
of the mixture file it was separated from, and whose settings are everything that changes the
output's bytes: ``model`` (``module:Class``), ``checkpoint_sha256``, ``options`` (and
``option_files``: the SHA-256 of each option naming a file or folder, e.g. a tokenizer),
``model_sample_rate``, ``chunk_seconds`` / ``chunk_overlap`` (the pipeline's windows, None for a
single pass) and ``lasskit_version`` (an oracle's record also holds its reference's digest as
``extra["reference"]``). ``score`` reads it with ``Ledger(estimates_dir)`` and refuses an
estimate whose record's ``input`` differs from the digest of the mixture now in the split. Not
settings (they do not change an estimate beyond float rounding): the device, the batch size (only
rows of equal length are batched, see below), ``jobs``.

A run makes again exactly the outputs whose record does not match: ``new``, ``no record of what
made it`` (a file from an older lasskit or put there by hand), ``output missing``, ``output
changed on disk``, ``input changed`` (e.g. new mixtures after ``mix --overwrite``), ``reference
changed``, ``settings changed: <keys>`` (e.g. ``--checkpoint B`` over A's outputs), ``overwrite
requested``; the report counts them by reason. Outputs to remake are removed before the run
starts, so the folder never holds an output its record does not describe, even after a crash or
Ctrl-C. An unchanged re-run reads no audio: the mixtures' digests come from
``digests.json`` (a :class:`~lasskit.provenance.DigestCache`: one ``stat`` per file), the
outputs are checked by ``stat`` against their records. ``separate.json`` describes the outputs
that are in the folder and current (``count``, ``complete``, ``made_with``: one entry per set of
settings with its number of outputs, ``consistent``), never the settings of a run that did not
make them; ``checkpoint_sha256``/``options`` are those of the outputs (None when they differ).

The pipeline:

- the other rows are sorted by length and grouped into batches of at most ``batch_size`` rows of
  **equal length**, so an estimate never depends on its batch-mates; a model that declares
  ``padding_invariant = True`` (passthrough, oracle) also gets shorter rows zero-padded at the
  end, their estimates cropped back;
- mixtures are decoded by ``jobs`` background threads (default 2) while the model runs, and
  outputs are written by another thread; ``jobs=0`` does everything in the calling thread;
- on the device: resampling to the model's rate and back (``torchaudio.functional.resample``)
  when it is not 16 kHz, under ``torch.inference_mode()``; by default each clip goes through the
  model in **one pass**, whatever its length (the organizers' way); chunking with overlap-add
  only with ``chunk_seconds`` (or for a model's ``max_seconds``), or for a clip that would not
  fit in memory: a model that declares ``bytes_per_sample`` gets such a clip in windows of the
  whole seconds that fit in 80 % of the memory free at the start of the run, with a warning
  naming the file (``chunked_for_memory`` in ``separate.json``); a single pass costs memory in
  proportion to the clip's length (the baseline on the CPU: 0.84 GiB for 10 s, 2.1 GiB for 30 s);
- every estimate is checked: a tensor of the input's shape, finite (else a :class:`WorkError`
  naming the model and the inputs), not all zeros (else a warning naming the file);
- outputs are 32-bit float WAV at 16 kHz, mono, exactly the mixture's length, so scoring loses
  no precision (``lasskit package`` converts when a submission needs another format); every write
  is atomic, temporary files a killed run left are removed at the start, the ledger is saved every
  2 s and at the end (also on Ctrl-C), so an interrupted run is simply run again;
- an output that cannot be written (a full disk, a permission) stops the run with
  :class:`~lasskit.separation.records.SeparationStopped` (a WorkError naming the file and the
  fix, the CLI's one line, carrying the report); what was written is recorded, ``failures.csv``
  holds the row (where the disk allows), and a re-run makes the rest.

Chunking: windows of ``L = chunk_seconds * rate`` samples start every ``H = L * (1 - overlap)``
samples, the last one aligned to the end of the input. Each window's estimate is weighted by a
linear cross-fade over the samples it shares with its neighbours (``(i + 0.5) / o`` rising over
an overlap of ``o`` samples, the mirror image falling) and the overlap-add is divided by the sum
of the weights, so a model that returns its input reproduces the input exactly.

Modules (a stage; imports models and core modules; torch only inside functions):
:mod:`~lasskit.separation.pipeline` (the split loop: a short sequence of named steps),
:mod:`~lasskit.separation.batching` (the engine every file loop shares: batches of equal length,
decoding ahead, the model runner with its memory limits and long-audio windows, writing behind),
:mod:`~lasskit.separation.model` (the run's options, building the model, its settings),
:mod:`~lasskit.separation.records` (the report, why an output is made, ``separate.json``),
:mod:`~lasskit.separation.engine` (one batch on the device), :mod:`~lasskit.separation.chunking`
(windows and weights), :mod:`~lasskit.separation.outputs` (files and records),
:mod:`~lasskit.separation.longaudio` (recordings of any length, rate and channels: streamed windows
with context and a cross-fade), :mod:`~lasskit.separation.files` (the loop over recordings,
``separate FILE_OR_DIR``; the Python API :mod:`lasskit.api` runs the same engine),
:mod:`~lasskit.separation.distributed` (``--devices N``, torchrun, srun: ranks, sharding, merging).
"""

from __future__ import annotations

from lasskit.separation.batching import (  # noqa: F401
    Runner,
    default_jobs,
    load_batch,
    memory_budget,
    plan_batches,
    run_batches,
)
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
from lasskit.separation.model import RunModel, build_model, check_run_options  # noqa: F401
from lasskit.separation.pipeline import resolve_split_dir, separate_split  # noqa: F401
from lasskit.separation.records import SeparationReport, SeparationStopped  # noqa: F401
