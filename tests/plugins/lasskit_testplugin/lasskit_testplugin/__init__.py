"""A third-party model: scales the mixture by ``gain`` (a constructor option, default 0.5)."""

from lasskit.models.base import SeparationModel


class Gain(SeparationModel):
    name = "testplugin-gain"
    description = "scales the mixture by a constant gain (test plugin)"

    def __init__(self, checkpoint=None, device="cpu", gain: float = 0.5):
        super().__init__(checkpoint, device, gain=gain)
        self.gain = float(gain)

    def separate(self, mixtures, queries):
        return mixtures * self.gain
