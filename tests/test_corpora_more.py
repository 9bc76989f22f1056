"""AudioCaps, WavCaps and Auto-ACD: miniature downloads in their real layouts through prepare,
the one recording identity across corpora in mix, and the `lasskit corpora` summary."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from lasskit import miniature
from lasskit.corpora import prepare_corpus
from lasskit.corpora.youtube import split_segment
from lasskit.errors import UsageError
from lasskit.manifest import read_manifest


def _clips(data: Path, corpus: str) -> dict:
    return {c.id: c for c in read_manifest(data / corpus / "manifest.csv").clips}


def _excluded(data: Path, corpus: str) -> list[tuple[str, str]]:
    with open(data / corpus / "excluded.csv", newline="", encoding="utf-8") as fh:
        return [(r["id"], r["rule"]) for r in csv.DictReader(fh)]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """Clotho, AudioCaps, Auto-ACD and WavCaps prepared into one workspace's data folder, with the
    overlaps the rules must catch: WavCaps' FreeSound holds Clotho's dev clip 300000 and eval clip
    300008; Auto-ACD's train.csv holds AudioCaps' test segment mini0000006_36; WavCaps' 400002 is
    on its blacklist."""
    root = tmp_path_factory.mktemp("corpora")
    raw, data = root / "raw", root / "ws" / "data"
    (root / "ws" / "lasskit.yaml").parent.mkdir(parents=True, exist_ok=True)
    miniature.write_clotho(raw / "clotho", per_split=4)
    miniature.write_audiocaps(raw / "audiocaps", per_split=3, missing=1)
    labels = miniature.write_audioset_labels(raw / "audioset", list(range(9)) + [100, 101, 102])
    miniature.write_autoacd(raw / "autoacd", train=4, test=2, missing=1, shared=(6,))
    miniature.write_wavcaps(raw / "wavcaps", per_source=3, freesound_ids=("300000", "300008"), audioset=(0, 7))
    reports = {}
    reports["clotho"] = prepare_corpus("clotho", raw / "clotho", data, jobs=1)
    reports["audiocaps"] = prepare_corpus("audiocaps", raw / "audiocaps", data, jobs=1, audioset_labels=labels)
    reports["autoacd"] = prepare_corpus("autoacd", raw / "autoacd", data, jobs=1, audioset_labels=labels)
    reports["wavcaps"] = prepare_corpus("wavcaps", raw / "wavcaps", data, jobs=1)
    return root, data, reports


def test_segment_names():
    assert split_segment("mini0000007_37") == ("mini0000007", "37")
    assert split_segment("Ymini0000007") == ("mini0000007", "")
    assert split_segment("--Zn4ViKWcw_30.000_40.000") == ("--Zn4ViKWcw", "30.000")
    assert split_segment("not an id") == ("", "")


def test_audiocaps_splits_labels_and_missing_clips(prepared):
    _, data, reports = prepared
    clips = _clips(data, "audiocaps")
    # 3 clips a split, the last of each not fetched: counted and listed, never fatal
    assert sorted(clips) == ["mini0000000_30", "mini0000001_31", "mini0000003_33", "mini0000004_34",
                             "mini0000006_36", "mini0000007_37"]
    assert {c.split for c in clips.values()} == {"train", "val", "eval"}
    assert clips["mini0000006_36"].split == "eval" and clips["mini0000006_36"].youtube_id == "mini0000006"
    # val and test have five caption rows a clip (here two distinct captions, kept once each)
    assert clips["mini0000003_33"].captions == ["A clock ticks steadily.", "Short clicks tick twice every second."]
    assert len(clips["mini0000000_30"].captions) == 1 and clips["mini0000003_33"].split == "val"
    assert clips["mini0000000_30"].labels == ["Tone", "Sine wave"] and clips["mini0000000_30"].label_source == "given"
    assert _excluded(data, "audiocaps") == [("mini0000002_32", "missing YouTube clip"),
                                            ("mini0000005_35", "missing YouTube clip"),
                                            ("mini0000008_38", "missing YouTube clip")]
    assert any("3 clip(s) have no audio here" in n for n in reports["audiocaps"][0].notes)


def test_autoacd_splits_and_missing(prepared):
    _, data, _ = prepared
    clips = _clips(data, "autoacd")
    assert sorted(clips) == ["mini0000006_36", "mini0000100_130", "mini0000101_131", "mini0000102_132",
                             "mini0000104_134", "mini0000105_135"]
    assert clips["mini0000104_134"].split == "eval" and clips["mini0000100_130"].split == "train"
    assert clips["mini0000100_130"].labels == ["Engine", "Hum"]
    assert clips["mini0000104_134"].labels == [] and clips["mini0000104_134"].captions  # not in the AudioSet CSV
    assert _excluded(data, "autoacd") == [("mini0000103_133", "missing YouTube clip")]


def test_wavcaps_sources_identities_and_blacklist(prepared):
    _, data, reports = prepared
    clips = _clips(data, "wavcaps")
    assert len(clips) == 3 + 2 + 3 + 3 + 2 - 1  # FreeSound 3 + 2 shared with Clotho, BBC, SoundBible, AudioSet_SL, one blacklisted
    assert "FreeSound/400002" not in clips
    assert clips["FreeSound/300008"].freesound_id == "300008"
    assert clips["AudioSet_SL/Ymini0000007"].youtube_id == "mini0000007"
    assert clips["BBC_Sound_Effects/07066100"].freesound_id == "" == clips["BBC_Sound_Effects/07066100"].youtube_id
    assert {c.split for c in clips.values()} == {"train"}
    assert _excluded(data, "wavcaps") == [("FreeSound/400002", "blacklist blacklist_exclude_test_ac.json")]
    assert any("left out 1 clip(s) on WavCaps' blacklist_exclude_test_ac.json" in n for n in reports["wavcaps"][0].notes)


def test_wavcaps_without_its_metadata_is_one_line(tmp_path):
    (tmp_path / "raw").mkdir()
    with pytest.raises(UsageError, match="no WavCaps metadata"):
        prepare_corpus("wavcaps", tmp_path / "raw", tmp_path / "data")
    assert not (tmp_path / "data").exists()


def test_held_out_recordings_of_any_corpus_never_train_and_never_pair(prepared):
    """WavCaps' copy of Clotho's eval clip and Auto-ACD's copy of AudioCaps' test segment are left
    out of a training pool; Clotho's dev clip and its WavCaps copy are never mixed together."""
    from lasskit.mixing import MixSpec, make_mixtures
    from lasskit.mixing.pool import load_candidates, reference_ids, select_pool

    root, data, _ = prepared
    manifests = [data / c / "manifest.csv" for c in ("clotho", "audiocaps", "autoacd", "wavcaps")]
    pool = load_candidates(manifests, splits=["train"])
    report_pool = __import__("lasskit.mixing.pool", fromlist=["PoolReport"]).PoolReport()
    kept = select_pool(pool, ["train"], None, reference_ids(manifests), None, report_pool)
    kept_ids = {(c.corpus, c.id) for c in kept}
    assert ("wavcaps", "FreeSound/300008") not in kept_ids  # Clotho eval recording
    assert ("autoacd", "mini0000006_36") not in kept_ids  # AudioCaps test recording
    assert ("wavcaps", "FreeSound/300000") in kept_ids and ("wavcaps", "AudioSet_SL/Ymini0000007") not in kept_ids
    assert report_pool.held_out_recordings == 3  # 300008, Auto-ACD's mini0000006, AudioSet_SL's mini0000007 (AudioCaps test)

    spec = MixSpec(-5, 5, num=60, duration=1.0, seed=4, allow_unlabeled=True)
    split = root / "ws" / "data" / "splits" / "train_mix"
    targets = [data / c / "manifest.csv" for c in ("clotho", "wavcaps", "audiocaps", "autoacd")]
    report = make_mixtures(split, spec, targets, splits=["train"], reference=manifests, jobs=1)
    assert report.pool.held_out_recordings == 3
    with open(split / "mixtures.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 60
    by_id = {}
    for corpus in ("clotho", "wavcaps", "audiocaps", "autoacd"):
        for c in read_manifest(data / corpus / "manifest.csv").clips:
            by_id[(corpus, c.id)] = c
    from lasskit.identity import clip_identities

    used = set()
    for r in rows:
        a, b = by_id[(r["source_corpus"], r["source_id"])], by_id[(r["noise_corpus"], r["noise_id"])]
        assert not set(clip_identities(a)) & set(clip_identities(b)), (r["source_id"], r["noise_id"])
        used |= {(r["source_corpus"], r["source_id"]), (r["noise_corpus"], r["noise_id"])}
    assert ("wavcaps", "FreeSound/300008") not in used and ("autoacd", "mini0000006_36") not in used
    state = json.loads((split / "mix.json").read_text())
    assert state["data"]["held_out_recordings_dropped"] == 3


def test_corpora_summary(prepared, run_cli):
    from lasskit.corpora.summary import summarize_corpora
    from lasskit.workspace import Workspace

    root, _, _ = prepared
    rows = {r.name: r for r in summarize_corpora(Workspace.open(root / "ws"))}
    assert sorted(rows) == ["audiocaps", "autoacd", "clotho", "wavcaps"]
    assert rows["audiocaps"].clips == 6 and rows["audiocaps"].labelled == 6
    assert rows["audiocaps"].excluded == {"prepare: missing YouTube clip": 3}
    assert rows["autoacd"].label_sources == {"given": 4, "none": 2}
    # shared recordings: AudioCaps' mini0000006 (Auto-ACD) and mini0000000/7 (WavCaps AudioSet_SL)
    assert rows["audiocaps"].overlap == {"autoacd": 1, "wavcaps": 2}
    assert rows["wavcaps"].overlap == {"audiocaps": 2, "clotho": 2}
    assert rows["wavcaps"].excluded == {"mix/train: recording of a val/eval clip": 2,
                                        "prepare: blacklist blacklist_exclude_test_ac.json": 1}
    assert rows["autoacd"].excluded["mix/train: recording of a val/eval clip"] == 1
    assert abs(rows["clotho"].hours - 12 / 3600) < 1e-6
    code, out, err = run_cli("-w", root / "ws", "corpora", "--json")
    assert code == 0, err
    assert [r["corpus"] for r in json.loads(out)] == ["audiocaps", "autoacd", "clotho", "wavcaps"]
    code, out, _ = run_cli("-w", root / "ws", "corpora")
    assert code == 0 and "wavcaps" in out and "shares recordings" in out


def test_train_targets_weights_set_the_sampler_shares(prepared):
    """`train --targets audiocaps:0.75 autoacd:0.25`: rows per mixing epoch in those proportions,
    reported in data.json's summary; the held-out recordings stay out of training."""
    from lasskit.mixing.planning import split_weights
    from lasskit.training.data import load_training_data, resolve_inputs
    from lasskit.workspace import Workspace

    root, _, _ = prepared
    ws = Workspace.open(root / "ws")
    resolve_inputs(["audiocaps:0.75", "autoacd:0.25"], [], ws)
    data = load_training_data(["audiocaps:0.75", "autoacd:0.25"], [], workspace=ws, segment=1.0, jobs=1)
    shares = data.summary()["sampler_shares"]
    rows = data.planner.num_rows
    assert shares["audiocaps"]["weight"] == 0.75 and shares["autoacd"]["weight"] == 0.25
    assert shares["audiocaps"]["rows"] + shares["autoacd"]["rows"] == rows
    assert abs(shares["audiocaps"]["rows"] - 0.75 * rows) < 1 and abs(shares["autoacd"]["rows"] - 0.25 * rows) < 1
    plan = data.planner.plan()
    assert sum(r.target.corpus == "audiocaps" for r in plan) == shares["audiocaps"]["rows"]
    assert all(r.target.id != "mini0000006_36" for r in plan)  # Auto-ACD's copy of an AudioCaps test segment
    assert data.skipped.get("same recording as a val/eval clip of a prepared corpus") == 1
    with pytest.raises(UsageError, match="positive number"):
        split_weights(["clotho:-1"])
    with pytest.raises(UsageError, match="give every target corpus a weight"):
        split_weights(["clotho:0.5", "fsd50k"])
    with pytest.raises(UsageError, match="no usable target clip of corpus wavcaps"):
        load_training_data(["audiocaps:0.5", "wavcaps:0.5"], [], workspace=ws, segment=1.0, jobs=1)


@pytest.mark.slow
def test_a_few_training_steps_on_the_new_corpora(prepared, tmp_path):
    """Two steps of the (tiny) baseline on AudioCaps and Auto-ACD weighted 3:1; data.json says so."""
    pytest.importorskip("lightning")
    transformers = pytest.importorskip("transformers")  # noqa: F841
    from test_train import write_clap

    from lasskit.miniature import write_tokenizer
    from lasskit.training import TrainConfig, train
    from lasskit.workspace import Workspace

    root, _, _ = prepared
    cfg = TrainConfig(model="dcase2024-baseline", name="weighted", targets=["audiocaps:0.75", "autoacd:0.25"],
                      options={"tokenizer": str(write_tokenizer(tmp_path / "tok")),
                               "clap_checkpoint": str(write_clap(tmp_path / "clap.pt")), "channels": 4},
                      steps=2, batch_size=2, segment=0.25, snr=(-5.0, 5.0), warmup_steps=0, val=None, workers=0,
                      log_every=1, seed=0)
    train(cfg, Workspace.open(root / "ws"))
    data = json.loads((root / "ws" / "exp" / "train" / "weighted" / "data.json").read_text())
    shares = data["sampler_shares"]
    assert shares["audiocaps"]["weight"] == 0.75 and shares["autoacd"]["weight"] == 0.25
    total = shares["audiocaps"]["rows"] + shares["autoacd"]["rows"]
    assert total == data["mixtures_per_epoch"] and shares["audiocaps"]["rows"] == round(0.75 * total + 1e-9)


# --- outside checks (Q4): real layouts and identity edge cases ---------------------------------------

def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def test_audioset_labels_only_for_the_segment_they_describe(tmp_path):
    """AudioSet labels describe one 10 s segment: a clip of another segment of the same video (a
    VGGSound clip in Auto-ACD) does not take them; a clip without a start time (WavCaps' Y<id>) does."""
    labels = miniature.write_audioset_labels(tmp_path / "audioset", [0, 1])  # mini0000000 at 30 s, mini0000001 at 31 s
    raw = tmp_path / "autoacd"
    _write_csv(raw / "train.csv", ["youtube_id", "caption"],
               [["mini0000000_30", "a tone"], ["mini0000001_200", "a beep"], ["mini0000001", "beeps"]])
    _write_csv(raw / "test.csv", ["youtube_id", "caption"], [])
    for stem in ("mini0000000_30", "mini0000001_200", "Ymini0000001"):
        miniature._write_flac(raw / "audio" / f"{stem}.flac", miniature.CLASS_NAMES[0], 0.5, 16000, 1)
    reports = prepare_corpus("autoacd", raw, tmp_path / "data", jobs=1, audioset_labels=labels)
    clips = _clips(tmp_path / "data", "autoacd")
    assert clips["mini0000000_30"].labels == ["Tone", "Sine wave"] and clips["mini0000000_30"].label_source == "given"
    assert clips["mini0000001_200"].labels == [] and clips["mini0000001_200"].label_source == ""
    assert clips["mini0000001"].labels == ["Alarm", "Beep"]
    assert any("1 clip(s) are another segment of a video AudioSet labels" in n for n in reports[0].notes)


def test_wavcaps_metadata_as_a_bare_list(tmp_path):
    """The GitHub repository's sb_final.json is a JSON list of entries (the hub's wraps it in "data")."""
    raw = tmp_path / "wavcaps"
    (raw / "json_files" / "SoundBible").mkdir(parents=True)
    (raw / "json_files" / "SoundBible" / "sb_final.json").write_text(json.dumps(
        [{"title": "t", "description": "d", "author": "a", "href": "2219-x.html", "caption": "A bell rings.",
          "id": "2219", "duration": 0.5}]))
    miniature._write_flac(raw / "SoundBible_flac" / "2219.flac", miniature.CLASS_NAMES[0], 0.5, 32000, 1)
    prepare_corpus("wavcaps", raw, tmp_path / "data", jobs=1)
    assert list(_clips(tmp_path / "data", "wavcaps")) == ["SoundBible/2219"]


def test_autoacd_repeated_rows_merge_their_captions(tmp_path):
    """A clip on two rows is one clip with both captions (not a second row silently dropped), and a
    clip in both train.csv and test.csv is held out (eval), counted."""
    raw = tmp_path / "autoacd"
    _write_csv(raw / "train.csv", ["youtube_id", "caption"],
               [["mini0000000_30", "an engine hums"], ["mini0000000_30", "a motor runs"], ["mini0000001_31", "x"]])
    _write_csv(raw / "test.csv", ["youtube_id", "caption"], [["mini0000001_31", "a beep"]])
    for stem in ("mini0000000_30", "mini0000001_31"):
        miniature._write_flac(raw / "audio" / f"{stem}.flac", miniature.CLASS_NAMES[0], 0.5, 16000, 1)
    reports = prepare_corpus("autoacd", raw, tmp_path / "data", jobs=1)
    clips = _clips(tmp_path / "data", "autoacd")
    assert clips["mini0000000_30"].captions == ["an engine hums", "a motor runs"]
    assert clips["mini0000001_31"].split == "eval" and clips["mini0000001_31"].captions == ["a beep", "x"]
    notes = " ".join(reports[0].notes)
    assert "1 row(s) repeat a clip of the same CSV (captions merged)" in notes
    assert "1 clip(s) are in test.csv and train.csv: held out (eval)" in notes


def test_leading_dash_ids_and_other_segments_of_a_held_out_video(tmp_path):
    """YouTube ids may start with '-' or '_'; a training clip cut from another (overlapping)
    segment of a held-out video is the same recording: left out of training, counted."""
    from collections import Counter

    from lasskit.mixing.pool import PoolReport, load_candidates, reference_ids, select_pool

    ac = tmp_path / "audiocaps"
    for split, rows in (("train", [[1, "_undervideo", 0, "A dog barks."]]), ("val", []),
                        ("test", [[2, "-dashvideoA", 30, "A clock ticks."], [3, "-dashvideoA", 30, "Ticking."]])):
        _write_csv(ac / "dataset" / f"{split}.csv", ["audiocap_id", "youtube_id", "start_time", "caption"], rows)
    miniature._write_flac(ac / "audio" / "-dashvideoA_30.flac", miniature.CLASS_NAMES[0], 0.5, 16000, 1)
    miniature._write_flac(ac / "audio" / "_undervideo_0.flac", miniature.CLASS_NAMES[1], 0.5, 16000, 2)
    aa = tmp_path / "autoacd"
    _write_csv(aa / "train.csv", ["youtube_id", "caption"],
               [["-dashvideoA_35", "a clock ticking"], ["Yvideo00000_10", "an engine hums"]])
    _write_csv(aa / "test.csv", ["youtube_id", "caption"], [])
    miniature._write_flac(aa / "audio" / "-dashvideoA_35.flac", miniature.CLASS_NAMES[2], 0.5, 16000, 3)
    miniature._write_flac(aa / "audio" / "Yvideo00000_10.flac", miniature.CLASS_NAMES[3], 0.5, 16000, 4)
    data = tmp_path / "data"
    prepare_corpus("autoacd", aa, data, jobs=1)  # the training corpus first, the held-out one after
    prepare_corpus("audiocaps", ac, data, jobs=1)
    assert _clips(data, "audiocaps")["-dashvideoA_30"].youtube_id == "-dashvideoA"
    assert {c.id: c.youtube_id for c in _clips(data, "autoacd").values()} == {
        "-dashvideoA_35": "-dashvideoA", "Yvideo00000_10": "Yvideo00000"}
    skipped = Counter()
    kept = select_pool(load_candidates([data / "autoacd" / "manifest.csv"]), [], None,
                       reference_ids([data / c / "manifest.csv" for c in ("audiocaps", "autoacd")]), skipped, PoolReport())
    assert [c.id for c in kept] == ["Yvideo00000_10"]
    assert skipped == {"same recording as a val/eval clip of a prepared corpus": 1}


def test_freesound_ids_written_as_numbers_still_match(tmp_path):
    """WavCaps JSON ids and blacklist entries as JSON numbers (int or 300009.0) are the same Freesound
    ids as Clotho's text ones: blacklisted, or dropped as a Clotho evaluation recording."""
    from collections import Counter

    from lasskit.mixing.pool import PoolReport, load_candidates, reference_ids, select_pool

    raw = tmp_path / "raw"
    miniature.write_clotho(raw / "clotho", per_split=4)  # evaluation sound ids 300008-300011
    wc = raw / "wavcaps"
    (wc / "json_files" / "FreeSound").mkdir(parents=True)
    (wc / "json_files" / "FreeSound" / "fsd_final.json").write_text(json.dumps({"data": [
        {"id": 300008, "caption": "x"}, {"id": 300009.0, "caption": "y"}, {"id": 500001, "caption": "z"},
        {"id": 500002, "caption": "w"}]}))
    (wc / "json_files" / "blacklist").mkdir(parents=True)
    (wc / "json_files" / "blacklist" / "blacklist_exclude_test_ac.json").write_text(json.dumps(
        {"AudioSet": [], "FreeSound": [500001]}))
    for n, stem in enumerate(("300008", "300009", "500001", "500002")):
        miniature._write_flac(wc / "FreeSound_flac" / f"{stem}.flac", miniature.CLASS_NAMES[n], 0.5, 32000, n)
    data = tmp_path / "data"
    prepare_corpus("wavcaps", wc, data, jobs=1)
    prepare_corpus("clotho", raw / "clotho", data, jobs=1)
    clips = _clips(data, "wavcaps")
    assert {k: c.freesound_id for k, c in clips.items()} == {
        "FreeSound/300008": "300008", "FreeSound/300009": "300009", "FreeSound/500002": "500002"}
    skipped = Counter()
    kept = select_pool(load_candidates([data / "wavcaps" / "manifest.csv"]), [], None,
                       reference_ids([data / c / "manifest.csv" for c in ("clotho", "wavcaps")]), skipped, PoolReport())
    assert [c.id for c in kept] == ["FreeSound/500002"]


@pytest.mark.parametrize("word, message", [("clotho:0", "positive number"), ("clotho:-0.5", "positive number"),
                                           ("clotho:nan", "positive number"), ("clotho:inf", "positive number")])
def test_targets_weights_that_are_not_positive(word, message):
    from lasskit.mixing.planning import split_weights

    with pytest.raises(UsageError, match=message):
        split_weights([word, "fsd50k:0.5"])


def test_targets_weights_need_not_sum_to_one_and_unknown_corpus(prepared):
    from lasskit.training.data import load_training_data, resolve_inputs
    from lasskit.workspace import Workspace

    root, _, _ = prepared
    ws = Workspace.open(root / "ws")
    data = load_training_data(["audiocaps:3", "autoacd:1"], [], workspace=ws, segment=1.0, jobs=1)
    shares = data.summary()["sampler_shares"]
    assert shares["audiocaps"]["share"] == pytest.approx(0.75, abs=1 / data.planner.num_rows)
    with pytest.raises(UsageError, match="nosuch: no such manifest"):
        resolve_inputs(["nosuch:0.5", "audiocaps:0.5"], [], ws)


def test_ids_that_lost_their_leading_dashes_are_restored(tmp_path):
    """A CSV written through a spreadsheet or a script that stripped leading '-' ('cB2ZVjpnA' for
    '--cB2ZVjpnA'): the id is restored to 11 characters (so that it is the same recording as the
    AudioCaps test clip of that video, and its audio is found), counted; not a refusal of the file."""
    from collections import Counter

    from lasskit.corpora.youtube import parse_segment
    from lasskit.mixing.pool import PoolReport, load_candidates, reference_ids, select_pool

    assert parse_segment("cB2ZVjpnA") == ("--cB2ZVjpnA", "", True)
    assert parse_segment("cB2ZVjpnA_30") == ("--cB2ZVjpnA", "30", True)
    assert parse_segment("--cB2ZVjpnA_30.000") == ("--cB2ZVjpnA", "30.000", False)
    assert parse_segment("not an id at all") == ("", "", False)
    ac = tmp_path / "audiocaps"
    _write_csv(ac / "dataset" / "train.csv", ["audiocap_id", "youtube_id", "start_time", "caption"], [])
    _write_csv(ac / "dataset" / "test.csv", ["audiocap_id", "youtube_id", "start_time", "caption"],
               [[1, "cB2ZVjpnA", 30, "A clock ticks."], [2, "--cB2ZVjpnA", 30, "Ticking."]])
    miniature._write_flac(ac / "audio" / "--cB2ZVjpnA_30.flac", miniature.CLASS_NAMES[0], 0.5, 16000, 1)
    aa = tmp_path / "autoacd"
    _write_csv(aa / "train.csv", ["youtube_id", "caption"], [["cB2ZVjpnA_30", "a clock"], ["video000000_1", "x"]])
    _write_csv(aa / "test.csv", ["youtube_id", "caption"], [])
    miniature._write_flac(aa / "audio" / "Y--cB2ZVjpnA.flac", miniature.CLASS_NAMES[2], 0.5, 16000, 3)
    miniature._write_flac(aa / "audio" / "video000000_1.flac", miniature.CLASS_NAMES[3], 0.5, 16000, 4)
    data = tmp_path / "data"
    ac_notes = prepare_corpus("audiocaps", ac, data, jobs=1)[0].notes
    aa_notes = prepare_corpus("autoacd", aa, data, jobs=1)[0].notes
    assert list(_clips(data, "audiocaps")) == ["--cB2ZVjpnA_30"]
    assert _clips(data, "audiocaps")["--cB2ZVjpnA_30"].captions == ["A clock ticks.", "Ticking."]
    assert sorted(_clips(data, "autoacd")) == ["--cB2ZVjpnA_30", "video000000_1"]
    assert any("1 row(s) name a YouTube id without its leading '-'" in n for n in ac_notes)
    assert any("1 row(s) name a YouTube id without its leading '-'" in n for n in aa_notes)
    kept = select_pool(load_candidates([data / "autoacd" / "manifest.csv"]), [], None,
                       reference_ids([data / "audiocaps" / "manifest.csv"]), Counter(), PoolReport())
    assert [c.id for c in kept] == ["video000000_1"]


def test_clotho_held_out_splits_without_metadata_say_their_copies_go_unrecognised(tmp_path):
    """Without clotho_metadata_<split>.csv a held-out clip has no Freesound id: WavCaps' copy of it
    would train unnoticed. The notes say so (per held-out split), not silently."""
    raw = miniature.write_clotho(tmp_path / "raw", per_split=2, duration=0.3, metadata=False)
    notes = prepare_corpus("clotho", raw, tmp_path / "data", jobs=1)[0].notes
    said = [n for n in notes if n.startswith("missing clotho_metadata_")]
    assert [n.split(":")[0] for n in said] == ["missing clotho_metadata_validation.csv",
                                               "missing clotho_metadata_evaluation.csv"]
    assert "the Freesound ids of the 2 evaluation clip(s) are unknown" in said[1]


def test_targets_weights_too_large_to_add_up_still_share_every_row(prepared):
    """`--targets audiocaps:1e308 autoacd:1e308`: their sum overflows; every row of the epoch is still drawn,
    half each (it used to be one row per corpus, silently)."""
    from lasskit.training.data import load_training_data
    from lasskit.workspace import Workspace

    root, _, _ = prepared
    data = load_training_data(["audiocaps:1e308", "autoacd:1e308"], [], workspace=Workspace.open(root / "ws"),
                              segment=1.0, jobs=1)
    rows = data.planner.corpus_rows()
    assert sum(rows.values()) == data.planner.num_rows and abs(rows["audiocaps"] - rows["autoacd"]) <= 1


def test_the_same_audio_under_another_name_is_the_same_recording(tmp_path):
    """A WavCaps BBC clip whose file is, byte for byte, a clip of a folder corpus's eval split (no
    Freesound id, no YouTube id): the same decoded samples, so it is held out of training."""
    import shutil
    from collections import Counter

    from lasskit.mixing.pool import PoolReport, load_candidates, reference_ids, select_pool

    wc = tmp_path / "wavcaps"
    (wc / "json_files" / "BBC_Sound_Effects").mkdir(parents=True)
    (wc / "json_files" / "BBC_Sound_Effects" / "bbc_final.json").write_text(json.dumps({"data": [
        {"id": "07066100", "caption": "a", "description": "d"}, {"id": "07066101", "caption": "b", "description": "e"}]}))
    miniature._write_flac(wc / "BBC_Sound_Effects_flac" / "07066100.flac", miniature.CLASS_NAMES[0], 0.5, 32000, 1)
    miniature._write_flac(wc / "BBC_Sound_Effects_flac" / "07066101.flac", miniature.CLASS_NAMES[1], 0.5, 32000, 2)
    mine = tmp_path / "mine"
    mine.mkdir()
    shutil.copy(wc / "BBC_Sound_Effects_flac" / "07066100.flac", mine / "door.flac")
    (tmp_path / "meta.csv").write_text("file,caption,split\ndoor.flac,a door,eval\n")
    data = tmp_path / "data"
    prepare_corpus("wavcaps", wc, data, jobs=1)
    prepare_corpus("folder", mine, data, jobs=1, metadata=tmp_path / "meta.csv", name="mine")
    skipped = Counter()
    kept = select_pool(load_candidates([data / "wavcaps" / "manifest.csv"]), [], None,
                       reference_ids([data / c / "manifest.csv" for c in ("mine", "wavcaps")]), skipped, PoolReport())
    assert [c.id for c in kept] == ["BBC_Sound_Effects/07066101"]
    assert skipped == {"same recording as a val/eval clip of a prepared corpus": 1}


def test_audioset_label_ids_the_names_file_lacks_are_counted(tmp_path):
    """A segment CSV naming a class id that class_labels_indices.csv lacks (an older names file):
    the clip keeps the labels that are named, and the notes count the ids left out."""
    labels = miniature.write_audioset_labels(tmp_path / "audioset", [0])
    segments = labels[0]
    segments.write_text(segments.read_text().replace('"/m/', '"/m/unknown1,/m/', 1), encoding="utf-8")
    raw = tmp_path / "autoacd"
    _write_csv(raw / "train.csv", ["youtube_id", "caption"], [["mini0000000_30", "a tone"]])
    miniature._write_flac(raw / "audio" / "mini0000000_30.flac", miniature.CLASS_NAMES[0], 0.5, 16000, 1)
    notes = prepare_corpus("autoacd", raw, tmp_path / "data", jobs=1, audioset_labels=labels)[0].notes
    assert _clips(tmp_path / "data", "autoacd")["mini0000000_30"].labels == ["Tone", "Sine wave"]
    assert any(n.startswith("1 AudioSet class id(s) of the segment CSVs are not in class_labels_indices.csv "
                            "(e.g. /m/unknown1)") for n in notes)


def test_audio_named_like_audioset_downloaders_is_found(tmp_path):
    """Audio fetched as <id>_<start>.000_<end>.000 (AudioSet download scripts): found for an AudioCaps
    clip at that start, and for an Auto-ACD row that names the video only (its hub CSV's ids)."""
    ac = tmp_path / "audiocaps"
    _write_csv(ac / "dataset" / "train.csv", ["audiocap_id", "youtube_id", "start_time", "caption"],
               [[1, "-dashvideoA", 30, "A clock ticks."]])
    miniature._write_flac(ac / "audio" / "-dashvideoA_30.000_40.000.flac", miniature.CLASS_NAMES[0], 0.5, 16000, 1)
    aa = tmp_path / "autoacd"
    _write_csv(aa / "train.csv", ["youtube_id", "caption"], [["mini0000001", "a beep"], ["mini0000002", "gone"]])
    miniature._write_flac(aa / "audio" / "mini0000001_31.000_41.000.flac", miniature.CLASS_NAMES[1], 0.5, 16000, 2)
    data = tmp_path / "data"
    prepare_corpus("audiocaps", ac, data, jobs=1)
    prepare_corpus("autoacd", aa, data, jobs=1)
    assert list(_clips(data, "audiocaps")) == ["-dashvideoA_30"]
    assert list(_clips(data, "autoacd")) == ["mini0000001"]
    assert _excluded(data, "autoacd") == [("mini0000002", "missing YouTube clip")]


@pytest.mark.parametrize("words", [["clotho:0.5", "clotho:0.25"], ["clotho:0.5", "clotho"]])
def test_targets_weights_for_a_corpus_named_twice(words):
    from lasskit.mixing.planning import split_weights

    with pytest.raises(UsageError, match="--targets clotho: named twice"):
        split_weights(words)
