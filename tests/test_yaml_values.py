"""lasskit.yaml values of the wrong shape for their option (a mapping or a list for a one-value
option, true/false for a number or a text) are one line naming the file and the key: they were
written into the package as text ("name: {a: 1}" became the system name "{'a': 1}", "team: [a]"
the team "A", "index: true" system 1)."""

from __future__ import annotations

import shutil

import pytest
import yaml



@pytest.fixture(scope="module")
def demo_ws(tmp_path_factory):
    """A workspace ``package`` accepts (generated outputs and scores, see test_package)."""
    from test_package import make_workspace

    return make_workspace(tmp_path_factory.mktemp("yamlvalues") / "ws")


@pytest.mark.parametrize("key, value, why", [
    ("name", {"a": 1}, "one value, not a mapping"),
    ("team", ["a"], "one value, not a list"),
    ("index", True, "true/false"),
    ("abbreviation", False, "true/false"),
])
def test_package_values_of_the_wrong_shape_are_refused(demo_ws, tmp_path, run_cli, key, value, why):
    ws = tmp_path / "ws"
    shutil.copytree(demo_ws, ws, symlinks=True)
    shutil.rmtree(ws / "submission", ignore_errors=True)
    config = yaml.safe_load((ws / "lasskit.yaml").read_text())
    config["package"][key] = value
    (ws / "lasskit.yaml").write_text(yaml.safe_dump(config))
    code, _, err = run_cli("-w", ws, "package", "--audio-url", "https://drive.google.com/x")
    assert code == 2 and err.count("\n") == 1, err
    assert f"lasskit.yaml: package.{key}: {value!r}: " in err and why in err, err
    assert not (ws / "submission").exists()


def test_lists_stay_fine_where_an_option_takes_several_values(tmp_path, run_cli):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "lasskit.yaml").write_text("mix:\n  snr: [-5, {a: 1}]\n")
    code, _, err = run_cli("-w", ws, "mix", "nosuch")
    assert code == 2 and err.count("\n") == 1 and "lasskit.yaml: mix.snr: [-5, {'a': 1}]" in err, err
    (ws / "lasskit.yaml").write_text("mix:\n  snr: [-5, 5]\n")
    code, _, err = run_cli("-w", ws, "mix", "nosuch")
    assert code == 2 and "nosuch: no such manifest" in err, err


def test_settings_for_the_other_separate_mode_in_lasskit_yaml_are_not_blamed(tmp_path, run_cli):
    """lasskit.yaml may hold settings for recordings (window_seconds, residual) and for splits (jobs):
    each mode ignores the other's instead of refusing them as if typed; typed, they are refused."""
    from lasskit import audio, soundgen

    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "lasskit.yaml").write_text("device: cpu\nseparate:\n  window_seconds: 5\n  residual: true\n  jobs: 1\n")
    clip = tmp_path / "rec" / "walk.wav"
    audio.write(clip, soundgen.generate("bird", 0.5, 16000, seed=1).astype("float32"), 16000, "float")
    code, out, err = run_cli("-w", ws, "separate", clip, "--query", "a bird", "--out", tmp_path / "out",
                             "--model", "passthrough")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").glob("*.wav")) == ["walk__a-bird.wav", "walk__a-bird__residual.wav"]
    code, _, err = run_cli("-w", ws, "separate", clip, "--query", "a bird", "--out", tmp_path / "out",
                           "--model", "passthrough", "--jobs", "2")
    assert code == 2 and "--jobs applies to --split" in err
