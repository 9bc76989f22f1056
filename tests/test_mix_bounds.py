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
