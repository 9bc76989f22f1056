"""The model a separation run uses: checking the run's options, building (or accepting) the model,
its output name and label, and its settings (everything that changes an output's bytes, recorded
in provenance.json). Shared by every loop that separates files."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lasskit import SAMPLE_RATE, __version__
from lasskit.errors import UsageError
from lasskit.separation.chunking import MIN_WINDOW_SECONDS
from lasskit.separation.engine import _model_label
from lasskit.separation.outputs import _json_safe


MAX_CHUNK_OVERLAP = 0.9
"""The largest ``--chunk-overlap``: each window adds a tenth of its length (10 model calls per window length)."""


def check_run_options(batch_size: int, chunk_seconds: float | None, chunk_overlap: float, jobs: int | None) -> None:
    """The run's options, checked before any work (a UsageError naming the option)."""
    if batch_size < 1:
        raise UsageError(f"--batch-size {batch_size}: must be at least 1")
    if not 0.0 <= chunk_overlap <= MAX_CHUNK_OVERLAP:  # 0.999 would make 1000 windows where 1 does
        raise UsageError(f"--chunk-overlap {chunk_overlap}: must be from 0 to {MAX_CHUNK_OVERLAP} (more makes over "
                         f"{1 / (1 - MAX_CHUNK_OVERLAP):.0f} windows per second of audio)")
    if chunk_seconds is not None and not (math.isfinite(chunk_seconds) and chunk_seconds >= MIN_WINDOW_SECONDS):
        raise UsageError(f"--chunk-seconds {chunk_seconds:g}: must be at least {MIN_WINDOW_SECONDS:g} s "
                         "(a shorter window gives the model a few samples per call)")
    if jobs is not None and jobs < 0:
        raise UsageError(f"--jobs {jobs}: must be 0 (decode in the main thread) or more")


@dataclass
class RunModel:
    """A built model, ready on its device: ``name`` (the output folder under ``exp/``), ``label``
    (for messages: the model's own name and class, whatever folder ``--name`` chose), the
    ``checkpoint`` it was built from, its ``options``, the run's ``chunk_seconds`` (the user's,
    else the model's ``max_seconds``) and ``model_name`` (the registered or class name)."""

    model: Any
    name: str
    label: str
    checkpoint: Any
    options: dict
    chunk_seconds: float | None
    model_name: str = ""

    @property
    def needs_reference(self) -> bool:
        return bool(getattr(self.model, "needs_reference", False))

    def settings(self, chunk_overlap: float) -> dict:
        """What changes an output's bytes (what the ledger records); hashes the checkpoint, so it
        is called once the run's checks have passed."""
        model_obj = self.model
        return {
            "model": f"{type(model_obj).__module__}:{type(model_obj).__qualname__}",
            "checkpoint_sha256": checkpoint_sha256(model_obj, self.checkpoint),
            "options": _json_safe(self.options),
            **option_files(self.options),
            "model_sample_rate": int(getattr(model_obj, "sample_rate", SAMPLE_RATE) or SAMPLE_RATE),
            "chunk_seconds": self.chunk_seconds,
            "chunk_overlap": chunk_overlap if self.chunk_seconds else None,
            "lasskit_version": __version__,
        }


def option_files(options: dict[str, Any] | None) -> dict:
    """``{"option_files": {key: sha256}}`` for every ``-o``/``--tokenizer`` value naming a file or a
    folder (a CLAP file, a tokenizer folder, an ensemble member's checkpoint): an output records
    what those files held, so one replaced in place at the same path remakes the outputs instead
    of keeping stale ones (options are otherwise recorded as text). A folder's digest covers its
    files' names and contents; empty when no option names a path (older records stay equal)."""
    import hashlib

    from lasskit.weights import sha256_cached

    found = {}
    for key, value in sorted((options or {}).items()):
        if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
            continue
        path = Path(value).expanduser()
        try:
            if path.is_file():
                found[key] = sha256_cached(path)
            elif path.is_dir():
                files = sorted(p for p in path.rglob("*") if p.is_file())
                if len(files) > 1000:  # not a model's folder (a tokenizer has a few files): not read through
                    found[key] = f"folder of {len(files)} files, not hashed"
                    continue
                digest = hashlib.sha256()
                for item in files:
                    digest.update(os.fsencode(item.relative_to(path)) + b"\0" + sha256_cached(item).encode() + b"\n")
                found[key] = digest.hexdigest()
        except OSError:
            continue  # the model reports an unreadable file itself
    return {"option_files": found} if found else {}


def checkpoint_sha256(model_obj, checkpoint_used) -> str | None:
    """The model's own ``checkpoint_sha256``, else the SHA-256 of its checkpoint file (cached)."""
    value = getattr(model_obj, "checkpoint_sha256", None)
    if value:
        return str(value)
    if checkpoint_used is None or not Path(checkpoint_used).is_file():
        return None
    from lasskit.weights import sha256_cached

    return sha256_cached(checkpoint_used)


def build_model(model: Any, *, device: str, checkpoint: str | os.PathLike | None = None,
                options: dict[str, Any] | None = None, name: str | None = None,
                chunk_seconds: float | None = None) -> RunModel:
    """Build ``model`` (a registered name, ``module:Class``, ``path/to/file.py:Class``, or an
    already-built object) on the resolved ``device``, in eval mode."""
    import torch

    from lasskit.models import registry

    options = dict(options or {})
    if checkpoint is not None and Path(checkpoint).expanduser().exists():
        checkpoint = Path(checkpoint).expanduser().resolve()
    if isinstance(model, str):
        cls, default = registry.resolve(model)
        model_obj = registry.build(cls, model, None if checkpoint is None else str(checkpoint), device, options)
    else:
        model_obj = model
        registry.check_model_class(type(model_obj), type(model_obj).__name__)
        default = registry.default_name(type(model_obj))
        options = options or dict(getattr(model_obj, "options", {}) or {})
    out_name = registry.sanitize_name(name) if name else default
    if name and out_name != name:
        raise UsageError(f"--name {name!r}: use only lower-case letters, digits, '.', '_' and '-' (e.g. {out_name!r})")
    max_seconds = getattr(model_obj, "max_seconds", None)
    if chunk_seconds is None:
        chunk_seconds = max_seconds
    elif max_seconds and chunk_seconds > max_seconds:
        raise UsageError(f"--chunk-seconds {chunk_seconds}: model {out_name} takes at most {max_seconds} s per call")
    if isinstance(model_obj, torch.nn.Module):
        model_obj.eval()
    if str(device).startswith("cpu"):
        from lasskit.models.memory import keep_freed_memory

        keep_freed_memory()
    model_name = model if isinstance(model, str) and ":" not in model and "/" not in model else default
    return RunModel(model_obj, out_name, _model_label(model_obj, model_name), getattr(model_obj, "checkpoint", None),
                    options, chunk_seconds, model_name)
