"""Separating recordings: the long-audio engine (windows, cross-fade, streaming), the file loop
(`lasskit separate FILE_OR_DIR --query Q --out DIR`) and the Python API (`lasskit.load_model`)."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lasskit.separation.longaudio import ArraySource, StreamStats, Windows, separate_stream

RATE = 16000


def noise(seconds: float, rate: int = RATE, channels: int = 1, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((channels, int(seconds * rate))).astype(np.float32) * 0.1
    return x[0] if channels == 1 else x


def window_dependent(x: np.ndarray) -> np.ndarray:
    """A stand-in model whose output depends on the whole window: the signal minus its window mean,
    times a ramp over the window (a seam would show)."""
    ramp = np.linspace(0.5, 1.5, x.shape[1], dtype=np.float32)
    return ((x - x.mean(axis=1, keepdims=True)) * ramp).astype(np.float32)


def stream(x: np.ndarray, rate: int, geometry: Windows, run=window_dependent, rows: int | None = None,
           block: int = 7000, model_rate: int = RATE):
    source = ArraySource(x, rate)
    stats = StreamStats()
    rows = rows or source.channels
    out = np.concatenate(list(separate_stream(source, run, rows, model_rate, geometry, stats, block_frames=block)))
    return out, stats


# --- windows -------------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [16000, 16001, 35123, 48000, 80000, 96000, 100003])
def test_window_weights_sum_to_one_and_skip_the_context(length: int):
    g = Windows(16000, 2000, 3000)  # hop 9000
    starts = g.starts(length)
    assert len(set(starts)) == len(starts) and starts == sorted(starts)  # no window computed twice
    total = np.zeros(length)
    for k, s in enumerate(starts):
        w = g.weights(s, starts[k - 1] if k else None, k == len(starts) - 1) if len(starts) > 1 else np.ones(length)
        if len(starts) > 1:
            if k:  # the first `context` samples of a window are never used (except at the start)
                assert not w[:g.context].any()
            if k < len(starts) - 1:
                assert not w[-g.context:].any()
        total[s:s + len(w)] += w
    np.testing.assert_allclose(total, 1.0, rtol=0, atol=1e-12)
    if length <= 16000:
        assert starts == [0]


def test_the_last_window_ends_flush_and_the_hop_is_what_the_context_leaves():
    g = Windows(10, 2, 1)
    assert g.hop == 5
    assert g.starts(10) == [0]
    assert g.starts(11) == [0, 1]
    assert g.starts(25) == [0, 5, 10, 15]
    assert g.starts(27) == [0, 5, 10, 15, 17]


def test_streamed_windows_equal_the_windowed_sum_and_do_not_depend_on_block_size():
    g = Windows(16000, 2000, 3000)
    x = noise(7.3)
    out, stats = stream(x, RATE, g, block=4096)
    starts = g.starts(len(x))
    expected = np.zeros(len(x))
    for k, s in enumerate(starts):
        w = g.weights(s, starts[k - 1] if k else None, k == len(starts) - 1)
        expected[s:s + g.window] += w * window_dependent(x[None, s:s + g.window])[0]
    np.testing.assert_allclose(out[:, 0], expected, rtol=0, atol=1e-6)
    assert stats.windows == len(starts) == 13 and stats.frames == len(x)
    again, _ = stream(x, RATE, g, block=1000)
    assert again.tobytes() == out.tobytes()  # same bytes whatever the read size
    longer, long_stats = stream(noise(60.0, seed=1), RATE, g, block=4096)
    assert max(long_stats.held, stats.held) <= 3 * g.window  # memory bounded by the window, not the recording


def test_a_recording_that_fits_one_window_is_one_pass():
    calls = []
    g = Windows(10 * RATE, RATE, RATE)
    x = noise(9.5)
    out, stats = stream(x, RATE, g, run=lambda w: calls.append(w.shape[1]) or window_dependent(w))
    assert calls == [len(x)] and stats.windows == 1
    np.testing.assert_array_equal(out[:, 0], window_dependent(x[None])[0])


def test_identity_model_returns_the_input_exactly_any_rate_and_channels():
    g = Windows(10 * RATE, RATE, RATE)
    x = noise(37.25, channels=2)
    out, stats = stream(x, RATE, g, run=lambda w: w.copy())
    assert out.shape == (x.shape[1], 2) and stats.windows == 5
    np.testing.assert_allclose(out.T, x, rtol=0, atol=1e-6)
    assert out.T.tobytes() == x.tobytes()
    # 44.1 kHz: the estimate is the model-rate signal resampled back (soxr both ways), the input's length
    import soxr

    y = noise(23.1, rate=44100, channels=2, seed=3)
    out, stats = stream(y, 44100, g, run=lambda w: w.copy())
    assert out.shape == (y.shape[1], 2)
    there_and_back = soxr.resample(soxr.resample(y.T, 44100, RATE, "HQ"), RATE, 44100, "HQ")
    n = min(len(there_and_back), len(out))
    np.testing.assert_allclose(out[:n], there_and_back[:n], rtol=0, atol=1e-6)
    assert stats.cropped + stats.padded <= 2


def test_window_options_are_checked():
    from lasskit.errors import UsageError

    class M:
        max_seconds = 5.0

    with pytest.raises(UsageError, match="at most 5"):
        Windows.for_model(M(), RATE, 8.0)
    with pytest.raises(UsageError, match="under 0.1 s of new audio"):
        Windows.for_model(object(), RATE, 2.0, 1.0, 0.5)
    assert Windows.for_model(object(), RATE) == Windows(160000, 16000, 16000)  # 10 s, 1 s, 1 s


# --- the file loop --------------------------------------------------------------------------------


@pytest.fixture
def recordings(tmp_path: Path) -> Path:
    folder = tmp_path / "rec"
    (folder / "sub").mkdir(parents=True)
    sf.write(folder / "walk.flac", noise(12.5, 44100, 2, seed=1).T, 44100)
    sf.write(folder / "sub" / "park.wav", noise(3.0, seed=2), RATE, subtype="FLOAT")
    return folder


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_separate_files_names_rates_channels_residual_and_csv(recordings: Path, tmp_path: Path):
    from lasskit.separation.files import separate_files

    out = tmp_path / "out"
    report = separate_files([recordings], ["A dog barking!", "rain"], out, model="passthrough", device="cpu",
                            residual=True)
    assert report.failures == [] and report.written == 8 and report.inputs == 2
    est, rate = sf.read(out / "walk__a-dog-barking.wav", dtype="float32")
    assert rate == 44100 and est.shape == (int(12.5 * 44100), 2)
    park, rate = sf.read(out / "sub" / "park__rain.wav", dtype="float32")
    x, _ = sf.read(recordings / "sub" / "park.wav", dtype="float32")
    assert rate == RATE and park.tobytes() == x.tobytes()  # passthrough at the model's rate: exact
    res, _ = sf.read(out / "walk__rain__residual.wav", dtype="float32")
    mix, _ = sf.read(recordings / "walk.flac", dtype="float32")
    np.testing.assert_allclose(res, mix - est, rtol=0, atol=1e-6)
    rows = read_csv(out / "separations.csv")
    assert [r["output"] for r in rows] == ["sub/park__a-dog-barking.wav", "sub/park__rain.wav",
                                           "walk__a-dog-barking.wav", "walk__rain.wav"]
    assert rows[3] == {"input": str(recordings / "walk.flac"), "query": "rain", "output": "walk__rain.wav",
                       "residual": "walk__rain__residual.wav", "model": "passthrough", "checkpoint_sha256": "",
                       "seconds": "12.500"}
    ledger = json.loads((out / "provenance.json").read_text())
    digest = hashlib.blake2b((recordings / "walk.flac").read_bytes(), digest_size=16).hexdigest()
    assert ledger["outputs"]["walk__rain.wav"][0] == digest
    # the same bytes the Python API gives for the decoded recording
    import lasskit

    model = lasskit.load_model("passthrough", device="cpu")
    api = model.separate(mix.T.copy(), 44100, "A dog barking!")
    assert api.T.tobytes() == est.tobytes()


def test_a_rerun_skips_what_was_made_and_remakes_what_changed(recordings: Path, tmp_path: Path):
    from lasskit.separation.files import separate_files

    out = tmp_path / "out"
    separate_files([recordings / "sub"], ["rain"], out, model="passthrough", device="cpu")
    before = (out / "park__rain.wav").stat().st_mtime_ns
    again = separate_files([recordings / "sub"], ["rain"], out, model="passthrough", device="cpu")
    assert (again.written, again.skipped) == (0, 1)
    assert (out / "park__rain.wav").stat().st_mtime_ns == before
    mono = separate_files([recordings / "sub"], ["rain"], out, model="passthrough", device="cpu", window_seconds=2.75,
                          context_seconds=0.5, crossfade_seconds=0.5)
    assert mono.written == 1 and dict(mono.reasons) == {"settings changed: window": 1}
    more = separate_files([recordings / "sub"], ["rain", "wind"], out, model="passthrough", device="cpu",
                          window_seconds=2.75, context_seconds=0.5, crossfade_seconds=0.5)
    assert (more.written, more.skipped) == (1, 1)


def test_mono_gives_one_channel_the_average(recordings: Path, tmp_path: Path):
    from lasskit.separation.files import separate_files

    separate_files([recordings / "walk.flac"], ["rain"], tmp_path / "o", model="passthrough", device="cpu",
                   mono=True)
    info = sf.info(str(tmp_path / "o" / "walk__rain.wav"))
    assert (info.channels, info.samplerate, info.frames) == (1, 44100, int(12.5 * 44100))


def test_bad_inputs_are_one_line_each_and_the_rest_is_done(recordings: Path, tmp_path: Path, run_cli):
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken.wav").write_bytes(b"RIFF....not audio")
    table = tmp_path / "q.csv"
    table.write_text("file,query\nrec/sub/park.wav,birds\nmissing.wav,rain\nrec/walk.flac,\n", encoding="utf-8")
    code, stdout, stderr = run_cli("separate", str(recordings / "sub" / "park.wav"), str(tmp_path / "empty"),
                                   str(tmp_path / "broken.wav"), "--query", "rain", "--queries", str(table),
                                   "--out", str(tmp_path / "out"), "--model", "passthrough", "--device", "cpu")
    assert code == 1
    failures = read_csv(tmp_path / "out" / "failures.csv")
    reasons = sorted(f["reason"].split(": ", 1)[-1] for f in failures)
    assert len(failures) == 4
    assert any("no audio files in this folder" in r for r in reasons)
    assert any("cannot read audio header" in r for r in reasons)
    assert any("no such file" in r for r in reasons)
    assert any("empty query" in r for r in reasons)
    assert sorted(p.name for p in (tmp_path / "out").glob("*.wav")) == ["park__birds.wav", "park__rain.wav"]
    assert "Traceback" not in stdout + stderr and "4 input(s) failed" in stderr


def test_usage_errors_change_nothing(recordings: Path, tmp_path: Path, run_cli):
    for args in (["--query", ""], [], ["--query", "rain", "--split", "x"], ["--query", "rain", "--name", "n"],
                 ["--query", "rain", "--window-seconds", "1", "--context-seconds", "1"]):
        code, stdout, stderr = run_cli("separate", str(recordings), *args, "--out", str(tmp_path / "out"),
                                       "--model", "passthrough", "--device", "cpu")
        assert code == 2, (args, stdout, stderr)
        assert len(stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()
    code, stdout, stderr = run_cli("separate", str(recordings), "--query", "rain", "--model", "passthrough")
    assert code == 2 and "--out DIR is required" in stderr


def test_ctrl_c_leaves_no_partial_output(recordings: Path, tmp_path: Path):
    from lasskit.separation.files import separate_files

    class Interrupted:
        name = "interrupted"
        sample_rate = RATE

        def __init__(self):
            self.calls = 0
            self.options = {}

        def separate(self, mixtures, queries):
            self.calls += 1
            if self.calls == 3:
                raise KeyboardInterrupt
            return mixtures.clone()

    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):  # park (1 call) is finished, walk is cut after its first window
        separate_files([recordings / "sub" / "park.wav", recordings / "walk.flac"], ["rain"], out,
                       model=Interrupted(), device="cpu", window_seconds=4.0)
    assert sorted(p.name for p in out.iterdir()) == ["digests.json", "park__rain.wav", "provenance.json",
                                                     "separations.csv"]
    assert list(json.loads((out / "provenance.json").read_text())["outputs"]) == ["park__rain.wav"]


@pytest.mark.slow  # the full-size baseline on CPU
def test_baseline_one_pass_when_the_recording_fits_and_windows_when_not(tmp_path: Path):
    import torch

    from tests.test_separate import random_baseline

    import lasskit.api as api
    from lasskit.separation.model import build_model

    model = random_baseline()
    calls = []
    forward = model.network.forward
    model.network.forward = lambda x, c: calls.append(x.shape[-1]) or forward(x, c)
    sep = api.Separator(build_model(model, device="cpu"), "cpu")
    x = noise(2.0, seed=5)
    est = sep.separate(x, RATE, "rain", window_seconds=2.0, context_seconds=0.25, crossfade_seconds=0.25)
    assert calls == [32000]
    with torch.inference_mode():
        whole = model.separate(torch.from_numpy(x)[None], ["rain"])[0].numpy()
    assert est.tobytes() == whole.tobytes()  # the organizers' single pass
    calls.clear()
    long = noise(5.0, seed=6)
    est = sep.separate(long, RATE, ["rain", "dog"], window_seconds=2.0, context_seconds=0.25,
                       crossfade_seconds=0.25)
    assert est.shape == (2, len(long)) and calls == [32000] * 4  # 2 queries share each of 4 windows' calls


def test_the_api_keeps_the_type_shape_and_device():
    import torch

    import lasskit

    model = lasskit.load_model("passthrough", device="cpu")
    x = noise(1.0, 22050, channels=2)
    y = model.separate(x, 22050, "rain")
    assert isinstance(y, np.ndarray) and y.shape == x.shape and y.dtype == np.float32
    t = torch.from_numpy(x[0]).double()
    y = model.separate(t, 22050, ["rain", "dog"])
    assert isinstance(y, torch.Tensor) and y.shape == (2, x.shape[1]) and y.dtype == torch.float64
    assert model.separate(x, 22050, ["rain"], mono=True).shape == (1, x.shape[1])
    from lasskit.errors import UsageError

    with pytest.raises(UsageError, match="non-empty"):
        model.separate(x, 22050, "  ")


def test_import_lasskit_loads_no_torch_and_the_api_is_there_lazily():
    import subprocess
    import sys

    code = ("import sys, lasskit; assert 'torch' not in sys.modules; f = lasskit.load_model; "
            "assert f.__module__ == 'lasskit.api' and 'torch' not in sys.modules; print('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.stdout.strip() == "ok", result.stderr
