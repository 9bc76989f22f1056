"""lasskit.yaml's ``paths:`` section (the raw download folders): a value of the wrong shape is one
line naming the file and the key, never ignored and never an internal error."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("text, names", [
    ("paths: 5\n", ("lasskit.yaml", "paths: 5", "mapping of corpus names to folders")),
    ("paths: [a, b]\n", ("lasskit.yaml", "paths", "mapping of corpus names to folders")),
    ("paths:\n  fsd50k: 5\n", ("lasskit.yaml", "paths.fsd50k: 5", "folder")),
    ("paths:\n  fsd50k: [a]\n", ("lasskit.yaml", "paths.fsd50k", "folder")),
])
def test_a_paths_section_of_the_wrong_shape_is_named(tmp_path, run_cli, text, names):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "lasskit.yaml").write_text(text)
    for args in (["prepare", "fsd50k"], ["label", "fsd50k"]):
        code, _, err = run_cli("-w", ws, *args)
        assert code == 2 and err.count("\n") == 1 and "internal error" not in err, err
        assert all(n in err for n in names), err
    assert sorted(p.name for p in ws.iterdir()) == ["lasskit.yaml"]


def test_a_paths_folder_is_used(tmp_path):
    from lasskit.workspace import Workspace

    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "lasskit.yaml").write_text("paths:\n  fsd50k: ~/FSD50K\n  clotho:\n")
    w = Workspace.open(ws)
    assert w.raw_path("fsd50k").name == "FSD50K" and w.raw_path("clotho") is None
