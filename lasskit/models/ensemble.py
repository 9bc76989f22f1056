"""``ensemble``: the weighted average of several registered models' 16 kHz estimates.

``lasskit separate --model ensemble -o members=audiosep-dp-16k,dcase2024-baseline [-o weights=2,1]``
runs every member on the same 16 kHz mixtures (each resamples to its own rate, as alone) and
returns ``sum_i w_i * estimate_i / sum_i w_i`` (default: equal weights; the DCASE 2024 rules allow
ensemble systems). Each member keeps its own options: ``-o m<i>_<option>=<value>`` goes to member
``i`` only (1-based), e.g. ``-o m1_checkpoint=dp16.ckpt -o m2_chunk_seconds=10``.

Provenance: ``checkpoint_sha256`` is the SHA-256 of a JSON list of the members (registered name,
class, checkpoint SHA-256, options, weight), so outputs of two ensembles that differ in any member
never pass for each other; ``members_record`` holds that list.

Batching: rows of different lengths share a batch only when every member allows it; a member
that needs the reference (``oracle``) gets it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

from lasskit.errors import LasskitError, UsageError
from lasskit.models.base import SeparationModel

_MEMBER_OPTION = re.compile(r"^m([1-9]\d*)_(\w+)$")  # m01_x would silently replace m1_x


def parse_weights(text: Any, count: int) -> list[float]:
    """``"2,1"`` (or one number, or a list) -> ``count`` non-negative floats with a positive sum."""
    if text is None:
        return [1.0] * count
    parts = text if isinstance(text, (list, tuple)) else str(text).split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise UsageError(f"ensemble: weights={text!r}: give {count} numbers separated by commas, e.g. weights=1,1") from None
    if len(values) != count:
        raise UsageError(f"ensemble: weights={text!r} has {len(values)} value(s) for {count} member(s)")
    if any(not 0 <= v < math.inf for v in values) or not any(v > 0 for v in values):
        raise UsageError(f"ensemble: weights={text!r}: every weight must be a finite number >= 0, and one > 0")
    return values


def weight_fractions(weights: list[float]) -> list[float]:
    """``w_i / sum(w)`` computed without overflow or underflow (weights scaled by their largest first:
    ``1e308,1e308`` is ``0.5,0.5``, ``1e-320,0`` is ``1,0``), so the mean never loses the estimates."""
    top = max(weights)
    scaled = [w / top for w in weights]
    total = sum(scaled)
    return [s / total for s in scaled]


def _checkpoint_sha256(model: Any) -> str | None:
    """A member's ``checkpoint_sha256``, else the SHA-256 of its checkpoint file; None without one."""
    from pathlib import Path

    from lasskit.weights import sha256_cached

    value = getattr(model, "checkpoint_sha256", None)
    if value:
        return str(value)
    path = getattr(model, "checkpoint", None)
    return sha256_cached(path) if path and Path(path).is_file() else None


def member_error(exc: LasskitError, index: int, spec: str) -> LasskitError:
    """``exc`` of member ``index`` as the ensemble's user must act on it: the options it names are
    the member's (``--checkpoint PATH`` -> ``-o m1_checkpoint=PATH``, ``-o negative`` -> ``-o m1_negative``)."""
    text = str(exc)
    text = re.sub(r"(?<![\w-])--checkpoint ", f"-o m{index}_checkpoint=", text)
    text = re.sub(r"(?<![\w-])--checkpoint\b", f"-o m{index}_checkpoint", text)
    text = text[len(spec) + 2:] if text.startswith(f"{spec}: ") else text
    text = re.sub(r"(?<![\w-])(?:-o|--option) (?!m\d+_)(\w+)", rf"-o m{index}_\1", text)
    if "ensemble member" not in text:
        text = f"ensemble member {index} ({spec}): {text}"
    return type(exc)(text)


