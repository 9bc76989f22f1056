"""mix's level options (issue 22): --snr within +-60 dB and --silence-db below 0 dBFS, refused in
one line before any work, from the command line or lasskit.yaml."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("args, said", [
    (["--snr", "-300", "300"], "--snr -300 300: each bound must be from -60 to 60 dB"),
    (["--snr", "-10", "61"], "--snr -10 61: each bound must be from -60 to 60 dB"),
    (["--snr", "-10", "10", "--silence-db", "10"], "--silence-db 10: must be a level below 0 dBFS"),
    (["--snr", "-10", "10", "--silence-db", "0"], "--silence-db 0: must be a level below 0 dBFS"),
])
def test_out_of_range_levels_are_one_line_and_change_nothing(tmp_path, run_cli, args, said):
    ws = tmp_path / "ws"
    ws.mkdir()
    code, out, err = run_cli("-w", ws, "mix", *args, "--name", "x")
    assert code == 2 and err.count("\n") == 1 and said in err
    assert not (ws / "data").exists()


def test_a_bad_snr_in_lasskit_yaml_names_the_file(tmp_path, run_cli):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "lasskit.yaml").write_text("mix:\n  snr: [-100, 10]\n")
    code, out, err = run_cli("-w", ws, "mix", "--name", "x")
    assert code == 2 and "lasskit.yaml: mix.snr" in err and "from -60 to 60 dB" in err


# -- outside check (Q2): mix --from-official --overwrite refused after deleting the split ------------
@pytest.mark.parametrize("csv_text, said", [
    ("root:x:0:0\n", "header is"),  # not the organizers' CSV
    ("source,noise,snr,caption\nnope_a,nope_b,3,a dog\n", "none of the 2 clip(s)"),  # no clip under --clips
])
def test_a_refused_rebuild_from_official_leaves_the_old_split(tmp_path, run_cli, csv_text, said):
    """It deleted data/splits/<name> (56 files of the demo's train_mix), then exited 2."""
    import numpy as np
    import soundfile as sf

    ws = tmp_path / "ws"
    split = ws / "data" / "splits" / "s"
    (split / "mixture").mkdir(parents=True)
    (split / "mixtures.csv").write_text("mixture,query\ns_0.wav,a bird\n")
    sf.write(str(split / "mixture" / "s_0.wav"), np.zeros(160, np.float32), 16000)
    clips = tmp_path / "clips"
    clips.mkdir()
    sf.write(str(clips / "a.wav"), np.zeros(160, np.float32), 16000)
    bad = tmp_path / "official.csv"
    bad.write_text(csv_text)
    before = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in ws.rglob("*")}
    code, _, err = run_cli("-w", ws, "mix", "--name", "s", "--overwrite", "--from-official", bad, "--clips", clips)
    assert code == 2 and err.count("\n") == 1 and said in err, err
    assert {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in ws.rglob("*")} == before
