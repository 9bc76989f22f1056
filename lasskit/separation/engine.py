"""Running a model on tensors: device choice, resampling, chunking, and the checks on every estimate."""

from __future__ import annotations

from typing import Any

from lasskit import SAMPLE_RATE
from lasskit.errors import LasskitError, UsageError, WorkError
from lasskit.separation.chunking import (
    DEFAULT_CHUNK_OVERLAP,
    chunk_starts,
    chunk_weights,
)

DEFAULT_BATCH_SIZE = 4


DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``; ``cuda[:N]`` must be available."""
    import torch

    device = (device or "auto").strip().lower()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise UsageError(f"--device {device}: unknown device; use auto, cpu or cuda (or cuda:N)")
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"--device {device}: torch sees no CUDA GPU here; use --device cpu or auto")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise UsageError(f"--device {device}: only {torch.cuda.device_count()} GPU(s) visible")
    elif parsed.type != "cpu" and device not in ("mps",):
        raise UsageError(f"--device {device}: use auto, cpu or cuda (or cuda:N)")
    return device


def _model_label(model: Any, name: str) -> str:
    return f"{name} ({type(model).__module__}.{type(model).__qualname__})"


def _run_model(model, label: str, names: list[str], mixtures, queries: list[str], references):
    """One call of ``model.separate`` with the output checks (shape, type, finiteness)."""
    import torch

    inputs = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    try:
        if references is not None:
            out = model.separate(mixtures, queries, references=references)
        else:
            out = model.separate(mixtures, queries)
    except LasskitError:
        raise
    except Exception as exc:
        text = str(exc).strip().splitlines()
        hint = "; lower --batch-size or --chunk-seconds" if "out of memory" in str(exc).lower() else ""
        raise WorkError(f"model {label} failed on {inputs} ({type(exc).__name__}: "
                        f"{text[-1] if text else ''}){hint}") from exc
    if not isinstance(out, torch.Tensor):
        raise WorkError(f"model {label} returned {type(out).__name__} for {inputs}; "
                        "separate() must return a torch.Tensor[batch, time]")
    if tuple(out.shape) != tuple(mixtures.shape):
        raise WorkError(f"model {label} returned shape {tuple(out.shape)} for {inputs} "
                        f"(expected {tuple(mixtures.shape)}: one signal per mixture, same length)")
    if out.is_complex() or not out.is_floating_point():
        raise WorkError(f"model {label} returned {out.dtype} samples for {inputs}; return real floats")
    # fast: a float64 row sum of float32 samples is finite exactly when they all are; a sum that
    # is not (or float64 samples, which may overflow it) is checked sample by sample
    finite = torch.isfinite(out.sum(dim=-1, dtype=torch.float64))
    if not bool(finite.all()):
        finite = torch.isfinite(out).all(dim=-1)
    if not bool(finite.all()):
        bad = [names[i] for i in torch.nonzero(~finite).flatten().tolist() if i < len(names)] or names
        raise WorkError(f"model {label} returned NaN or infinite samples for {', '.join(bad[:5])}; "
                        "fix the model (or its checkpoint) before separating")
    return out


def separate_tensor(model, mixtures, queries: list[str], *, references=None, names: list[str] | None = None,
                    label: str | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                    chunk_seconds: float | None = None, chunk_overlap: float = DEFAULT_CHUNK_OVERLAP):
    """Separate a 16 kHz ``Tensor[batch, time]`` with ``model``: resampling, chunking and checks.

    Returns a float32 ``Tensor[batch, time]`` at 16 kHz on the mixtures' device. Call it under
    ``torch.inference_mode()``. ``names`` label the rows in error messages.
    """
    import torch

    names = names or [f"row {i}" for i in range(mixtures.shape[0])]
    label = label or type(model).__name__
    rate = int(getattr(model, "sample_rate", SAMPLE_RATE) or SAMPLE_RATE)
    length = mixtures.shape[-1]
    x, ref = mixtures, references
    if rate != SAMPLE_RATE:
        import torchaudio.functional as taf

        x = taf.resample(x, SAMPLE_RATE, rate)
        if ref is not None:
            ref = taf.resample(ref, SAMPLE_RATE, rate)
    n = x.shape[-1]
    chunk = int(round(chunk_seconds * rate)) if chunk_seconds else 0
    if not chunk or n <= chunk:
        y = _run_model(model, label, names, x, list(queries), ref)
    else:
        starts = chunk_starts(n, chunk, chunk_overlap)
        windows = len(starts)
        batch = x.shape[0]
        pieces = torch.stack([x[:, s:s + chunk] for s in starts], dim=1).reshape(batch * windows, chunk)
        ref_pieces = None
        if ref is not None:
            ref_pieces = torch.stack([ref[:, s:s + chunk] for s in starts], dim=1).reshape(batch * windows, chunk)
        piece_queries = [q for q in queries for _ in range(windows)]
        piece_names = [f"{nm} (chunk {k + 1}/{windows})" for nm in names for k in range(windows)]
        step = max(1, batch_size)
        outs = []
        for i in range(0, batch * windows, step):
            sl = slice(i, i + step)
            outs.append(_run_model(model, label, piece_names[sl], pieces[sl], piece_queries[sl],
                                   None if ref_pieces is None else ref_pieces[sl]))
        est = torch.cat(outs).reshape(batch, windows, chunk).to(torch.float64)
        weights = torch.from_numpy(chunk_weights(starts, chunk)).to(est.device)
        total = torch.zeros(batch, n, dtype=torch.float64, device=est.device)
        weight_sum = torch.zeros(n, dtype=torch.float64, device=est.device)
        for k, s in enumerate(starts):
            total[:, s:s + chunk] += weights[k] * est[:, k]
            weight_sum[s:s + chunk] += weights[k]
        y = total / weight_sum
    y = y.to(torch.float32)
    if rate != SAMPLE_RATE:
        import torchaudio.functional as taf

        y = taf.resample(y, rate, SAMPLE_RATE)
        if y.shape[-1] < length:
            y = torch.nn.functional.pad(y, (0, length - y.shape[-1]))
        y = y[..., :length]
    return y
