"""``--continue-from CKPT``: go on from another run's Lightning state (step, optimizer, schedule).

``--init`` takes a checkpoint's weights only: a new optimizer, the schedule from step 0 with
its own ``--warmup-steps`` (default 0). ``--continue-from`` instead continues where that
checkpoint's run stood, as the organizers' ``trainer.fit(ckpt_path=...)`` does: the weights, the
global step (the warm-up and the data order go on from it), AdamW's moments and the learning
rate schedule at that step; into a new run folder, with this run's data and options.

The checkpoint's optimizer state is first turned from the organizers' param-group layout (every
``ss_model`` parameter, their conv-STFT kernels first: what their checkpoints and lasskit's hold,
:mod:`lasskit.training.layout`) into this run's, then matched to its trainable parameters by
position when the counts agree, else by name from the ``state_dict`` key order (buffers left out).
Parameters without a matching state start fresh, and are counted in the plan's notes.
"""

from __future__ import annotations

from lasskit.errors import UsageError

BUFFER_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked", "ola_window")


def _their_parameter_names(state: dict) -> list[str]:
    return [k for k in state if k.startswith("ss_model.") and not k.endswith(BUFFER_SUFFIXES)]


def continuation_checkpoint(ckpt: dict, task, config) -> dict:
    """A checkpoint this run's Lightning resumes from: ``ckpt``'s weights, step, optimizer moments,
    and the schedule at that step (this run's ``--lr`` and ``--warmup-steps``)."""
    import torch

    from lasskit.training.layout import from_organizers_optimizer
    from lasskit.training.module import warmup_factor

    source = config.continue_from
    state = ckpt["state_dict"]
    own = task.state_dict()
    missing = [k for k in own if k not in state]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or wrong:
        first = (missing or wrong)[0]
        raise UsageError(f"--continue-from {source}: does not fit this model ({len(missing)} missing, {len(wrong)} "
                         f"differently shaped tensors, e.g. {first}); check --model and its -o options")
    if "loops" not in ckpt:
        raise UsageError(f"--continue-from {source}: holds no Lightning loop state (not written by a Lightning 2 "
                         "trainer); use --init to fine-tune its weights instead")
    step = int(ckpt["global_step"])
    setup = task.configure_optimizers()
    optimizer, scheduler = setup["optimizer"], setup["lr_scheduler"]["scheduler"]
    ours = [n for n, p in task.named_parameters() if p.requires_grad]
    saved = (ckpt.get("optimizer_states") or [None])[0]
    if isinstance(saved, dict):  # the organizers' layout (theirs, and lasskit's since it writes theirs)
        saved = from_organizers_optimizer(saved, *task._parameter_names())
    carried = 0
    new_state = {}
    if isinstance(saved, dict) and saved.get("param_groups"):
        indices = [i for group in saved["param_groups"] for i in group["params"]]
        if len(indices) == len(ours):
            by_name = dict(zip(ours, indices))
        else:
            names = _their_parameter_names(state)
            by_name = dict(zip(names, indices)) if len(names) == len(indices) else {}
        params = dict(task.named_parameters())
        for i, name in enumerate(ours):
            entry = saved.get("state", {}).get(by_name.get(name, -1))
            if not entry:
                continue
            if any(torch.is_tensor(v) and v.ndim and tuple(v.shape) != tuple(params[name].shape)
                   for v in entry.values()):
                continue
            new_state[i] = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in entry.items()}
            carried += 1
    lr = config.lr * warmup_factor(step, config.warmup_steps)
    opt_state = optimizer.state_dict()
    opt_state["state"] = new_state
    for group in opt_state["param_groups"]:
        group["lr"] = lr
        group["initial_lr"] = config.lr
    scheduler.last_epoch = step
    scheduler._last_lr = [lr]
    sched_state = scheduler.state_dict()
    sched_state["base_lrs"] = [config.lr]
    task.continued = {"from": str(source), "step": step, "optimizer_states_carried": carried,
                      "optimizer_states_fresh": len(ours) - carried}
    out = {k: v for k, v in ckpt.items() if k not in ("callbacks", "hyper_parameters", "lasskit")}
    out["state_dict"] = {k: state[k] for k in own}
    out["optimizer_states"] = [opt_state]
    out["lr_schedulers"] = [sched_state]
    return out
