"""The DCASE 2024 recipe (recipes/dcase2024_task9/run.sh) on the demo's miniature download."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lasskit import miniature
from lasskit.demo import DEMO_CONFIG, minimal_pdf

RUN_SH = Path(__file__).resolve().parents[1] / "recipes" / "dcase2024_task9" / "run.sh"
LASSKIT = Path(sys.executable).parent / "lasskit"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None, reason="the recipe is a bash script")
def test_recipe_runs_every_stage_on_a_miniature_download(tmp_path):
    raw = tmp_path / "raw"
    miniature.write_clotho(raw / "clotho", per_split=2, duration=1.0)
    miniature.write_fsd50k(raw / "fsd50k", dev=6, eval=2, duration=1.0)
    miniature.write_dcase2024(raw / "dcase2024", clips=8, mixtures=6, real=2, synth_eval=3, duration=1.0)
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "lasskit.yaml").write_text(DEMO_CONFIG)
    (ws / "report.pdf").write_bytes(minimal_pdf("recipe test report"))
    args = ["bash", str(RUN_SH), "--workspace", str(ws), "--dcase2024", str(raw / "dcase2024"),
            "--clotho", str(raw / "clotho"), "--fsd50k", str(raw / "fsd50k"),
            "--fsd50k-captions", str(raw / "fsd50k" / "fsd50k_captions.json"), "--model", "passthrough",
            "--num-train", "6", "--mix-duration", "1", "--jobs", "1", "--lasskit", str(LASSKIT)]
    proc = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for stage in range(9):
        assert f"== stage {stage}:" in proc.stdout
    splits = ws / "data" / "splits"
    assert {p.name for p in splits.iterdir() if p.is_dir()} >= {"val_synth", "eval_synth", "eval_real", "train", "val_style"}
    summary = json.loads((ws / "exp/passthrough/val_synth/summary.json").read_text())
    assert summary["count"] == 6 and summary["metrics"]["sdri"]["mean"] == 0.0
    assert (ws / "submission" / "Lovelace_DEMO_task9_1.meta.yaml").is_file()
    train = json.loads((splits / "train" / "mix.json").read_text())["data"]
    assert set(train["used"]) <= {"fsd50k", "clotho"} and all(set(s) <= {"train"} for s in train["used"].values())
    # stage selection: only the scoring stage runs again
    proc = subprocess.run(args + ["--stage", "6", "--stop-stage", "6"], capture_output=True, text=True)
    assert proc.returncode == 0 and "== stage 6:" in proc.stdout and "== stage 5:" not in proc.stdout


def test_recipe_rejects_unknown_options(tmp_path):
    proc = subprocess.run(["bash", str(RUN_SH), "--colour", "red"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and "unknown option --colour" in proc.stderr
