"""CLAPSep's network (Ma et al., arXiv 2402.17455): the LoRA-tuned HTSAT encoder's features and the
Swin-style decoder that turns them, with the query, into a magnitude mask at 32 kHz.

Our own implementation, written from the structure of the authors' ``model/CLAPSep.py`` and
``model/CLAPSep_decoder.py`` (github Aisaka0v0/CLAPSep at 5404111a); its ``state_dict`` keys
and shapes are theirs (``decoder_model.*`` of their Lightning module, here without the prefix).
The model class, loading and windows are :mod:`lasskit.models.clapsep`.

Signal path for one window ``x`` (batch, n) at 32 kHz, ``n <= 327360`` (1024 STFT frames), and
a query embedding ``e`` (batch, 1024) (positive and negative CLAP text embeddings, concatenated):

- STFT of ``x``: window 1024 (periodic Hann), hop 320, centred, reflect padding; 513 bins;
  ``|X| = sqrt(re^2 + im^2)``, ``cos X = re / max(|X|, 1e-10)``, ``sin X`` likewise.
- Encoder: ``x`` resampled 32 -> 48 kHz (``torchaudio.functional.resample``, default settings)
  -> CLAP's log-mel front end (:class:`lasskit.models.clap_audio.LogMel`) -> frames padded at
  the end to 1024 with the log of the power floor (-100 dB: the authors zero-pad the power
  spectrogram) -> HTSAT-base (``transformers``' ``ClapAudioEncoder``, LoRA merged into the
  attention weights). Features: the patch embedding (4096 x 128) and each Swin stage's output
  (1024 x 256, 256 x 512, 64 x 1024, 64 x 1024).
- Decoder (:class:`ClapSepDecoder`): ``h = film(stage 4, e)``; four decoder stages, widest
  first: (patch expansion) -> one Swin block (windows of 8, no shift) -> ``skip``: project the
  matching encoder feature, FiLM it by ``e``, add ``h``, LayerNorm. Then an inverse patch
  embedding (ConvTranspose2d 128 -> 1, 4 x 4) back to the 256 x 256 image, unfolded to
  (1024, 64), cropped to the STFT's frames and put beside the batch-normalised ``|X|``
  (513 + 64 features per frame) -> Linear(577 -> 640), LayerNorm, 3 transformer encoder layers
  (8 heads, feed-forward 2560, ReLU, post-norm) -> Linear(640 -> 513) -> sigmoid: the mask ``M``.
- ``Y = relu(|X| M) (cos X + i sin X)``, inverse STFT cropped to ``n`` samples.

Imports torch at module level (a ``models/`` module); only :mod:`lasskit.models.clapsep` uses it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

RATE = 32000
"""Hz the separator runs at."""
ENCODER_RATE = 48000
"""Hz CLAP's audio branch hears."""
N_FFT = 1024
HOP = 320
FRAMES = 1024
"""HTSAT's frames (time axis of its 256 x 256 image): the most the network takes in one pass."""
MAX_SAMPLES = (FRAMES - 1) * HOP
"""Longest window at 32 kHz: 327360 samples (10.23 s), 1024 STFT frames."""
MEL_BINS = 64
SPEC_SIZE = 256
PATCH = 4
WINDOW = 8
LOG_FLOOR_POWER = 1e-10
"""CLAP's power floor before the log; padded frames hold its log (-100 dB)."""


