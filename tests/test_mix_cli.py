"""`lasskit mix` on the command line: options, sources, guard rails, lasskit.yaml, --from-official."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from lasskit import soundgen
from lasskit.manifest import Clip, write_manifest
from lasskit.mixing import energy_snr, read_official_csv
from lasskit.splits import read_split

SR = 16000


def corpus(ws: Path, name: str, classes: list[str], duration: float = 1.0, split: str = "train") -> Path:
    """A prepared corpus data/<name>/ of generated clips, one per class name."""
    root = ws / "data" / name
    clips = []
    for i, cls_name in enumerate(classes):
        cls = soundgen.CLASSES[cls_name]
        cid = f"{name}_{i}"
        soundgen.write_clip(root / "audio" / f"{cid}.wav", cls_name, duration, seed=i)
        clips.append(Clip(cid, f"audio/{cid}.wav", duration, SR, int(duration * SR), name,
                          split if i % 2 == 0 else "val", list(cls.captions), list(cls.labels)))
    write_manifest(root / "manifest.csv", clips)
    return root / "manifest.csv"


DENSE = ["tone", "alarm", "chirp", "hum", "rain", "bird"]


def test_mix_writes_a_split_and_prints_the_summary(tmp_path, run_cli):
    corpus(tmp_path, "gen", DENSE)
    code, out, err = run_cli("-w", tmp_path, "mix", "--snr", "-5", "5", "--duration", "1", "--num", "10",
                             "--name", "demo", "-j", "1")
    assert code == 0, err
    assert "distinct targets / noises used" in out and "SNR histogram" in out and "mixtures" in out
    assert "clips used: gen (train 3)" in out and "left out validation/evaluation clips not asked for (gen/val 3)" in out
    split = read_split(tmp_path / "data" / "splits" / "demo")
    assert len(split) == 10 and split.has_references
    assert set(split.frame["source_id"]) | set(split.frame["noise_id"]) <= {"gen_0", "gen_2", "gen_4"}  # train only
    state = json.loads((split.root / "mix.json").read_text())
    assert state["data"]["used"] == {"gen": {"train": 3}} and state["data"]["held_out_left_out"] == {"gen/val": 3}
    for row in split.frame.to_dict("records"):
        src = sf.read(str(split.root / row["source"]), dtype="float32")[0]
        noise = sf.read(str(split.root / row["noise"]), dtype="float32")[0]
        mix = sf.read(str(split.mixture_path(row["mixture"])), dtype="float32")[0]
        assert len(mix) == SR and np.array_equal(mix, src + noise)
        assert abs(energy_snr(src, noise) - float(row["snr"])) < 0.01 and -5 <= float(row["snr"]) <= 5
    # guard rail: an existing split is refused, then replaced with --overwrite
    code, out, err = run_cli("-w", tmp_path, "mix", "--snr", "-5", "5", "--name", "demo", "-j", "1")
    assert code == 2 and "already exists, made with other options" in err and "pass --overwrite" in err
    assert "Traceback" not in err
    code, out, err = run_cli("-w", tmp_path, "mix", "gen", "--snr", "0", "1", "--duration", "0.5", "--name", "demo",
                             "--overwrite", "-j", "1")
    assert code == 0, err
    frame = read_split(tmp_path / "data" / "splits" / "demo").frame
    assert len(frame) == 3 and frame["snr"].astype(float).between(0, 1).all()  # one per (train) target by default
    assert len(list((tmp_path / "data" / "splits" / "demo" / "mixture").glob("*.wav"))) == 3  # old files gone
    code, out, err = run_cli("-w", tmp_path, "mix", "gen", "--split", "train", "--split", "val", "--snr", "0", "1",
                             "--duration", "0.5", "--name", "both", "-j", "1")
    assert code == 0, err
    assert "clips used: gen (train 3, val 3)" in out and "do not train on it" in out


def test_usage_errors_are_one_line(tmp_path, run_cli):
    errors = []

    def fails(*args: str, expect: str) -> None:
        code, _, err = run_cli("-w", tmp_path, "mix", *args)
        assert code == 2 and expect in err, err
        errors.append(err)

    fails("--snr", "0", "5", expect="no prepared corpus")
    corpus(tmp_path, "gen", DENSE[:3])
    fails(expect="--snr LOW HIGH")
    fails("nosuch", "--snr", "0", "5", expect="nosuch: no such manifest")
    fails("--snr", "5", "0", expect="LOW <= HIGH")
    fails("--snr", "0", "5", "--num", "0", expect="--num 0")
    fails("--from-official", str(tmp_path / "x.csv"), expect="--clips")
    fails("--snr", "0", "5", "--name", "../up", expect="plain folder name")
    fails("--snr", "0", "5", "--ontology", str(tmp_path / "none.json"), expect="no such ontology file")
    fails("--snr", "-15", expect="(see `lasskit mix --help`)")
    fails("--snr", "0", "5", "--min-active", "20", expect="--min-active 20")
    assert all(len(e.strip().splitlines()) == 1 and "Traceback" not in e for e in errors)


def test_defaults_from_lasskit_yaml(tmp_path, run_cli):
    corpus(tmp_path, "gen", DENSE)
    (tmp_path / "lasskit.yaml").write_text("mix:\n  snr: [-3, 3]\n  seed: 4\n  duration: 0.5\n  integer_snr: true\n")
    code, out, err = run_cli("-w", tmp_path, "mix", "-j", "1")
    assert code == 0, err
    split_dir = tmp_path / "data" / "splits" / "mix"  # default name
    frame = read_split(split_dir).frame
    assert set(frame["seed"]) == {"4"} and set(frame["snr"]) <= {str(k) for k in range(-3, 4)}
    assert sf.info(str(split_dir / frame["source"][0])).frames == 8000
    assert json.loads((split_dir / "mix.json").read_text())["options"]["spec"]["snr_low"] == -3


def test_targets_and_noises_from_different_manifests_and_filters(tmp_path, run_cli):
    corpus(tmp_path, "speechy", ["tone", "chirp", "bird", "alarm"])
    corpus(tmp_path, "noisy", ["hum", "rain", "knock", "ticking"])
    code, _, err = run_cli("-w", tmp_path, "mix", "--targets", "speechy", "--noises", tmp_path / "data" / "noisy",
                           "--snr", "-5", "5", "--num", "12", "--name", "tn", "-j", "1")
    assert code == 0, err
    frame = read_split(tmp_path / "data" / "splits" / "tn").frame
    assert set(frame["source_corpus"]) == {"speechy"} and set(frame["noise_corpus"]) == {"noisy"}
    assert frame["source_id"].str.startswith("speechy_").all() and frame["noise_id"].str.startswith("noisy_").all()
    code, _, err = run_cli("-w", tmp_path, "mix", "speechy", "--split", "train", "--snr", "0", "5", "--name", "tr",
                           "-j", "1", "--per-caption", "--integer-snr", "--duration", "1")
    assert code == 0, err
    frame = read_split(tmp_path / "data" / "splits" / "tr").frame
    assert set(frame["source_id"]) | set(frame["noise_id"]) == {"speechy_0", "speechy_2"}  # train: even ids
    assert len(frame) == 4 and frame["source_id"].value_counts().eq(2).all()  # 2 captions each
    assert frame.groupby("source_id")["query"].nunique().eq(2).all()


def test_official_csv_round_trip(tmp_path, run_cli):
    corpus(tmp_path, "gen", DENSE, split="train")
    code, _, err = run_cli("-w", tmp_path, "mix", "--snr", "-15", "15", "--integer-snr", "--per-caption",
                           "--name", "ours", "--official-csv", tmp_path / "ours.csv", "-j", "1", "--split", "train",
                           "--split", "val")
    assert code == 2 and "--official-csv" in err and "rows crop or pad their clips" in err  # 1 s clips, 10 s segments
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "ours.csv").exists() and not (tmp_path / "data" / "splits" / "ours" / "mixture").exists()
    code, _, err = run_cli("-w", tmp_path, "mix", "--snr", "-15", "15", "--integer-snr", "--per-caption",
                           "--name", "ours", "--official-csv", tmp_path / "ours.csv", "-j", "1", "--split", "train",
                           "--split", "val", "--duration", "1")
    assert code == 0, err
    official = read_official_csv(tmp_path / "ours.csv")
    assert len(official) == 12 and official["snr"].astype(int).between(-15, 15).all()
    code, out, err = run_cli("-w", tmp_path, "mix", "--from-official", tmp_path / "ours.csv",
                             "--clips", tmp_path / "data" / "gen" / "audio", "--name", "theirs", "-j", "1")
    assert code == 0, err
    ours = read_split(tmp_path / "data" / "splits" / "ours").frame
    theirs = read_split(tmp_path / "data" / "splits" / "theirs").frame
    assert list(theirs["source_id"]) == list(ours["source_id"]) and list(theirs["query"]) == list(ours["query"])
    assert list(theirs["snr"]) == list(ours["snr"])
    code, _, err = run_cli("-w", tmp_path, "mix", "--from-official", tmp_path / "ours.csv",
                           "--clips", tmp_path / "data" / "gen" / "audio", "--name", "theirs", "-j", "1")
    assert code == 2 and "--overwrite" in err


def test_unreadable_clip_is_listed_and_left_out(tmp_path, run_cli):
    manifest = corpus(tmp_path, "gen", DENSE)
    (manifest.parent / "audio" / "gen_2.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    code, out, err = run_cli("-w", tmp_path, "mix", "--snr", "0", "5", "--name", "bad", "-j", "1", "--split", "train",
                             "--split", "val", "--duration", "1")
    assert code == 1 and "1 clip(s) failed" in err and "failures.csv" in err
    assert "gen_2.wav" in out
    split_dir = tmp_path / "data" / "splits" / "bad"
    assert "gen_2.wav" in (split_dir / "failures.csv").read_text()
    frame = read_split(split_dir).frame
    assert len(frame) == 5 and "gen_2" not in set(frame["source_id"]) | set(frame["noise_id"])
    code, _, err = run_cli("-w", tmp_path, "mix", "--snr", "0", "5", "--name", "bad2", "-j", "1", "--keep-going",
                           "--split", "train", "--split", "val", "--duration", "1")
    assert code == 0, err
