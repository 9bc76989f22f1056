"""Shared fixtures. Test audio comes from lasskit.soundgen (the one source of generated audio)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

def needs(*modules: str):
    """A skip mark for tests that need optional packages, found without importing them (importing
    lightning and transformers at collection costs each test worker seconds, even when the tests
    that use them are deselected, as in `make test-fast`)."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    return pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)} (pip install -e '.[train]')")


def tiny_text_tower(prefix: str = "module.", seed: int = 0, layers: int = 1) -> dict:
    """A tiny random CLAP text tower (RoBERTa of width 32 and ``layers`` layers over the 261
    symbols of ``lasskit.miniature.write_tokenizer``'s vocabulary, plus the 512-d projection) as a state dict with
    keys ``<prefix>text_branch.*`` and ``<prefix>text_projection.*``: ``module.`` is a LAION-CLAP
    file's layout, ``query_encoder.model.`` a baseline checkpoint's. Seeded; imports torch and
    transformers. For tests."""
    import torch
    import transformers

    from lasskit.models.text_encoder import EMBEDDING_SIZE, build_projection

    config = transformers.RobertaConfig(
        vocab_size=261, hidden_size=32, num_hidden_layers=layers, num_attention_heads=1, intermediate_size=37,
        max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0,
        eos_token_id=2, initializer_range=0.5)
    torch.manual_seed(seed)
    roberta = transformers.RobertaModel(config, add_pooling_layer=True)
    state = {f"{prefix}text_branch.{k}": v for k, v in roberta.state_dict().items()}
    state.update({f"{prefix}text_projection.{k}": v for k, v in build_projection(32, EMBEDDING_SIZE).state_dict().items()})
    return state


REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LASSKIT_SHARED", REPO.parent / "shared"))
METADATA = SHARED / "dcase2024_metadata"
GOLDEN = SHARED / "golden" / "dcase2024_baseline"

os.environ.setdefault("LASSKIT_PROGRESS", "0")
# Two test workers share two cores: each does its torch work on one thread (the commands the tests
# run inherit it) instead of two workers of two threads each fighting over two cores (quiet machine,
# fresh clone: 339 s -> about 280 s). test_it_learns sets the thread count its figures were measured with.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def metadata_dir() -> Path:
    """The official DCASE 2024 metadata in ../shared; skips when this clone has no ../shared."""
    if not (METADATA / "lass_validation.json").is_file():
        pytest.skip(f"official metadata not found at {METADATA} (../shared is absent in a user's clone)")
    return METADATA


@pytest.fixture
def golden_dir() -> Path:
    if not (GOLDEN / "resunet30_state_dict.tsv").is_file():
        pytest.skip(f"golden baseline files not found at {GOLDEN} (../shared is absent in a user's clone)")
    return GOLDEN


@pytest.fixture
def run_cli(monkeypatch):
    """Run ``lasskit ARGS`` in-process; returns (exit code, stdout, stderr)."""
    import io
    import sys

    from lasskit.cli import main

    def run(*args: str, cwd: Path | None = None):
        out, err = io.StringIO(), io.StringIO()
        if cwd is not None:
            monkeypatch.chdir(cwd)
        monkeypatch.setattr(sys, "stdout", out)
        monkeypatch.setattr(sys, "stderr", err)
        monkeypatch.setenv("COLUMNS", "200")
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            monkeypatch.setattr(sys, "stdout", sys.__stdout__)
            monkeypatch.setattr(sys, "stderr", sys.__stderr__)
        return code, out.getvalue(), err.getvalue()

    return run


# The longest tests start first: with `make test`'s two workers the suite's wall time is about
# half its work only when the longest test (test_it_learns, a third of the work) does not start
# last. Order within each group is kept.
FIRST = ("test_train.py::test_it_learns",)


def pytest_collection_modifyitems(config, items):
    def rank(item):
        if any(item.nodeid.endswith(name) for name in FIRST):
            return 0
        return 1 if item.get_closest_marker("slow") else 2

    items.sort(key=rank)
