"""`lasskit demo`: the whole workflow on generated audio ends in known scores and a clean package."""

from __future__ import annotations

import pytest

from lasskit.demo import minimal_pdf, run_demo
from lasskit.errors import UsageError


def test_demo_runs_every_stage_with_known_answers(tmp_path, run_cli):
    lines: list[str] = []
    result = run_demo(tmp_path / "demo", duration=1.0, jobs=1, log=lines.append)
    assert [title.split()[1].rstrip(":") for title, _ in result.stages[1:]] == ["prepare", "mix", "separate", "score",
                                                                   "package", "check"]
    summaries = {(r.model, r.split): r.summary["metrics"] for r in result.score_run.results}
    assert summaries[("passthrough", "val_synth")]["sdri"]["mean"] == 0.0
    assert summaries[("passthrough", "train_mix")]["sdri"]["mean"] == 0.0
    assert summaries[("oracle", "val_synth")]["sdr"]["mean"] > 60  # the floor-limited ceiling
    assert not result.check.problems and result.check.audio_files == 16
    names = sorted(p.name for p in (tmp_path / "demo" / "submission").iterdir())
    assert "Lovelace_DEMO_task9_1_eval_real.zip" in names and "Lovelace_DEMO_task9.zip" in names
    # the raw download holds mixed rates and channel counts, as real downloads do
    import soundfile as sf

    infos = [sf.info(p) for p in (tmp_path / "demo" / "raw" / "clotho").rglob("*.wav")]
    assert {i.samplerate for i in infos} >= {44100, 48000, 22050} and {i.channels for i in infos} == {1, 2}
    # running it again in the same folder completes again
    again = run_demo(tmp_path / "demo", duration=1.0, jobs=1, log=lines.append)
    assert not again.check.problems


def test_demo_refuses_a_folder_that_is_not_a_demo(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(UsageError, match="not empty"):
        run_demo(tmp_path, log=lambda _: None)


def test_demo_report_is_a_pdf():
    pdf = minimal_pdf("hello (world)")
    assert pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF") and b"startxref" in pdf


def test_demo_never_replaces_someone_elses_lasskit_yaml(tmp_path, run_cli):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "lasskit.yaml").write_text("jobs: 1\n")
    code, _, err = run_cli("demo", mine)
    assert code == 2 and "lasskit.yaml" in err and "not written by" in err and err.count("\n") == 1
    assert (mine / "lasskit.yaml").read_text() == "jobs: 1\n" and sorted(p.name for p in mine.iterdir()) == [
        "lasskit.yaml"]


def test_demo_folder_and_duration_are_checked_first(tmp_path, run_cli):
    (tmp_path / "afile").write_text("x")
    for args, word in ((["afile"], "is a file"), (["afile/sub"], "is a file"), (["d", "--duration", "0"], "--duration"),
                       (["d", "--duration", "-1"], "--duration"), (["d", "--duration", "inf"], "--duration")):
        code, _, err = run_cli("demo", *args, cwd=tmp_path)
        assert code == 2 and word in err and err.count("\n") == 1, (args, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_a_demo_interrupted_before_its_yaml_was_written_can_go_on(tmp_path):
    from lasskit.demo import MARKER, check_demo_folder

    root = tmp_path / "d"
    root.mkdir()
    (root / MARKER).write_text("lasskit demo workspace\n")
    (root / "raw").mkdir()  # a killed first run
    assert check_demo_folder(root) == root.resolve()


def test_short_generated_clips_are_never_silent():
    import numpy as np

    from lasskit import miniature, soundgen

    for name in soundgen.CLASSES:
        for seed in range(4):
            x = miniature.event(name, 0.5, 16000, seed=seed)
            assert x.shape == (8000,) and np.max(np.abs(x)) > miniature.AUDIBLE_PEAK, name
