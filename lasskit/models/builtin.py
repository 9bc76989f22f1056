"""Built-in reference models: ``passthrough`` (the SDRi = 0 point) and ``oracle`` (the ceiling)."""

from __future__ import annotations

from lasskit.errors import UsageError
from lasskit.models.base import SeparationModel


class Passthrough(SeparationModel):
    """Returns the mixture unchanged: SDR(ref, est) = SDR(ref, mixture), so SDRi = 0 dB."""

    name = "passthrough"
    description = "returns the mixture (the SDRi = 0 dB reference point)"
    padding_invariant = True

    def separate(self, mixtures, queries):
        return mixtures.clone()

    def num_parameters(self) -> int:
        return 0


class Oracle(SeparationModel):
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
