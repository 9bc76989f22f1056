"""Files given as weights (``--checkpoint``, ``--init``) that are not checkpoints, and a real one
at a path that is not UTF-8 (issue 23 §2): one line naming the file, no KeyError, no warnings."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

from lasskit import soundgen
from lasskit.errors import LasskitError


def _text(path: Path) -> None:
    path.write_text("hello, not a checkpoint\n")


def _audio(path: Path) -> None:
    soundgen.write_clip(path.with_suffix(".wav"), "tone", 0.2, 16000, seed=1)
    path.with_suffix(".wav").rename(path)


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _folder(path: Path) -> None:
    path.mkdir()


def _a_list(path: Path) -> None:
    import torch

    torch.save([1, 2, 3], path)


@pytest.mark.parametrize("make,words", [
    (_text, "not a readable PyTorch checkpoint"),
    (_audio, "not a readable PyTorch checkpoint"),
    (_empty, "the file is empty"),
    (_folder, "is a folder"),
    (_a_list, "holds no state dict"),
], ids=["text", "audio", "empty", "folder", "a-list"])
def test_a_file_that_is_not_a_checkpoint_is_one_line_naming_it(make, words, tmp_path):
    from lasskit.models.baseline import load_checkpoint_state
    from lasskit.models.clap_model import load_clap_model

    path = tmp_path / "weights.ckpt"
    make(path)
    for load in (load_checkpoint_state, lambda p: load_clap_model(p, tmp_path / "no-tokenizer", device="cpu")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(LasskitError) as info:
                load(path)
        message = str(info.value)
        assert message.startswith(f"{path}: ") and words in message and "\n" not in message, message
        assert "pass --checkpoint" not in message  # train --init has no such option
        assert [str(w.message) for w in caught] == []
        if make is _a_list:
            break  # CLAP reads the file only after the tokenizer: the sniff passes a real torch file


def test_a_checkpoint_at_a_path_that_is_not_utf8_loads(tmp_path):
    import torch

    from lasskit.models.baseline import load_checkpoint_state

    path = Path(os.fsdecode(os.fsencode(str(tmp_path)) + b"/caf\xe9.ckpt"))
    with open(os.fsencode(str(path)), "wb") as fh:
        torch.save({"state_dict": {"net.weight": torch.arange(6.0).reshape(2, 3)}}, fh)
    state = load_checkpoint_state(path)
    assert list(state) == ["net.weight"] and state["net.weight"].tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
