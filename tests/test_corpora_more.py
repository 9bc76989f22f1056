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
