"""The separation-model protocol.

A model is a small class::

    class MyModel(SeparationModel):
        name = "my-model"            # the folder name under exp/ and the registry name
        description = "one line for `lasskit models`"
        sample_rate = 32000          # Hz the model works at; lasskit resamples in and out
        max_seconds = 10.0           # longest input per call; longer inputs are chunked (None: any)

        def __init__(self, checkpoint=None, device="cpu", **options):
            super().__init__(checkpoint, device, **options)
            ...                      # load weights from `checkpoint`, move them to `device`

        def separate(self, mixtures, queries):
            # mixtures: float32 Tensor[batch, time] on `device`, at `sample_rate` Hz
            # queries:  list[str] of length batch, exactly as written in mixtures.csv
            return estimates         # float Tensor[batch, time], same shape as `mixtures`

The pipeline (:mod:`lasskit.separation`) calls ``separate`` under ``torch.inference_mode()``
with batches of rows of equal length, so that an estimate never depends on its batch-mates; a
model that sets ``padding_invariant = True`` (zero samples appended to a row cannot change its
estimate: passthrough, oracle) may get rows of different lengths, the shorter ones zero-padded
at the end and their estimates cropped back. It checks every estimate: same shape, finite. A
model that sets ``bytes_per_sample`` (peak memory of one pass per input sample of a row) gets a
clip too long for the free memory in windows, with a warning naming the file. A class does not have to inherit
from :class:`SeparationModel`; any class with these attributes and ``separate`` works.

Models that need the reference (an oracle) set ``needs_reference = True``: the pipeline then
passes ``references=Tensor[batch, time]`` (same shape, device and rate as ``mixtures``) as a
keyword, and refuses splits that have no ``source`` column.

After construction, ``self.checkpoint`` should be the path of the weights actually loaded (or
None): ``separate.json`` records it with its SHA-256 (``self.checkpoint_sha256`` if the model set
it, else hashed from the file).

**Trainable models** (``lasskit train``, :mod:`lasskit.training`). A registered model that can
also be trained exposes its trainable network, its frozen conditioning and a loss
(:class:`TrainableModel`)::

    class MyModel(SeparationModel):
        ...
        @classmethod
        def for_training(cls, init=None, **options):
            # init: a checkpoint to fine-tune from, or None: the trainable network starts from
            # fresh weights (torch's global RNG is seeded by the trainer); frozen parts load as usual
            ...
        def trainable_network(self):          # the torch.nn.Module the optimizer updates
            return self.network
        def embed_queries(self, queries):     # frozen conditioning, no gradient: Tensor[batch, D]
            return self.text_encoder.embed(queries)
        def forward_train(self, mixtures, conditions):   # Tensor[batch, time] -> Tensor[batch, time]
            return self.network(mixtures[:, None], conditions)[:, 0]
        def training_loss(self, estimates, references):  # a scalar tensor
            return (estimates - references).abs().mean()
        def frozen_state(self):               # extra tensors written into checkpoints
            return {"query_encoder.model.text_branch.x": ...}

``forward_train`` must reach the trainable parameters only through ``trainable_network()`` (the
same module object), so that the trainer's distributed wrapper sees every use. Checkpoints hold
the network's ``state_dict`` under ``network_prefix`` (default ``ss_model.``) and
``frozen_state()`` as it is, so the model's constructor can load them back with
``checkpoint=PATH``. ``embed_queries`` is called once per distinct query, in a fixed order, and
the trainer caches the rows (queries repeat across steps); it must be deterministic.
"""

from __future__ import annotations

from typing import Any


