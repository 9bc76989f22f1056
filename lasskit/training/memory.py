"""How much device memory a training step takes, which parameters a step never reaches, and which
batch size fits after an out-of-memory error.

Estimate (float32, per device): ``weights + grads + AdamW(amsgrad) states = 5 x trainable bytes``
(weight, gradient, two moments, the amsgrad maximum) ``+ frozen bytes + activations``, the
activations being the bytes autograd saves for the backward pass, measured on one 1 s row of
the real network (``torch.autograd.graph.saved_tensors_hooks``, each storage counted once) and
scaled linearly by ``segment seconds x batch size``. Mixed precision saves most activations in
16 bits: the float32 figure is an upper bound.
"""

from __future__ import annotations

import torch

from lasskit import SAMPLE_RATE

OPTIMIZER_COPIES = 5
"""Float32 copies per trainable parameter: weight, gradient, AdamW's two moments, amsgrad's maximum."""


def module_bytes(module, trainable: bool | None = None) -> int:
    """Bytes of ``module``'s parameters (only trainable / only frozen ones when asked) and buffers."""
    total = 0
    for p in module.parameters():
        if trainable is None or p.requires_grad == trainable:
            total += p.numel() * p.element_size()
    if trainable is not True:
        total += sum(b.numel() * b.element_size() for b in module.buffers())
    return total


class _Restored:
    """Run probe passes on the real network, then put its state (batch-norm statistics) and grads back."""

    def __init__(self, model) -> None:
        self.network = model.trainable_network()

    def __enter__(self):
        self.state = {k: v.detach().clone() for k, v in self.network.state_dict().items()}
        self.was_training = self.network.training
        self.network.train()
        return self.network

    def __exit__(self, *exc) -> None:
        self.network.load_state_dict(self.state)
        self.network.train(self.was_training)
        for p in self.network.parameters():
            p.grad = None


def _probe_inputs(batch: int, samples: int, condition_size: int, device):
    g = torch.Generator().manual_seed(0)
    mixture = torch.randn(batch, samples, generator=g) * 0.1
    conditions = torch.nn.functional.normalize(torch.randn(batch, condition_size, generator=g), dim=-1)
    return mixture.to(device), conditions.to(device)


def activation_bytes_per_second(model, condition_size: int, seconds: float = 1.0) -> int:
    """Bytes autograd saves for backward for one row of ``seconds`` s (measured where the network is)."""
    seen: set[int] = set()
    total = 0

    def pack(t):
        nonlocal total
        try:
            key = t.untyped_storage().data_ptr()
        except Exception:  # noqa: BLE001 - tensors without storage (rare): count them
            key = id(t)
        if key not in seen:
            seen.add(key)
            total += t.numel() * t.element_size()
        return t

    with _Restored(model) as network:
        device = next(network.parameters()).device
        mixture, conditions = _probe_inputs(1, int(seconds * SAMPLE_RATE), condition_size, device)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = model.forward_train(mixture, conditions)
        del out
    return int(total / seconds)


def unused_parameters(model, condition_size: int) -> list[str]:
    """Names of the trainable network's parameters one forward + backward pass never reaches.

    The network's state (batch-norm statistics) is put back afterwards.
    """
    with _Restored(model) as network:
        device = next(network.parameters()).device
        mixture, conditions = _probe_inputs(2, 4096, condition_size, device)
        model.forward_train(mixture, conditions).abs().mean().backward()
        return [name for name, p in network.named_parameters() if p.requires_grad and p.grad is None]


def estimate(model, frozen_bytes: int, batch_size: int, segment: float, condition_size: int) -> dict:
    """The float32 memory estimate per device (bytes), in parts."""
    network = model.trainable_network()
    trainable = module_bytes(network, trainable=True)
    frozen_net = module_bytes(network, trainable=False)
    per_second = activation_bytes_per_second(model, condition_size)
    activations = int(per_second * segment * batch_size)
    total = OPTIMIZER_COPIES * trainable + frozen_net + frozen_bytes + activations
    return {"batch_size": int(batch_size), "trainable_parameters_bytes": trainable,
            "optimizer_and_gradients_bytes": (OPTIMIZER_COPIES - 1) * trainable,
            "frozen_bytes": frozen_net + frozen_bytes, "activation_bytes_per_row_second": per_second,
            "activation_bytes": activations, "total_bytes": total}


OOM_TEXTS = ("out of memory", "can't allocate memory", "cannot allocate memory", "defaultcpuallocator")
"""How torch words an allocation failure (CUDA; the CPU allocator: "DefaultCPUAllocator: can't allocate memory")."""


def is_out_of_memory(exc: BaseException) -> bool:
    """True for an out-of-memory error on the GPU or the CPU (or a MemoryError), however it was wrapped."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, (MemoryError, getattr(torch, "OutOfMemoryError", MemoryError))):
            return True
        if any(text in str(exc).lower() for text in OOM_TEXTS):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def largest_fitting_batch(step, batch_size: int) -> int | None:
    """The largest of ``batch_size // 2, // 4, ..., 1`` for which ``step(b)`` runs without OOM; None if none."""
    b = int(batch_size) // 2
    while b >= 1:
        _free()
        try:
            step(b)
            return b
        except Exception as exc:  # noqa: BLE001
            if not is_out_of_memory(exc):
                raise
        b //= 2
    _free()
    return None


def _free() -> None:
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def available_bytes(accelerator: str) -> int | None:
    """Memory a training process may use: the GPU's total memory, or the machine's available memory
    (``MemAvailable``, capped by a cgroup limit); None when unknown."""
    if accelerator == "gpu":
        try:
            return int(torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory)
        except Exception:  # noqa: BLE001
            return None
    found = None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError):
        pass
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(limit_file, encoding="ascii") as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:
            found = int(text) if found is None else min(found, int(text))
        break
    return found


def batch_that_fits(estimate_parts: dict, available: int) -> int:
    """The largest batch size whose estimate (:func:`estimate`) stays within ``available`` bytes (0: none)."""
    fixed = estimate_parts["total_bytes"] - estimate_parts["activation_bytes"]
    per_row = estimate_parts["activation_bytes"] / max(1, _rows(estimate_parts))
    if per_row <= 0:
        return 0
    return max(0, int((available - fixed) // per_row))


def _rows(parts: dict) -> int:
    return int(parts.get("batch_size", 1))


def oom_error(task, config, condition_size: int):
    """The out-of-memory answer: which batch size fits on this device."""
    from lasskit.errors import UsageError

    device = task.device
    samples = int(round(config.segment * 16000))

    def step(b: int) -> None:
        g = torch.Generator().manual_seed(0)
        mixtures = (torch.randn(b, samples, generator=g) * 0.1).to(device)
        conditions = torch.nn.functional.normalize(torch.randn(b, condition_size, generator=g), dim=-1).to(device)
        task.model.forward_train(mixtures, conditions).abs().mean().backward()
        for p in task.ss_model.parameters():
            p.grad = None

    fits = largest_fitting_batch(step, config.batch_size)
    where = f"{device}"
    if fits is None:
        return UsageError(f"--batch-size {config.batch_size}: out of memory on {where} even with one "
                          f"{config.segment:g} s row; use a shorter --segment or a larger device")
    return UsageError(f"--batch-size {config.batch_size}: out of memory on {where} at the start; --batch-size {fits} "
                      f"fits (with --accumulate {-(-config.batch_size // fits)} for the same effective batch)")
