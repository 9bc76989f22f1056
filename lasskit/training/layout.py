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
