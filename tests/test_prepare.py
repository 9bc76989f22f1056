"""`prepare`: every corpus layout, resume, idempotence, failures, and the official formula."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from lasskit import miniature
from lasskit.corpora import prepare_corpus
from lasskit.errors import UsageError
from lasskit.manifest import read_manifest
from lasskit.mixing import read_official_csv
from lasskit.splits import read_split


def _snapshot(folder):
    return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    root = tmp_path_factory.mktemp("raw")
    miniature.write_clotho(root / "clotho", per_split=3, duration=0.5, corrupt=True)
    miniature.write_fsd50k(root / "fsd50k", dev=4, eval=2, duration=0.5)
    miniature.write_dcase2024(root / "dcase", clips=6, mixtures=8, real=2, synth_eval=2, duration=0.5)
    return root


def test_clotho_converts_to_16k_mono_with_captions_and_lists_the_corrupt_file(raw, tmp_path):
    src_before = _snapshot(raw / "clotho")
    (report,) = prepare_corpus("clotho", raw / "clotho", tmp_path / "data", jobs=2)
    m = read_manifest(tmp_path / "data/clotho/manifest.csv")
    assert len(m) == 9 and report.items == 9
    assert {c.split for c in m.clips} == {"train", "val", "eval"}
    for clip in m.clips:
        info = sf.info(m.audio_path(clip))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert info.frames == clip.num_samples == 8000  # 0.5 s at any source rate, to the sample
        assert clip.duration == 0.5 and len(clip.captions) == 5 and clip.labels == []
    assert m.clips[0].id == "development/alarm recording 1"  # sorted by path
    failures = (tmp_path / "data/clotho/failures.csv").read_text().splitlines()
    assert failures[0] == "file,reason" and len(failures) == 2 and "broken.wav" in failures[1]
    assert report.failures and report.audio_seconds == pytest.approx(4.5)
    assert _snapshot(raw / "clotho") == src_before  # inputs never modified


def test_rerun_changes_nothing_and_resume_rewrites_only_the_deleted_output(raw, tmp_path):
    prepare_corpus("fsd50k", raw / "fsd50k", tmp_path / "data", jobs=1)
    before = _snapshot(tmp_path / "data")
    (report,) = prepare_corpus("fsd50k", raw / "fsd50k", tmp_path / "data", jobs=2)
    assert report.skipped == 6 and report.made == {} and _snapshot(tmp_path / "data") == before
    victim = tmp_path / "data/fsd50k/audio/FSD50K.eval_audio/100005.wav"
    bytes_before = victim.read_bytes()
    victim.unlink()
    (report,) = prepare_corpus("fsd50k", raw / "fsd50k", tmp_path / "data", jobs=2)
    assert report.skipped == 5 and report.made == {"output missing": 1} and victim.read_bytes() == bytes_before
    assert "made 1 of 6: output missing 1" in report.notes
    after = _snapshot(tmp_path / "data")
    changed = [p for p in after if after[p] != before[p]]
    assert sorted(p.name for p in changed) == ["100005.wav", "provenance.json"]


def test_fsd50k_labels_splits_and_generated_captions(raw, tmp_path):
    (report,) = prepare_corpus("fsd50k", raw / "fsd50k", tmp_path / "data",
                               captions=[raw / "fsd50k/fsd50k_captions.json"], jobs=1)
    m = read_manifest(tmp_path / "data/fsd50k/manifest.csv")
    by_id = {c.id: c for c in m.clips}
    assert len(m) == 6 and [c.split for c in m.clips].count("eval") == 2
    assert {c.split for c in m.clips} == {"train", "val", "eval"}
    clip = by_id["100000"]  # class index 3: ticking
    assert clip.labels == ["Tick", "Clock"] and clip.captions == ["A clock ticks steadily."]
    (report,) = prepare_corpus("fsd50k", raw / "fsd50k", tmp_path / "nocap", jobs=1)
    m2 = read_manifest(tmp_path / "nocap/fsd50k/manifest.csv")
    assert {c.id: c for c in m2.clips}["100000"].captions == ["The sound of tick and clock."]


def test_fsd50k_names_listed_clips_without_audio(tmp_path):
    miniature.write_fsd50k(tmp_path / "fsd", dev=4, eval=2, duration=0.3)
    (tmp_path / "fsd/FSD50K.dev_audio/100001.wav").unlink()  # a partial download
    (report,) = prepare_corpus("fsd50k", tmp_path / "fsd", tmp_path / "data", jobs=1)
    assert report.items == 5
    assert any("1 clip(s) listed in dev.csv have no audio file in FSD50K.dev_audio/ (e.g. 100001.wav)" in n
               for n in report.notes), report.notes


def test_dcase2024_makes_corpus_and_three_splits(raw, tmp_path):
    reports = prepare_corpus("dcase2024", raw / "dcase", tmp_path / "data", jobs=2)
    assert [r.name for r in reports] == ["dcase2024_val", "val_synth", "eval_synth", "eval_real"]
    val = read_manifest(tmp_path / "data/dcase2024_val/manifest.csv")
    assert len(val) == 6 and len(val.clips[0].captions) == 3 and val.clips[0].labels == ["tone", "sine wave"]
    real = read_split(tmp_path / "data/splits/eval_real")
    assert list(real.frame["mixture"]) == [f"test-real-case-{i}.wav" for i in range(4)]
    assert real.frame["query"][1].startswith(" ")  # queries are kept verbatim
    raw_real = raw / "dcase/lass_evaluation_real/test-real-case-0.wav"
    assert (tmp_path / "data/splits/eval_real/mixture/test-real-case-0.wav").read_bytes() == raw_real.read_bytes()
    synth = read_split(tmp_path / "data/splits/eval_synth")
    assert len(synth) == 2 and not synth.has_references


def test_val_synth_equals_the_organizers_formula(raw, tmp_path):
    prepare_corpus("dcase2024", raw / "dcase", tmp_path / "data", jobs=2)
    split = read_split(tmp_path / "data/splits/val_synth")
    assert len(split) == 8 and split.has_references
    for row in split.frame.to_dict("records"):
        # the organizers' evaluator, written out straight (float32 like librosa.load)
        s = sf.read(raw / f"dcase/lass_validation/{row['source_id']}.wav", dtype="float32")[0]
        n = sf.read(raw / f"dcase/lass_validation/{row['noise_id']}.wav", dtype="float32")[0]
        snr = float(row["snr"])
        n = n * np.sqrt(np.mean(s**2) / (10 ** (snr / 10)) / np.mean(n**2))
        mix = s + n
        peak = np.max(np.abs(mix))
        if peak > 1:
            s, mix = s * 0.9 / peak, mix * 0.9 / peak
        got_mix = sf.read(split.root / "mixture" / row["mixture"], dtype="float32")[0]
        got_src = sf.read(split.root / row["source"], dtype="float32")[0]
        got_noise = sf.read(split.root / row["noise"], dtype="float32")[0]
        assert np.max(np.abs(got_mix - mix)) < 1e-6 and np.max(np.abs(got_src - s)) < 1e-6
        assert np.array_equal(got_mix, got_src + got_noise)  # mixture == reference + noise exactly
        measured = 10 * np.log10(np.sum(got_src.astype(float) ** 2) / np.sum(got_noise.astype(float) ** 2))
        assert abs(measured - snr) < 0.01
        assert set(json.loads(row["source_labels"])).isdisjoint(json.loads(row["noise_labels"]))


def test_partial_download_names_what_is_missing(raw, tmp_path):
    only_real = tmp_path / "only_real"
    (only_real / "lass_evaluation_real").mkdir(parents=True)
    for p in (raw / "dcase/lass_evaluation_real").iterdir():
        (only_real / "lass_evaluation_real" / p.name).write_bytes(p.read_bytes())
    (only_real / "lass_real_evaluation.csv").write_bytes((raw / "dcase/lass_real_evaluation.csv").read_bytes())
    reports = prepare_corpus("dcase2024", only_real, tmp_path / "data", jobs=1)
    assert [r.name for r in reports] == ["eval_real"]
    assert "lass_validation.json" in reports[0].notes[-1] and "lass_evaluation_synth/" in reports[0].notes[-1]


def test_folder_corpus_with_metadata(tmp_path):
    from lasskit import soundgen

    src = tmp_path / "mine"
    soundgen.write_clip(src / "a/dog.flac", "knock", 0.3, 48000, channels=2)
    soundgen.write_clip(src / "b/rain.wav", "rain", 0.3, 22050, subtype="PCM_24")
    meta = tmp_path / "meta.csv"
    meta.write_text('file,captions,labels,split\na/dog.flac,"Knocks; more knocks","Knock,Door",train\n')
    (report,) = prepare_corpus("folder", src, tmp_path / "data", metadata=meta, jobs=1)
    m = read_manifest(tmp_path / "data/mine/manifest.csv")
    assert [c.id for c in m.clips] == ["a/dog", "b/rain"]
    assert m.clips[0].captions == ["Knocks", "more knocks"] and m.clips[0].labels == ["Knock", "Door"]
    assert m.clips[0].audio == "audio/a/dog.wav" and m.clips[0].num_samples == 4800
    assert m.clips[1].captions == [] and "1 file(s) have no row" in report.notes[0]


def test_folder_names_every_file_it_cannot_use(tmp_path):
    """Audio in a format libsndfile cannot decode is a failure naming the fix; other files are
    counted in a note; decoder messages carry no memory address (failures.csv is reproducible)."""
    from lasskit import soundgen

    src = tmp_path / "mine"
    soundgen.write_clip(src / "ok.wav", "rain", 0.3, 16000)
    (src / "talk.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(100))
    (src / "movie.webm").write_bytes(bytes(50))
    (src / "README.txt").write_text("my sounds")
    (src / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    reports = [prepare_corpus("folder", src, tmp_path / f"data{k}", jobs=1)[0] for k in (1, 2)]
    report = reports[0]
    assert report.items == 1
    failed = dict(report.failures)
    assert set(failed) == {str(src / "broken.wav"), str(src / "movie.webm"), str(src / "talk.m4a")}
    assert "m4a audio cannot be decoded here; convert it to WAV or FLAC" in failed[str(src / "talk.m4a")]
    assert " at 0x" not in failed[str(src / "broken.wav")] and "<" not in failed[str(src / "broken.wav")]
    assert any("left out 1 file(s) that are not audio (e.g. README.txt)" in n for n in report.notes)
    # labels are counted on the clips that reached the manifest (broken.wav failed)
    assert any(n.startswith("1 clip(s) without labels") for n in report.notes), report.notes
    first, second = ((tmp_path / f"data{k}" / "mine" / "failures.csv").read_bytes() for k in (1, 2))
    assert first == second
    only = tmp_path / "only"
    only.mkdir()
    (only / "x.m4a").write_bytes(bytes(10))
    with pytest.raises(UsageError, match="formats it cannot decode, e.g. x.m4a"):
        prepare_corpus("folder", only, tmp_path / "data3", jobs=1)


def test_refuses_to_write_inside_the_raw_folder(raw):
    with pytest.raises(UsageError, match="inside the raw folder"):
        prepare_corpus("clotho", raw / "clotho", raw / "clotho" / "data")


def test_official_csvs_parse(metadata_dir):
    frame = read_official_csv(metadata_dir / "lass_synthetic_validation.csv")
    assert len(frame) == 3000 and list(frame.columns) == ["source", "noise", "snr", "caption"]
    snrs = frame["snr"].astype(int)
    assert snrs.nunique() == 31 and snrs.min() == -15 and snrs.max() == 15
    assert frame.groupby("source").size().eq(3).all()
    items = json.loads((metadata_dir / "lass_validation.json").read_text())
    assert len(items) == 1000 and all(len(it["Captions"]) == 3 for it in items)
    import pandas as pd

    real = pd.read_csv(metadata_dir / "lass_real_evaluation.csv", dtype=str, keep_default_na=False)
    assert len(real) == 200 and real["file_name"].iloc[-1] == "test-real-case-199.wav"
    assert any(q != q.strip() for q in real["query"])  # the quirk we keep verbatim


def test_cli_prepare_summary_exit_codes_and_keep_going(raw, tmp_path, run_cli):
    code, out, err = run_cli("--workspace", tmp_path, "prepare", "clotho", raw / "clotho", "--jobs", "1")
    assert code == 1 and "1 file(s) failed" in err and "failures.csv" in err
    assert "clotho" in out and "x real time" in out
    code, out, err = run_cli("--workspace", tmp_path, "prepare", "clotho", raw / "clotho", "--keep-going")
    assert code == 0
    code, out, err = run_cli("--workspace", tmp_path, "prepare", "clotho", tmp_path / "nope")
    assert code == 2 and err.startswith("error:") and "nope" in err and "Traceback" not in err
    code, out, err = run_cli("--workspace", tmp_path, "prepare", "dcase2024")
    assert code == 2 and "paths.dcase2024" in err
    (tmp_path / "lasskit.yaml").write_text(f"paths:\n  dcase2024: {raw / 'dcase'}\n")
    code, out, err = run_cli("--workspace", tmp_path, "prepare", "dcase2024")
    assert code == 0 and (tmp_path / "data/splits/val_synth/mixtures.csv").is_file()


@pytest.mark.slow
def test_dcase2024_on_the_real_metadata_files(metadata_dir, tmp_path):
    """The official JSON and CSVs, quirks included, with generated audio standing in for the clips."""
    import shutil

    from lasskit import soundgen

    raw = tmp_path / "raw"
    items = json.loads((metadata_dir / "lass_validation.json").read_text())
    names = ["tone", "hum", "rain", "chirp"] * 2  # classes never silent in a short clip
    clips = {name: soundgen.generate(name, 0.25, 16000, seed=i) for i, name in enumerate(names)}
    (raw / "lass_validation").mkdir(parents=True)
    for i, item in enumerate(items):
        sf.write(raw / "lass_validation" / f"{item['Index']}.wav", clips[names[i % 8]] * (0.5 + (i % 7) / 10),
                 16000, subtype="PCM_16")
    for name in ("lass_validation.json", "lass_synthetic_validation.csv", "lass_real_evaluation.csv"):
        shutil.copy(metadata_dir / name, raw / name)
    (raw / "lass_evaluation_real").mkdir()
    for i in range(200):
        sf.write(raw / "lass_evaluation_real" / f"test-real-case-{i}.wav", clips[names[i % 8]], 16000)
    reports = {r.name: r for r in prepare_corpus("dcase2024", raw, tmp_path / "data", jobs=2)}
    assert reports["dcase2024_val"].items == 1000 and reports["val_synth"].items == 3000
    assert reports["eval_real"].items == 200 and not any(r.failures for r in reports.values())
    split = read_split(tmp_path / "data/splits/val_synth")
    assert split.frame["snr"].astype(int).nunique() == 31
    for row in split.frame.sample(20, random_state=0).to_dict("records"):
        s = sf.read(split.root / row["source"])[0]
        n = sf.read(split.root / row["noise"])[0]
        assert abs(10 * np.log10(np.sum(s**2) / np.sum(n**2)) - int(row["snr"])) < 0.01
        assert set(json.loads(row["source_labels"])).isdisjoint(json.loads(row["noise_labels"]))
    real = read_split(tmp_path / "data/splits/eval_real")
    import pandas as pd

    official = pd.read_csv(metadata_dir / "lass_real_evaluation.csv", dtype=str, keep_default_na=False)
    assert list(real.frame["query"]) == list(official["query"])  # verbatim, spaces included
