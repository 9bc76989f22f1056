"""A model loaded from a file (``--model path/file.py:Class``) is identified by the file's content
and the class name (issue 23 §3): the same in every process while the file is unchanged, so
``separate`` reuses its outputs; a changed file remakes them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from lasskit import audio, soundgen

MODEL = '''
class Fixed:
    """Returns the mixture scaled by GAIN."""
    GAIN = {gain}

    def __init__(self, checkpoint=None, device="cpu"):
        pass

    def separate(self, mixtures, queries):
        return mixtures * self.GAIN
'''


def _module_of(spec: str, cwd: Path, seed: str) -> str:
    code = "from lasskit.models import registry; print(registry.resolve(%r)[0].__module__)" % spec
    env = {**os.environ, "PYTHONHASHSEED": seed}
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_the_identity_is_the_same_in_every_process_and_follows_the_content(tmp_path):
    (tmp_path / "my_models.py").write_text(MODEL.format(gain=0.5))
    spec = "my_models.py:Fixed"
    first, second = _module_of(spec, tmp_path, "1"), _module_of(spec, tmp_path, "2")
    assert first == second and first.startswith("lasskit_user_model_my_models_")
    (tmp_path / "my_models.py").write_text(MODEL.format(gain=0.25))
    assert _module_of(spec, tmp_path, "1") != first


def _split(ws: Path) -> None:
    from lasskit.splits import write_split_csv

    split_dir = ws / "data" / "splits" / "s"
    rows = []
    for i in range(3):
        file = f"s_{i:04d}.wav"
        audio.write(split_dir / "mixture" / file, soundgen.generate("tone", 0.5, seed=i), 16000, "float")
        rows.append({"mixture": file, "query": "a tone"})
    write_split_csv(split_dir, pd.DataFrame(rows))


def _forget_file_models() -> None:
    """What a new process sees: no model file imported yet."""
    for name in [n for n in sys.modules if n.startswith("lasskit_user_model_")]:
        del sys.modules[name]


@pytest.mark.parametrize("edit", [False, True], ids=["unchanged-file-reused", "changed-file-remade"])
def test_separate_reuses_outputs_of_an_unchanged_model_file(edit, tmp_path):
    from lasskit.separation import separate_split

    ws = tmp_path / "ws"
    _split(ws)
    model_file = tmp_path / "my_models.py"
    model_file.write_text(MODEL.format(gain=0.5))
    spec = f"{model_file}:Fixed"
    first = separate_split("s", spec, workspace=ws, device="cpu")
    assert (first.written, first.skipped) == (3, 0)
    _forget_file_models()
    if edit:
        model_file.write_text(MODEL.format(gain=0.25))
    again = separate_split("s", spec, workspace=ws, device="cpu")
    if edit:
        assert (again.written, again.skipped) == (3, 0)
        assert again.reasons == {"settings changed: model": 3}
    else:
        assert (again.written, again.skipped, again.reasons) == (0, 3, {})
    _forget_file_models()
