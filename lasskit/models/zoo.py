"""The model zoo: AudioSep (32 kHz) and AudioSep-DP (16 and 32 kHz), each as its own code runs it.

Three registered models built on the baseline's machinery (:class:`~lasskit.models.baseline.
DCASE2024Baseline`: CLAP text tower, FiLM ResUNet30, checkpoint reading, training protocol), with
their own networks and STFTs (:mod:`lasskit.models.resunet`, :mod:`lasskit.models.dual_path`):

=================  ============  ===========  ===========================================
name               network rate  STFT         centre
=================  ============  ===========  ===========================================
audiosep           32 kHz        2048 / 320   none (ResUNet30 as in Audio-AGI/AudioSep)
audiosep-dp-16k    16 kHz        1024 / 160   dual-path RNN (TQ-SED ``resunet.py``)
audiosep-dp-32k    32 kHz        2048 / 320   dual-path RNN (TQ-SED ``resunet_32k.py``)
=================  ============  ===========  ===========================================

**Rates.** Every model takes and gives 16 kHz (``sample_rate = 16000``), so every command works
unchanged; a 32 kHz network gets the mixture resampled 16 -> 32 kHz with soxr (``HQ``) and its
estimate resampled back, cropped to the input's length (``network_rate`` says what it runs at;
``rate_note`` is the one line a summary prints). Training (``forward_train``) resamples with
``torchaudio.functional.resample`` instead, which carries gradients.

**Weights.** ``checkpoint=PATH`` (the released Lightning file: ``ss_model.*``, and
``query_encoder.model.text_branch.*`` when it holds the CLAP text tower; else pass
``clap_checkpoint=PATH``), or the file from the cache that ``lasskit models download NAME``
fills (:mod:`lasskit.models.cards` declares the files); the CLAP text tower comes from
``clap_checkpoint``, else the checkpoint, else the card's CLAP file in the cache. Loading is strict: a missing or unexpected
key is named; a checkpoint of another model of the family (told apart by its STFT size and whether
it has the dual-path RNN) is one line naming the model it belongs to.

**Parity.** ``tests/test_zoo.py`` checks each network against golden vectors written by the
upstream code (``parity/zoo_parity.py``, documented in CONTRIBUTING.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lasskit.errors import UsageError
from lasskit.models import cards
from lasskit.models.baseline import FAMILY, DCASE2024Baseline, identify_separator  # noqa: F401 (re-exported)

SAMPLE_RATE = 16000


def resample(x, source: int, target: int):
    """soxr (HQ) resampling of a float ``Tensor[batch, time]`` (on the CPU; back on its device)."""
    import numpy as np
    import soxr
    import torch

    if source == target:
        return x
    rows = x.detach().to("cpu", torch.float32).numpy()
    out = np.stack([soxr.resample(row.astype(np.float64), source, target, quality="HQ") for row in rows])
    return torch.from_numpy(out.astype(np.float32)).to(x.device)


class ZooSeparator(DCASE2024Baseline):
    """A ResUNet30-family model of the zoo (see the module docstring). Subclasses set the class attributes."""

    name = ""
    description = ""
    sample_rate = SAMPLE_RATE
    network_rate = SAMPLE_RATE
    n_fft = 1024
    hop = 160
    dual_path = False
    padding_invariant = False
    max_seconds = None
    bytes_per_sample = 6000.0

    @property
    def card(self) -> cards.ModelCard:
        return cards.CARDS[self.name]

    @property
    def trained_seconds(self) -> float | None:
        """The card's (AudioSep 5 s, AudioSep-DP 10 s): the window of ``separate FILE``'s long-audio engine,
        as README's rule says (it was 10 s, the default, for every zoo model)."""
        card = cards.card(self.name)
        return card.trained_seconds if card is not None else None

    @property
    def rate_note(self) -> str | None:
        """One line for a run's summary when the network's rate is not 16 kHz; None otherwise."""
        if self.network_rate == SAMPLE_RATE:
            return None
        return (f"{self.name} runs at {self.network_rate // 1000} kHz: 16 kHz mixtures are resampled "
                f"to {self.network_rate // 1000} kHz and the estimates back to 16 kHz (soxr HQ)")

    def __init__(self, checkpoint: str | None = None, device: str = "cpu", dual_path_hidden: int | None = None,
                 dual_path_layers: int | None = None, **options: Any) -> None:
        from lasskit.models.baseline import count_option

        self._dual_path_size = tuple(None if v is None else count_option(self.name, k, v) for k, v in
                                     (("dual_path_hidden", dual_path_hidden), ("dual_path_layers", dual_path_layers)))
        super().__init__(checkpoint, device, **options)

    def default_checkpoint(self) -> Path:
        path = cards.cached_weight(self.name)
        if path is None:
            decl = cards.weight_files(self.name)[0]
            raise UsageError(f"{self.name}: no checkpoint; run `lasskit models download {self.name}` "
                             f"or pass --checkpoint PATH ({decl.filename}"
                             f"{f' inside {decl.archive}' if decl.archive else ''} from {decl.source})")
        return path

    def build_network(self, channels: int, separator: dict | None = None):
        from lasskit.models.resunet import ResUNet30

        if not self.dual_path:
            return ResUNet30(channels=channels, n_fft=self.n_fft, hop=self.hop)
        from lasskit.models.dual_path import dual_path_network, dual_path_shape

        hidden, layers = (separator and dual_path_shape(separator)) or (256, 6)
        given_hidden, given_layers = self._dual_path_size
        return dual_path_network(channels, self.n_fft, self.hop, int(given_hidden or hidden), int(given_layers or layers))

    def checkpoint_fix(self) -> str:
        return f"use {self.name}'s released checkpoint ({cards.weight_files(self.name)[0].filename})"

    def _load_text_encoder(self, state, path, tokenizer, clap_checkpoint, batch_size):
        """The CLAP text tower: from ``clap_checkpoint``, else the checkpoint, else the CLAP file of this
        model's card in the cache (``lasskit models download audiosep`` fetches both)."""
        from lasskit.models.text_encoder import text_state_from_checkpoint

        if not clap_checkpoint and text_state_from_checkpoint(state) is None:
            clap_checkpoint = cards.cached_weight(self.name, role="clap")
        return DCASE2024Baseline._load_text_encoder(state, path, tokenizer, clap_checkpoint, batch_size)

    def separate(self, mixtures, queries: list[str]):
        """(batch, samples) 16 kHz mixtures and one query each -> (batch, samples) 16 kHz estimates."""
        import torch

        if len(queries) != mixtures.shape[0]:
            raise UsageError(f"{len(queries)} queries for {mixtures.shape[0]} mixtures")
        length = mixtures.shape[-1]
        with torch.inference_mode():
            conditions = self.text_encoder.embed(list(queries)).to(self.device, torch.float32)
            x = resample(mixtures.to(torch.float32), SAMPLE_RATE, self.network_rate).to(self.device)
            y = self.separate_embedded(x, conditions)
            y = resample(y, self.network_rate, SAMPLE_RATE)
            if y.shape[-1] < length:
                y = torch.nn.functional.pad(y, (0, length - y.shape[-1]))
        return y[..., :length].to(mixtures.device)

    def forward_train(self, mixtures, conditions):
        """16 kHz (batch, samples) -> 16 kHz estimates with gradients (torchaudio resampling for 32 kHz networks)."""
        if self.network_rate == SAMPLE_RATE:
            return self.network(mixtures[:, None], conditions)[:, 0]
        import torchaudio.functional as taf

        length = mixtures.shape[-1]
        x = taf.resample(mixtures, SAMPLE_RATE, self.network_rate)
        y = taf.resample(self.network(x[:, None], conditions)[:, 0], self.network_rate, SAMPLE_RATE)
        return y[..., :length]

    @classmethod
    def for_training(cls, init: str | None = None, **options: Any):
        """Fine-tune from ``init`` (the released checkpoint), or a fresh separator when None."""
        if init is None:
            options.setdefault("random_init", True)
        return cls(checkpoint=init, **options)


