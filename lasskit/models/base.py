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
with batches of equal-length rows (shorter rows are zero-padded at the end and the estimate is
cropped back), and checks every estimate: same shape, finite. A class does not have to inherit
from :class:`SeparationModel`; any class with these attributes and ``separate`` works.

Models that need the reference (an oracle) set ``needs_reference = True``: the pipeline then
passes ``references=Tensor[batch, time]`` (same shape, device and rate as ``mixtures``) as a
keyword, and refuses splits that have no ``source`` column.

After construction, ``self.checkpoint`` should be the path of the weights actually loaded (or
None): ``separate.json`` records it with its SHA-256 (``self.checkpoint_sha256`` if the model set
it, else hashed from the file).
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
    needs_reference: bool = False
    """True: ``separate`` also receives ``references=Tensor[batch, time]`` (oracle models)."""

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
