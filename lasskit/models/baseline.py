"""``dcase2024-baseline``: the DCASE 2024 Task 9 challenge baseline (AudioSep at 16 kHz).

A frozen CLAP text encoder turns each query into a unit-norm 512-d embedding; the ResUNet30
separator (:mod:`lasskit.models.resunet`), conditioned on it by FiLM, masks the mixture's STFT.
Weights: the organizers' Lightning checkpoint ``audiosep_16k,baseline,step=200000.ckpt``
(Zenodo record 10887460), from ``checkpoint=PATH`` or downloaded into the cache on first use
(:mod:`lasskit.weights`). It holds both the separator (``ss_model.*``) and the CLAP text
encoder (``query_encoder.model.text_branch.*``, ``...text_projection.*``).

Options (keywords of the constructor):

- ``tokenizer``: folder with roberta-base's tokenizer (default: the Hugging Face cache);
- ``clap_checkpoint``: a CLAP file (``music_speech_audioset_epoch_15_esc_89.98.pt``) to take the
  text encoder from, when the separation checkpoint has none (or to override it);
- ``chunk_seconds`` (default 10): longer inputs are separated in windows of this length, each
  keeping its centre and ``context_seconds`` (default 1) of context on both sides;
- ``text_batch_size`` (default 32): queries embedded per RoBERTa call (each string once).

Memory (CPU, float32, measured): about 0.75 GB of activations per 10 s row of a batch, plus
~0.6 GB of weights (separator 0.1 GB, RoBERTa 0.5 GB); an input longer than ``chunk_seconds``
costs no more than one window, so ``max_seconds`` is None (the model chunks by itself, with
context, rather than letting the pipeline cut it).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lasskit.errors import UsageError, WorkError
from lasskit.models.base import SeparationModel

SEPARATOR_PREFIX = "ss_model."
"""Prefix of the separator's keys in the organizers' Lightning checkpoint."""


def load_checkpoint_state(path: str | Path) -> dict:
    """The tensors of a checkpoint file: ``checkpoint["state_dict"]`` of a Lightning file, else the dict.

    Loaded with ``torch.load(weights_only=True, mmap=True)`` (no code runs, tensors are read
    lazily). A file that pickles other objects (training state, hyper-parameters) is loaded with
    those objects replaced by inert stand-ins; the tensors are all that is kept.
    """
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: checkpoint not found; pass --checkpoint PATH or run "
                         "`lasskit models download dcase2024-baseline`")

    def unreadable(exc: BaseException) -> WorkError:
        return WorkError(f"{path}: not a readable PyTorch checkpoint ({_one_line(exc)}); download it again")

    try:
        try:
            obj = _torch_load(path)
        except pickle.UnpicklingError as exc:
            stubs = _unsafe_globals(path)
            if not stubs:
                raise unreadable(exc) from None
            obj = _torch_load(path, stub_globals=stubs)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as exc:
        raise unreadable(exc) from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WorkError(f"{path}: holds no state dict (a mapping of names to tensors)")
    return obj


def _torch_load(path: Path, stub_globals: Sequence[str] = ()):
    import pickle

    import torch

    stubs = [(_stub_class(name), name) for name in stub_globals]
    try:
        with torch.serialization.safe_globals(stubs):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as exc:
        if "mmap" not in str(exc):  # old (non-zip) serialisation: no mmap
            raise
        with torch.serialization.safe_globals(stubs):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        if stub_globals:
            raise WorkError(f"{path}: cannot read this checkpoint without running its code; "
                            "use the released baseline checkpoint or a plain state dict") from None
        raise


def _unsafe_globals(path: Path) -> list[str]:
    """Names of the classes/functions the checkpoint pickles beyond tensors; [] when unreadable."""
    import torch

    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # noqa: BLE001 - not a zip checkpoint, or an older torch
        return []


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:160]


def _stub_class(qualified: str) -> type:
    """An inert stand-in for a pickled class or function: takes any arguments, keeps nothing."""
    module, _, name = qualified.rpartition(".")

    class Stub:
        def __new__(cls, *args, **kwargs):
            return object.__new__(cls)

        def __init__(self, *args, **kwargs):
            pass

        def __setstate__(self, state):
            pass

    Stub.__name__ = Stub.__qualname__ = name
    Stub.__module__ = module
    return Stub


def separator_state(state: dict, source: str = "the checkpoint") -> dict:
    """The ResUNet30 tensors: ``ss_model.*`` keys with the prefix stripped, or a bare network state dict."""
    if any(k.startswith(SEPARATOR_PREFIX) for k in state):
        return {k[len(SEPARATOR_PREFIX):]: v for k, v in state.items() if k.startswith(SEPARATOR_PREFIX)}
    if any(k.startswith(("base.", "film.")) for k in state):
        return dict(state)
    raise WorkError(f"{source}: no separator weights (ss_model.* keys); "
                    "use the DCASE 2024 baseline checkpoint audiosep_16k,baseline,step=200000.ckpt")


def chunk_spans(samples: int, window: int, context: int) -> list[tuple[int, int, int, int]]:
    """Windows covering ``samples``: ``(keep_start, keep_end, in_start, in_end)`` each.

    The kept parts tile ``[0, samples)`` in cores of ``window - 2 * context`` samples; each input
    span holds its core plus ``context`` samples either side where the signal allows, and is
    exactly ``window`` long whenever ``samples >= window`` (edge windows shift inwards).
    """
    if samples <= window:
        return [(0, samples, 0, samples)]
    core = window - 2 * context
    if core <= 0:
        raise UsageError(f"chunk window {window} samples leaves no core with {context} samples of context each side")
    spans = []
    for start in range(0, samples, core):
        end = min(samples, start + core)
        lo = max(0, min(start - context, samples - window))
        spans.append((start, end, lo, lo + window))
    return spans


class DCASE2024Baseline(SeparationModel):
    """The challenge baseline: CLAP text query -> FiLM-conditioned ResUNet30 mask (16 kHz).

    After construction: ``network`` (:class:`~lasskit.models.resunet.ResUNet30`),
    ``text_encoder`` (``embed(queries) -> Tensor[n, 512]``), ``checkpoint`` (path loaded) and
    ``checkpoint_sha256`` (hex SHA-256 of that file).
    """

    name = "dcase2024-baseline"
    description = "DCASE 2024 Task 9 baseline: CLAP text encoder + FiLM ResUNet30 (AudioSep)"
    sample_rate = 16000
    max_seconds = None  # any length: windows of chunk_seconds with context, inside separate()

    def __init__(self, checkpoint: str | None = None, device: str = "cpu", tokenizer: str | None = None,
                 clap_checkpoint: str | None = None, chunk_seconds: float = 10.0, context_seconds: float = 1.0,
                 text_batch_size: int = 32, text_encoder: Any = None, **options: Any) -> None:
        import torch

        from lasskit import weights
        from lasskit.models.resunet import ResUNet30, load_network_state

        if options:
            raise UsageError(f"dcase2024-baseline: unknown option(s) {', '.join(sorted(options))}; known: tokenizer, "
                             "clap_checkpoint, chunk_seconds, context_seconds, text_batch_size")
        device = str(device)
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise UsageError(f"device {device}: CUDA is not available here; use --device cpu")
        self.chunk_seconds = float(chunk_seconds)
        self.context_seconds = float(context_seconds)
        if self.chunk_seconds <= 2 * self.context_seconds:
            raise UsageError(f"chunk_seconds {self.chunk_seconds} must exceed twice context_seconds "
                             f"({self.context_seconds})")
        path = Path(checkpoint).expanduser() if checkpoint else weights.fetch("dcase2024-baseline")
        super().__init__(str(path), device, tokenizer=tokenizer, clap_checkpoint=clap_checkpoint,
                         chunk_seconds=self.chunk_seconds, context_seconds=self.context_seconds,
                         text_batch_size=int(text_batch_size))
        state = load_checkpoint_state(path)
        self.checkpoint_sha256 = weights.sha256_file(path)

        network = ResUNet30()
        load_network_state(network, separator_state(state, str(path)), source=str(path))
        self.network = network.eval().to(device)

        if text_encoder is None:
            text_encoder = self._load_text_encoder(state, path, tokenizer, clap_checkpoint, int(text_batch_size))
        if hasattr(text_encoder, "to"):
            text_encoder = text_encoder.to(device)
        self.text_encoder = text_encoder

    @staticmethod
    def _load_text_encoder(state, path, tokenizer, clap_checkpoint, batch_size):
        from lasskit.models.text_encoder import load_clap_text_encoder, load_tokenizer, text_state_from_checkpoint

        if clap_checkpoint:
            source = Path(clap_checkpoint).expanduser()
            text_state = text_state_from_checkpoint(load_checkpoint_state(source))
            if text_state is None:
                raise WorkError(f"{source}: no CLAP text encoder (text_branch.* and text_projection.*); "
                                "use music_speech_audioset_epoch_15_esc_89.98.pt")
        else:
            source = path
            text_state = text_state_from_checkpoint(state)
            if text_state is None:
                raise UsageError(f"{path}: has no CLAP text encoder (query_encoder.model.text_branch.*); pass the "
                                 "option clap_checkpoint=PATH to music_speech_audioset_epoch_15_esc_89.98.pt "
                                 "(`lasskit models download clap-music-speech-audioset`)")
        return load_clap_text_encoder(text_state, load_tokenizer(tokenizer), source=str(source), batch_size=batch_size)

    def separate(self, mixtures, queries: list[str]):
        """(batch, samples) mixtures at 16 kHz and one query each -> (batch, samples) estimates."""
        import torch

        if len(queries) != mixtures.shape[0]:
            raise UsageError(f"{len(queries)} queries for {mixtures.shape[0]} mixtures")
        with torch.inference_mode():
            conditions = self.text_encoder.embed(list(queries)).to(self.device, torch.float32)
            estimates = self.separate_embedded(mixtures.to(self.device, torch.float32), conditions)
        return estimates.to(mixtures.device)

    def separate_embedded(self, mixtures, conditions):
        """(batch, samples) mixtures and (batch, 512) query embeddings -> (batch, samples) estimates.

        Inputs up to ``chunk_seconds`` go through the network whole; longer ones in windows
        (:func:`chunk_spans`). Inputs shorter than one STFT window (1024 samples) are zero-padded
        to it and cropped back.
        """
        import torch
        import torch.nn.functional as F

        from lasskit.models.resunet import N_FFT

        batch, samples = mixtures.shape
        if samples == 0:
            return mixtures.clone()
        if samples < N_FFT:
            padded = F.pad(mixtures, (0, N_FFT - samples))
            return self.separate_embedded(padded, conditions)[:, :samples]
        with torch.inference_mode():
            window = int(round(self.chunk_seconds * self.sample_rate))
            context = int(round(self.context_seconds * self.sample_rate))
            spans = chunk_spans(samples, window, context)
            if len(spans) == 1:
                return self.network(mixtures[:, None], conditions)[:, 0]
            out = torch.empty_like(mixtures)
            for start, end, lo, hi in spans:
                estimate = self.network(mixtures[:, None, lo:hi], conditions)[:, 0]
                out[:, start:end] = estimate[:, start - lo:end - lo]
            return out
