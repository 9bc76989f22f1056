"""The organizers' checkpoint layout: every key their LightningModule holds, so lasskit's are drop-ins.

The organizers' ``AudioSep`` LightningModule has two submodules: ``ss_model`` (the ResUNet30
with its conv-based STFT/ISTFT: five fixed DFT tensors lasskit's ``torch.stft`` network does not
need) and ``query_encoder.model`` (the whole CLAP model: text tower, audio tower, transforms,
projections, logit scales, RoBERTa's ``position_ids`` buffer). Their evaluator loads a
checkpoint non-strictly, but a strict load and their ``trainer.fit(ckpt_path=...)`` need every
key. :func:`organizers_extra_state` supplies what lasskit's own ``state_dict`` and the model's
``frozen_state()`` lack:

- ``ss_model.base.stft.*`` / ``ss_model.base.istft.*``: from the formulas
  (:func:`lasskit.models.resunet.conv_stft_kernels`, the values their code builds);
- ``query_encoder.model.*`` tensors carried over as they are from the ``--init`` (or
  ``--continue-from``) checkpoint, else from the CLAP file (``module.*`` -> ``query_encoder.model.*``);
- ``query_encoder.model.text_branch.embeddings.position_ids``: ``arange(positions)[None]``
  (int64), which newer ``transformers`` no longer saves.

Only for networks with the ResUNet30's keys (``base.*``); other models get nothing added.

The optimizer state is written in their layout too (:func:`to_organizers_optimizer`, on save;
:func:`from_organizers_optimizer` turns it back on load, so lasskit's own optimizer and numerics
are unchanged): their ``configure_optimizers`` gives AdamW ``ss_model.parameters()``, every
parameter in ``named_parameters`` order, including the four frozen conv-STFT kernels (registered
first in ``base``, before ``bn0``) and the unused ``bn2``/``beta2``. Lasskit's network has the same
parameters in the same order without the kernels, so the saved param group lists 4 more indices
and each AdamW state sits at the index of its parameter in their order (the kernels have none:
they never get a gradient). Lightning's load refuses a param group of another size.
"""

from __future__ import annotations

from pathlib import Path

PREFIX = "query_encoder.model."


def _tensors(path) -> dict:
    from lasskit.models.baseline import load_checkpoint_state

    return load_checkpoint_state(Path(path))


def organizers_extra_state(network_state_keys, frozen_state: dict, sources: list[str | None],
                           n_fft: int = 1024) -> dict:
    """Tensors to add to each checkpoint's ``state_dict`` (keys absent from lasskit's own).

    ``network_state_keys``: the trainable network's ``state_dict`` keys (no prefix);
    ``frozen_state``: the model's ``frozen_state()``; ``sources``: checkpoint files to carry the
    CLAP tensors from, in order of preference (None entries skipped).
    """
    import torch

    keys = set(network_state_keys)
    if "base.bn0.weight" not in keys:  # not the organizers' ResUNet30: nothing to match
        return {}
    from lasskit.models.resunet import conv_stft_kernels

    extra = {f"ss_model.{k}": v for k, v in conv_stft_kernels(n_fft).items() if k not in keys}  # 2048: 32 kHz zoo models
    have = set(frozen_state)
    for source in sources:
        if not source:
            continue
        try:
            state = _tensors(source)
        except Exception:  # noqa: BLE001 - the model already loaded what it needs from it
            continue
        if any(k.startswith(PREFIX) for k in state):
            carried = {k: v for k, v in state.items() if k.startswith(PREFIX)}
        elif any(k.startswith("module.") for k in state):
            carried = {PREFIX + k[len("module."):]: v for k, v in state.items() if k.startswith("module.")}
        else:
            continue
        for k, v in carried.items():
            if k not in have and k not in extra:
                extra[k] = v
    positions = frozen_state.get(PREFIX + "text_branch.embeddings.position_embeddings.weight")
    position_ids = PREFIX + "text_branch.embeddings.position_ids"
    if positions is not None and position_ids not in have and position_ids not in extra:
        extra[position_ids] = torch.arange(int(positions.shape[0]), dtype=torch.int64)[None]
    return extra


STFT_PARAMETERS = ("base.stft.conv_real.weight", "base.stft.conv_imag.weight",
                   "base.istft.conv_real.weight", "base.istft.conv_imag.weight")


def organizers_parameter_names(network_names: list[str]) -> list[str] | None:
    """Their ``ss_model.named_parameters()`` order for a network whose ``named_parameters()`` are
    ``network_names`` (all of them, frozen ones included); None when the network is not the
    ResUNet30 layout (nothing to convert)."""
    if "base.bn0.weight" not in network_names or any(k in network_names for k in STFT_PARAMETERS):
        return None
    return list(STFT_PARAMETERS) + list(network_names)


def _remap(opt_state: dict, old_names: list[str], new_names: list[str]) -> dict:
    position = {name: i for i, name in enumerate(new_names)}
    state = {}
    for index, entry in opt_state.get("state", {}).items():
        name = old_names[int(index)]
        if name in position:  # their kernels' and unused parameters' (never any: no gradient) are dropped
            state[position[name]] = entry
    group = dict(opt_state["param_groups"][0], params=list(range(len(new_names))))
    return {**opt_state, "state": state, "param_groups": [group]}


def _group_size(opt_state) -> int | None:
    groups = opt_state.get("param_groups") if isinstance(opt_state, dict) else None
    return len(groups[0]["params"]) if groups and len(groups) == 1 else None


def to_organizers_optimizer(opt_state: dict, optimized: list[str], network_names: list[str]) -> dict:
    """Lasskit's AdamW ``state_dict`` (one group over the parameters named ``optimized``, in
    ``network_names`` order) in their layout; as it is when there is nothing to convert."""
    theirs = organizers_parameter_names(network_names)
    if theirs is None or _group_size(opt_state) != len(optimized):
        return opt_state
    return _remap(opt_state, list(optimized), theirs)


def from_organizers_optimizer(opt_state: dict, optimized: list[str], network_names: list[str]) -> dict:
    """The inverse of :func:`to_organizers_optimizer`: a group in their layout back to lasskit's
    (``optimized``); any other state as it is (lasskit checkpoints written before, other models)."""
    theirs = organizers_parameter_names(network_names)
    if theirs is None or _group_size(opt_state) != len(theirs) or len(theirs) == len(optimized):
        return opt_state
    return _remap(opt_state, theirs, list(optimized))