class AudioSep(ZooSeparator):
    """AudioSep (Audio-AGI): CLAP text query -> FiLM ResUNet30 on a 2048/320 STFT at 32 kHz."""

    name = "audiosep"
    description = "AudioSep (Audio-AGI): CLAP text + FiLM ResUNet30 at 32 kHz (soxr 16<->32 kHz)"
    network_rate = 32000
    n_fft, hop = 2048, 320
    bytes_per_sample = 12000.0  # per 16 kHz input sample: twice the bins, same frames per second


class AudioSepDP16k(ZooSeparator):
    """AudioSep-DP at 16 kHz: the baseline's ResUNet30 with a dual-path RNN at its centre."""

    name = "audiosep-dp-16k"
    description = "AudioSep-DP (DCASE 2024 Task 9 winner): baseline ResUNet30 + dual-path RNN, 16 kHz"
    network_rate = 16000
    dual_path = True


class AudioSepDP32k(ZooSeparator):
    """AudioSep-DP at 32 kHz: the 2048/320 ResUNet30 with a dual-path RNN at its centre."""

    name = "audiosep-dp-32k"
    description = "AudioSep-DP at 32 kHz: ResUNet30 (2048/320) + dual-path RNN (soxr 16<->32 kHz)"
    network_rate = 32000
    n_fft, hop = 2048, 320
    dual_path = True
    bytes_per_sample = 12000.0