def lora_merged(weight: torch.Tensor, lora_a: torch.Tensor, lora_b: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """``W + (B @ A) * alpha / r`` (loralib's Linear, ``lora_alpha`` 1 by default, ``r = A.shape[0]``)."""
    rank = int(lora_a.shape[0])
    return weight + (lora_b.float() @ lora_a.float()) * (float(alpha) / rank)


class FiLM(nn.Module):
    """``gamma(e) * h + beta(e)`` with ``e`` (batch, d) broadcast over positions."""

    def __init__(self, dim_in: int, dim: int) -> None:
        super().__init__()
        self.beta = nn.Linear(dim_in, dim)
        self.gamma = nn.Linear(dim_in, dim)

    def forward(self, h: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        e = e[:, None]
        return self.gamma(e) * h + self.beta(e)


class SkipTrans(nn.Module):
    """An encoder feature projected to the decoder's width, FiLM-ed by the query, added to ``h``, normalised."""

    def __init__(self, in_features: int, out_features: int, embed_dim: int) -> None:
        super().__init__()
        self.skip_conv = FiLM(embed_dim, out_features)
        self.feature_proj = nn.Linear(in_features, out_features)
        self.norm = nn.LayerNorm(out_features)

    def forward(self, skip: torch.Tensor, e: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        out = self.skip_conv(self.feature_proj(skip), e)
        return self.norm(out if h is None else out + h)


def relative_position_index(window: int) -> torch.Tensor:
    """Swin's (window^2, window^2) index into the bias table: ``(dy + w - 1) (2w - 1) + (dx + w - 1)``."""
    ys, xs = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
    coords = torch.stack([ys.reshape(-1), xs.reshape(-1)])  # (2, w^2)
    rel = coords[:, :, None] - coords[:, None, :] + (window - 1)
    return rel[0] * (2 * window - 1) + rel[1]


class WindowAttention(nn.Module):
    """Multi-head self-attention inside each window, with a learned relative position bias."""

    def __init__(self, dim: int, heads: int, window: int) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        self.register_buffer("relative_position_index", relative_position_index(window))
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        windows, n, dim = x.shape
        qkv = self.qkv(x).reshape(windows, n, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        bias = self.relative_position_bias_table[self.relative_position_index.reshape(-1)]
        bias = bias.reshape(n, n, self.heads).permute(2, 0, 1)
        attn = torch.softmax(q @ k.transpose(-2, -1) + bias[None], dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(windows, n, dim))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class SwinBlock(nn.Module):
    """A Swin block without shift (the decoder's stages have one block each): pre-norm window
    attention and MLP, both residual, on a fixed (height, width) grid of tokens."""

    def __init__(self, dim: int, resolution: tuple[int, int], heads: int, window: int = WINDOW,
                 mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.resolution = resolution
        self.window = min(window, *resolution)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, heads, self.window)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = self.resolution
        w = self.window
        batch, _, dim = x.shape
        y = self.norm1(x).reshape(batch, height // w, w, width // w, w, dim)
        y = y.permute(0, 1, 3, 2, 4, 5).reshape(-1, w * w, dim)
        y = self.attn(y).reshape(batch, height // w, width // w, w, w, dim)
        y = y.permute(0, 1, 3, 2, 4, 5).reshape(batch, height * width, dim)
        x = x + y
        return x + self.mlp(self.norm2(x))


class PatchExpand(nn.Module):
    """The inverse of Swin's patch merging: Linear(d -> 2d, no bias) splits each token's channels
    into four quarters that become its 2 x 2 children, then LayerNorm(d / 2).

    Quarter ``q`` goes to child ``(i, k)`` (row, column) with ``q = [0, 2, 1, 3][2 i + k]``: the
    order in which patch merging concatenates (even, even), (odd, even), (even, odd), (odd, odd).
    """

    _ORDER = (0, 2, 1, 3)

    def __init__(self, resolution: tuple[int, int], dim: int) -> None:
        super().__init__()
        self.resolution = resolution
        self.expand = nn.Linear(dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(dim // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = self.resolution
        batch = x.shape[0]
        y = self.expand(x)
        quarter = y.shape[-1] // 4
        y = y.reshape(batch, height, width, 4, quarter)[:, :, :, list(self._ORDER)]
        y = y.reshape(batch, height, width, 2, 2, quarter).permute(0, 1, 3, 2, 4, 5)
        return self.norm(y.reshape(batch, 4 * height * width, quarter))


class DecoderStage(nn.Module):
    """(patch expansion), then one Swin block (keys ``downsample.*``, ``blocks.0.*``)."""

    def __init__(self, dim: int, resolution: tuple[int, int], heads: int, expand: bool, depth: int = 1) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(SwinBlock(dim, resolution, heads) for _ in range(depth))
        self.downsample = PatchExpand((resolution[0] // 2, resolution[1] // 2), 2 * dim) if expand else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.downsample is not None:
            x = self.downsample(x)
        for block in self.blocks:
            x = block(x)
        return x


class InversePatchEmbed(nn.Module):
    """LayerNorm, tokens back to a (width, 64, 64) map, ConvTranspose2d(width -> 1, 4 x 4, stride 4)."""

    def __init__(self, dim: int, grid: int = SPEC_SIZE // PATCH) -> None:
        super().__init__()
        self.grid = grid
        self.norm = nn.LayerNorm(dim)
        self.proj = nn.ConvTranspose2d(dim, 1, kernel_size=PATCH, stride=PATCH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x).transpose(1, 2).unflatten(2, (self.grid, self.grid))
        return self.proj(x)


def image_to_frames(image: torch.Tensor, freq_ratio: int = SPEC_SIZE // MEL_BINS) -> torch.Tensor:
    """(batch, 1, 256, 256) -> (batch, 1024, 64): undo HTSAT's folding of 4 time chunks along frequency."""
    batch, _, rows, cols = image.shape
    x = image.reshape(batch, freq_ratio, rows // freq_ratio, cols).permute(0, 2, 1, 3)
    return x.reshape(batch, rows // freq_ratio, freq_ratio * cols).transpose(1, 2)


class ClapSepDecoder(nn.Module):
    """The mask decoder (``HTSAT_Decoder`` of the authors' config: width 128, depths 1/1/1/1,
    heads 32/16/8/4 widest first, query 1024, 3 masker layers of width 640, no phase)."""

    def __init__(self, embed_dim: int = 128, encoder_embed_dim: int = 128, depths: Sequence[int] = (1, 1, 1, 1),
                 heads: Sequence[int] = (4, 8, 16, 32), lan_embed_dim: int = 1024, spec_factor: int = 8,
                 d_attn: int = 640, n_masker_layer: int = 3, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        grid = SPEC_SIZE // PATCH
        stages = len(depths)
        self.inverse_patch_embed = InversePatchEmbed(embed_dim, grid)
        self.layers = nn.ModuleList(
            DecoderStage(embed_dim * 2 ** i, (grid // 2 ** i, grid // 2 ** i), heads[i], i < stages - 1, depths[i])
            for i in reversed(range(stages)))
        self.skip = nn.ModuleList(
            SkipTrans(encoder_embed_dim * 2 ** i, embed_dim * 2 ** i, lan_embed_dim) for i in reversed(range(stages)))
        d_spec = MEL_BINS * spec_factor + 1
        self.spec_norm = nn.BatchNorm2d(d_spec, momentum=0.01)
        layer = nn.TransformerEncoderLayer(d_model=d_attn, nhead=8, dim_feedforward=int(d_attn * mlp_ratio),
                                           dropout=0.0, batch_first=True)
        self.mask_net = nn.Sequential(
            nn.Linear(MEL_BINS + d_spec, d_attn),
            nn.LayerNorm(d_attn),
            nn.TransformerEncoder(layer, num_layers=n_masker_layer, enable_nested_tensor=False),
            nn.Linear(d_attn, d_spec),
        )
        width = embed_dim * 2 ** (stages - 1)
        self.film = SkipTrans(encoder_embed_dim * 2 ** (stages - 1), width, lan_embed_dim)

    def forward(self, mag: torch.Tensor, features: Sequence[torch.Tensor], e: torch.Tensor) -> torch.Tensor:
        """``mag`` (batch, 1, frames, 513), ``features`` [patch embedding, stage 1..4] (batch, tokens,
        width), ``e`` (batch, 1024) -> the mask (batch, 1, frames, 513)."""
        *skips, hidden = features
        h = self.film(hidden, e)
        for layer, skip, feature in zip(self.layers, self.skip, reversed(skips)):
            h = skip(feature, e, layer(h))
        h = image_to_frames(self.inverse_patch_embed(h))[:, :mag.shape[2]]
        spec = self.spec_norm(mag.transpose(1, 3)).transpose(1, 3)[:, 0]
        return torch.sigmoid(self.mask_net(torch.cat([spec, h], dim=-1)))[:, None]


class ClapSepNetwork(nn.Module):
    """Encoder features + decoder + masked iSTFT for windows at 32 kHz (see the module doc).

    ``tower``: a :class:`lasskit.models.clap_audio.ClapAudioTower` (its front end and encoder are
    used; LoRA already merged), ``decoder``: :class:`ClapSepDecoder`.
    """

    def __init__(self, tower: nn.Module, decoder: ClapSepDecoder) -> None:
        super().__init__()
        self.front_end = tower.front_end
        self.encoder = tower.encoder
        self.decoder = decoder
        self.register_buffer("window", torch.hann_window(N_FFT, periodic=True), persistent=False)

    def encoder_features(self, wave48: torch.Tensor) -> list[torch.Tensor]:
        """(batch, samples) at 48 kHz -> [patch embedding, stage 1, 2, 3, 4] token features."""
        logmel = self.front_end(wave48)
        frames = logmel.shape[2]
        if frames < FRAMES:
            floor = 10.0 * torch.log10(torch.tensor(LOG_FLOOR_POWER, dtype=logmel.dtype, device=logmel.device))
            logmel = torch.cat([logmel, floor.expand(*logmel.shape[:2], FRAMES - frames, logmel.shape[3])], dim=2)
        elif frames > FRAMES:
            raise ValueError(f"{frames} encoder frames: windows hold at most {FRAMES}")
        out = self.encoder(logmel, output_hidden_states=True, return_dict=True)
        # transformers gives each stage as (batch, width, rows, columns): back to (batch, tokens, width)
        return [h.flatten(2).transpose(1, 2) for h in out.hidden_states]

    def spectrogram(self, x: torch.Tensor):
        spec = torch.stft(x, N_FFT, HOP, N_FFT, window=self.window, center=True, pad_mode="reflect",
                          return_complex=True)
        real = spec.real.transpose(1, 2)[:, None]
        imag = spec.imag.transpose(1, 2)[:, None]
        mag = (real ** 2 + imag ** 2) ** 0.5
        floor = torch.clamp(mag, min=1e-10)
        return mag, real / floor, imag / floor

    def forward(self, x: torch.Tensor, e: torch.Tensor, wave48: torch.Tensor) -> torch.Tensor:
        """``x`` (batch, n) at 32 kHz, ``e`` (batch, 1024), ``wave48`` the same audio at 48 kHz -> (batch, n)."""
        samples = x.shape[-1]
        if samples > MAX_SAMPLES:
            raise ValueError(f"{samples} samples: windows hold at most {MAX_SAMPLES} at 32 kHz")
        mag, cos, sin = self.spectrogram(x)
        mask = self.decoder(mag, self.encoder_features(wave48), e)
        out = F.relu(mag * mask)
        spec = torch.complex(out * cos, out * sin)[:, 0].transpose(1, 2)
        return torch.istft(spec, N_FFT, HOP, N_FFT, window=self.window, center=True, length=samples)
