"""Built-in reference models: ``passthrough`` (the SDRi = 0 point) and ``oracle`` (the ceiling)."""

from __future__ import annotations

from lasskit.errors import UsageError
from lasskit.models.base import SeparationModel


class _NoWeights(SeparationModel):
    """A model with no weights and no options: a ``--checkpoint`` or ``--option`` given to it would be
    ignored yet recorded in ``separate.json`` as what made the outputs, so both are refused."""

    def __init__(self, checkpoint: str | None = None, device: str = "cpu") -> None:
        if checkpoint is not None:
            raise UsageError(f"--checkpoint {checkpoint}: model {self.name} has no weights: drop --checkpoint")
        super().__init__(None, device)


class Passthrough(_NoWeights):
    """Returns the mixture unchanged: SDR(ref, est) = SDR(ref, mixture), so SDRi = 0 dB."""

    name = "passthrough"
    description = "returns the mixture (the SDRi = 0 dB reference point)"
    padding_invariant = True

    def separate(self, mixtures, queries):
        return mixtures.clone()

    def num_parameters(self) -> int:
        return 0


class Oracle(_NoWeights):
    """Returns the reference source: SDR is capped only by the 1e-10 floor (the upper bound).

    It checks the whole pipeline: names, order, lengths and scoring. Needs a split with references.
    """

    name = "oracle"
    description = "returns the reference source (the upper bound; needs a split with references)"
    needs_reference = True
    padding_invariant = True

    def separate(self, mixtures, queries, references=None):
        if references is None:
            raise UsageError("oracle needs the references: run it through lasskit.separation, on a split with a source column")
        return references.clone()

    def num_parameters(self) -> int:
        return 0
