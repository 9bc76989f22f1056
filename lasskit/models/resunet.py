"""ResUNet30: the DCASE 2024 Task 9 baseline's separation network (AudioSep architecture).

Our own implementation on ``torch.stft``/``torch.istft``; its ``state_dict`` keys and shapes are
those of the organizers' network, less the five fixed DFT kernels of their conv-based STFT.

Signal path, for a mixture ``x`` (batch, 1, samples) at 16 kHz and a condition ``c`` (batch, 512)
(a unit-norm CLAP text embedding):

- STFT: window 1024 (periodic Hann), hop 160, centred, reflect padding; 513 bins.
  ``|X| = sqrt(max(re^2 + im^2, 1e-10))``, ``cos X = re / |X|``, ``sin X = im / |X|``.
- ``bn0`` normalises each frequency bin; frames are zero-padded at the end to a multiple of 32
  (five 2x time poolings) and the top bin is dropped (513 -> 512 = 2^6 * 8).
- A U-Net of residual blocks: 6 encoder blocks (32, 64, 128, 256, 384, 384 channels at the
  default width ``channels=32``, all scaled by ``channels / 32`` otherwise; 2x2
  average pooling, the last 1x2), a centre block, 6 decoder blocks (transposed-conv upsampling
  and skip concatenation). Each block adds a FiLM bias ``beta = Linear(512 -> C)(c)`` before
  its batch-norm + leaky-ReLU (slope 0.01) pre-activations.
- ``after_conv`` gives 3 maps per bin: ``M = sigmoid(m0)``, phase rotation ``(cos P, sin P)``
  from ``(tanh m1, tanh m2) / max(|.|, 1e-10)``; the top bin gets zero maps (M = 0.5, no
  rotation, so a zero output there).
- ``Y = relu(|X| M) * exp(i (angle X + P))``, then the inverse STFT cropped to ``samples``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lasskit.errors import WorkError

SAMPLE_RATE = 16000
"""Hz."""
N_FFT = 1024
"""STFT window (samples)."""
HOP = 160
"""STFT hop (samples): 10 ms frames at 16 kHz."""
CONDITION_SIZE = 512
"""Width of the conditioning embedding (CLAP's joint space)."""
TIME_DOWNSAMPLE = 2 ** 5
"""Frames are padded to a multiple of this (five 2x time poolings)."""
BN_MOMENTUM = 0.01
LEAKY_SLOPE = 0.01

STFT_KERNEL_KEYS = (
    "base.stft.conv_real.weight",
    "base.stft.conv_imag.weight",
    "base.istft.conv_real.weight",
    "base.istft.conv_imag.weight",
    "base.istft.ola_window",
)
"""The organizers' fixed conv-STFT tensors; not learned, dropped by :func:`load_network_state`."""


class FiLM(nn.Module):
    """One ``Linear(condition_size -> C)`` per conditioned batch norm, named by its path.

    Layer names follow the organizers' convention, the module path joined by ``->`` and ending in
    ``beta1``/``beta2``, e.g. ``encoder_block1->conv_block1->beta1``.
    """

    def __init__(self, sizes: Mapping[str, int], condition_size: int = CONDITION_SIZE) -> None:
        super().__init__()
        for path, channels in sizes.items():
            self.add_module(path, nn.Linear(condition_size, channels))

    def forward(self, condition: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{path: beta}`` with each beta shaped (batch, C, 1, 1) to add to a feature map."""
        return {path: layer(condition)[:, :, None, None] for path, layer in self.named_children()}


def _film_act(normed: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """``leaky_relu(normed + beta, 0.01)``; in place on ``normed`` when no gradient is recorded
    (inference: one activation buffer instead of three, the organizers' ``leaky_relu_``), the same
    values either way."""
    if torch.is_grad_enabled() and (normed.requires_grad or beta.requires_grad):
        return F.leaky_relu(normed + beta, LEAKY_SLOPE)
    return F.leaky_relu_(normed.add_(beta), LEAKY_SLOPE)


class ConvBlockRes(nn.Module):
    """Pre-activation residual block: two (BN + beta, leaky ReLU, 3x3 conv) and a shortcut.

    ``y = shortcut(x) + conv2(act(bn2(conv1(act(bn1(x) + beta1))) + beta2))``, the shortcut a
    1x1 conv with bias when the channel count changes, else the identity.
    """

    def __init__(self, in_channels: int, out_channels: int, film_path: str) -> None:
        super().__init__()
        self.film_path = film_path
        self.bn1 = nn.BatchNorm2d(in_channels, momentum=BN_MOMENTUM)
        self.bn2 = nn.BatchNorm2d(out_channels, momentum=BN_MOMENTUM)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.shortcut = nn.Conv2d(in_channels, out_channels, kernel_size=1) if in_channels != out_channels else None

    def film_sizes(self) -> dict[str, int]:
        return {f"{self.film_path}->beta1": self.bn1.num_features, f"{self.film_path}->beta2": self.bn2.num_features}

    def forward(self, x: torch.Tensor, betas: Mapping[str, torch.Tensor]) -> torch.Tensor:
        h = _film_act(self.bn1(x), betas[f"{self.film_path}->beta1"])
        h = self.conv1(h)
        h = _film_act(self.bn2(h), betas[f"{self.film_path}->beta2"])
        h = self.conv2(h)
        return (x if self.shortcut is None else self.shortcut(x)) + h


class EncoderBlock(nn.Module):
    """A residual block then average pooling by ``downsample`` (time, freq); returns (pooled, skip)."""

    def __init__(self, in_channels: int, out_channels: int, downsample: tuple[int, int], name: str) -> None:
        super().__init__()
        self.conv_block1 = ConvBlockRes(in_channels, out_channels, f"{name}->conv_block1")
        self.downsample = downsample

    def film_sizes(self) -> dict[str, int]:
        return self.conv_block1.film_sizes()

    def forward(self, x: torch.Tensor, betas: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        skip = self.conv_block1(x, betas)
        pooled = F.avg_pool2d(skip, kernel_size=self.downsample) if self.downsample != (1, 1) else skip
        return pooled, skip


class DecoderBlock(nn.Module):
    """Upsample by a transposed conv (kernel = stride = ``upsample``), concatenate the skip, residual block.

    ``y = block([convT(act(bn1(x) + beta1)), skip])``. ``bn2`` and ``beta2`` exist in the
    organizers' network (and its checkpoint) but are not used in its forward pass.
    """

    def __init__(self, in_channels: int, out_channels: int, upsample: tuple[int, int], name: str) -> None:
        super().__init__()
        self.film_path = name
        self.conv1 = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=upsample, stride=upsample, bias=False)
        self.bn1 = nn.BatchNorm2d(in_channels, momentum=BN_MOMENTUM)
        self.conv_block2 = ConvBlockRes(out_channels * 2, out_channels, f"{name}->conv_block2")
        self.bn2 = nn.BatchNorm2d(in_channels, momentum=BN_MOMENTUM)

    def film_sizes(self) -> dict[str, int]:
        own = {f"{self.film_path}->beta1": self.bn1.num_features, f"{self.film_path}->beta2": self.bn2.num_features}
        return {**own, **self.conv_block2.film_sizes()}

    def forward(self, x: torch.Tensor, skip: torch.Tensor, betas: Mapping[str, torch.Tensor]) -> torch.Tensor:
        h = self.conv1(_film_act(self.bn1(x), betas[f"{self.film_path}->beta1"]))
        return self.conv_block2(torch.cat((h, skip), dim=1), betas)


_ENCODERS = (  # name, in, out, pooling (time, freq); channels at the default width 32
    ("encoder_block1", 32, 32, (2, 2)),
    ("encoder_block2", 32, 64, (2, 2)),
    ("encoder_block3", 64, 128, (2, 2)),
    ("encoder_block4", 128, 256, (2, 2)),
    ("encoder_block5", 256, 384, (2, 2)),
    ("encoder_block6", 384, 384, (1, 2)),
)
_DECODERS = (  # name, in, out, upsampling (time, freq)
    ("decoder_block1", 384, 384, (1, 2)),
    ("decoder_block2", 384, 384, (2, 2)),
    ("decoder_block3", 384, 256, (2, 2)),
    ("decoder_block4", 256, 128, (2, 2)),
    ("decoder_block5", 128, 64, (2, 2)),
    ("decoder_block6", 64, 32, (2, 2)),
)
DEFAULT_CHANNELS = 32
"""Width of the first level (``pre_conv``'s output): the released network's. Every level scales with it."""


def _scaled(count: int, channels: int) -> int:
    """A level's channel count for width ``channels``: ``count * channels / 32`` (exact for multiples of 8)."""
    if channels == DEFAULT_CHANNELS:
        return count
    return max(1, (count * channels) // DEFAULT_CHANNELS)


class ResUNet30Base(nn.Module):
    """The U-Net on the magnitude spectrogram with its mask / phase-rotation head (see module doc)."""

    def __init__(self, input_channels: int = 1, output_channels: int = 1, channels: int = DEFAULT_CHANNELS,
                 n_fft: int = N_FFT, hop: int = HOP) -> None:
        super().__init__()
        if input_channels != 1 or output_channels != 1:
            raise ValueError("only the mono network (1 input and 1 output channel) is implemented")
        if int(channels) < 1:
            raise ValueError(f"channels must be a positive width, not {channels}")
        self.channels = c = int(channels)
        self.n_fft, self.hop = int(n_fft), int(hop)  # 1024/160 at 16 kHz; AudioSep's 32 kHz network: 2048/320
        self.bn0 = nn.BatchNorm2d(self.n_fft // 2 + 1, momentum=BN_MOMENTUM)
        self.pre_conv = nn.Conv2d(input_channels, _scaled(32, c), kernel_size=1)
        for name, cin, cout, pool in _ENCODERS:
            self.add_module(name, EncoderBlock(_scaled(cin, c), _scaled(cout, c), pool, name))
        self.conv_block7a = EncoderBlock(_scaled(384, c), _scaled(384, c), (1, 1), "conv_block7a")
        for name, cin, cout, up in _DECODERS:
            self.add_module(name, DecoderBlock(_scaled(cin, c), _scaled(cout, c), up, name))
        self.after_conv = nn.Conv2d(_scaled(32, c), output_channels * 3, kernel_size=1)
        self.register_buffer("window", torch.hann_window(self.n_fft, periodic=True), persistent=False)

    def film_sizes(self) -> dict[str, int]:
        """``{film layer name: channels}`` for every conditioned batch norm."""
        sizes: dict[str, int] = {}
        for block in self.children():
            if isinstance(block, (EncoderBlock, DecoderBlock)):
                sizes.update(block.film_sizes())
        return sizes

    def spectrogram(self, waveform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(batch, samples) -> magnitude, cos, sin, each (batch, 1, frames, n_fft / 2 + 1)."""
        spec = torch.stft(waveform, self.n_fft, hop_length=self.hop, win_length=self.n_fft, window=self.window,
                          center=True, pad_mode="reflect", return_complex=True)
        real = spec.real.transpose(1, 2)[:, None]
        imag = spec.imag.transpose(1, 2)[:, None]
        mag = torch.clamp(real ** 2 + imag ** 2, min=1e-10) ** 0.5
        return mag, real / mag, imag / mag

    def forward(self, mixture: torch.Tensor, betas: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(batch, 1, samples) mixture and FiLM betas -> (batch, 1, samples) estimate."""
        batch, channels, samples = mixture.shape
        mag, cos_in, sin_in = self.spectrogram(mixture.reshape(batch * channels, samples))
        x = self.bn0(mag.transpose(1, 3)).transpose(1, 3)  # normalise per frequency bin
        frames = x.shape[2]
        pad = -frames % TIME_DOWNSAMPLE
        x = F.pad(x, (0, 0, 0, pad))[..., :-1]  # (batch, 1, padded frames, 512)

        x = self.pre_conv(x)
        skips = []
        for name, *_ in _ENCODERS:
            x, skip = getattr(self, name)(x, betas)
            skips.append(skip)
        x, _ = self.conv_block7a(x, betas)
        x = self.centre(x)
        for (name, *_), skip in zip(_DECODERS, reversed(skips)):
            x = getattr(self, name)(x, skip, betas)
        x = self.after_conv(x)
        x = F.pad(x, (0, 1))[:, :, :frames, :]  # top bin back (zero maps), padding frames dropped
        return self._masked_istft(x, mag, cos_in, sin_in, samples).reshape(batch, channels, samples)

    def centre(self, x: torch.Tensor) -> torch.Tensor:
        """What the bottleneck does between the centre block and the decoder: nothing here
        (AudioSep-DP's dual-path RNN goes here, :mod:`lasskit.models.dual_path`)."""
        return x

    def _masked_istft(self, maps, mag, cos_in, sin_in, samples):
        mask_mag = torch.sigmoid(maps[:, 0:1])
        rot_real = torch.tanh(maps[:, 1:2])
        rot_imag = torch.tanh(maps[:, 2:3])
        rot_norm = torch.clamp((rot_real ** 2 + rot_imag ** 2) ** 0.5, min=1e-10)
        rot_cos, rot_sin = rot_real / rot_norm, rot_imag / rot_norm
        out_cos = cos_in * rot_cos - sin_in * rot_sin  # cos(angle X + P)
        out_sin = sin_in * rot_cos + cos_in * rot_sin  # sin(angle X + P)
        out_mag = F.relu(mag * mask_mag)
        spec = torch.complex(out_mag * out_cos, out_mag * out_sin)[:, 0].transpose(1, 2)  # (batch, bins, frames)
        return torch.istft(spec, self.n_fft, hop_length=self.hop, win_length=self.n_fft, window=self.window, center=True,
                           length=samples)


class ResUNet30(nn.Module):
    """The conditioned separator: ``waveform = base(mixture, film(condition))``.

    ``forward(mixture: (batch, 1, samples), condition: (batch, 512)) -> (batch, 1, samples)``, at
    16 kHz; any length (frames are padded internally).

    ``channels`` is the width of the first level (default 32, the released network); every level
    scales with it (``channels * (1, 2, 4, 8, 12, 12)`` down the encoder), so ``channels=8`` is the
    same code at 1/16 of the parameters (a small network for tests and quick experiments).
    ``n_fft``/``hop`` set the STFT (AudioSep's 32 kHz network: 2048/320); ``base`` replaces the
    U-Net (a :class:`ResUNet30Base` subclass, e.g. with a dual-path RNN at its centre).
    """

    sample_rate = SAMPLE_RATE

    def __init__(self, input_channels: int = 1, output_channels: int = 1, condition_size: int = CONDITION_SIZE,
                 channels: int = DEFAULT_CHANNELS, n_fft: int = N_FFT, hop: int = HOP,
                 base: ResUNet30Base | None = None) -> None:
        super().__init__()
        self.base = base if base is not None else ResUNet30Base(input_channels, output_channels, channels, n_fft, hop)
        self.film = FiLM(self.base.film_sizes(), condition_size)

    def forward(self, mixture: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        return self.base(mixture, self.film(condition))

    @property
    def channels(self) -> int:
        """Width of the first level (32 for the released network)."""
        return self.base.channels

    def init_weights(self) -> None:
        """Fresh weights for training from scratch (uses torch's global RNG: seed it first).

        Convolutions and linear layers: Xavier-uniform weights, zero biases; batch norms: weight 1,
        bias 0, running statistics reset (mean 0, variance 1).
        """
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                module.reset_parameters()


def channels_of_state(state: Mapping, default: int = DEFAULT_CHANNELS) -> int:
    """The width (``channels``) of a ResUNet30 state dict: ``pre_conv``'s output channels; ``default`` if absent."""
    weight = state.get("base.pre_conv.weight")
    return int(weight.shape[0]) if weight is not None and getattr(weight, "ndim", 0) == 4 else default


# ---------------------------------------------------------------------------------------------
# Loading weights


def conv_stft_kernels(n_fft: int = N_FFT) -> dict[str, torch.Tensor]:
    """The organizers' fixed conv-STFT tensors, from the formulas (float64, then float32).

    With ``w`` the periodic Hann window, ``N = n_fft``, bin ``k`` and sample ``n``:
    ``stft.conv_real[k, 0, n] = w[n] cos(2 pi k n / N)``, ``stft.conv_imag = -w[n] sin(...)``
    (k < N/2 + 1); ``istft.conv_real[n, k, 0] = w[n] cos(2 pi k n / N) / N``,
    ``istft.conv_imag = w[n] sin(...) / N`` (all N bins); ``istft.ola_window = w^2``.
    """
    n = np.arange(n_fft)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / n_fft)
    phase = 2 * np.pi * np.outer(n, n) / n_fft  # [k, n], symmetric
    bins = n_fft // 2 + 1

    def f32(a):
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))

    return {
        "base.stft.conv_real.weight": f32((np.cos(phase[:bins]) * window)[:, None, :]),
        "base.stft.conv_imag.weight": f32((-np.sin(phase[:bins]) * window)[:, None, :]),
        "base.istft.conv_real.weight": f32((np.cos(phase) * window[:, None] / n_fft)[:, :, None]),
        "base.istft.conv_imag.weight": f32((np.sin(phase) * window[:, None] / n_fft)[:, :, None]),
        "base.istft.ola_window": f32(window ** 2),
    }


def drop_stft_kernels(state: dict, source: str = "the checkpoint", atol: float = 1e-5, n_fft: int = N_FFT) -> dict:
    """Check the conv-STFT tensors present in ``state`` against :func:`conv_stft_kernels`; drop them.

    They must be all present or all absent (a state dict of this network has none). A tensor that
    is not what a DFT gives (shape, or any value off by more than ``atol``) is an error: the
    checkpoint was not made for a window-``n_fft`` Hann STFT (1024 for the baseline).
    """
    present = [k for k in STFT_KERNEL_KEYS if k in state]
    if not present:
        return dict(state)
    if len(present) != len(STFT_KERNEL_KEYS):
        missing = sorted(set(STFT_KERNEL_KEYS) - set(present))
        raise WorkError(f"{source}: incomplete STFT kernels (missing {', '.join(missing)}); "
                        "use the released checkpoint or a state dict of lasskit's ResUNet30")
    expected = conv_stft_kernels(n_fft)
    for key in STFT_KERNEL_KEYS:
        value = state[key]
        if tuple(value.shape) != tuple(expected[key].shape):
            raise WorkError(f"{source}: {key} has shape {tuple(value.shape)}, expected {tuple(expected[key].shape)} "
                            f"(a window-{n_fft} STFT); this checkpoint is for another STFT (another model or rate)")
        error = float((value.detach().to("cpu", torch.float64) - expected[key].double()).abs().max())
        if not error <= atol:
            raise WorkError(f"{source}: {key} is not a window-{n_fft} Hann DFT kernel (max error {error:.3g}); "
                            "this checkpoint's STFT differs from the baseline's")
    return {k: v for k, v in state.items() if k not in STFT_KERNEL_KEYS}


def load_network_state(network: ResUNet30, state: Mapping, source: str = "the checkpoint",
                       fix: str = "use the DCASE 2024 baseline checkpoint (audiosep_16k,baseline,step=200000.ckpt)") -> None:
    """Load a ResUNet30 ``state_dict`` (organizers' keys, STFT kernels optional) with ``strict=True``.

    Any other missing or unexpected key, or a shape mismatch, raises :class:`WorkError` naming
    ``source`` and the first offending keys, then ``fix``.
    """
    state = drop_stft_kernels(dict(state), source, n_fft=network.base.n_fft)
    expected = network.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s) ({_first(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s) ({_first(unexpected)})")
        raise WorkError(f"{source}: not a {getattr(network.base, 'label', 'ResUNet30')} state dict: {'; '.join(parts)}; {fix}")
    for key, value in expected.items():
        if tuple(state[key].shape) != tuple(value.shape):
            raise WorkError(f"{source}: {key} has shape {tuple(state[key].shape)}, expected {tuple(value.shape)}; {fix}")
    network.load_state_dict(state, strict=True)


def _first(keys: list[str], n: int = 3) -> str:
    return ", ".join(keys[:n]) + (", ..." if len(keys) > n else "")
