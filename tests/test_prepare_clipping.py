"""`prepare` never clips: a file that would saturate in 16-bit is written as float WAV, counted,
and its peak is in the manifest. And the organizers' CSV is read exactly as their csv.reader does."""

from __future__ import annotations

import csv
import re

import numpy as np
import pytest
import soundfile as sf

from lasskit import audio, soundgen
from lasskit.corpora import prepare_corpus
from lasskit.errors import UsageError
from lasskit.manifest import read_manifest
from lasskit.official import read_official_csv, read_official_rows


def _hot_sources(src):
    """A float file peaking at 1.58, a 16-bit square wave (resampling overshoots it), a quiet one."""
    x = soundgen.generate("tone", 0.5, 48000, seed=1)
    sf.write(src / "hot_float.wav", (x / np.max(np.abs(x)) * 1.58).astype(np.float32), 48000, subtype="FLOAT")
    t = np.arange(22050) / 44100
    square = np.where(np.sin(2 * np.pi * 441 * t) >= 0, 32767, -32768).astype(np.int16)
    sf.write(src / "square.wav", square, 44100, subtype="PCM_16")
    sf.write(src / "quiet.wav", (0.3 * x).astype(np.float32), 48000, subtype="PCM_16")


def test_would_clip_files_are_float_unclipped_and_counted(tmp_path, run_cli):
    src = tmp_path / "hot"
    src.mkdir()
    _hot_sources(src)
    (report,) = prepare_corpus("folder", src, tmp_path / "data", jobs=1)
    m = {c.id: c for c in read_manifest(report.path).clips}
    for name in ("hot_float", "square"):
        path = tmp_path / f"data/hot/audio/{name}.wav"
        assert sf.info(path).subtype == "FLOAT"
        got, _ = sf.read(path, dtype="float32")
        expected = audio.load(src / f"{name}.wav")  # the careful conversion, unclipped
        assert np.array_equal(got, expected) and np.max(np.abs(got)) > 1.0
        assert float(m[name].peak_dbfs) == pytest.approx(20 * np.log10(np.max(np.abs(expected))), abs=0.01)
        assert float(m[name].peak_dbfs) > 0
    assert float(m["hot_float"].peak_dbfs) == pytest.approx(20 * np.log10(1.58), abs=0.05)
    assert sf.info(tmp_path / "data/hot/audio/quiet.wav").subtype == "PCM_16" and float(m["quiet"].peak_dbfs) < 0
    assert report.float_files == 2 and report.max_peak_dbfs == pytest.approx(float(m["hot_float"].peak_dbfs), abs=0.01)
    assert any("2 file(s) would have clipped in 16-bit" in n and "32-bit float" in n for n in report.notes)
    code, out, err = run_cli("--workspace", tmp_path / "ws", "prepare", "folder", src, "--jobs", "1")
    assert code == 0 and "would have clipped" in " ".join(out.split())


def test_clips_pcm16_is_exactly_where_the_encoder_saturates():
    top, bottom = 32767.5 / 32768, -32768.5 / 32768
    assert not audio.clips_pcm16(np.array([32767 / 32768, -1.0]))
    assert audio.clips_pcm16(np.array([np.nextafter(top, 2)])) and audio.clips_pcm16(np.array([1.0]))
    assert audio.clips_pcm16(np.array([np.nextafter(bottom, -2)]))
    for x in (np.nextafter(top, 0), np.nextafter(bottom, 0)):  # just inside: the encoder keeps it
        ints = np.frombuffer(audio.wav_payload(np.array([x]), "pcm16"), "<i2")
        assert not audio.clips_pcm16(np.array([x])) and int(ints[0]) == round(x * 32768)


# --- the organizers' CSV, as their evaluator reads it -------------------------------------------


def _organizers(path):
    """Their code: open(), csv.reader(delimiter=','), drop the header, source, noise, snr, caption = row."""
    with open(path) as fh:
        rows = [row for row in csv.reader(fh, delimiter=",")][1:]
    return [tuple(r) for r in rows]


def test_official_csv_fields_byte_for_byte(tmp_path):
    path = tmp_path / "official.csv"
    path.write_text(
        "source, noise, snr, caption\n"
        'a_1,b_2,3,"A dog barks, twice. "\n'
        "a_1,b_2,-4, A caption with a leading space \n"   # unquoted, spaces kept by csv.reader
        'c_3,d_4, 5,"Line one\r\nline two"\r\n'
        'c_3,d_4,0,"""Quoted"" word"\n',
        newline="",
    )
    rows = read_official_rows(path)
    assert [(r.source, r.noise, r.snr, r.caption) for r in rows] == _organizers(path)
    assert rows[1].caption == " A caption with a leading space " and rows[2].snr == " 5"
    assert [r.line for r in rows] == [2, 3, 4, 6]
    frame = read_official_csv(path)
    assert list(frame["caption"]) == [r[3] for r in _organizers(path)]


def test_official_csv_on_the_real_file_matches_their_reader(metadata_dir):
    path = metadata_dir / "lass_synthetic_validation.csv"
    rows = read_official_rows(path)
    assert [(r.source, r.noise, r.snr, r.caption) for r in rows] == _organizers(path)
    assert sum(r.caption != r.caption.strip() for r in rows) > 0  # trailing spaces kept


@pytest.mark.parametrize("text, word", [
    ("noise, source, snr, caption\na,b,1,c\n", "header"),
    ("source, noise, snr, caption\na,b,1\n", "line 2: 3 field(s)"),
    ("source, noise, snr, caption\na,b,1,x,y\n", "line 2: 5 field(s)"),
    ("source, noise, snr, caption\na,b,loud,c\n", "line 2: snr 'loud'"),
    ("", "empty file"),
])
def test_official_csv_errors_name_the_line(tmp_path, text, word):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(UsageError, match=re.escape(word)) as info:
        read_official_rows(path)
    assert str(path) in str(info.value)
