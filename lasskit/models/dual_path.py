"""The dual-path RNN at the centre of AudioSep-DP (DCASE 2024 Task 9, first place), and its U-Net.

AudioSep-DP is the challenge baseline's ResUNet30 with one module added between the centre block
(``conv_block7a``) and the decoder: a dual-path RNN over the bottleneck's feature map
``(batch, 384, frames / 32, bins / 64)``. Our own implementation; its parameters carry the names
of the released checkpoints (``base.DPRNN.0.*``), so those load strictly.

Each of ``layers`` dual-path layers runs, with a residual connection after each pass:

- a *row* pass along time: for every frequency row, a 2-layer bidirectional GRU over the frames
  (input 384, hidden ``hidden`` each way, dropout 0.1 between the GRU layers when training), a
  linear map from ``2 * hidden`` back to 384, a one-group GroupNorm (eps 1e-8) over
  (channels, time, frequency) of the row output; ``x = x + norm(row(x))``;
- a *column* pass along frequency: the same over the bins of every frame;

then a PReLU (one slope) and a 1x1 convolution 384 -> 384 with bias.

Keys (``i`` = layer): ``row_rnn.i.rnn.{weight,bias}_{ih,hh}_l{0,1}[_reverse]``,
``row_rnn.i.proj.{weight,bias}``, ``row_norm.i.{weight,bias}``, the same with ``col_``, and
``output.0.weight`` (PReLU), ``output.1.{weight,bias}`` (the 1x1 convolution). The layer count and
hidden size are read from a checkpoint (:func:`dual_path_shape`).

The GroupNorm statistics run over the whole clip, so a row's estimate depends on every frame of
it (and on zero padding): batches must hold rows of equal length.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from lasskit.models.resunet import DEFAULT_CHANNELS, N_FFT, HOP, ResUNet30, ResUNet30Base, _scaled

GRU_LAYERS = 2
"""Stacked GRU layers inside every row or column pass (fixed in AudioSep-DP)."""
GRU_DROPOUT = 0.1
NORM_EPS = 1e-8
PREFIX = "base.DPRNN.0."
"""Where the dual-path RNN's keys sit in a ResUNet30 state dict."""


class _Pass(nn.Module):
    """One pass: a bidirectional GRU along a sequence, then a linear map back to the feature size."""

    def __init__(self, features: int, hidden: int) -> None:
        super().__init__()
        self.rnn = nn.GRU(features, hidden, GRU_LAYERS, batch_first=True, bidirectional=True, dropout=GRU_DROPOUT)
        self.proj = nn.Linear(2 * hidden, features)

    def forward(self, sequences: torch.Tensor) -> torch.Tensor:  # (n, length, features)
        return self.proj(self.rnn(sequences)[0])


class DualPathRNN(nn.Module):
    """``layers`` (row pass, column pass) pairs with residual connections, then PReLU + 1x1 conv."""

    def __init__(self, features: int = 384, hidden: int = 256, layers: int = 6) -> None:
        super().__init__()
        self.row_rnn = nn.ModuleList(_Pass(features, hidden) for _ in range(layers))
        self.col_rnn = nn.ModuleList(_Pass(features, hidden) for _ in range(layers))
        self.row_norm = nn.ModuleList(nn.GroupNorm(1, features, eps=NORM_EPS) for _ in range(layers))
        self.col_norm = nn.ModuleList(nn.GroupNorm(1, features, eps=NORM_EPS) for _ in range(layers))
        self.output = nn.Sequential(nn.PReLU(), nn.Conv2d(features, features, kernel_size=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, features, time, freq) -> the same shape."""
        batch, features, time, freq = x.shape
        for row, col, row_norm, col_norm in zip(self.row_rnn, self.col_rnn, self.row_norm, self.col_norm):
            # along time, one sequence per (row of the batch, frequency)
            seq = x.permute(0, 3, 2, 1).reshape(batch * freq, time, features)
            out = row(seq).reshape(batch, freq, time, features).permute(0, 3, 2, 1)
            x = x + row_norm(out)
            # along frequency, one sequence per (row of the batch, frame)
            seq = x.permute(0, 2, 3, 1).reshape(batch * time, freq, features)
            out = col(seq).reshape(batch, time, freq, features).permute(0, 3, 1, 2)
            x = x + col_norm(out)
        return self.output(x)


class DualPathResUNet30Base(ResUNet30Base):
    """ResUNet30's U-Net with a :class:`DualPathRNN` at its centre (registered as ``DPRNN.0``)."""

    label = "AudioSep-DP ResUNet30"

    def __init__(self, channels: int = DEFAULT_CHANNELS, n_fft: int = N_FFT, hop: int = HOP,
                 hidden: int = 256, layers: int = 6) -> None:
        super().__init__(1, 1, channels, n_fft, hop)
        self.DPRNN = nn.Sequential(DualPathRNN(_scaled(384, self.channels), hidden, layers))

    def centre(self, x: torch.Tensor) -> torch.Tensor:
        return self.DPRNN(x)


def dual_path_network(channels: int = DEFAULT_CHANNELS, n_fft: int = N_FFT, hop: int = HOP,
                      hidden: int = 256, layers: int = 6) -> ResUNet30:
    """The AudioSep-DP separator: FiLM-conditioned ResUNet30 with the dual-path RNN."""
    return ResUNet30(base=DualPathResUNet30Base(channels, n_fft, hop, hidden, layers))


def dual_path_shape(state: Mapping) -> tuple[int, int] | None:
    """``(hidden, layers)`` of the dual-path RNN in a ResUNet30 state dict (no prefix); None if it has none."""
    layers = {k[len(PREFIX):].split(".")[1] for k in state if k.startswith(PREFIX + "row_rnn.")}
    weight = state.get(PREFIX + "row_rnn.0.rnn.weight_hh_l0")
    if not layers or weight is None:
        return None
    return int(weight.shape[1]), len(layers)
