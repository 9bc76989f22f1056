"""The challenge's data rules in `mix` and the training Dataset: held-out splits and corpora, recordings
shared with the challenge's sets, Freesound ids and content digests never paired, the upload-window
warning, derived labels counted."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lasskit import soundgen
from lasskit.errors import UsageError
from lasskit.manifest import Clip, write_manifest
from lasskit.mixing import MixSpec, make_mixtures
from lasskit.splits import read_split

SR = 16000
CLASSES = ["tone", "alarm", "chirp", "hum", "rain", "bird"]


def corpus(root: Path, rows, dataset: str = "gen") -> Path:
    """rows: (id, class, split, extra Clip fields as a dict)."""
    clips = []
    for i, (cid, cls_name, split, extra) in enumerate(rows):
        cls = soundgen.CLASSES[cls_name]
        soundgen.write_clip(root / "audio" / f"{cid}.wav", cls_name, 1.0, seed=extra.pop("seed", i))
        labels = extra.pop("labels", list(cls.labels))
        clips.append(Clip(cid, f"audio/{cid}.wav", 1.0, SR, SR, dataset, split, list(cls.captions), labels, **extra))
    write_manifest(root / "manifest.csv", clips)
    return root / "manifest.csv"


def used_ids(split_dir: Path) -> set[str]:
    frame = read_split(split_dir).frame
    return set(frame["source_id"]) | set(frame["noise_id"])


def spec(**kw) -> MixSpec:
    return MixSpec(-5, 5, duration=1.0, **{"num": 12, **kw})


def test_training_mix_never_draws_held_out_data_unless_named(tmp_path):
    fsd = corpus(tmp_path / "fsd50k", [(f"f{i}", CLASSES[i], ("train", "val", "eval")[i % 3], {}) for i in range(6)],
                 dataset="fsd50k")
    val = corpus(tmp_path / "dcase2024_val", [(f"{700000 + i}_1-hq", CLASSES[i], "val", {}) for i in range(6)],
                 dataset="dcase2024_val")
    # what `lasskit mix --snr ... --name train` does on a workspace: every corpus, none named
    report = make_mixtures(tmp_path / "train", spec(), [fsd, val], named=[], jobs=1)
    assert used_ids(tmp_path / "train") <= {"f0", "f3"}  # FSD50K's train split only
    assert report.pool.held_out == {"dcase2024_val/val": 6, "fsd50k/eval": 2, "fsd50k/val": 2}
    assert report.pool.used == {"fsd50k": {"train": 2}} and not report.warnings
    state = json.loads((tmp_path / "train" / "mix.json").read_text())
    assert state["data"]["used"] == {"fsd50k": {"train": 2}}
    assert state["data"]["held_out_left_out"]["dcase2024_val/val"] == 6
    # the challenge's corpus named explicitly: an evaluation-style set, said so
    named = make_mixtures(tmp_path / "val_style", spec(), [val], named=[val], jobs=1)
    assert used_ids(tmp_path / "val_style") <= {f"{700000 + i}_1-hq" for i in range(6)}
    assert any("do not train on it" in w for w in named.warnings)
    # a corpus's val split only with --split val
    with_val = make_mixtures(tmp_path / "fv", spec(), [fsd], splits=["train", "val"], named=[], jobs=1)
    assert used_ids(tmp_path / "fv") <= {"f0", "f1", "f3", "f4"} and with_val.pool.held_out_used == {"fsd50k/val": 2}
    with pytest.raises(UsageError, match="held-out"):
        make_mixtures(tmp_path / "none", spec(), [val], named=[], jobs=1)


@pytest.mark.slow
def test_dataset_follows_the_same_rules(tmp_path):
    pytest.importorskip("torch")
    from lasskit.mixing import mixture_dataset

    fsd = corpus(tmp_path / "fsd50k", [(f"f{i}", CLASSES[i], ("train", "val")[i % 2], {}) for i in range(6)],
                 dataset="fsd50k")
    dataset = mixture_dataset([fsd], spec(num=None))
    assert {t.id for t in dataset.planner.usable} == {"f0", "f2", "f4"}
    assert dataset.pool.held_out == {"fsd50k/val": 3}
    assert len(mixture_dataset([fsd], spec(num=None), splits=["train", "val"]).planner.usable) == 6


def test_recordings_of_the_challenge_are_dropped_and_ids_never_paired(tmp_path):
    val = corpus(tmp_path / "dcase2024_val", [("700100_5-hq", "tone", "val", {}), ("709900_7-hq", "alarm", "val", {})],
                 dataset="dcase2024_val")
    train = corpus(tmp_path / "fsd50k", [
        ("700100", "chirp", "train", {}),  # the validation recording 700100, inside FSD50K: dropped
        ("1001", "hum", "train", {"digest": "d-same"}),
        ("1002", "rain", "train", {"freesound_id": "55"}),
        ("1003", "bird", "train", {}),
        ("705000", "knock", "train", {}),  # inside the validation ids' range: warned
    ], dataset="fsd50k")
    clotho = corpus(tmp_path / "clotho", [
        ("c1", "tone", "train", {"freesound_id": "1003", "labels": ["Tone"]}),  # the same recording as FSD50K 1003
        ("c2", "alarm", "train", {"freesound_id": "77", "digest": "d-same", "labels": ["Alarm"]}),  # same samples as 1001
        ("c3", "ticking", "train", {"freesound_id": "88"}),
    ], dataset="clotho")
    report = make_mixtures(tmp_path / "t", MixSpec(-5, 5, duration=1.0, num=60), [train], [clotho],
                           named=[], reference=[val], jobs=1)
    assert report.skipped["same recording as a challenge validation/evaluation clip"] == 1
    assert report.pool.challenge_recordings == 1 and report.pool.upload_window == 1
    assert report.pool.upload_range == (700100, 709900)
    assert any("705000" not in w and "validation ids' range 700100-709900" in w for w in report.warnings)
    frame = read_split(tmp_path / "t").frame
    assert "700100" not in set(frame["source_id"])
    pairs = set(zip(frame["source_id"], frame["noise_id"]))
    assert ("1003", "c1") not in pairs and ("1001", "c2") not in pairs  # same Freesound id / same samples
    assert {"1003", "1001"} <= set(frame["source_id"])  # still used, with other noises


def test_derived_labels_are_used_and_counted(tmp_path):
    m = corpus(tmp_path / "clotho", [
        ("a", "tone", "train", {"label_source": "caption"}),
        ("b", "rain", "train", {"label_source": "keywords"}),
        ("c", "hum", "train", {}),
        ("d", "chirp", "train", {}),
    ], dataset="clotho")
    report = make_mixtures(tmp_path / "s", MixSpec(-5, 5, duration=1.0, num=40), [m], jobs=1)
    frame = read_split(tmp_path / "s").frame
    sources = [json.loads(x) for x in frame["label_sources"]]
    derived = sum(1 for x in sources if x["source"] in ("caption", "keywords") or x["noise"] in ("caption", "keywords"))
    assert report.derived_rows == derived > 0
    assert any(f"{derived} of 40 row(s) rest on derived labels" in n for n in report.notes)
    assert json.loads((tmp_path / "s" / "mix.json").read_text())["counts"]["derived_label_rows"] == derived


def test_silent_clips_are_all_reported_and_dataset_equals_mix(tmp_path):
    pytest.importorskip("torch")
    from lasskit.mixing import mixture_dataset

    rows = [(f"k{i}", CLASSES[i % 6], "train", {}) for i in range(8)]
    m = corpus(tmp_path / "c", rows)
    for quiet in ("k1", "k5"):  # silent clips in the pool
        sf.write(str(tmp_path / "c" / "audio" / f"{quiet}.wav"), np.zeros(SR, np.float32), SR, subtype="PCM_16")
    s = MixSpec(-5, 5, duration=1.0, num=3, seed=2)  # 3 rows: a silent clip is not necessarily drawn
    report = make_mixtures(tmp_path / "s", s, [m], jobs=1)
    assert report.skipped["silent clip"] == 2  # both, drawn or not
    frame = read_split(tmp_path / "s").frame
    dataset = mixture_dataset([m], MixSpec(-5, 5, duration=1.0, num=16, seed=2))
    big = make_mixtures(tmp_path / "b", MixSpec(-5, 5, duration=1.0, num=16, seed=2), [m], jobs=1)
    assert big.rows == 16 and dataset.skipped["silent clip"] == 2
    big_frame = read_split(tmp_path / "b").frame
    for i in range(16):  # every triple equal, byte for byte
        mixture, reference, query = dataset[i]
        assert query == big_frame["query"][i]
        assert np.array_equal(mixture.numpy(), sf.read(str(tmp_path / "b" / "mixture" / big_frame["mixture"][i]),
                                                       dtype="float32")[0])
        assert np.array_equal(reference.numpy(), sf.read(str(tmp_path / "b" / big_frame["source"][i]),
                                                         dtype="float32")[0])
    assert len(frame) == 3
