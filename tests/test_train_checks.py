"""``train --resume`` refuses training data whose content changed since the run started (the
manifests' SHA-256 in ``data.json``), before anything on disk changes. No Lightning here: the check
is called directly; the whole command's path is the same call in ``training.run``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lasskit.errors import UsageError
from lasskit.training.checks import check_resumed_data


def _run_folder(tmp_path: Path, digests: dict) -> Path:
    folder = tmp_path / "exp" / "train" / "run1"
    folder.mkdir(parents=True)
    (folder / "data.json").write_text(json.dumps({"manifest_sha256": digests}))
    return folder


def test_unchanged_manifests_resume(tmp_path):
    folder = _run_folder(tmp_path, {"/d/a.csv": "aa", "/d/b.csv": "bb"})
    check_resumed_data(folder, {"/d/a.csv": "aa", "/d/b.csv": "bb"})
    check_resumed_data(folder, {"/d/a.csv": "aa"})  # a manifest no longer used: its option differs, checked elsewhere


def test_a_manifest_prepared_again_is_one_line_naming_it(tmp_path):
    folder = _run_folder(tmp_path, {"/d/a.csv": "aa", "/d/b.csv": "bb", "/d/c.csv": "cc"})
    before = (folder / "data.json").read_bytes()
    with pytest.raises(UsageError) as err:
        check_resumed_data(folder, {"/d/a.csv": "aa", "/d/b.csv": "XX", "/d/c.csv": "YY"})
    line = str(err.value)
    assert "\n" not in line and "/d/b.csv changed since the run started" in line and "1 more" in line
    assert "--overwrite" in line and str(folder / "data.json") in line
    assert (folder / "data.json").read_bytes() == before


def test_an_older_run_without_data_json_and_a_damaged_one(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    check_resumed_data(folder, {"/d/a.csv": "aa"})  # nothing recorded: nothing to compare
    (folder / "data.json").write_text("{not json")
    with pytest.raises(UsageError, match="data.json: not valid JSON"):
        check_resumed_data(folder, {"/d/a.csv": "aa"})
