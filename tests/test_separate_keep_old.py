"""separate --split (issue 23): a run that fails midway (--overwrite, or other settings into the same
--name) keeps every old output and its record byte for byte until the new output replaces it; a
re-run finishes the rest. The file loop's window options and --query get sane bounds and stripping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lasskit.provenance import Ledger
from test_separate import make_split

CRASHING_MODEL = '''
import os

from lasskit.models.base import SeparationModel


class Gain(SeparationModel):
    """Scales by ``gain``; raises on call number $CRASH_AT (not a setting: unset, never)."""

    name = "gain"

    def __init__(self, checkpoint=None, device="cpu", gain=1.0):
        super().__init__(checkpoint, device, gain=gain)
        self.gain = float(gain)
        self.calls = 0
        self.crash_at = int(os.environ.get("CRASH_AT", "0"))

    def separate(self, mixtures, queries):
        self.calls += 1
        if self.crash_at and self.calls >= self.crash_at:
            raise RuntimeError("crashed on purpose")
        return mixtures * self.gain
'''


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _model(tmp_path: Path) -> str:
    path = tmp_path / "crashing.py"
    path.write_text(CRASHING_MODEL)
    return f"{path}:Gain"


def _separate(run_cli, ws: Path, model: str, *extra: str, crash: bool = False):
    import os

    os.environ.pop("CRASH_AT", None)
    if crash:
        os.environ["CRASH_AT"] = "2"
    # one mixture per batch and no threads: the crash comes after exactly one new output
    return run_cli("--workspace", ws, "separate", "--split", "synth", "--model", model, "--name", "g",
                   "--batch-size", "1", "--jobs", "0", "--device", "cpu", *extra)


@pytest.mark.parametrize("change", [["--overwrite"], ["-o", "gain=0.5"]], ids=["overwrite", "other-settings"])
def test_a_failed_rerun_keeps_every_old_output_and_record(tmp_path, run_cli, change, monkeypatch):
    monkeypatch.delenv("CRASH_AT", raising=False)  # restored after the test
    ws = tmp_path / "ws"
    make_split(ws)
    model = _model(tmp_path)
    code, out, err = _separate(run_cli, ws, model)
    assert code == 0, out + err
    folder = ws / "exp" / "g" / "synth"
    before = _tree(folder)
    assert len([n for n in before if n.endswith(".wav")]) == 5

    code, out, err = _separate(run_cli, ws, model, *change, crash=True)
    assert code == 1 and "crashed on purpose" in out + err
    after = _tree(folder)
    ledger = Ledger(folder)
    record = json.loads((folder / "separate.json").read_text())
    wavs = sorted(n for n in before if n.endswith(".wav"))
    assert sorted(n for n in after if n.endswith(".wav")) == wavs  # nothing removed
    replaced = [n for n in wavs if after[n] != before[n]]
    assert len(replaced) == (0 if change == ["--overwrite"] else 1)  # the one batch done before the crash
    for name in wavs:  # every output is described by its record (its stat), old or new
        assert ledger.check(name, folder / name, ledger.get(name).input, ledger.settings_of(name)) is None
    assert record["count"] == 5 and record["kept"] == 5 - record["written"]
    assert record["written"] == 1 and record["stopped"]
    if change == ["--overwrite"]:
        assert record["consistent"] and record["complete"]  # same settings: the old outputs are valid
    else:
        assert not record["consistent"] and len(record["made_with"]) == 2

    code, out, err = _separate(run_cli, ws, model, *change[:2] if change[0] == "-o" else ())
    assert code == 0, out + err
    final = _tree(folder)
    if change == ["--overwrite"]:
        assert "0 of 5" in out  # resumable: the kept outputs are current for these settings
        assert {n: final[n] for n in wavs} == {n: before[n] for n in wavs}
    else:
        assert "separated 4 of 5" in out  # only the kept (stale) ones are made again
        assert all(final[n] != before[n] for n in wavs)
        assert json.loads((folder / "separate.json").read_text())["consistent"]


def test_a_failed_run_keeps_outputs_of_rows_the_split_no_longer_has(tmp_path, run_cli, monkeypatch):
    monkeypatch.delenv("CRASH_AT", raising=False)
    import pandas as pd

    from lasskit.splits import write_split_csv

    ws = tmp_path / "ws"
    split = make_split(ws)
    model = _model(tmp_path)
    assert _separate(run_cli, ws, model)[0] == 0
    folder = ws / "exp" / "g" / "synth"
    frame = pd.read_csv(split / "mixtures.csv", dtype=str, keep_default_na=False)
    write_split_csv(split, frame.iloc[:3])
    before = _tree(folder)
    code, out, err = _separate(run_cli, ws, model, "-o", "gain=0.5", crash=True)
    assert code == 1
    after = _tree(folder)
    assert {"synth_0003.wav", "synth_0004.wav"} <= set(after)
    assert after["synth_0003.wav"] == before["synth_0003.wav"]
    code, out, err = _separate(run_cli, ws, model, "-o", "gain=0.5")
    assert code == 0 and "removed 2 output(s)" in out
    assert not (folder / "synth_0003.wav").exists()


@pytest.mark.parametrize("args, message", [
    (["--window-seconds", "0.0001"], "--window-seconds 0.0001: must be at least 0.1 s"),
    (["--window-seconds", "1", "--context-seconds", "0.45"], "leaves under 0.1 s of new audio"),
    (["--window-seconds", "1", "--context-seconds", "0", "--crossfade-seconds", "0.95"], "leaves under 0.1 s"),
    (["--window-seconds", "0.09", "--context-seconds", "0", "--crossfade-seconds", "0"], "at least 0.1 s"),
])
def test_recording_windows_of_a_few_samples_are_refused(tmp_path, run_cli, args, message):
    import numpy as np

    from lasskit import audio

    audio.write(tmp_path / "walk.wav", np.full(16000, 0.1, dtype=np.float32), 16000, "float")
    code, out, err = run_cli("separate", tmp_path / "walk.wav", "--query", "rain", "--out", tmp_path / "out",
                             "--model", "passthrough", "--device", "cpu", *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, out + err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("value", ["0.0001", "0.05"])  # nan, inf: refused by the CLI layer
def test_split_chunks_of_a_few_samples_are_refused(tmp_path, run_cli, value):
    ws = tmp_path / "ws"
    make_split(ws)
    code, out, err = run_cli("--workspace", ws, "separate", "--split", "synth", "--model", "passthrough",
                             "--device", "cpu", "--chunk-seconds", value)
    assert code == 2 and f"--chunk-seconds {float(value):g}: must be at least 0.1 s" in err, out + err
    assert not (ws / "exp").exists()


def test_a_query_is_stripped_like_the_queries_of_a_csv(tmp_path, run_cli):
    import numpy as np

    from lasskit import audio

    audio.write(tmp_path / "walk.wav", np.full(16000, 0.1, dtype=np.float32), 16000, "float")
    (tmp_path / "q.csv").write_text("file,query\nwalk.wav,  rain \n")
    for args, out in (([tmp_path / "walk.wav", "--query", " rain\t"], "a"), (["--queries", tmp_path / "q.csv"], "b")):
        code, stdout, stderr = run_cli("separate", *args, "--out", tmp_path / out, "--model", "passthrough",
                                       "--device", "cpu")
        assert code == 0, stdout + stderr
    assert sorted(p.name for p in (tmp_path / "a").glob("*.wav")) == ["walk__rain.wav"]
    assert (tmp_path / "a" / "walk__rain.wav").read_bytes() == (tmp_path / "b" / "walk__rain.wav").read_bytes()
    rows_a = (tmp_path / "a" / "separations.csv").read_text().splitlines()
    rows_b = (tmp_path / "b" / "separations.csv").read_text().splitlines()
    assert rows_a[1].split(",")[1:] == rows_b[1].split(",")[1:] and ",rain," in rows_a[1] + ","
    code, stdout, stderr = run_cli("separate", tmp_path / "walk.wav", "--query", " \t ", "--out", tmp_path / "c",
                                   "--model", "passthrough", "--device", "cpu")
    assert code == 2 and "empty query" in stderr and not (tmp_path / "c").exists()


def test_a_recording_that_fails_on_overwrite_keeps_its_old_outputs(tmp_path, run_cli, monkeypatch):
    import numpy as np

    from lasskit import audio

    monkeypatch.delenv("CRASH_AT", raising=False)
    for k, stem in enumerate(("a", "b")):
        audio.write(tmp_path / "in" / f"{stem}.wav", np.full(16000, 0.1 * (k + 1), dtype=np.float32), 16000, "float")
    model = _model(tmp_path)
    args = ("separate", tmp_path / "in", "--query", "rain", "--query", "dog", "--out", tmp_path / "out",
            "--model", model, "--device", "cpu", "--residual")
    code, out, err = run_cli(*args)
    assert code == 0, out + err
    before = _tree(tmp_path / "out")
    assert sorted(n for n in before if n.endswith(".wav")) == [
        "a__dog.wav", "a__dog__residual.wav", "a__rain.wav", "a__rain__residual.wav",
        "b__dog.wav", "b__dog__residual.wav", "b__rain.wav", "b__rain__residual.wav"]
    monkeypatch.setenv("CRASH_AT", "2")  # the model fails on the second recording
    for extra in (["--overwrite"], ["-o", "gain=0.5"]):
        code, out, err = run_cli(*args, *extra)
        assert code == 1 and "crashed on purpose" in out + err, out + err
        after = _tree(tmp_path / "out")
        for name in ("b__dog.wav", "b__dog__residual.wav", "b__rain.wav", "b__rain__residual.wav"):
            assert after[name] == before[name]  # b failed: its old outputs stay, with their records
        rows = (tmp_path / "out" / "separations.csv").read_text()
        assert "b__rain.wav" in rows and "b__dog.wav" in rows
    monkeypatch.delenv("CRASH_AT")
    code, out, err = run_cli(*args, "-o", "gain=0.5")
    assert code == 0 and "separated 4 of 8" in out, out + err
