"""``train --ema DECAY``: an exponential moving average of the trained weights, validated and saved.

After every optimizer step, ``shadow = decay * shadow + (1 - decay) * weight`` (float32, each
trainable parameter of ``ss_model``; batch-norm statistics are the network's own). Validation
runs on the averaged weights (swapped in for the validation loop, swapped back before any
checkpoint is written). Every checkpoint's ``state_dict`` holds the averaged weights, so
``best.ckpt``/``last.ckpt`` are what ``separate``, ``average`` and the organizers' code should
load; the raw training weights travel in this callback's state (``checkpoint["callbacks"]``),
and ``--resume`` puts them back, so a resumed run continues bit for bit.
"""

from __future__ import annotations

import lightning as L
import torch


def ema_update(shadow: list[torch.Tensor], params: list[torch.Tensor], decay: float) -> None:
    """``shadow = decay * shadow + (1 - decay) * param`` for each pair, in one fused call per device."""
    with torch.no_grad():
        torch._foreach_lerp_(shadow, [p.detach() for p in params], 1.0 - float(decay))


class EMA(L.Callback):
    """Moving average of ``pl_module.ss_model``'s trainable parameters."""

    def __init__(self, decay: float) -> None:
        self.decay = float(decay)
        self.shadow: dict[str, torch.Tensor] | None = None
        self._raw_pending: dict[str, torch.Tensor] | None = None
        self._stash: dict[str, torch.Tensor] | None = None
        self._step = -1

    @staticmethod
    def _params(pl_module) -> dict[str, torch.Tensor]:
        return {n: p for n, p in pl_module.ss_model.named_parameters() if p.requires_grad}

    # --- state ------------------------------------------------------------------------------
    @property
    def state_key(self) -> str:
        return "EMA"

    def state_dict(self) -> dict:
        module = getattr(self, "_module", None)
        raw = {n: p.detach().to("cpu").clone() for n, p in self._params(module).items()} if module is not None else {}
        return {"decay": self.decay, "raw": raw}

    def load_state_dict(self, state_dict: dict) -> None:
        self._raw_pending = state_dict.get("raw") or None

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        if self.shadow is None:
            return
        state = checkpoint["state_dict"]
        for name, value in self.shadow.items():
            key = "ss_model." + name
            if key in state:
                state[key] = value.detach().to("cpu", state[key].dtype).clone()

    # --- updates ------------------------------------------------------------------------------
    def on_fit_start(self, trainer, pl_module) -> None:
        self._module = pl_module

    def on_train_start(self, trainer, pl_module) -> None:
        self._module = pl_module
        self._step = trainer.global_step
        params = self._params(pl_module)
        if self.shadow is None:  # a resumed run loaded the averaged weights: they are the shadow
            self.shadow = {n: p.detach().float().clone() for n, p in params.items()}
        if self._raw_pending is not None:
            with torch.no_grad():
                for n, p in params.items():
                    p.copy_(self._raw_pending[n].to(p.device, p.dtype))
            self._raw_pending = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self._step:  # inside gradient accumulation: no step was taken
            return
        self._step = trainer.global_step
        params = self._params(pl_module)
        ema_update([self.shadow[n] for n in params], list(params.values()), self.decay)

    # --- validation on the averaged weights -----------------------------------------------------
    def on_validation_start(self, trainer, pl_module) -> None:
        if self.shadow is None or trainer.sanity_checking:
            return
        params = self._params(pl_module)
        self._stash = {n: p.detach().clone() for n, p in params.items()}
        with torch.no_grad():
            for n, p in params.items():
                p.copy_(self.shadow[n].to(p.dtype))

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if self._stash is None:
            return
        with torch.no_grad():
            for n, p in self._params(pl_module).items():
                p.copy_(self._stash[n])
        self._stash = None
