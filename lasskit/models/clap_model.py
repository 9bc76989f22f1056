"""Both CLAP towers from one checkpoint: unit audio and text embeddings, and CLAPScore.

``CLAPScore(audio, query) = dot(a, t)``: ``a`` the unit CLAP audio embedding of the clip
(:mod:`lasskit.models.clap_audio`, by the ``paper`` or ``physical`` input path), ``t`` the unit
CLAP text embedding of the query (:mod:`lasskit.models.text_encoder`, the baseline's query
encoder), so a cosine in [-1, 1].

Weights (:func:`find_clap_checkpoint`): ``checkpoint`` when given (the baseline's Lightning
checkpoint, or ``music_speech_audioset_epoch_15_esc_89.98.pt``), else the baseline checkpoint in
the lasskit cache, else the CLAP file in the cache; never downloaded here (a one-line error says
which ``lasskit models download`` to run). The tokenizer is roberta-base's, from ``tokenizer``
or the Hugging Face cache.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lasskit.errors import UsageError

CHECKPOINT_NAMES = ("dcase2024-baseline", "clap-music-speech-audioset")
"""Weight files (lasskit.weights names) that hold both CLAP towers, in the order they are looked for."""
DOWNLOAD_HELP = ("run `lasskit models download dcase2024-baseline` (the baseline checkpoint holds both CLAP towers) "
                 "or pass --checkpoint PATH to it or to music_speech_audioset_epoch_15_esc_89.98.pt")


def find_clap_checkpoint(checkpoint: str | os.PathLike | None = None, cache: str | os.PathLike | None = None) -> Path:
    """The weight file to take CLAP from: ``checkpoint``, else the first of :data:`CHECKPOINT_NAMES` cached."""
    from lasskit import weights

    if checkpoint:
        path = Path(checkpoint).expanduser()
        if path.is_dir():
            raise UsageError(f"{path}: is a folder, not a checkpoint file; give the checkpoint file inside it")
        if not path.is_file():
            raise UsageError(f"{path}: checkpoint not found; {DOWNLOAD_HELP}")
        return path
    for name in CHECKPOINT_NAMES:
        path = weights.weight_path(name, cache)
        if path.is_file():
            return path
    raise UsageError(f"CLAP scores need CLAP weights, none in {Path(cache or weights.cache_dir()) / 'weights'}: "
                     f"{DOWNLOAD_HELP}")


@dataclass
class ClapModel:
    """The audio embedder and text encoder of one checkpoint."""

    audio: Any
    """:class:`~lasskit.models.clap_audio.ClapAudioEmbedder`."""
    text: Any
    """Anything with ``embed(queries) -> Tensor[n, 512]`` (unit rows), e.g. ``ClapTextEncoder``."""
    checkpoint: str = ""

    def text_embeddings(self, queries: Sequence[str]) -> np.ndarray:
        """(len(queries), 512) float32; each distinct query is encoded once."""
        distinct = list(dict.fromkeys(queries))
        if not distinct:
            return np.zeros((0, 512), dtype=np.float32)
        table = self.text.embed(distinct).detach().float().cpu().numpy()
        row = {q: i for i, q in enumerate(distinct)}
        return table[[row[q] for q in queries]]

    def audio_embeddings(self, waveforms: Sequence[Any], sample_rate: int, path: str = "paper") -> np.ndarray:
        """(len(waveforms), 512) float32 unit embeddings of mono clips (see clap_audio)."""
        return self.audio.embed(waveforms, sample_rate, path)


def clap_scores(audio: np.ndarray, text: np.ndarray) -> np.ndarray:
    """Row-wise CLAPScore ``sum(a * t)`` of (n, 512) unit audio and text embeddings (float64)."""
    return np.einsum("ij,ij->i", np.asarray(audio, np.float64), np.asarray(text, np.float64))


def load_clap_model(checkpoint: str | os.PathLike | None = None, tokenizer: str | os.PathLike | None = None,
                    device: str = "auto", audio_batch_size: int = 4, text_batch_size: int = 32,
                    cache: str | os.PathLike | None = None) -> ClapModel:
    """Load both CLAP towers from :func:`find_clap_checkpoint` (strict about keys, see the towers)."""
    import torch

    from lasskit.models.baseline import load_checkpoint_state
    from lasskit.models.clap_audio import ClapAudioEmbedder, load_clap_audio_tower
    from lasskit.models.text_encoder import load_clap_text_encoder, load_tokenizer

    device = str(device or "auto").strip().lower()
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"device {device}: CUDA is not available here; use --device cpu")
    path = find_clap_checkpoint(checkpoint, cache)
    _looks_like_a_checkpoint(path)  # a file that is not one is named before any tokenizer trouble
    tokenizer_fn = load_tokenizer(tokenizer)  # before the big load: a missing tokenizer fails fast
    state = load_checkpoint_state(path)
    tower = load_clap_audio_tower(state, str(path))
    text = load_clap_text_encoder(state, tokenizer_fn, source=str(path), batch_size=text_batch_size)
    del state
    return ClapModel(ClapAudioEmbedder(tower, device, audio_batch_size), text.to(device), str(path))


def _looks_like_a_checkpoint(path: Path) -> None:
    """Raise the checkpoint loader's one-line error for a file that cannot be one: empty, or
    neither the zip archive nor the pickle ``torch.save`` writes (4 bytes read, no torch)."""
    from lasskit.errors import WorkError
    from lasskit.models.baseline import _checkpoint_fix, _why_unreadable

    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError:
        return  # the loader names the file and the reason
    if not head.startswith(b"PK") and head[:1] != b"\x80":
        raise WorkError(f"{path}: not a readable PyTorch checkpoint: {_why_unreadable(path, ValueError())}; "
                        f"{_checkpoint_fix(path)}")
