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
- ``chunk_seconds`` (default None: one pass over the whole clip, whatever its length, as the
  organizers run it): when set, longer inputs are separated in windows of this length, each
  keeping its centre and ``context_seconds`` (default 1) of context on both sides. Chunking
  changes the estimate (a 25 s clip in 10 s windows: 18.7 dB SNR against the one-pass output),
  so it is only done on request;
- ``text_batch_size`` (default 32): queries embedded per RoBERTa call (each string once);
- ``channels``: the ResUNet30's width (default: read from the checkpoint, 32 for the released
  one; see :class:`~lasskit.models.resunet.ResUNet30`);
- ``random_init`` (training from scratch, ``lasskit train`` without ``--init``): a fresh separator
  (:meth:`~lasskit.models.resunet.ResUNet30.init_weights`); the checkpoint (default: the released
  one) then only supplies the text encoder, and is not read at all with ``clap_checkpoint``.

Training (:class:`~lasskit.models.base.TrainableModel`): the ResUNet30 is trained, the CLAP text
tower stays frozen (``embed_queries`` caches each caption's embedding), the loss is L1 on the
waveform, and checkpoints hold ``ss_model.*`` and ``query_encoder.model.text_branch.*`` /
``...text_projection.*``, the organizers' layout, so ``checkpoint=PATH`` loads them back.

Cost of the single pass (CPU, float32, measured on 10 s and 30 s clips): time and activation
memory grow linearly with the clip: 0.84 GiB of peak memory added for a 10 s row, 2.1 GiB for
30 s
(:attr:`DCASE2024Baseline.bytes_per_sample`, which the pipeline uses to chunk only a clip that
would not fit in the free memory, with a warning naming it), plus ~0.6 GB of weights (separator
0.1 GB, RoBERTa 0.5 GB). ``max_seconds`` is None: any length in one call.

Batching: zero samples appended to a row change its estimate (the STFT frames at its end and
every convolution's receptive field see them; relative L2 0.07-0.17 on real clips), so
``padding_invariant`` is False and the pipeline batches only rows of equal length: a row's
estimate does not depend on its batch-mates.

Speed: on the CPU the model calls :func:`lasskit.models.memory.keep_freed_memory` when it is
built (glibc otherwise returns every ~64 MB activation buffer to the kernel after each layer and
the separator runs at about half speed), and the network's activations are computed in place
under inference (:mod:`lasskit.models.resunet`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lasskit.errors import LasskitError, UsageError, WorkError
from lasskit.models.base import TrainableModel

SEPARATOR_PREFIX = "ss_model."
"""Prefix of the separator's keys in the organizers' Lightning checkpoint."""

FAMILY = {
    (1024, False): "dcase2024-baseline",
    (1024, True): "audiosep-dp-16k",
    (2048, False): "audiosep",
    (2048, True): "audiosep-dp-32k",
}
"""(STFT size, has the dual-path RNN) -> the registered model a separator state belongs to."""


def identify_separator(separator: dict) -> str | None:
    """Which model of the family a separator state dict (no ``ss_model.`` prefix) is; None if unknown."""
    bn0 = separator.get("base.bn0.weight")
    if bn0 is None or getattr(bn0, "ndim", 0) != 1:
        return None
    n_fft = 2 * (int(bn0.shape[0]) - 1)
    dual = any(k.startswith("base.DPRNN.") for k in separator)
    return FAMILY.get((n_fft, dual))


def without_module_prefix(state: dict) -> dict:
    """``state`` without the ``module.`` every key carries when it was saved from a
    ``DistributedDataParallel``/``DataParallel`` wrapper (unchanged otherwise)."""
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return state


def load_checkpoint_state(path: str | Path) -> dict:
    """The tensors of a checkpoint file: ``checkpoint["state_dict"]`` of a Lightning file, else the dict.

    Loaded with ``torch.load(weights_only=True, mmap=True)`` (no code runs, tensors are read
    lazily). A file that pickles other objects (training state, hyper-parameters) is loaded with
    those objects replaced by inert stand-ins; the tensors are all that is kept.
    """
    import pickle

    import torch

    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{path}: is a folder, not a checkpoint file; give the checkpoint file inside it")
    if not path.is_file():
        raise UsageError(f"{path}: checkpoint not found; check the path (`lasskit models --cards` lists "
                         "each model's files; `lasskit models download NAME` fetches them)")

    def unreadable(exc: BaseException) -> WorkError:
        return WorkError(f"{path}: not a readable PyTorch checkpoint: {_why_unreadable(path, exc)}; "
                         f"{_checkpoint_fix(path)}")

    try:
        try:
            obj = _torch_load(path)
        except pickle.UnpicklingError as exc:
            stubs = _unsafe_globals(path)
            if not stubs:
                raise unreadable(exc) from None
            obj = _torch_load(path, stub_globals=stubs)
    except LasskitError:
        raise
    except Exception as exc:  # noqa: BLE001 - torch reads any bytes as a pickle: KeyError, IndexError ...
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
    if not _utf8_name(path):  # torch's C++ reader takes UTF-8 names only: read through a Python file
        with open(path, "rb") as fh, torch.serialization.safe_globals(stubs):
            return torch.load(fh, map_location="cpu", weights_only=True)
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


def _utf8_name(path: Path) -> bool:
    """False for a file name that is not valid UTF-8 (undecodable bytes kept as surrogates)."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _unsafe_globals(path: Path) -> list[str]:
    """Names of the classes/functions the checkpoint pickles beyond tensors; [] when unreadable."""
    import torch

    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # noqa: BLE001 - not a zip checkpoint, or an older torch
        return []


def _why_unreadable(path: Path, exc: BaseException) -> str:
    """What is wrong with a checkpoint torch cannot load, as a complete clause."""
    import zipfile

    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError as err:
        return f"it cannot be read ({err.strerror or err})"
    if size == 0:
        return "the file is empty"
    if head.startswith(b"PK"):
        if not zipfile.is_zipfile(path):
            return f"a damaged or truncated zip archive ({size} bytes, its end is missing)"
        return f"a zip archive torch cannot load ({_first_sentence(exc)})"
    if head[:1] == b"\x80":
        return f"an old-format (pickle) checkpoint torch cannot load ({_first_sentence(exc)})"
    return "neither the zip archive nor the pickle that torch.save writes"


def _checkpoint_fix(path: Path) -> str:
    """The fix: download again only for a file lasskit downloaded into its cache."""
    from lasskit import weights

    try:
        cached = path.resolve().parent == (weights.cache_dir() / "weights").resolve()
    except OSError:
        cached = False
    if cached:
        return f"remove it and run `lasskit models download {_weight_name(path.name)}` to download it again"
    return "give a complete checkpoint file written by torch.save (or the released one)"


def _weight_name(filename: str) -> str:
    from lasskit import weights

    for name, spec in weights.WEIGHTS.items():
        if spec.filename == filename:
            return name
    return "dcase2024-baseline"


def _first_sentence(exc: BaseException) -> str:
    """The first sentence of an exception's text (never cut inside it)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    end = text.find(". ")
    return (text if end < 0 else text[:end]).rstrip(".")


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


def count_option(model: str, option: str, value: Any) -> int:
    """``value`` as a whole number >= 1, else one line (0, -1, 1.5 and true were taken as 1)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"{model}: {option}={value!r}: give a whole number >= 1")
    return value


def seconds_option(model: str, option: str, value: Any) -> float:
    """``value`` as a finite number of seconds >= 0, else one line (inf failed every file, nan and -1 passed)."""
    import math

    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise UsageError(f"{model}: {option}={value!r}: give a finite number of seconds >= 0")
    return float(value)


BASELINE_FIX = "use the DCASE 2024 baseline checkpoint audiosep_16k,baseline,step=200000.ckpt"


def separator_state(state: dict, source: str = "the checkpoint", model: str = "dcase2024-baseline",
                    fix: str = BASELINE_FIX) -> dict:
    """The ResUNet30 tensors: ``ss_model.*`` keys with the prefix stripped, or a bare network state dict.
    A CLAPSep checkpoint or a CLAP file (no separator) is one line saying what it is, for ``model``."""
    state = without_module_prefix(state)
    if any(k.startswith(SEPARATOR_PREFIX) for k in state):
        return {k[len(SEPARATOR_PREFIX):]: v for k, v in state.items() if k.startswith(SEPARATOR_PREFIX)}
    if any(k.startswith(("base.", "film.")) for k in state):
        return dict(state)
    if any(k.startswith("decoder_model.") for k in state):
        raise WorkError(f"{source}: this is a clapsep checkpoint, not {model}; use --model clapsep, "
                        f"or {model}'s own checkpoint")
    if any(k.startswith(("text_branch.", "audio_branch.")) for k in state):
        raise WorkError(f"{source}: this is a CLAP file (the text/audio encoder), not a {model} checkpoint; "
                        f"give {model}'s own checkpoint, and this file as --option clap_checkpoint=PATH")
    raise WorkError(f"{source}: no separator weights (ss_model.* keys); {fix}")


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


class DCASE2024Baseline(TrainableModel):
    """The challenge baseline: CLAP text query -> FiLM-conditioned ResUNet30 mask (16 kHz).

    After construction: ``network`` (:class:`~lasskit.models.resunet.ResUNet30`),
    ``text_encoder`` (``embed(queries) -> Tensor[n, 512]``), ``checkpoint`` (path loaded) and
    ``checkpoint_sha256`` (hex SHA-256 of that file).
    """

    name = "dcase2024-baseline"
    description = "DCASE 2024 Task 9 baseline: CLAP text encoder + FiLM ResUNet30 (AudioSep)"
    sample_rate = 16000
    max_seconds = None  # any length in one pass (windows of chunk_seconds only when asked)
    padding_invariant = False  # zero-padding a row changes its estimate: batch equal lengths only
    bytes_per_sample = 6000.0
    """Peak memory of a single pass per input sample of a row (measured on the CPU: 5.5 kB for a 10 s
    row, 4.6 kB for 30 s; with some margin)."""

    def __init__(self, checkpoint: str | None = None, device: str = "cpu", tokenizer: str | None = None,
                 clap_checkpoint: str | None = None, chunk_seconds: float | None = None, context_seconds: float = 1.0,
                 text_batch_size: int = 32, text_encoder: Any = None, channels: int | None = None,
                 random_init: bool = False, **options: Any) -> None:
        import torch

        from lasskit import weights
        from lasskit.models.resunet import DEFAULT_CHANNELS, channels_of_state

        if options:
            raise UsageError(f"{self.name}: unknown option(s) {', '.join(sorted(options))}; known: tokenizer, "
                             "clap_checkpoint, chunk_seconds, context_seconds, text_batch_size, channels, random_init")
        device = str(device)
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise UsageError(f"device {device}: CUDA is not available here; use --device cpu")
        if not device.startswith("cuda"):
            from lasskit.models.memory import keep_freed_memory

            keep_freed_memory()  # glibc would otherwise unmap every activation buffer after each layer
        if not isinstance(random_init, bool):  # -o random_init=yes: the string "yes" was true
            raise UsageError(f"{self.name}: random_init={random_init!r}: give true or false")
        if random_init and checkpoint:
            raise UsageError(f"{self.name}: random_init=true builds a fresh separator, so {checkpoint}'s would not be "
                             "used (while its digest was recorded as what made the outputs); drop one of them")
        text_batch_size = count_option(self.name, "text_batch_size", text_batch_size)
        channels = None if channels is None else count_option(self.name, "channels", channels)
        self.chunk_seconds = None if chunk_seconds is None else seconds_option(self.name, "chunk_seconds", chunk_seconds)
        self.context_seconds = seconds_option(self.name, "context_seconds", context_seconds)
        if self.chunk_seconds is not None and self.chunk_seconds <= 2 * self.context_seconds:
            raise UsageError(f"chunk_seconds {self.chunk_seconds} must exceed twice context_seconds "
                             f"({self.context_seconds})")
        if random_init and not checkpoint and (text_encoder is not None or clap_checkpoint):
            path = None  # nothing to read: a fresh separator and the text encoder from elsewhere
        else:
            path = Path(checkpoint).expanduser() if checkpoint else self.default_checkpoint()
        super().__init__(None if path is None else str(path), device, tokenizer=tokenizer,
                         clap_checkpoint=clap_checkpoint, chunk_seconds=self.chunk_seconds,
                         context_seconds=self.context_seconds, text_batch_size=int(text_batch_size))
        state = {} if path is None else without_module_prefix(load_checkpoint_state(path))
        self.checkpoint_sha256 = None if path is None else weights.sha256_cached(path)

        if random_init:  # training from scratch (lasskit train): fresh weights, torch's global RNG
            network = self.build_network(int(channels or DEFAULT_CHANNELS))
            network.init_weights()
        else:
            separator = separator_state(state, str(path), self.name, self.checkpoint_fix())
            network = self.build_network(int(channels or channels_of_state(separator)), separator)
            self.load_separator(network, separator, str(path))
        self.network = network.eval().to(device)

        if text_encoder is None:
            text_encoder = self._load_text_encoder(state, path, tokenizer, clap_checkpoint, int(text_batch_size))
        if hasattr(text_encoder, "to"):
            text_encoder = text_encoder.to(device)
        self.text_encoder = text_encoder

    # --- hooks for the models built on this one (lasskit.models.zoo) ---------------------------

    def default_checkpoint(self) -> Path:
        """The released checkpoint, from the cache (downloaded on first use)."""
        from lasskit import weights

        return weights.fetch("dcase2024-baseline")

    def build_network(self, channels: int, separator: dict | None = None):
        """A fresh separator of width ``channels`` (``separator``: the checkpoint's tensors, when loading)."""
        from lasskit.models.resunet import ResUNet30

        return ResUNet30(channels=channels)

    def checkpoint_fix(self) -> str:
        """The end of a line refusing a checkpoint: which file to give instead."""
        return BASELINE_FIX

    def load_separator(self, network, separator: dict, source: str) -> None:
        """Load the checkpoint's separator tensors strictly (a missing or unexpected key names it); a
        checkpoint of another model of the family (:data:`FAMILY`) is one line naming that model."""
        from lasskit.models.resunet import load_network_state

        owner = identify_separator(separator)
        if owner is not None and owner != self.name and self.name in FAMILY.values():
            raise WorkError(f"{source}: this is a {owner} checkpoint, not {self.name}; "
                            f"use --model {owner}, or {self.name}'s own checkpoint")
        load_network_state(network, separator, source=source, fix=self.checkpoint_fix())

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

        By default every input goes through the network whole (the organizers' single pass);
        with ``chunk_seconds`` set, inputs up to it go through whole and longer ones in windows
        (:func:`chunk_spans`). Inputs shorter than one STFT window (1024 samples) are zero-padded
        to it and cropped back.
        """
        import torch
        import torch.nn.functional as F

        batch, samples = mixtures.shape
        from lasskit.models.resunet import N_FFT

        n_fft = getattr(getattr(self.network, "base", None), "n_fft", N_FFT)  # 2048 for the 32 kHz networks
        if samples == 0:
            return mixtures.clone()
        if samples < n_fft:
            padded = F.pad(mixtures, (0, n_fft - samples))
            return self.separate_embedded(padded, conditions)[:, :samples]
        with torch.inference_mode():
            if self.chunk_seconds is None:
                return self.network(mixtures[:, None], conditions)[:, 0]
            rate = getattr(self, "network_rate", self.sample_rate)  # the zoo's 32 kHz models run inside at 32 kHz
            window = int(round(self.chunk_seconds * rate))
            context = int(round(self.context_seconds * rate))
            spans = chunk_spans(samples, window, context)
            if len(spans) == 1:
                return self.network(mixtures[:, None], conditions)[:, 0]
            out = torch.empty_like(mixtures)
            for start, end, lo, hi in spans:
                estimate = self.network(mixtures[:, None, lo:hi], conditions)[:, 0]
                out[:, start:end] = estimate[:, start - lo:end - lo]
            return out

    # --- training (lasskit.training; see lasskit.models.base.TrainableModel) -------------------

    @classmethod
    def for_training(cls, init: str | None = None, **options: Any) -> "DCASE2024Baseline":
        """Fine-tune from ``init`` (a checkpoint with ``ss_model.*``), or a fresh ResUNet30 when None."""
        if init is None:
            options.setdefault("random_init", True)
        return cls(checkpoint=init, **options)

    def trainable_network(self):
        """The ResUNet30 (the CLAP text tower is frozen)."""
        return self.network

    def embed_queries(self, queries: list[str]):
        """Frozen CLAP text embeddings, (len(queries), 512) float32 on the CPU (cached per string)."""
        import torch

        with torch.inference_mode():
            rows = self.text_encoder.embed(list(queries)).to("cpu", torch.float32)
        return rows.clone()  # a normal tensor (inference tensors cannot be saved for backward)

    def forward_train(self, mixtures, conditions):
        """(batch, samples) mixtures and (batch, 512) embeddings -> (batch, samples), with gradients."""
        return self.network(mixtures[:, None], conditions)[:, 0]

    def frozen_state(self) -> dict:
        """The CLAP text tower as ``query_encoder.model.text_branch.*`` and ``...text_projection.*``."""
        roberta = getattr(self.text_encoder, "roberta", None)
        projection = getattr(self.text_encoder, "projection", None)
        if roberta is None or projection is None:
            return {}
        state = {f"query_encoder.model.text_branch.{k}": v for k, v in roberta.state_dict().items()}
        state.update({f"query_encoder.model.text_projection.{k}": v for k, v in projection.state_dict().items()})
        return {k: v.detach().to("cpu") for k, v in state.items()}
