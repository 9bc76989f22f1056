"""Audio core: decoding every format, downmix, resampling, atomic writes, bad files."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from lasskit import audio, soundgen
from lasskit.errors import AudioError


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT"])
def test_reads_every_wav_depth_as_float(tmp_path, subtype):
    x = soundgen.generate("tone", 0.25, 16000, seed=1)
    path = tmp_path / f"x_{subtype}.wav"
    sf.write(path, x, 16000, subtype=subtype)
    data, rate = audio.read(path)
    assert rate == 16000 and data.shape == (1, len(x)) and data.dtype == np.float32
    tol = {"PCM_U8": 1e-2, "PCM_16": 1e-4}.get(subtype, 1e-6)
    assert np.max(np.abs(data[0] - x)) < tol


@pytest.mark.parametrize("ext", ["flac", "ogg", "mp3"])
def test_reads_compressed_formats(tmp_path, ext):
    x = soundgen.generate("hum", 0.5, 16000, seed=2)
    path = tmp_path / f"x.{ext}"
    sf.write(path, x, 16000)
    y = audio.load(path)
    assert abs(len(y) - len(x)) <= 1200  # mp3/ogg encoders may add padding
    if ext == "flac":
        assert len(y) == len(x) and np.max(np.abs(y - x)) < 1e-4


def test_downmix_is_channel_average():
    x = np.stack([np.ones(10), np.zeros(10), -0.5 * np.ones(10)]).astype(np.float32)
    assert np.allclose(audio.to_mono(x), 0.5 / 3)


def test_load_downmixes_and_resamples_to_16k_exact_length(tmp_path):
    x = soundgen.generate("tone", 1.0, 44100, seed=3, channels=2)
    sf.write(tmp_path / "s.wav", x.T, 44100, subtype="PCM_16")
    y = audio.load(tmp_path / "s.wav")
    assert y.shape == (16000,) and y.dtype == np.float32


@pytest.mark.parametrize("resampler", ["soxr", "torchaudio"])
def test_resamplers_keep_a_tone_and_reject_aliases(resampler):
    pytest.importorskip("torchaudio") if resampler == "torchaudio" else None
    t = np.arange(44100) / 44100
    tone = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    y = audio.resample(tone, 44100, 16000, resampler)
    assert len(y) == 16000
    spectrum = np.abs(np.fft.rfft(y[2000:-2000] * np.hanning(12000)))
    peak_hz = np.argmax(spectrum) * 16000 / 12000
    assert abs(peak_hz - 1000) < 3
    # a 9 kHz tone is above the new Nyquist (8 kHz): soxr must remove it almost entirely
    alias = audio.resample(np.sin(2 * np.pi * 9000 * t).astype(np.float32), 44100, 16000, resampler)
    level_db = 10 * np.log10(np.mean(alias[2000:-2000] ** 2) / 0.5 + 1e-30)
    assert level_db < (-100 if resampler == "soxr" else 0)


def test_write_is_pcm16_by_default_and_float_on_request(tmp_path):
    x = np.linspace(-0.5, 0.5, 1000, dtype=np.float32)
    audio.write(tmp_path / "a.wav", x)
    audio.write(tmp_path / "b.wav", x, subtype="float")
    assert sf.info(tmp_path / "a.wav").subtype == "PCM_16"
    assert sf.info(tmp_path / "b.wav").subtype == "FLOAT"
    assert np.array_equal(sf.read(tmp_path / "b.wav", dtype="float32")[0], x)


def test_pcm_write_saturates_instead_of_wrapping(tmp_path):
    audio.write(tmp_path / "c.wav", np.array([2.0, -2.0, 0.5], dtype=np.float32))
    y, _ = sf.read(tmp_path / "c.wav")
    assert y[0] > 0.99 and y[1] <= -0.99 and abs(y[2] - 0.5) < 1e-4


def test_write_is_atomic_and_leaves_no_temp_file_on_failure(tmp_path):
    target = tmp_path / "out.wav"
    audio.write(target, np.zeros(10, dtype=np.float32) + 0.1)
    before = target.read_bytes()
    with pytest.raises(AudioError):
        audio.write(target, np.array([np.nan], dtype=np.float32))
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]


def test_bad_files_are_errors_naming_the_file(tmp_path):
    sf.write(tmp_path / "full.wav", np.full(16000, 0.1, dtype=np.float32), 16000, subtype="PCM_16")
    data = (tmp_path / "full.wav").read_bytes()
    (tmp_path / "truncated.wav").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.wav").write_bytes(data[:44])
    (tmp_path / "garbage.wav").write_bytes(b"not audio at all" * 8)
    sf.write(tmp_path / "nan.wav", np.array([0.1, np.nan] * 50, dtype=np.float32), 16000, subtype="FLOAT")
    for name, word in [("truncated.wav", "truncated"), ("empty.wav", "empty"), ("garbage.wav", "unreadable"),
                       ("nan.wav", "NaN"), ("missing.wav", "no such")]:
        with pytest.raises(AudioError) as info:
            audio.load(tmp_path / name)
        assert name in str(info.value) and word in str(info.value)


@pytest.mark.parametrize("channels", [1, 2, 3])
def test_pcm16_fast_path_is_bit_identical_to_averaging_floats(tmp_path, channels):
    rng = np.random.default_rng(channels)
    ints = rng.integers(-32768, 32768, size=(4410, channels)).astype(np.int16)
    ints[:5] = 32767
    ints[5:10] = -32768  # full scale both ways: the sums must stay exact
    path = tmp_path / "x.wav"
    sf.write(path, ints, 44100, subtype="PCM_16")
    floats, _ = sf.read(path, dtype="float32", always_2d=True)
    mono = floats[:, 0].copy()
    for c in range(1, channels):
        mono += floats[:, c]
    if channels > 1:
        mono *= np.float32(1.0 / channels)
    expected = audio.resample(mono, 44100, 16000)
    assert np.array_equal(audio.load(path), expected)
    assert np.array_equal(audio.load(path, data=path.read_bytes()), expected)  # decoded from memory


def test_decoding_from_memory_still_catches_truncation(tmp_path):
    sf.write(tmp_path / "full.wav", np.full(16000, 0.1, dtype=np.float32), 16000, subtype="PCM_16")
    data = (tmp_path / "full.wav").read_bytes()
    with pytest.raises(AudioError, match="truncated"):
        audio.load(tmp_path / "cut.wav", data=data[: len(data) // 2])


def test_broken_links_are_listed_and_named(tmp_path):
    sf.write(tmp_path / "ok.wav", np.zeros(100, dtype=np.float32), 16000)
    (tmp_path / "dangling.wav").symlink_to(tmp_path / "gone.wav")
    (tmp_path / "loop.wav").symlink_to(tmp_path / "loop.wav")
    assert [p.name for p in audio.find_audio(tmp_path)] == ["dangling.wav", "loop.wav", "ok.wav"]
    with pytest.raises(AudioError, match="broken symbolic link"):
        audio.read_source(tmp_path / "dangling.wav")
    with pytest.raises(AudioError, match="symbolic link loop"):
        audio.read_source(tmp_path / "loop.wav")
    with pytest.raises(AudioError, match="broken symbolic link"):
        audio.load(tmp_path / "dangling.wav")


def test_peak_dbfs():
    assert audio.peak_dbfs(np.array([0.5, -1.0])) == 0.0
    assert audio.peak_dbfs(np.array([0.0, 0.0])) == float("-inf")
    assert audio.peak_dbfs(np.array([1.58])) == pytest.approx(3.973, abs=1e-3)