class SeparationModel:
    """Base class for separation models. Subclasses set ``name`` and implement :meth:`separate`."""

    name: str = ""
    """Registry and output-folder name (lower case, ``[a-z0-9._-]``)."""
    description: str = ""
    """One line shown by ``lasskit models``."""
    sample_rate: int = 16000
    """Rate (Hz) of the tensors ``separate`` takes and returns."""
    max_seconds: float | None = None
    """Longest input (s) the model takes in one call; the pipeline chunks longer inputs. None: any."""
    trained_seconds: float | None = None
    """Length (s) of the clips the model was trained on: the window of the long-audio engine
    (``lasskit separate FILE``, :mod:`lasskit.separation.longaudio`); None: ``max_seconds``, else 10 s."""
    needs_reference: bool = False
    """True: ``separate`` also receives ``references=Tensor[batch, time]`` (oracle models)."""
    padding_invariant: bool = False
    """True: zero-padding a row at its end cannot change its estimate, so rows of different lengths
    may share a batch. False (default): only rows of equal length are batched together."""
    bytes_per_sample: float | None = None
    """Peak memory (bytes) of one pass per input sample of a row; None: unknown (never chunked for memory)."""

    def __init__(self, checkpoint: str | None = None, device: str = "cpu", **options: Any) -> None:
        self.checkpoint = None if checkpoint is None else str(checkpoint)
        self.device = str(device)
        self.options = dict(options)

    def separate(self, mixtures, queries: list[str]):  # pragma: no cover - abstract
        """Return the estimate of each query's source: a float tensor shaped like ``mixtures``."""
        raise NotImplementedError(f"{type(self).__name__}.separate")

    def num_parameters(self) -> int | None:
        """Number of trainable-or-not parameters of the ``torch.nn.Module`` attributes; None if none."""
        return count_parameters(self)


class TrainableModel(SeparationModel):
    """A separation model ``lasskit train`` can train (see the module docstring for the protocol).

    Defaults: ``for_training`` builds ``cls(checkpoint=init, **options)``; the loss is the
    organizers' L1 on the waveform, ``mean(|estimate - reference|)``; no frozen state.
    """

    network_prefix: str = "ss_model."
    """Prefix of the trainable network's keys in a checkpoint (the organizers' Lightning layout)."""

    @classmethod
    def for_training(cls, init: str | None = None, **options: Any) -> "TrainableModel":
        """The model to train: weights from ``init`` (fine-tuning) or a fresh trainable network (None)."""
        return cls(checkpoint=init, **options)

    def trainable_network(self):  # pragma: no cover - abstract
        """The ``torch.nn.Module`` whose parameters are trained."""
        raise NotImplementedError(f"{type(self).__name__}.trainable_network")

    def embed_queries(self, queries: list[str]):  # pragma: no cover - abstract
        """Frozen conditioning, one row per query: ``Tensor[len(queries), D]`` (no gradient)."""
        raise NotImplementedError(f"{type(self).__name__}.embed_queries")

    def forward_train(self, mixtures, conditions):  # pragma: no cover - abstract
        """``(batch, time)`` mixtures and ``(batch, D)`` conditions -> ``(batch, time)`` estimates, with gradients."""
        raise NotImplementedError(f"{type(self).__name__}.forward_train")

    def training_loss(self, estimates, references):
        """The organizers' loss: L1 on the waveform, ``mean(|estimate - reference|)``."""
        return (estimates - references).abs().mean()

    def frozen_state(self) -> dict:
        """Tensors of the frozen parts to write into checkpoints beside the network (default none)."""
        return {}


TRAINABLE_METHODS = ("trainable_network", "embed_queries", "forward_train")
"""What a model needs (besides ``separate``) to be trained; the rest has defaults in :class:`TrainableModel`."""


def missing_training_methods(cls: Any) -> list[str]:
    """The methods of :data:`TRAINABLE_METHODS` that ``cls`` lacks or leaves abstract (empty: trainable)."""
    missing = []
    for name in TRAINABLE_METHODS:
        method = getattr(cls, name, None)
        if not callable(method) or method is getattr(TrainableModel, name):
            missing.append(name)
    return missing


def count_parameters(model: Any) -> int | None:
    """Parameters of ``model`` if it is a torch module, else of its module attributes; None if none."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is required to separate anyway
        return None
    modules = [model] if isinstance(model, torch.nn.Module) else [
        v for v in vars(model).values() if isinstance(v, torch.nn.Module)
    ]
    if not modules:
        return None
    seen: set[int] = set()
    total = 0
    for module in modules:
        for p in module.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                total += p.numel()
    return total
