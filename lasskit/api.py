"""The public Python API for notebooks and scripts: load a model once, separate signals in memory.

::

    import lasskit
    model = lasskit.load_model("dcase2024-baseline", checkpoint="audiosep_16k,baseline,step=200000.ckpt",
                               device="cuda")
    dog = model.separate(wave, 44100, "a dog barking")               # same type and shape as wave
    dog, rain = model.separate(wave, 44100, ["a dog barking", "rain"])  # stacked over queries

``wave`` is a numpy array or a torch tensor of floats, ``(samples,)`` or ``(channels, samples)``,
at any rate (integer PCM and ``(samples, channels)`` arrays, as soundfile reads them, are refused
with the conversion to make); the estimate comes back as the same type (a tensor on the input's device, in its floating
dtype), shape and rate. A list or tuple of floats is read as a numpy array and its estimate is a
``float32`` numpy array (the rule: numpy in, numpy out; torch in, torch out; anything else, numpy).
Refused with one :class:`~lasskit.errors.UsageError` each, never separated as they are: integer,
boolean, complex or non-number samples, floats that look like integer PCM (a peak over
:data:`PCM_LIKE_PEAK`: ``int16`` samples cast to float without dividing by 32768), NaN or
infinite samples, no samples or no channels, more than 2 dimensions, a ragged list, a masked
array (its mask would be ignored), a set of queries (no order for the estimates), a
``mono``/``*_seconds`` that is not a bool/number (``"no"``, ``"5"``, ``True``), and a
``sample_rate`` that is not a whole number of Hz from :data:`MIN_RATE` to :data:`MAX_RATE`
(``True``, ``44100.5``, ``"16000"``); an integral float rate (``44100.0``, as some readers give)
is taken as the integer. Channels are separated independently (``mono=True``: their average,
giving ``(samples,)``). It runs the long-audio engine of ``lasskit separate FILE``
(:mod:`lasskit.separation.longaudio`): a signal no longer than the model's window in one pass,
longer ones in windows with context and a cross-fade; so ``model.separate`` on a decoded file
gives the samples ``lasskit separate`` writes for it. This module is the orchestration layer (like
``demo``): ``lasskit.load_model``/``lasskit.Separator`` are loaded from it only on first use.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np

from lasskit.errors import UsageError

__all__ = ["Separator", "load_model"]

MIN_RATE, MAX_RATE = 1000, 768_000
"""The sample rates ``separate`` takes (Hz): below, no sound the models know; above, no audio format."""
PCM_LIKE_PEAK = 64.0
"""A float signal peaking above this is integer PCM cast to float (``int16`` peaks at 32767), not audio in [-1, 1]."""


class Separator:
    """A loaded model and how to run it on signals (see the module doc). Attributes: ``model``
    (the model object), ``name``, ``device``, ``sample_rate`` (the model's), ``checkpoint_sha256``."""

    def __init__(self, run_model, device: str, batch_size: int = 4):
        from lasskit.separation.model import checkpoint_sha256

        self._run = run_model
        self.model = run_model.model
        self.name = run_model.name
        self.device = device
        self.batch_size = int(batch_size)
        self.sample_rate = int(getattr(self.model, "sample_rate", 16000) or 16000)
        self.checkpoint = run_model.checkpoint
        self.checkpoint_sha256 = checkpoint_sha256(self.model, run_model.checkpoint)

    def __repr__(self) -> str:
        return f"Separator({self.name!r}, device={self.device!r}, sample_rate={self.sample_rate})"

    def separate(self, wave: Any, sample_rate: int, query: str | list[str], *, mono: bool = False,
                 window_seconds: float | None = None, context_seconds: float | None = None,
                 crossfade_seconds: float | None = None):
        """The estimate of ``query`` in ``wave`` (a list of queries: one estimate each, stacked on a
        new first axis), same type as ``wave``, at ``sample_rate``."""
        from lasskit.separation.longaudio import ArraySource, StreamStats, Windows, model_caller, separate_stream

        single = isinstance(query, str)
        if isinstance(query, (set, frozenset, dict)):  # no order the caller can rely on, or keys taken for queries
            raise UsageError(f"query: a {type(query).__name__} has no order the estimates could follow; give a list "
                             "or tuple of descriptions (the estimates come back in its order)")
        queries = [query] if single else list(query) if isinstance(query, Iterable) else []
        if not queries or any(not isinstance(q, str) or not q.strip() for q in queries):
            raise UsageError("query: give a non-empty description of the sound (e.g. 'a dog barking') or a list of them")
        if not isinstance(mono, (bool, np.bool_)):
            raise UsageError(f"mono {mono!r}: give True (the channels' average) or False")
        for option, value in (("window_seconds", window_seconds), ("context_seconds", context_seconds),
                              ("crossfade_seconds", crossfade_seconds)):
            number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
            if value is not None and not number:
                raise UsageError(f"{option} {value!r}: give a number of seconds (or None for the model's default)")
        sample_rate = _rate(sample_rate)
        array, restore = _to_numpy(wave)
        if array.ndim not in (1, 2) or array.shape[-1] == 0 or array.shape[0] == 0:
            raise UsageError(f"wave of shape {tuple(array.shape)}: give (samples,) or (channels, samples) with samples")
        if array.ndim == 2 and array.shape[0] > array.shape[1]:  # soundfile.read's layout, not ours
            raise UsageError(f"wave of shape {tuple(array.shape)} has more channels than samples: it looks like "
                             "(samples, channels), as soundfile.read gives; pass wave.T")
        if not np.isfinite(array).all():
            raise UsageError("wave holds NaN or infinite samples; clean the signal first")
        peak = float(np.abs(array).max())
        if peak > PCM_LIKE_PEAK:
            raise UsageError(f"wave peaks at {peak:g}: floats in [-1, 1] are expected, this looks like integer PCM cast "
                             "to float; divide by 32768 (16-bit) or 2147483648 (32-bit) first")
        source = ArraySource(array, int(sample_rate), name="wave", mono=mono)
        geometry = Windows.for_model(self.model, self.sample_rate, window_seconds, context_seconds, crossfade_seconds)
        stats = StreamStats()
        run = model_caller(self.model, queries, source.channels, self.device, self._run.label, self.batch_size,
                           "the wave", stats)
        blocks = list(separate_stream(source, run, len(queries) * source.channels, self.sample_rate, geometry, stats))
        out = np.concatenate(blocks).T  # (queries * channels, samples)
        out = out.reshape(len(queries), source.channels, -1)
        if array.ndim == 1 or mono:
            out = out[:, 0]
        result = out[0] if single else out
        return restore(np.ascontiguousarray(result))


def _rate(sample_rate: Any) -> int:
    """``sample_rate`` as an int, or a UsageError saying what a rate is."""
    rate = None
    if isinstance(sample_rate, (int, np.integer)) and not isinstance(sample_rate, (bool, np.bool_)):
        rate = int(sample_rate)
    elif isinstance(sample_rate, (float, np.floating)) and float(sample_rate).is_integer():
        rate = int(sample_rate)
    if rate is None or not MIN_RATE <= rate <= MAX_RATE:
        raise UsageError(f"sample_rate {sample_rate!r}: give the signal's rate in Hz, a whole number from {MIN_RATE} "
                         f"to {MAX_RATE} (e.g. 44100)")
    return rate


def _to_numpy(wave: Any):
    """``(float32 numpy array, function giving the result back as wave's type)``."""
    if isinstance(wave, np.ma.MaskedArray):  # the mask would be ignored: the hidden samples separated as they are
        raise UsageError("wave: a masked array; fill the masked samples first (wave.filled(0.0)) or pass wave.data "
                         "on purpose")
    if isinstance(wave, np.ndarray):
        _refuse_integers(wave.dtype.kind in "iub", str(wave.dtype), wave.dtype.itemsize)
        _refuse_non_real(wave.dtype.kind != "f", str(wave.dtype))
        dtype = wave.dtype if wave.dtype.kind == "f" else np.dtype(np.float32)
        return wave.astype(np.float32, copy=False), lambda y: y.astype(dtype, copy=False)
    module = type(wave).__module__
    if module.startswith("torch"):
        import torch

        if isinstance(wave, torch.Tensor):
            _refuse_integers(not wave.is_floating_point() and not wave.is_complex(), str(wave.dtype).split(".")[-1],
                             wave.element_size())
            _refuse_non_real(wave.is_complex(), str(wave.dtype).split(".")[-1])
            device, dtype = wave.device, wave.dtype if wave.is_floating_point() else torch.float32
            array = wave.detach().to("cpu", torch.float32).numpy()
            return array, lambda y: torch.from_numpy(y).to(device=device, dtype=dtype)
    if isinstance(wave, (list, tuple)):
        try:
            array = np.asarray(wave)
        except ValueError:  # rows of different lengths
            raise UsageError("wave: a list whose rows differ in length; give (samples,) or (channels, samples) "
                             "with every channel as long") from None
        _refuse_integers(array.dtype.kind in "iub", str(array.dtype), array.dtype.itemsize)
        _refuse_non_real(array.dtype.kind != "f", str(array.dtype))
        return array.astype(np.float32), lambda y: y.astype(np.float32, copy=False)
    raise UsageError(f"wave: a numpy array, a torch tensor or a list of floats, not {type(wave).__name__}")


def _refuse_non_real(bad: bool, dtype: str) -> None:
    """Complex, text or object samples: casting them to float would drop the imaginary part or fail later."""
    if bad:
        raise UsageError(f"wave of dtype {dtype}: give real floating samples in [-1, 1] (e.g. np.float32); "
                         "for a complex signal, pass its real part on purpose (x.real)")


def _refuse_integers(integer: bool, dtype: str, itemsize: int) -> None:
    """Integer samples (PCM as read with dtype='int16') are not floats in [-1, 1]: separating them
    as they are would feed the model 2^15 times the signal; say how to convert instead of guessing."""
    if integer:
        scale = 2 ** (8 * itemsize - 1)
        how = (f"(x - {scale}) / {scale}" if dtype.startswith("uint") else f"x / {scale}") + f" for {dtype} PCM, or "
        raise UsageError(f"wave of dtype {dtype}: give floating samples in [-1, 1] (e.g. "
                         f"{how if dtype != 'bool' else ''}soundfile.read(path, dtype='float32'))")


def load_model(name: str = "dcase2024-baseline", checkpoint: str | os.PathLike | None = None, device: str = "auto",
               batch_size: int = 4, **options: Any) -> Separator:
    """Load a model by registered name (``lasskit models``), ``module:Class`` or ``path.py:Class``,
    with its weights (``checkpoint``; the baseline downloads the released ones when None) and
    model options (e.g. ``tokenizer=DIR``), on ``device`` (``auto``: cuda when available)."""
    from lasskit.separation.files import build_model

    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, (bool, np.bool_)) or batch_size < 1:
        raise UsageError(f"batch_size {batch_size!r}: must be a whole number, at least 1")
    if not isinstance(name, str):
        raise UsageError(f"name {name!r}: give a registered model name (see `lasskit models`), module:Class or "
                         "path.py:Class, as text")
    if type(device).__module__.startswith("torch") and type(device).__name__ == "device":
        device = str(device)  # torch.device("cuda", 1) -> "cuda:1"
    if device is not None and not isinstance(device, str):
        raise UsageError(f"device {device!r}: give 'auto', 'cpu', 'cuda' or 'cuda:N' (a torch.device works too)")
    run_model, device = build_model(name, checkpoint, device, options)
    return Separator(run_model, device, batch_size)
