"""Training and fine-tuning separation models (``lasskit train``) on PyTorch Lightning.

This package owns the training loop around a :class:`~lasskit.models.base.TrainableModel`: the
data it sees, the optimisation, validation, checkpoints and the run folder. torch and
``lightning`` are imported only inside functions (``pip install 'lasskit[train]'``).

**Data** (:mod:`lasskit.training.data`): class-disjoint mixtures made on the fly by
:mod:`lasskit.mixing` (the same pairing, SNR, crop and gain rules as ``lasskit mix``) from
prepared manifests, under ``mix``'s data rules (no val/eval clip unless ``--split`` names the
split, the challenge's corpora only when named, no recording of a challenge clip). Sample
number ``n`` of the run (``n = ((step * A + a) * W + rank) * B + j`` for optimizer step ``step``,
micro-batch ``a`` of ``A`` accumulated ones, rank of ``W`` processes and row ``j`` of a batch of
``B``) is item ``perm_e[n mod N]`` of mixing epoch ``e = n div N`` (``N`` mixtures per epoch, one
per target; ``perm_e`` a permutation from ``SeedSequence(seed, spawn_key=(3, e))``). Every
sample therefore depends only on (seed, n): a run resumed at step ``s`` sees exactly the batches
an uninterrupted run sees, whatever the number of DataLoader workers.

**Optimisation** (the organizers' baseline recipe): loss from the model (L1 on the waveform for
the baseline); AdamW (amsgrad, betas 0.9/0.999, eps 1e-8, weight decay 0) at ``lr``; the learning
rate is multiplied by 0.001, 0.01 and 0.1 over three equal thirds of ``warmup_steps`` (the
organizers: 30000), then 1. Parameters the forward pass never reaches (the ResUNet30 decoders'
``bn2``/``beta2``) are found by one probe pass and frozen, so data-parallel training needs no
unused-parameter search.

**Validation**: every ``val_every`` steps, SDRi (:func:`lasskit.metrics.sdri`, float64) of each
row of a fixed subset of a validation split (``val_count`` rows, the first of a seeded
permutation), averaged over all rows on all ranks; it picks ``best.ckpt``.

**Run folder** ``exp/train/<name>/``: ``config.json`` (the resolved options, lasskit and library
versions), ``data.json`` (manifests with SHA-256 digests, clip and mixture counts),
``metrics.csv`` (``step,metric,value`` rows; TensorBoard files under ``tb/`` when installed),
``last.ckpt`` and ``best.ckpt`` (Lightning checkpoints whose ``state_dict`` holds the network
under ``ss_model.*`` and the frozen text tower under ``query_encoder.model.*``, the organizers'
layout; written atomically) and ``train.json`` (what the run did).

Modules: :mod:`~lasskit.training.config` (options, run folder), :mod:`~lasskit.training.data`
(datasets and samplers), :mod:`~lasskit.training.module` (the LightningModule and callbacks),
:mod:`~lasskit.training.memory` (memory estimate and batch-size probe),
:mod:`~lasskit.training.run` (:func:`train`, the one function the CLI calls).
"""

from lasskit.training.config import TrainConfig

__all__ = ["TrainConfig", "train"]


def train(config, workspace=None, *, echo=print):
    """Train (or with ``config.dry_run`` plan) a model; see :func:`lasskit.training.run.train`."""
    from lasskit.training.run import train as _train

    return _train(config, workspace, echo=echo)
