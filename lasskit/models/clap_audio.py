"""CLAP's audio branch (HTSAT-base) and the input path of the reference-free metric CLAPScore.

The tower (LAION-CLAP ``HTSAT-base``, the baseline's query encoder, ``enable_fusion=False``):

- front end (our code, torchlibrosa's numbers): a 48 kHz clip of 480000 samples -> STFT (window
  1024, hop 480, periodic Hann, centred, reflect padding; 1001 frames) -> power ``re^2 + im^2``
  -> 64 mel bands (librosa's Slaney filters, 50-14000 Hz, Slaney area normalisation) ->
  ``10 * log10(max(x, 1e-10))``;
- ``bn0`` (BatchNorm over the 64 mel bins), then HTSAT: the (1001, 64) log-mel is stretched to
  (1024, 64) (bicubic, align_corners), folded into a 256x256 image (4 time chunks stacked along
  frequency), Swin transformer (patch 4, width 128, depths 2/2/12/2, heads 4/8/16/32, window 8),
  final LayerNorm, mean over the 64 positions -> the 1024-wide ``embedding``. The Swin
  transformer is ``transformers``' ``ClapAudioEncoder`` (a port of the same code), loaded
  through :func:`laion_to_hf_key` (``qkv`` split into query/key/value, ``norm1`` ->
  ``layernorm_before``, ...);
- ``audio_projection``: Linear(1024 -> 512), ReLU, Linear(512 -> 512), then L2 normalisation.

Weights: ``audio_branch.*`` and ``audio_projection.*`` of a CLAP state dict, behind
``query_encoder.model.`` in the baseline's Lightning checkpoint or ``module.`` in
``music_speech_audioset_epoch_15_esc_89.98.pt`` (:data:`AUDIO_PREFIXES`). Loading is strict:
every learned tensor must be there with its shape; the layout's fixed tensors (STFT kernels, mel
filters, ``relative_position_index``) are compared with the ones lasskit computes, ``attn_mask``
and ``num_batches_tracked`` are accepted, the AudioSet classifier (``tscam_conv``, ``head``) is
accepted and unused; anything else is an error.

CLAPScore (Xiao et al., DCASE 2024 Workshop, arXiv 2407.04936) is ``dot(a, t)`` of the unit
audio embedding ``a`` of a clip and the unit text embedding ``t`` of its query. Its published
code loads audio at 16 kHz and hands it to the organizers' ``CLAP_Encoder``, which assumes
32 kHz and resamples 32 -> 48 kHz. :func:`clapscore_windows` offers both readings:

- ``"paper"`` (default): resample to 16 kHz if needed, then ``resample(w, 32000, 48000)``:
  the clip plays at double speed (10 s at 16 kHz becomes 5 s at 48 kHz), as in the paper;
- ``"physical"``: ``resample(w, rate, 48000)``, the clip at its true speed.

(``torchaudio.functional.resample`` with its defaults, as the organizers call it.) Then a clip
shorter than 480000 samples is repeat-padded: ``n = int(480000 / len)`` copies, zeros to
480000. Longer clips (the original code crops at random) are cut deterministically into
480000-sample windows starting every 480000 samples, the last one ending at the clip's end
(shifted inwards, so windows may overlap); the clip's embedding is the L2-normalised mean of
its windows' unit embeddings.

Speed (2-core CPU, float32): about 0.3 s per clip, nearly flat in the batch size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lasskit.errors import UsageError, WorkError

SAMPLE_RATE = 48000
"""The tower's input rate (Hz)."""
CLIP_SAMPLES = 480000
"""The tower's input length: 10 s at 48 kHz."""
N_FFT = 1024
HOP = 480
N_MELS = 64
FMIN = 50.0
FMAX = 14000.0
AMIN = 1e-10
"""Power floor before the log (torchlibrosa's ``amin``; ``ref`` is 1, no ``top_db``)."""
EMBEDDING_SIZE = 512
PAPER_RATE = 16000
"""The rate the published CLAPScore code loads audio at, before treating it as 32 kHz."""
PAPER_ASSUMED_RATE = 32000
"""The rate the organizers' ``CLAP_Encoder`` assumes its input has."""
PATHS = ("paper", "physical")
"""CLAPScore input paths: the published double-speed one (default) and the true-speed one."""
AUDIO_PREFIXES = ("query_encoder.model.", "module.", "")
"""Where a checkpoint may keep ``audio_branch.*`` and ``audio_projection.*`` (tried in order)."""
FIXED_TOLERANCE = 1e-4
"""Largest difference allowed between a checkpoint's fixed front-end tensors and lasskit's."""

