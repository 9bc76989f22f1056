"""`prepare` fingerprints every output: a re-run remakes exactly what changed, says why, and an
unchanged re-run reads no audio. Manifest extras: digest, peak_dbfs, fingerprint, freesound_id."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest
import soundfile as sf

from lasskit import audio, miniature, soundgen
from lasskit.corpora import prepare_corpus
from lasskit.manifest import read_manifest
from lasskit.provenance import fingerprint


def _snapshot(folder):
    return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(folder.rglob("*")) if p.is_file()}


def _folder(tmp_path, n=4, duration=1.0):
    src = tmp_path / "mine"
    for i in range(n):
        soundgen.write_clip(src / f"c{i}.wav", ["tone", "hum", "rain", "chirp"][i % 4], duration, 44100, seed=i)
    return src


def _prep(src, out, **kw):
    (report,) = prepare_corpus("folder", src, out, jobs=kw.pop("jobs", 1), **kw)
    return report


def test_replaced_source_is_remade_and_only_it(tmp_path):
    src = _folder(tmp_path)
    _prep(src, tmp_path / "data")
    before = _snapshot(tmp_path / "data")
    soundgen.write_clip(src / "c1.wav", "hum", 3.0, 44100, seed=9)  # 1 s replaced by 3 s
    report = _prep(src, tmp_path / "data")
    assert report.made == {"input changed": 1} and report.skipped == 3
    assert "made 1 of 4: input changed 1" in report.notes
    m = {c.id: c for c in read_manifest(tmp_path / "data/mine/manifest.csv").clips}
    assert m["c1"].num_samples == 48000 and sf.info(tmp_path / "data/mine/audio/c1.wav").frames == 48000
    after = _snapshot(tmp_path / "data")
    changed = sorted(p.name for p in after if after.get(p) != before.get(p))
    assert changed == ["c1.wav", "manifest.csv", "provenance.json", "sources.json"]


def test_other_resampler_remakes_everything_and_says_why(tmp_path):
    pytest.importorskip("torchaudio")
    src = _folder(tmp_path, n=2)
    _prep(src, tmp_path / "data")
    soxr_bytes = (tmp_path / "data/mine/audio/c0.wav").read_bytes()
    report = _prep(src, tmp_path / "data", resampler="torchaudio")
    assert report.made == {"settings changed: resampler": 2}
    assert (tmp_path / "data/mine/audio/c0.wav").read_bytes() != soxr_bytes
    expected = audio.load(src / "c0.wav", 16000, "torchaudio")
    got, _ = sf.read(tmp_path / "data/mine/audio/c0.wav", dtype="float32")
    assert np.max(np.abs(got - expected)) <= 0.5 / 32768 + 1e-7
    assert _prep(src, tmp_path / "data", resampler="torchaudio").made == {}
    assert _prep(src, tmp_path / "data").made == {"settings changed: resampler": 2}  # and back


def test_unchanged_rerun_reads_no_audio(tmp_path, monkeypatch):
    src = _folder(tmp_path)
    _prep(src, tmp_path / "data", jobs=2)
    before = _snapshot(tmp_path / "data")

    def refuse(*args, **kwargs):
        raise AssertionError("audio was read on an unchanged re-run")

    from lasskit.corpora import common

    monkeypatch.setattr(audio, "read_source", refuse)
    monkeypatch.setattr(audio, "_decode", refuse)
    monkeypatch.setattr(common, "convert_file", refuse)
    report = _prep(src, tmp_path / "data", jobs=1)
    assert report.skipped == 4 and report.made == {} and not report.failures
    assert _snapshot(tmp_path / "data") == before


def test_touched_source_is_checksummed_not_converted(tmp_path):
    src = _folder(tmp_path, n=2)
    _prep(src, tmp_path / "data")
    out = tmp_path / "data/mine/audio/c0.wav"
    mtime = out.stat().st_mtime_ns
    st = (src / "c0.wav").stat()
    os.utime(src / "c0.wav", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched, same bytes
    report = _prep(src, tmp_path / "data")
    assert report.made == {} and report.skipped == 2 and out.stat().st_mtime_ns == mtime
    assert any("touched but unchanged" in n for n in report.notes)
    assert not any("touched" in n for n in _prep(src, tmp_path / "data").notes)  # remembered: not read again


def test_output_changed_by_hand_is_remade_and_overwrite_remakes_all(tmp_path):
    src = _folder(tmp_path, n=3)
    _prep(src, tmp_path / "data")
    out = tmp_path / "data/mine/audio/c2.wav"
    good = out.read_bytes()
    audio.write(out, np.zeros(100, dtype=np.float32))
    report = _prep(src, tmp_path / "data")
    assert report.made == {"output changed on disk": 1} and out.read_bytes() == good
    assert _prep(src, tmp_path / "data", overwrite=True).made == {"--overwrite": 3}
    assert out.read_bytes() == good


def test_removed_source_leaves_the_manifest(tmp_path):
    src = _folder(tmp_path, n=3)
    _prep(src, tmp_path / "data")
    (src / "c1.wav").unlink()
    report = _prep(src, tmp_path / "data")
    assert [c.id for c in read_manifest(report.path).clips] == ["c0", "c2"] and report.made == {}
    ledger = json.loads((tmp_path / "data/mine/provenance.json").read_text())
    assert sorted(ledger["outputs"]) == ["audio/c0.wav", "audio/c2.wav"]


def test_manifest_digest_peak_and_fingerprint(tmp_path):
    src = _folder(tmp_path, n=2)
    report = _prep(src, tmp_path / "data")
    m = read_manifest(report.path)
    settings = json.loads((tmp_path / "data/mine/provenance.json").read_text())["settings"]
    (settings,) = settings.values()
    assert settings["resampler"] == "soxr" and settings["sample_rate"] == 16000
    for clip in m.clips:
        path = m.audio_path(clip)
        raw = path.read_bytes()
        assert raw[36:40] == b"data"  # 16-bit PCM: the samples start at byte 44
        assert clip.digest == hashlib.blake2b(raw[44:], digest_size=16).hexdigest()
        samples, _ = sf.read(path, dtype="float64")
        assert float(clip.peak_dbfs) == pytest.approx(20 * np.log10(np.max(np.abs(samples))), abs=0.01)
        source = (src / f"{clip.id}.wav").read_bytes()
        import zlib

        checksum = f"{zlib.crc32(source):08x}{len(source):08x}"
        assert clip.fingerprint == fingerprint(checksum, settings)
    # the same samples give the same digest, whatever corpus they are in
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy/other.wav").write_bytes((src / "c0.wav").read_bytes())
    (copy_report,) = prepare_corpus("folder", tmp_path / "copy", tmp_path / "data", jobs=1)
    assert read_manifest(copy_report.path).clips[0].digest == m.clips[0].digest


def test_freesound_ids_for_fsd50k_and_the_challenge_sets(tmp_path):
    raw = tmp_path / "raw"
    miniature.write_fsd50k(raw / "fsd50k", dev=2, eval=1, duration=0.3)
    miniature.write_dcase2024(raw / "dcase", clips=4, mixtures=2, real=1, synth_eval=1, duration=0.3)
    (fsd,) = prepare_corpus("fsd50k", raw / "fsd50k", tmp_path / "data", jobs=1)
    assert all(c.freesound_id == c.id and c.id.isdigit() for c in read_manifest(fsd.path).clips)
    reports = prepare_corpus("dcase2024", raw / "dcase", tmp_path / "data", jobs=1)
    val = read_manifest(reports[0].path)
    assert [c.freesound_id for c in val.clips] == [c.id.split("_")[0] for c in val.clips]
    assert val.clips[0].freesound_id == "700000"
    from lasskit.corpora.dcase2024 import freesound_id

    assert freesound_id("692211_12333864-hq") == "692211" and freesound_id("test-real-case-0.wav") == ""


def test_val_synth_rows_are_fingerprinted(tmp_path):
    raw = tmp_path / "raw"
    miniature.write_dcase2024(raw, clips=4, mixtures=3, real=1, synth_eval=1, duration=0.3)
    prepare_corpus("dcase2024", raw, tmp_path / "data", jobs=1)
    split = tmp_path / "data/splits/val_synth"
    before = _snapshot(split)
    reports = {r.name: r for r in prepare_corpus("dcase2024", raw, tmp_path / "data", jobs=1)}
    assert reports["val_synth"].made == {} and reports["val_synth"].skipped == 3 and _snapshot(split) == before
    # a different SNR in one row of the organizers' CSV remakes that row only
    lines = (raw / "lass_synthetic_validation.csv").read_text().splitlines()
    fields = lines[2].split(",", 3)
    fields[2] = str(int(fields[2]) + 1)
    lines[2] = ",".join(fields)
    (raw / "lass_synthetic_validation.csv").write_text("\n".join(lines) + "\n")
    reports = {r.name: r for r in prepare_corpus("dcase2024", raw, tmp_path / "data", jobs=1)}
    assert reports["val_synth"].made == {"input changed": 1}
    after = _snapshot(split)
    assert sorted(p.relative_to(split).as_posix() for p in after if after[p] != before[p]) == [
        "mixture/val_synth_0001.wav", "mixtures.csv", "noise/val_synth_0001.wav", "provenance.json",
        "source/val_synth_0001.wav"]
