"""``lasskit average``: the element-wise mean of several checkpoints' weights (checkpoint averaging).

Averaging the last few checkpoints of a run (``train --keep-checkpoints N`` keeps them) is a
cheap, standard gain. Every checkpoint must hold the same tensor names and shapes; floating
tensors are averaged in float64 and stored in their own dtype; integer tensors (batch-norm
``num_batches_tracked``, ``position_ids``) must agree, else the last checkpoint's value is kept
and counted. The output is a Lightning-style checkpoint (``state_dict``, ``global_step`` of the
last input) that ``separate --checkpoint`` and ``train --init`` read; it holds no optimizer state
(an average is not a point any run passed through), and its ``lasskit.averaged_from`` lists the
inputs with their steps and SHA-256 digests. Written atomically; the inputs are only read.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from lasskit.errors import UsageError


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _load(path: Path) -> dict:
    import pickle

    import torch

    if not path.is_file():
        raise UsageError(f"{path}: no such checkpoint file; give checkpoints written by lasskit train")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    except (RuntimeError, EOFError, ValueError, pickle.UnpicklingError, KeyError, AttributeError, ImportError,
            IndexError, TypeError) as exc:
        raise UsageError(f"{path}: not a readable checkpoint ({type(exc).__name__}); give checkpoints written by "
                         "lasskit train") from None
    state = ckpt.get("state_dict") if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UsageError(f"{path}: holds no state_dict of tensors; give checkpoints written by lasskit train")
    return ckpt


def average_checkpoints(paths: list[str], output: str, *, overwrite: bool = False) -> dict:
    """Average ``paths`` into ``output``; returns what was done (inputs, steps, tensors, disagreements)."""
    import torch

    from lasskit.atomic import write_bytes

    files = [Path(p).expanduser() for p in paths]
    if len(files) < 2:
        raise UsageError("lasskit average: give at least two checkpoints (e.g. exp/train/NAME/step-*.ckpt)")
    if len({f.resolve() for f in files if f.exists()}) < len([f for f in files if f.exists()]):
        raise UsageError("lasskit average: a checkpoint is named twice; give each once")
    out = Path(output).expanduser()
    if out.exists() and not overwrite:
        raise UsageError(f"{out}: exists; pass --overwrite to replace it, or another -o")
    if out.resolve() in {f.resolve() for f in files if f.exists()}:
        raise UsageError(f"{out}: is one of the inputs; write the average to another file")
    first = _load(files[0])
    keys = list(first["state_dict"])
    shapes = {k: (tuple(v.shape), v.dtype) for k, v in first["state_dict"].items()}
    for f in files[1:]:  # check every input before averaging anything
        state = _load(f)["state_dict"]
        if set(state) != set(keys):
            extra, missing = sorted(set(state) - set(keys)), sorted(set(keys) - set(state))
            raise UsageError(f"{f}: other tensors than {files[0]} ({len(missing)} missing, {len(extra)} extra, e.g. "
                             f"{(missing or extra)[0]}); average checkpoints of one model")
        for k, v in state.items():
            if (tuple(v.shape), v.dtype) != shapes[k]:
                raise UsageError(f"{f}: {k} is {tuple(v.shape)} {v.dtype}, {files[0]} has {shapes[k][0]} "
                                 f"{shapes[k][1]}; average checkpoints of one model")
    sums: dict = {}
    integers_differ = 0
    last_ckpt = None
    for f in files:
        ckpt = _load(f)
        last_ckpt = ckpt
        for k, v in ckpt["state_dict"].items():
            if v.is_floating_point():
                sums[k] = v.to(torch.float64) if k not in sums else sums[k] + v.to(torch.float64)
            else:
                if k in sums and not torch.equal(sums[k], v):
                    integers_differ += 1
                sums[k] = v.clone()
    state = {}
    for k in keys:
        v = sums[k]
        state[k] = (v / len(files)).to(shapes[k][1]) if v.is_floating_point() else v
    inputs = [{"path": str(f), "global_step": int(_load(f).get("global_step", -1)), "sha256": _sha256(f)}
              for f in files]
    record = dict(last_ckpt.get("lasskit") or {})
    record["averaged_from"] = inputs
    result = {"state_dict": state, "global_step": int(last_ckpt.get("global_step", 0)),
              "epoch": int(last_ckpt.get("epoch", 0)), "lasskit": record}
    buffer = io.BytesIO()
    torch.save(result, buffer)
    write_bytes(out, buffer.getvalue())
    return {"output": str(out), "inputs": inputs, "tensors": len(state),
            "averaged": sum(1 for k in keys if shapes[k][1].is_floating_point),
            "integer_tensors_differing": integers_differ}
