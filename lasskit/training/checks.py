"""What ``lasskit train`` refuses before anything on disk changes: the run folder (``--resume``,
``--overwrite``), checkpoint files (``--resume``'s last.ckpt, ``--init``, ``--continue-from``), and
which weight file a real run would download (``--dry-run`` plans without it).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from lasskit.errors import LasskitError, UsageError
from lasskit.training.config import TrainConfig, resume_mismatch

RUN_FILES = ("config.json", "data.json", "train.json", "last.ckpt", "best.ckpt", "metrics.csv", "hparams.yaml")


def check_run_folder(folder: Path, config: TrainConfig) -> None:
    """Refuse what cannot work (nothing is deleted here: ``--overwrite`` clears at :func:`_clear_old_run`)."""
    started = (folder / "config.json").is_file() or (folder / "last.ckpt").is_file()
    if config.resume:
        if not (folder / "last.ckpt").is_file():
            raise UsageError(f"--resume: {folder / 'last.ckpt'} not found; start the run without --resume")
        saved = read_saved_config(folder)
        differ = resume_mismatch(saved.get("options", saved), config)
        if differ:
            raise UsageError(f"--resume {config.name}: options differ from the saved run ({', '.join(differ)}); "
                             f"use the same values (see {folder / 'config.json'}) or a new --name")
        check_checkpoint_file(folder / "last.ckpt", "--resume",
                              f"start the run again with --overwrite (or restore {folder / 'last.ckpt'})")
    elif started and not config.dry_run:
        if not config.overwrite:
            raise UsageError(f"{folder}: a run named {config.name!r} exists; pass --resume to continue it, "
                             "--overwrite to start it again, or another --name")


def check_resumed_data(folder: Path, digests: dict[str, str]) -> None:
    """``--resume``: the training manifests must hold what they held when the run started (their
    SHA-256 in ``data.json``). Options are compared by :func:`check_run_folder`; this compares the
    content, so a corpus prepared again (other clips, other captions) under the same path is one
    line, not a run that silently continues on other data. A run without ``data.json`` (an older
    lasskit) is not checked."""
    path = folder / "data.json"
    if not path.is_file():
        return
    try:
        saved = json.loads(path.read_text(encoding="utf-8")).get("manifest_sha256") or {}
    except (ValueError, UnicodeDecodeError, AttributeError):
        raise UsageError(f"{path}: not valid JSON; restore the file, or start the run again with --overwrite") from None
    if not isinstance(saved, dict):
        return
    changed = [name for name, digest in digests.items() if name in saved and saved[name] != digest]
    if changed:
        raise UsageError(f"--resume {folder.name}: {changed[0]} changed since the run started (its SHA-256 is not "
                         f"the one in {path}{f'; {len(changed) - 1} more' if len(changed) > 1 else ''}): resuming "
                         "would train on other data; restore it, or start a new run (--name or --overwrite)")


def read_saved_config(folder: Path) -> dict:
    path = folder / "config.json"
    if not path.is_file():
        return {}
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not valid JSON ({type(exc).__name__}: {' '.join(str(exc).split())[:120]}); "
                         "restore the file, or start the run again with --overwrite") from None
    if not isinstance(saved, dict) or not isinstance(saved.get("options", {}), dict):
        raise UsageError(f"{path}: not a lasskit run configuration; restore the file, or start the run again "
                         "with --overwrite")
    return saved


def check_checkpoint_file(path: Path, option: str, fix: str) -> dict:
    """Load a Lightning checkpoint (CPU, memory-mapped) or raise one line naming it; returns the dict."""
    import pickle
    import warnings

    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ckpt = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
            except RuntimeError as exc:
                if "mmap" not in str(exc):
                    raise
                ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, ValueError, pickle.UnpicklingError, AttributeError, ImportError,
            ModuleNotFoundError, IndexError, KeyError, TypeError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise
        why = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise UsageError(f"{option} {path}: not a readable checkpoint (truncated or not a PyTorch file: {why}); "
                         f"{fix}") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict) or "global_step" not in ckpt:
        raise UsageError(f"{option} {path}: not a Lightning training checkpoint (no state_dict and global_step); "
                         f"{fix}")
    return ckpt


def clear_old_run(folder: Path) -> None:
    """``--overwrite``: remove the old run's files, only once the new run is about to write its own."""
    for name in RUN_FILES:
        (folder / name).unlink(missing_ok=True)
    for old in folder.glob("step-*.ckpt"):
        old.unlink(missing_ok=True)
    shutil.rmtree(folder / "tb", ignore_errors=True)


def check_init_file(path: Path) -> dict:
    """The tensors of ``--init``'s file, or one line naming it (not found, not a checkpoint, no tensors)."""
    from lasskit.models.baseline import load_checkpoint_state

    fix = "give a checkpoint written by lasskit train (last.ckpt, best.ckpt) or the organizers' baseline checkpoint"
    if not path.is_file():
        raise UsageError(f"--init {path}: no such checkpoint file; {fix}")
    try:
        return load_checkpoint_state(path)
    except LasskitError as exc:
        text = str(exc)
        raise UsageError(f"--init {path}: not a usable checkpoint ({text.split(': ', 1)[-1].split(';')[0]}); "
                         f"{fix}") from None
    except OSError as exc:
        if exc.errno is not None:
            raise
        raise UsageError(f"--init {path}: not a PyTorch checkpoint ({type(exc).__name__}); {fix}") from None
    except Exception as exc:  # noqa: BLE001 - whatever a file that is not a checkpoint makes torch raise
        raise UsageError(f"--init {path}: not a PyTorch checkpoint file ({type(exc).__name__}); {fix}") from None


def needs_download(config: TrainConfig) -> str | None:
    """The weight file a real run of ``config`` would download first (None when nothing would be)."""
    from lasskit import weights

    if config.init is not None or config.options.get("clap_checkpoint") or config.options.get("checkpoint"):
        return None
    try:
        from lasskit.models import registry

        _, spec = registry.resolve(config.model)
    except LasskitError:
        return None
    for name in getattr(weights, "MODEL_WEIGHTS", {}).get(spec, ()):
        if not weights.weight_path(name).is_file():
            return name
    return None


def saved_step(folder: Path) -> int | None:
    """The global step stored in ``last.ckpt`` (None when unreadable)."""
    import torch

    try:
        return int(torch.load(folder / "last.ckpt", map_location="cpu", weights_only=False, mmap=True)["global_step"])
    except Exception:  # noqa: BLE001 - the resume itself reports a bad checkpoint
        return None
