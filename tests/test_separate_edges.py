"""Separating recordings at the edges: what a user hands the API or `lasskit separate FILE` that
could otherwise come back silently wrong (integer samples, soundfile's (samples, channels) arrays,
names that are not UTF-8, a residual and an estimate with one name, outputs over WAV's 4 GiB,
two queries with one output name, a stale residual listed with a remade estimate, failure counts)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lasskit.errors import UsageError

RATE = 16000


def noise(frames: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((frames, channels)) * 0.1).astype(np.float32)


@pytest.fixture(scope="module")
def model():
    import lasskit

    return lasskit.load_model("passthrough", device="cpu")


def test_the_api_refuses_integer_samples_rather_than_treating_them_as_floats(model):
    x = (noise(RATE)[:, 0] * 32767).astype(np.int16)
    with pytest.raises(UsageError, match=r"int16.*x / 32768"):
        model.separate(x, RATE, "rain")
    import torch

    with pytest.raises(UsageError, match="int32"):
        model.separate(torch.from_numpy(x.astype(np.int32)), RATE, "rain")
    with pytest.raises(UsageError, match=r"uint8.*\(x - 128\) / 128"):
        model.separate((x // 256 + 128).astype(np.uint8), RATE, "rain")
    with pytest.raises(UsageError, match="int64"):
        model.separate([int(v) for v in x], RATE, "rain")
    y = model.separate(x.astype(np.float32) / 32768, RATE, "rain")  # the fix it names works
    assert y.dtype == np.float32 and y.shape == x.shape


def test_the_api_refuses_soundfiles_samples_by_channels_layout(model):
    x = noise(RATE, channels=2)  # what soundfile.read gives: (frames, channels)
    with pytest.raises(UsageError, match=r"\(16000, 2\).*wave\.T"):
        model.separate(x, RATE, "rain")
    y = model.separate(x.T, RATE, "rain")
    assert y.shape == (2, RATE) and np.array_equal(y, x.T)


def test_a_recording_whose_name_is_not_utf8_is_separated_and_listed(tmp_path: Path):
    from lasskit.separation.files import separate_files

    folder = os.fsencode(tmp_path / "in") + b"/caf\xe9"
    os.makedirs(folder)
    x = noise(RATE)
    with open(folder + b"/r\xfcde.wav", "wb") as fh:
        sf.write(fh, x, RATE, format="WAV", subtype="FLOAT")
    out = tmp_path / "out"
    report = separate_files([tmp_path / "in"], ["rain"], out, model="passthrough", device="cpu", residual=True)
    assert report.failures == [] and report.written == 2
    with open(out / "separations.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["query"], r["output"], r["residual"]) for r in rows] == [
        ("rain", "caf\\xe9/r\\xfcde__rain.wav", "caf\\xe9/r\\xfcde__rain__residual.wav")]
    assert rows[0]["input"].endswith("in/caf\\xe9/r\\xfcde.wav")
    y, rate = sf.read(out / rows[0]["output"], dtype="float32", always_2d=True)
    assert rate == RATE and np.array_equal(y, x)
    again = separate_files([tmp_path / "in"], ["rain"], out, model="passthrough", device="cpu", residual=True)
    assert again.skipped == 2 and again.written == 0


def test_an_estimate_and_a_residual_with_one_name_are_a_failure_not_an_overwrite(tmp_path: Path):
    from lasskit.separation.files import separate_files

    (tmp_path / "in").mkdir()
    for name, seed in (("a.wav", 1), ("a__b.wav", 2)):
        sf.write(tmp_path / "in" / name, noise(RATE, seed=seed), RATE, subtype="FLOAT")
    out = tmp_path / "out"
    # a.wav with "b" has the residual a__b__residual.wav; a__b.wav with "residual" has the estimate a__b__residual.wav
    report = separate_files([tmp_path / "in"], ["b", "residual"], out, model="passthrough", device="cpu",
                            residual=True)
    assert len(report.failures) == 1 and "a__b__residual.wav" in report.failures[0][1]
    assert report.failures[0][0].endswith("a__b.wav")
    y, _ = sf.read(out / "a__b__residual.wav", dtype="float32", always_2d=True)
    x, _ = sf.read(tmp_path / "in" / "a.wav", dtype="float32", always_2d=True)
    assert np.array_equal(y, x - x)  # a.wav's residual (passthrough: zero), not a__b.wav's estimate


def test_an_output_over_4_gib_is_written_as_rf64(tmp_path: Path, monkeypatch):
    from lasskit.separation import files

    monkeypatch.setattr(files, "WAV_LIMIT", 1000)  # bytes: stands for RIFF's 4 GiB
    x = noise(RATE, channels=2)
    sf.write(tmp_path / "long.wav", x, RATE, subtype="FLOAT")
    report = files.separate_files([tmp_path / "long.wav"], ["rain"], tmp_path / "out", model="passthrough",
                                  device="cpu")
    assert report.failures == []
    path = tmp_path / "out" / "long__rain.wav"
    assert path.read_bytes()[:4] == b"RF64" and sf.info(path).format == "RF64"
    y, rate = sf.read(path, dtype="float32", always_2d=True)
    assert rate == RATE and np.array_equal(y, x)
    sf.write(tmp_path / "short.wav", x[:100], RATE, subtype="FLOAT")  # under the limit: plain RIFF, as before
    files.separate_files([tmp_path / "short.wav"], ["rain"], tmp_path / "out", model="passthrough", device="cpu")
    assert (tmp_path / "out" / "short__rain.wav").read_bytes()[:4] == b"RIFF"


def test_two_queries_with_one_output_name_are_refused_before_anything_is_written(tmp_path: Path, run_cli):
    sf.write(tmp_path / "a.wav", noise(RATE), RATE, subtype="FLOAT")
    code, out, err = run_cli("separate", str(tmp_path / "a.wav"), "--query", "rain", "--query", "Rain!", "--model",
                             "passthrough", "--out", str(tmp_path / "out"))
    assert code == 2 and "'Rain!' and --query 'rain' give the same output name" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_the_failure_count_is_of_inputs_not_of_lines(tmp_path: Path, run_cli):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        sf.write(tmp_path / sub / "x.wav", noise(RATE), RATE, subtype="FLOAT")
    code, out, err = run_cli("separate", str(tmp_path / "a"), str(tmp_path / "b"), "-q", "rain", "-q", "dog",
                             "--model", "passthrough", "--out", str(tmp_path / "out"))
    with open(tmp_path / "out" / "failures.csv", encoding="utf-8") as fh:
        assert [r["input"] for r in csv.DictReader(fh)] == [str(tmp_path / "b" / "x.wav")] * 2  # b's rain and dog
    assert code == 1 and "1 input(s) failed; see" in err
    assert "separated 2 of 2 output(s) from 2 recording(s)" in out and "1 input(s) failed)" in out


def test_a_remade_estimate_is_not_listed_with_the_residual_of_the_old_one(tmp_path: Path):
    from lasskit.separation.files import separate_files

    (tmp_path / "in").mkdir()
    sf.write(tmp_path / "in" / "x.wav", noise(RATE, seed=1), RATE, subtype="FLOAT")
    out = tmp_path / "out"
    separate_files([tmp_path / "in"], ["rain"], out, model="passthrough", device="cpu", residual=True)
    sf.write(tmp_path / "in" / "x.wav", noise(2 * RATE, seed=2), RATE, subtype="FLOAT")  # a new recording
    report = separate_files([tmp_path / "in"], ["rain"], out, model="passthrough", device="cpu")
    assert report.written == 1 and dict(report.reasons) == {"input changed": 1}
    with open(out / "separations.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["output"], r["residual"], r["seconds"]) for r in rows] == [("x__rain.wav", "", "2.000")]
    assert not (out / "x__rain__residual.wav").exists()  # the old recording's residual is gone
    # an unchanged input: the residual of the same estimate stays and is listed
    separate_files([tmp_path / "in"], ["rain"], out, model="passthrough", device="cpu", residual=True)
    (out / "x__rain.wav").unlink()
    separate_files([tmp_path / "in"], ["rain"], out, model="passthrough", device="cpu")
    with open(out / "separations.csv", encoding="utf-8") as fh:
        assert [r["residual"] for r in csv.DictReader(fh)] == ["x__rain__residual.wav"]