_RENAMES = (
    ("norm1.", "layernorm_before."),
    ("norm2.", "layernorm_after."),
    ("attn.proj.", "attention.output.dense."),
    ("attn.relative_position_bias_table", "attention.self.relative_position_bias_table"),
    ("attn.relative_position_index", "attention.self.relative_position_index"),
    ("mlp.fc1.", "intermediate.dense."),
    ("mlp.fc2.", "output.dense."),
)


# ---------------------------------------------------------------------------------------------
# Front end


def mel_filters(sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS,
                fmin: float = FMIN, fmax: float = FMAX) -> np.ndarray:
    """Slaney mel filter bank, (n_fft // 2 + 1, n_mels) float32 (librosa's ``filters.mel(...).T``).

    Slaney mel scale: ``m = 3 f / 200`` below 1 kHz, ``15 + 27 ln(f / 1000) / ln 6.4`` above;
    ``n_mels + 2`` band edges equally spaced in mel between ``fmin`` and ``fmax``; triangle ``i``
    rises from edge ``i`` to ``i + 1`` and falls to ``i + 2`` (in Hz), scaled by
    ``2 / (f[i + 2] - f[i])`` (equal area). Stored in float32 before the scaling, as librosa does.
    """
    def hz_to_mel(f):
        f = np.asanyarray(f, dtype=np.float64)
        return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0),
                        3.0 * f / 200.0)

    def mel_to_hz(m):
        m = np.asanyarray(m, dtype=np.float64)
        return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), 200.0 * m / 3.0)

    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    freqs = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    widths = np.diff(edges)
    ramps = edges[:, None] - freqs[None, :]
    weights = np.zeros((n_mels, n_fft // 2 + 1), dtype=np.float32)
    for i in range(n_mels):
        weights[i] = np.maximum(0.0, np.minimum(-ramps[i] / widths[i], ramps[i + 2] / widths[i + 1]))
    weights *= (2.0 / (edges[2:n_mels + 2] - edges[:n_mels]))[:, None]
    return np.ascontiguousarray(weights.T)


def hann_window(n: int = N_FFT) -> np.ndarray:
    """Periodic Hann window ``0.5 - 0.5 cos(2 pi k / n)`` (float64)."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def stft_kernels(n_fft: int = N_FFT) -> tuple[np.ndarray, np.ndarray]:
    """torchlibrosa's conv-STFT kernels, (n_fft // 2 + 1, 1, n_fft) float32 each.

    ``real[k, 0, n] = w[n] cos(2 pi k n / N)``, ``imag[k, 0, n] = -w[n] sin(2 pi k n / N)``
    (only to check a checkpoint's copies; the front end uses ``torch.stft``).
    """
    k = np.arange(n_fft // 2 + 1)[:, None]
    n = np.arange(n_fft)[None, :]
    phase = 2.0 * np.pi * ((k * n) % n_fft) / n_fft
    window = hann_window(n_fft)[None, :]
    return ((window * np.cos(phase)).astype(np.float32)[:, None, :],
            (-window * np.sin(phase)).astype(np.float32)[:, None, :])


class LogMel(nn.Module):
    """(batch, samples) at 48 kHz -> (batch, 1, frames, 64) log-mel power in dB (no ``bn0``)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("window", torch.from_numpy(hann_window(N_FFT).astype(np.float32)), persistent=False)
        self.register_buffer("mel", torch.from_numpy(mel_filters()), persistent=False)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(waveforms, N_FFT, HOP, N_FFT, window=self.window, center=True, pad_mode="reflect",
                          return_complex=True)
        power = (spec.real ** 2 + spec.imag ** 2).transpose(1, 2)
        return (10.0 * torch.log10(torch.clamp(power @ self.mel, min=AMIN)))[:, None]


# ---------------------------------------------------------------------------------------------
# The tower


def require_transformers():
    """Import ``transformers`` or say how to install it."""
    try:
        import transformers
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise UsageError("CLAP audio embeddings need transformers: pip install 'lasskit[baseline]'") from exc
    return transformers


def htsat_config(embed_dim: int = 128, depths: Sequence[int] = (2, 2, 12, 2),
                 heads: Sequence[int] = (4, 8, 16, 32)):
    """``transformers.ClapAudioConfig`` of HTSAT (base by default), no fusion, eval-time dropout 0."""
    transformers = require_transformers()
    return transformers.ClapAudioConfig(
        patch_embeds_hidden_size=int(embed_dim), hidden_size=int(embed_dim) * 2 ** (len(depths) - 1),
        depths=list(depths), num_attention_heads=list(heads), window_size=8, spec_size=256, num_mel_bins=N_MELS,
        patch_size=4, patch_stride=[4, 4], enable_fusion=False, projection_dim=EMBEDDING_SIZE,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, drop_path_rate=0.0,
    )


class ClapAudioTower(nn.Module):
    """48 kHz clips (batch, 480000) -> unit-norm CLAP audio embeddings (batch, 512)."""

    def __init__(self, config=None) -> None:
        super().__init__()
        from transformers.models.clap.modeling_clap import ClapAudioEncoder

        config = config or htsat_config()
        self.front_end = LogMel()
        self.encoder = ClapAudioEncoder(config)
        width = config.patch_embeds_hidden_size * 2 ** (len(config.depths) - 1)
        self.projection = nn.Sequential(nn.Linear(width, EMBEDDING_SIZE), nn.ReLU(),
                                        nn.Linear(EMBEDDING_SIZE, EMBEDDING_SIZE))

    def embedding(self, waveforms: torch.Tensor) -> torch.Tensor:
        """HTSAT's 1024-wide ``embedding`` (before the projection)."""
        return self.encoder(self.front_end(waveforms), return_dict=True).pooler_output

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.projection(self.embedding(waveforms)), dim=-1)


# ---------------------------------------------------------------------------------------------
# Loading


def audio_state_from_checkpoint(state: Mapping[str, Any]) -> dict[str, Any] | None:
    """``{"audio_branch.*", "audio_projection.*"}`` tensors of a CLAP or baseline state dict; None if absent."""
    for prefix in AUDIO_PREFIXES:
        branch, projection = prefix + "audio_branch.", prefix + "audio_projection."
        if any(k.startswith(branch) for k in state) and any(k.startswith(projection) for k in state):
            return {k[len(prefix):]: v for k, v in state.items() if k.startswith((branch, projection))}
    return None


def laion_to_hf_key(key: str) -> str | None:
    """Name in :class:`ClapAudioTower` of a LAION ``audio_branch.``/``audio_projection.`` key.

    None for the layout's tensors lasskit does not load (fixed front end, ``attn_mask``, the
    AudioSet classifier); ``qkv`` keys map to ``...attention.self.qkv.*`` (split on loading).
    """
    if key.startswith("audio_projection."):
        return "projection." + key[len("audio_projection."):]
    if not key.startswith("audio_branch."):
        return None
    rest = key[len("audio_branch."):]
    if rest.startswith(("spectrogram_extractor.", "logmel_extractor.", "tscam_conv.", "head.")) or \
            rest.endswith(".attn_mask"):
        return None
    if rest.startswith("bn0."):
        return "encoder.batch_norm." + rest[len("bn0."):]
    if ".attn.qkv." in rest:
        return "encoder." + rest.replace(".attn.qkv.", ".attention.self.qkv.")
    for old, new in _RENAMES:
        rest = rest.replace(old, new)
    return "encoder." + rest


def htsat_config_from_state(audio: Mapping[str, Any], source: str = "the checkpoint"):
    """The HTSAT config the ``audio_branch.*`` tensors describe (width, depths and heads)."""
    try:
        embed_dim = int(audio["audio_branch.patch_embed.proj.weight"].shape[0])
    except KeyError:
        raise WorkError(f"{source}: audio_branch has no patch_embed.proj.weight: not an HTSAT audio tower") from None
    depths, heads = [], []
    layer = 0
    while any(k.startswith(f"audio_branch.layers.{layer}.blocks.") for k in audio):
        blocks = {k.split(".")[4] for k in audio if k.startswith(f"audio_branch.layers.{layer}.blocks.")}
        depths.append(len(blocks))
        table = audio.get(f"audio_branch.layers.{layer}.blocks.0.attn.relative_position_bias_table")
        if table is None:
            raise WorkError(f"{source}: missing audio_branch.layers.{layer}.blocks.0.attn.relative_position_bias_table")
        heads.append(int(table.shape[1]))
        layer += 1
    if not depths:
        raise WorkError(f"{source}: audio_branch has no Swin layers: not an HTSAT audio tower")
    return htsat_config(embed_dim, depths, heads)


def load_clap_audio_tower(state: Mapping[str, Any], source: str = "the checkpoint", config=None) -> ClapAudioTower:
    """Build a :class:`ClapAudioTower` from a CLAP or baseline state dict, strictly (see the module doc).

    Missing, unexpected or misshapen keys, or fixed tensors that differ from lasskit's front end,
    raise :class:`WorkError` naming ``source`` and the first keys.
    """
    audio = audio_state_from_checkpoint(state)
    if audio is None:
        raise WorkError(f"{source}: no CLAP audio tower weights (audio_branch.* and audio_projection.*); use the "
                        "baseline checkpoint or music_speech_audioset_epoch_15_esc_89.98.pt")
    config = config or htsat_config_from_state(audio, source)
    tower = ClapAudioTower(config)
    own = tower.state_dict()
    loaded: dict[str, torch.Tensor] = {}
    unexpected, wrong, fixed = [], [], []
    for key, value in audio.items():
        target = laion_to_hf_key(key)
        if target is None:
            problem = _check_fixed(key, value)
            if problem == "unknown":
                unexpected.append(key)
            elif problem:
                fixed.append(problem)
            continue
        if ".attention.self.qkv." in target:
            names = [target.replace(".qkv.", f".{n}.") for n in ("query", "key", "value")]
            if names[0] not in own:
                unexpected.append(key)
            elif tuple(value.shape) != (3 * own[names[0]].shape[0], *own[names[0]].shape[1:]):
                wrong.append(f"{key} {tuple(value.shape)}")
            else:
                loaded.update(zip(names, value.chunk(3, dim=0)))
            continue
        if target not in own:
            unexpected.append(key)
        elif target.endswith("relative_position_index"):
            if tuple(value.shape) != tuple(own[target].shape) or not torch.equal(value.to(own[target].dtype),
                                                                                own[target]):
                fixed.append(f"{key} differs from the Swin relative position index")
        elif tuple(value.shape) != tuple(own[target].shape):
            wrong.append(f"{key} {tuple(value.shape)} != {tuple(own[target].shape)}")
        else:
            loaded[target] = value
    missing = [_hf_to_laion(k) for k in own if k not in loaded and not k.endswith(
        ("relative_position_index", "num_batches_tracked"))]
    if missing or unexpected or wrong or fixed:
        detail = "; ".join(part for part in (
            f"missing {_first(missing)}" if missing else "",
            f"unexpected {_first(unexpected)}" if unexpected else "",
            f"shape {_first(wrong)}" if wrong else "",
            _first(fixed) if fixed else "",
        ) if part)
        raise WorkError(f"{source}: CLAP audio tower weights do not fit HTSAT: {detail}; "
                        "use music_speech_audioset_epoch_15_esc_89.98.pt or the baseline checkpoint")
    tower.load_state_dict(loaded, strict=False)
    return tower.eval()


_FIXED: dict[str, torch.Tensor] = {}


def _fixed_tensor(key: str) -> torch.Tensor:
    if not _FIXED:
        real, imag = stft_kernels()
        _FIXED.update({
            "audio_branch.spectrogram_extractor.stft.conv_real.weight": torch.from_numpy(real),
            "audio_branch.spectrogram_extractor.stft.conv_imag.weight": torch.from_numpy(imag),
            "audio_branch.logmel_extractor.melW": torch.from_numpy(mel_filters()),
        })
    return _FIXED[key]


def _check_fixed(key: str, value: Any) -> str:
    """'' when ``key`` is a known unused/fixed tensor that fits, 'unknown' when not in the layout, else a problem."""
    if key in ("audio_branch.spectrogram_extractor.stft.conv_real.weight",
               "audio_branch.spectrogram_extractor.stft.conv_imag.weight", "audio_branch.logmel_extractor.melW"):
        expected = _fixed_tensor(key)
        if tuple(value.shape) != tuple(expected.shape):
            return f"{key} has shape {tuple(value.shape)}, the front end needs {tuple(expected.shape)}"
        diff = float((value.float() - expected).abs().max())
        if diff > FIXED_TOLERANCE:
            return f"{key} differs from lasskit's front end by {diff:.2g}"
        return ""
    rest = key[len("audio_branch."):]
    if rest.startswith(("tscam_conv.", "head.")) and rest.endswith((".weight", ".bias")):
        return ""
    if rest.startswith("layers.") and rest.endswith(".attn_mask"):
        return ""
    return "unknown"


def _hf_to_laion(key: str) -> str:
    if key.startswith("projection."):
        return "audio_projection." + key[len("projection."):]
    rest = key[len("encoder."):]
    if rest.startswith("batch_norm."):
        return "audio_branch.bn0." + rest[len("batch_norm."):]
    for name in ("query", "key", "value"):
        rest = rest.replace(f".attention.self.{name}.", ".attn.qkv.")
    for old, new in _RENAMES:
        rest = rest.replace(new, old)
    return "audio_branch." + rest


AUDIOSET_CLASSES = 527
"""Width of HTSAT's AudioSet classifier (``tscam_conv``, ``head``), kept in the layout, unused here."""


def swin_attn_mask(height: int, width: int, window: int, shift: int) -> np.ndarray:
    """Swin's shifted-window mask, (windows, window^2, window^2) float32: 0 within a region, -100 across.

    The (height, width) grid is cut into 3 x 3 regions by ``[0, -window)``, ``[-window, -shift)``,
    ``[-shift, end)`` on each axis, numbered ``3 * row + column``; windows of the grid are taken
    row by row; entry ``[w, i, j]`` is -100 where positions ``i`` and ``j`` of window ``w`` lie
    in different regions.
    """
    def region(n):
        idx = np.arange(n)
        return (idx >= n - window).astype(int) + (idx >= n - shift).astype(int)

    grid = region(height)[:, None] * 3 + region(width)[None, :]
    windows = grid.reshape(height // window, window, width // window, window).transpose(0, 2, 1, 3)
    windows = windows.reshape(-1, window * window)
    return np.where(windows[:, None, :] != windows[:, :, None], -100.0, 0.0).astype(np.float32)


def laion_audio_state(tower: ClapAudioTower, seed: int = 0) -> dict[str, torch.Tensor]:
    """The tower's weights under LAION's names (``audio_branch.*``, ``audio_projection.*``): the
    checkpoint layout, with the fixed tensors lasskit computes, ``attn_mask`` buffers and a random
    AudioSet classifier (``seed``). Round-trips through :func:`load_clap_audio_tower`; used for
    tests and benchmarks with random weights in the real key layout.
    """
    own = tower.state_dict()
    config = tower.encoder.config
    real, imag = stft_kernels()
    state: dict[str, torch.Tensor] = {
        "audio_branch.spectrogram_extractor.stft.conv_real.weight": torch.from_numpy(real),
        "audio_branch.spectrogram_extractor.stft.conv_imag.weight": torch.from_numpy(imag),
        "audio_branch.logmel_extractor.melW": torch.from_numpy(mel_filters()),
    }
    grid = config.spec_size // config.patch_stride[0]
    for key, value in own.items():
        laion = _hf_to_laion(key)
        if ".attention.self.query." in key:
            parts = [own[key.replace(".query.", f".{n}.")] for n in ("query", "key", "value")]
            state[laion] = torch.cat(parts).clone()
        elif ".attention.self.key." in key or ".attention.self.value." in key:
            continue
        else:
            state[laion] = value.clone()
        if key.endswith("attention.self.relative_position_index"):
            layer, block = int(key.split(".")[2]), int(key.split(".")[4])
            resolution = grid // 2 ** layer
            if block % 2 == 1 and resolution > config.window_size:
                state[laion.replace(".attn.relative_position_index", ".attn_mask")] = torch.from_numpy(
                    swin_attn_mask(resolution, resolution, config.window_size, config.window_size // 2))
    generator = torch.Generator().manual_seed(seed)
    width = tower.projection[0].in_features
    classifier = {
        "audio_branch.tscam_conv.weight": (AUDIOSET_CLASSES, width, 2, 3),
        "audio_branch.tscam_conv.bias": (AUDIOSET_CLASSES,),
        "audio_branch.head.weight": (AUDIOSET_CLASSES, AUDIOSET_CLASSES),
        "audio_branch.head.bias": (AUDIOSET_CLASSES,),
    }
    for key, shape in classifier.items():
        state[key] = torch.randn(shape, generator=generator) * 0.01
    return state


def _first(keys: list[str], n: int = 3) -> str:
    keys = list(dict.fromkeys(keys))
    return ", ".join(keys[:n]) + (", ..." if len(keys) > n else "")


# ---------------------------------------------------------------------------------------------
# CLAPScore input path and batched embedding


def resample(waveform: torch.Tensor, orig: int, new: int) -> torch.Tensor:
    """``torchaudio.functional.resample(waveform, orig, new)`` with its defaults (the organizers' call)."""
    if orig == new:
        return waveform
    try:
        import torchaudio.functional as AF
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise UsageError("CLAP audio embeddings need torchaudio: pip install 'lasskit[baseline]'") from exc
    return AF.resample(waveform, orig, new)


def to_tower_rate(waveform: torch.Tensor, sample_rate: int, path: str = "paper") -> torch.Tensor:
    """A clip at ``sample_rate`` as the tower hears it at 48 kHz, by the ``path`` reading (module doc)."""
    if path == "paper":
        return resample(resample(waveform, int(sample_rate), PAPER_RATE), PAPER_ASSUMED_RATE, SAMPLE_RATE)
    if path == "physical":
        return resample(waveform, int(sample_rate), SAMPLE_RATE)
    raise UsageError(f"CLAP path {path!r}: use one of {', '.join(PATHS)}")


def repeat_pad(waveform: torch.Tensor, length: int = CLIP_SAMPLES) -> torch.Tensor:
    """LAION's ``repeatpad``: ``int(length / len)`` copies end to end, zeros up to ``length`` (1-D)."""
    samples = waveform.shape[-1]
    if samples >= length:
        return waveform
    return F.pad(waveform.repeat(length // samples), (0, length - (length // samples) * samples))


def window_starts(samples: int, length: int = CLIP_SAMPLES) -> list[int]:
    """Starts of the ``length``-sample windows covering a longer clip: every ``length``, last one at the end."""
    if samples <= length:
        return [0]
    starts = list(range(0, samples - length, length))
    return starts + [samples - length]


def clapscore_windows(waveform: Any, sample_rate: int, path: str = "paper") -> torch.Tensor:
    """(k, 480000) float32 tower inputs for one mono clip: resampled, repeat-padded or windowed."""
    wave = torch.as_tensor(np.asarray(waveform, dtype=np.float32)).reshape(-1)
    if wave.numel() == 0:
        raise WorkError("empty audio: no CLAP embedding")
    wave = to_tower_rate(wave, sample_rate, path)
    if wave.numel() <= CLIP_SAMPLES:
        return repeat_pad(wave)[None]
    return torch.stack([wave[s:s + CLIP_SAMPLES] for s in window_starts(wave.numel())])


class ClapAudioEmbedder:
    """Clips at any rate -> unit-norm CLAP audio embeddings, ``batch_size`` windows per tower call."""

    def __init__(self, tower: ClapAudioTower, device: str = "cpu", batch_size: int = 4) -> None:
        self.device = torch.device(device)
        self.tower = tower.eval().to(self.device)
        self.batch_size = max(1, int(batch_size))

    def embed_clips(self, clips: torch.Tensor) -> torch.Tensor:
        """(n, 480000) tower inputs at 48 kHz -> (n, 512) float32 on the CPU, in batches."""
        out = []
        with torch.inference_mode():
            for start in range(0, clips.shape[0], self.batch_size):
                batch = clips[start:start + self.batch_size].to(self.device, torch.float32)
                out.append(self.tower(batch).float().cpu())
        return torch.cat(out) if out else torch.zeros(0, EMBEDDING_SIZE)

    def embed(self, waveforms: Sequence[Any], sample_rate: int, path: str = "paper") -> np.ndarray:
        """(len(waveforms), 512) float32: each mono clip through :func:`clapscore_windows` and the tower.

        Windows are embedded ``batch_size`` at a time as the clips come (memory stays at one
        batch); a clip cut into several windows gets the normalised mean of their embeddings.
        """
        owners: list[int] = []
        pending: list[torch.Tensor] = []
        parts: list[torch.Tensor] = []
        for index, waveform in enumerate(waveforms):
            windows = clapscore_windows(waveform, sample_rate, path)
            owners.extend([index] * windows.shape[0])
            pending.extend(windows)
            while len(pending) >= self.batch_size:
                parts.append(self.embed_clips(torch.stack(pending[:self.batch_size])))
                pending = pending[self.batch_size:]
        if pending:
            parts.append(self.embed_clips(torch.stack(pending)))
        count = len(waveforms)
        if not parts:
            return np.zeros((count, EMBEDDING_SIZE), dtype=np.float32)
        embedded = torch.cat(parts)
        sums = torch.zeros(count, EMBEDDING_SIZE).index_add_(0, torch.tensor(owners), embedded)
        windows_per_clip = torch.bincount(torch.tensor(owners), minlength=count)
        single = windows_per_clip == 1
        out = F.normalize(sums, dim=-1)
        out[single] = sums[single]  # one window: its embedding as the tower gave it
        return out.numpy()