class Ensemble(SeparationModel):
    """Weighted average of member models' estimates (see the module docstring)."""

    name = "ensemble"
    description = "weighted average of several models' 16 kHz estimates (-o members=a,b [-o weights=...])"
    sample_rate = 16000

    def __init__(self, checkpoint: str | None = None, device: str = "cpu", members: str | None = None,
                 weights: Any = None, **options: Any) -> None:
        from lasskit.models import registry

        if checkpoint is not None:
            raise UsageError("ensemble takes no --checkpoint; give each member its own: -o m1_checkpoint=PATH")
        names = [n.strip() for n in str(members or "").split(",") if n.strip()]
        if len(names) < 2:
            raise UsageError("ensemble needs at least two members: -o members=audiosep-dp-16k,dcase2024-baseline")
        if "ensemble" in names:
            raise UsageError("ensemble: a member cannot be an ensemble")
        per_member: list[dict[str, Any]] = [{} for _ in names]
        for key, value in options.items():
            match = _MEMBER_OPTION.match(key)
            if not match or not 1 <= int(match.group(1)) <= len(names):
                raise UsageError(f"ensemble: unknown option {key}; member options are m<i>_<option> with "
                                 f"i from 1 to {len(names)} (e.g. m1_checkpoint=PATH)")
            per_member[int(match.group(1)) - 1][match.group(2)] = value
        self.weights = parse_weights(weights, len(names))
        self.fractions = weight_fractions(self.weights)
        super().__init__(None, device, members=",".join(names), weights=",".join(f"{w:g}" for w in self.weights),
                         **options)
        self.members = []
        record = []
        for i, (spec, opts) in enumerate(zip(names, per_member), start=1):
            cls, _ = registry.resolve(spec)
            opts = dict(opts)
            member_checkpoint = opts.pop("checkpoint", None)
            try:
                member = registry.build(cls, f"{spec} (ensemble member {i})", member_checkpoint, device, opts)
            except LasskitError as exc:
                raise member_error(exc, i, spec) from None
            rate = getattr(member, "sample_rate", self.sample_rate)
            if rate != self.sample_rate:  # it would be handed 16 kHz samples as if they were its rate
                raise UsageError(f"ensemble member {i} ({spec}) takes {rate} Hz audio; an ensemble's members take "
                                 f"{self.sample_rate} Hz (every registered model does): run it alone")
            self.members.append(member)
            record.append({"name": spec, "class": f"{cls.__module__}:{cls.__qualname__}",
                           "checkpoint_sha256": _checkpoint_sha256(member),
                           "options": {k: str(v) for k, v in sorted(opts.items())}, "weight": self.weights[i - 1]})
        self.members_record = record
        self.checkpoint_sha256 = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()
        self.padding_invariant = all(bool(getattr(m, "padding_invariant", False)) for m in self.members)
        self.needs_reference = any(bool(getattr(m, "needs_reference", False)) for m in self.members)
        limits = [m.max_seconds for m in self.members if getattr(m, "max_seconds", None)]
        self.max_seconds = min(limits) if limits else None
        trained = [m.trained_seconds for m in self.members if getattr(m, "trained_seconds", None)]
        self.trained_seconds = min(trained) if trained else None  # the long-audio window fits every member
        sizes = [m.bytes_per_sample for m in self.members if getattr(m, "bytes_per_sample", None)]
        self.bytes_per_sample = max(sizes) if sizes else None
        notes = [getattr(m, "rate_note", None) for m in self.members]
        self.rate_note = "; ".join(n for n in notes if n) or None

    def separate(self, mixtures, queries: list[str], references=None):
        """The weighted mean of the members' estimates, float32, shaped like ``mixtures``."""
        import torch

        total = None
        for member, fraction in zip(self.members, self.fractions):
            if fraction == 0:
                continue
            if getattr(member, "needs_reference", False):
                estimate = member.separate(mixtures, queries, references=references)
            else:
                estimate = member.separate(mixtures, queries)
            term = estimate.to(torch.float64) * fraction
            total = term if total is None else total + term
        return total.to(torch.float32)

    def num_parameters(self) -> int | None:
        counts = [m.num_parameters() for m in self.members if hasattr(m, "num_parameters")]
        return sum(c for c in counts if c is not None) if counts else None
