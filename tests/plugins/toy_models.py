"""Toy models for tests/test_separate.py, loaded as ``tests/plugins/toy_models.py:Class``."""

import torch

from lasskit.models.base import SeparationModel


class QueryGain(SeparationModel):
    """Scales each mixture by len(query) / 100, so every output shows which query it got."""

    name = "query-gain"

    def separate(self, mixtures, queries):
        gains = torch.tensor([len(q) / 100 for q in queries], dtype=mixtures.dtype, device=mixtures.device)
        return mixtures * gains[:, None]


class Gain(SeparationModel):
    """Scales by the ``gain`` option; records the checkpoint it was given."""

    name = "gain"

    def __init__(self, checkpoint=None, device="cpu", gain=1.0):
        super().__init__(checkpoint, device, gain=gain)
        self.gain = gain

    def separate(self, mixtures, queries):
        return mixtures * self.gain


class ReturnsNaN(SeparationModel):
    name = "returns-nan"

    def separate(self, mixtures, queries):
        out = mixtures.clone()
        out[-1, 0] = float("nan")
        return out


class WrongLength(SeparationModel):
    name = "wrong-length"

    def separate(self, mixtures, queries):
        return mixtures[:, :-1]


class Silent(SeparationModel):
    name = "silent"

    def separate(self, mixtures, queries):
        return torch.zeros_like(mixtures)


class Crashes(SeparationModel):
    name = "crashes"

    def separate(self, mixtures, queries):
        raise RuntimeError("boom")


class LimitedPassthrough(SeparationModel):
    """Passthrough that refuses inputs longer than max_seconds and counts its calls."""

    name = "limited"
    max_seconds = 0.25
    calls = 0

    def separate(self, mixtures, queries):
        assert mixtures.shape[-1] <= int(self.max_seconds * self.sample_rate)
        type(self).calls += 1
        return mixtures.clone()


class Passthrough8k(SeparationModel):
    """Works at 8 kHz; records the shapes it saw."""

    name = "passthrough-8k"
    sample_rate = 8000
    seen = []

    def separate(self, mixtures, queries):
        type(self).seen.append(tuple(mixtures.shape))
        return mixtures.clone()


class NoName(SeparationModel):
    def separate(self, mixtures, queries):
        return mixtures.clone()
