"""lasskit.mixing / lasskit.ontology: exact SNRs, mixture == source + noise, class-disjoint pairs,
silence, cropping, reproducibility and resuming, the organizers' statistics, the training Dataset."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lasskit import soundgen
from lasskit.errors import UsageError
from lasskit.manifest import Clip, write_manifest
from lasskit.mixing import (
    MixSpec, Planner, energy_snr, frame_activity, load_candidates, make_mixtures, mix_from_official,
    mix_segments, official_mixture, read_segment, rebuild_row, take_segment, usable_offsets,
)
from lasskit.ontology import Ontology, label_set, normalize_label, shares_class
from lasskit.splits import read_split

SR = 16000


def make_corpus(root: Path, specs, name: str = "gen") -> Path:
    """Write clips and a manifest. ``specs``: (id, class name or ndarray, duration s, labels, captions)."""
    clips = []
    for i, (cid, what, duration, labels, captions) in enumerate(specs):
        rel = f"audio/{cid}.wav"
        (root / "audio").mkdir(parents=True, exist_ok=True)
        if isinstance(what, str):
            soundgen.write_clip(root / rel, what, duration, seed=i)
        else:
            sf.write(str(root / rel), what, SR, subtype="PCM_16")
            duration = len(what) / SR
        clips.append(Clip(cid, rel, duration, SR, int(round(duration * SR)), name, "train", list(captions), list(labels)))
    write_manifest(root / "manifest.csv", clips)
    return root / "manifest.csv"


def generated_corpus(root: Path, n: int = 12) -> Path:
    """``n`` clips cycling through the dense soundgen classes, 0.6 s (padded), 1.0 s and 2.5 s (cropped)."""
    names = ["tone", "alarm", "chirp", "hum", "rain", "bird"]
    specs = []
    for i in range(n):
        cls = soundgen.CLASSES[names[i % len(names)]]
        specs.append((f"c{i:02d}", cls.name, (0.6, 1.0, 2.5)[i % 3], cls.labels, cls.captions))
    return make_corpus(root, specs)


def read(path: Path) -> np.ndarray:
    x, rate = sf.read(str(path), dtype="float32")
    assert rate == SR and x.ndim == 1
    return x


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- labels and ontology ---------------------------------------------------------------------

def test_normalize_label_forms_agree():
    assert normalize_label("Domestic_animals_and_pets") == "domestic animals and pets"
    assert normalize_label("Domestic animals, pets") == "domestic animals and pets"
    assert normalize_label("  Domestic   animals and  pets ") == "domestic animals and pets"
    assert normalize_label(" DOG ") == "dog"
    assert normalize_label("Burping,eructation") == "burping and eructation"


ONTOLOGY = [
    {"id": "/m/a", "name": "Animal", "child_ids": ["/m/d", "/m/b"]},
    {"id": "/m/d", "name": "Domestic animals, pets", "child_ids": ["/m/dog", "/m/cat"]},
    {"id": "/m/dog", "name": "Dog", "child_ids": ["/m/bark"]},
    {"id": "/m/bark", "name": "Bark", "child_ids": []},
    {"id": "/m/cat", "name": "Cat", "child_ids": []},
    {"id": "/m/b", "name": "Bird", "child_ids": []},
    {"id": "/m/e", "name": "Engine", "child_ids": []},
]


def test_ontology_expands_to_ancestors(tmp_path):
    path = tmp_path / "ontology.json"
    path.write_text(json.dumps(ONTOLOGY))
    onto = Ontology.from_json(path)
    assert onto.ancestors("Bark") == {"bark", "dog", "domestic animals and pets", "animal"}
    assert label_set(["Domestic_animals_and_pets"], onto) == {"domestic animals and pets", "animal"}
    assert shares_class(label_set(["Dog"], onto), label_set(["Domestic animals, pets"], onto))
    assert not shares_class(label_set(["Dog"]), label_set(["Domestic animals, pets"]))
    assert not shares_class(label_set(["Dog"], onto), label_set(["Engine"], onto))
    assert label_set(["Unknown thing"], onto) == {"unknown thing"}
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "a list"}')
    with pytest.raises(UsageError, match="ontology.json format"):
        Ontology.from_json(bad)


def test_ontology_pairing_never_pairs_dog_with_pets(tmp_path):
    path = tmp_path / "ontology.json"
    path.write_text(json.dumps(ONTOLOGY))
    manifest = make_corpus(tmp_path / "c", [
        ("dog", "tone", 0.5, ["Dog"], ["A dog."]),
        ("pets", "chirp", 0.5, ["Domestic_animals_and_pets"], ["Pets."]),
        ("engine", "hum", 0.5, ["Engine"], ["An engine."]),
        ("bark", "alarm", 0.5, ["Bark"], ["Barking."]),
    ])
    spec = MixSpec(-5, 5, num=40, duration=0.5)
    plain = Planner(load_candidates([manifest]), load_candidates([manifest]), spec)
    ids = lambda planner, t: sorted(planner.noises[j].id for j in planner.valid_noises(t))  # noqa: E731
    assert ids(plain, plain.targets[0]) == ["bark", "engine", "pets"]
    onto = Ontology.from_json(path)
    strict = Planner(load_candidates([manifest], onto), load_candidates([manifest], onto), spec)
    assert ids(strict, strict.targets[0]) == ["engine"]
    report = make_mixtures(tmp_path / "split", spec, [manifest], ontology=path, jobs=1)
    frame = read_split(tmp_path / "split").frame
    assert report.rows == 40 and len(frame) == 40
    for row in frame.to_dict("records"):
        a = label_set(json.loads(row["source_labels"]), onto)
        b = label_set(json.loads(row["noise_labels"]), onto)
        assert not shares_class(a, b), row
        assert "engine" in (row["source_id"], row["noise_id"])


# --- activity, offsets, gains -----------------------------------------------------------------

def test_usable_offsets_follow_the_active_region():
    hop = 1600
    x = np.zeros(10 * SR, dtype=np.float32)
    x[3 * SR:6 * SR] = 0.1 * np.sin(np.arange(3 * SR) * 0.3)  # active frames 30..59
    active = frame_activity(x)
    assert np.flatnonzero(active).tolist() == list(range(30, 60))
    offsets = usable_offsets(active, len(x), 2 * SR, hop)  # windows of 20 frames; best holds 20
    assert offsets.tolist() == [k * hop for k in range(20, 51)]  # windows holding >= 10 active frames
    assert usable_offsets(np.zeros(100, bool), len(x), 2 * SR, hop).size == 0
    assert usable_offsets(active[:10], SR, 2 * SR, hop).size == 0  # short, silent: unusable
    short = frame_activity(x[3 * SR:4 * SR])
    assert usable_offsets(short, SR, 2 * SR, hop).tolist() == [0]  # short clip: padded from 0
    quiet = np.full(SR, 10 ** (-65 / 20), dtype=np.float32)  # -65 dBFS RMS: below -60
    assert not frame_activity(quiet).any() and frame_activity(quiet, silence_db=-70).all()


def test_mix_segments_exact_snr_and_sum():
    rng = np.random.default_rng(1)
    s = (0.3 * rng.standard_normal(SR)).astype(np.float32)
    n = (0.2 * rng.standard_normal(SR)).astype(np.float32)
    for snr in (-15.0, -3.7, 0.0, 4.25, 15.0):
        m = mix_segments(s, n, snr)
        assert abs(energy_snr(m.source, m.noise) - snr) < 1e-4
        assert np.array_equal(m.mixture, m.source + m.noise)
        assert m.mixture.dtype == np.float32
    loud = mix_segments(s * 3, n * 3, -10.0)  # would clip: everything scaled by 0.9 / peak
    assert loud.clip_gain < 1
    assert abs(np.max(np.abs(loud.mixture)) - 0.9) < 1e-6
    assert abs(energy_snr(loud.source, loud.noise) + 10.0) < 1e-4
    assert np.array_equal(loud.source, ((s * 3).astype(np.float64) * loud.clip_gain).astype(np.float32))
    with pytest.raises(Exception, match="silent"):
        mix_segments(np.zeros(100, np.float32), n[:100], 0.0)


def test_read_segment_equals_crop_of_full_load(tmp_path):
    x = soundgen.write_clip(tmp_path / "a.wav", "rain", 1.3, seed=3)
    full = sf.read(str(tmp_path / "a.wav"), dtype="float32")[0]
    assert np.array_equal(read_segment(tmp_path / "a.wav", 4800, 8000), full[4800:12800])
    padded = read_segment(tmp_path / "a.wav", 16000, 8000)
    assert np.array_equal(padded, take_segment(full, 16000, 8000)) and not padded[4800:].any()
    assert len(x) == len(full)


# --- whole sets ---------------------------------------------------------------------------------

def check_split(split_dir: Path, spec: MixSpec, clip_dir: Path):
    """Every row: SNR to 0.01 dB read back, mixture == source + noise, lengths, disjoint labels, rebuild."""
    frame = read_split(split_dir).frame
    for row in frame.to_dict("records"):
        mix, src, noise = (read(split_dir / p) for p in (f"mixture/{row['mixture']}", row["source"], row["noise"]))
        assert len(mix) == len(src) == len(noise) == spec.length
        assert sf.info(str(split_dir / row["source"])).subtype == "FLOAT"
        assert abs(energy_snr(src, noise) - float(row["snr"])) < 0.01
        assert np.array_equal(mix, src + noise)
        assert np.max(np.abs(mix)) <= 1.0
        assert not shares_class(label_set(json.loads(row["source_labels"])), label_set(json.loads(row["noise_labels"])))
        assert row["source_id"] != row["noise_id"]
        rebuilt = rebuild_row(row, clip_dir / f"{row['source_id']}.wav", clip_dir / f"{row['noise_id']}.wav", spec.length)
        assert np.array_equal(rebuilt.mixture, mix) and np.array_equal(rebuilt.source, src)
        assert np.array_equal(rebuilt.noise, noise)
        assert frame_activity(src).any()  # the target segment is never silent
    return frame


def test_make_mixtures_exact_and_complete(tmp_path):
    manifest = generated_corpus(tmp_path / "corpus")
    spec = MixSpec(-15, 15, num=30, duration=1.0, seed=7)
    report = make_mixtures(tmp_path / "splits" / "s", spec, [manifest], jobs=1)
    assert report.rows == 30 and report.complete and not report.failures
    assert report.distinct_targets == 12 and 1 < report.distinct_noises <= 12
    assert sum(report.snr_histogram.values()) == 30
    frame = check_split(tmp_path / "splits" / "s", spec, tmp_path / "corpus" / "audio")
    assert list(frame["mixture"][:2]) == ["s_0000.wav", "s_0001.wav"]
    assert set(frame["seed"]) == {"7"}
    offsets = [json.loads(o) for o in frame["offsets"]]
    assert any(o["source"] > 0 for o in offsets)  # 2.5 s clips are cropped somewhere
    snrs = frame["snr"].astype(float)
    assert snrs.between(-15, 15).all() and (snrs != snrs.round()).all()  # real-valued
    state = json.loads((tmp_path / "splits" / "s" / "mix.json").read_text())
    assert state["status"] == "complete" and state["options"]["spec"]["seed"] == 7


def test_official_csv_rebuilds_with_the_organizers_formula(tmp_path):
    names = ["tone", "chirp", "hum", "rain"]
    manifest = make_corpus(tmp_path / "corpus", [
        (f"k{i}", names[i], 1.0, soundgen.CLASSES[names[i]].labels, soundgen.CLASSES[names[i]].captions)
        for i in range(4)])
    spec = MixSpec(-5, 5, num=8, duration=1.0, integer_snr=True)
    make_mixtures(tmp_path / "ours", spec, [manifest], jobs=1, official_csv=tmp_path / "off.csv")
    assert (tmp_path / "off.csv").read_text().startswith("source, noise, snr, caption\n")
    report = mix_from_official(tmp_path / "off.csv", tmp_path / "corpus", tmp_path / "theirs", jobs=1)
    assert report.rows == 8 and not report.failures
    ours, theirs = read_split(tmp_path / "ours").frame, read_split(tmp_path / "theirs").frame
    assert list(theirs["source_labels"]) == list(ours["source_labels"])  # labels from the manifest
    for a, b in zip(ours.to_dict("records"), theirs.to_dict("records")):
        # 1 s clips, 1 s segments: no crop, so the organizers' formula gives the same audio
        np.testing.assert_allclose(read(tmp_path / "ours" / a["source"]), read(tmp_path / "theirs" / b["source"]),
                                   atol=1e-7)
        np.testing.assert_allclose(read(tmp_path / "ours" / "mixture" / a["mixture"]),
                                   read(tmp_path / "theirs" / "mixture" / b["mixture"]), atol=1e-6)
        s = sf.read(str(tmp_path / "corpus" / "audio" / f"{a['source_id']}.wav"), dtype="float32")[0]
        n = sf.read(str(tmp_path / "corpus" / "audio" / f"{a['noise_id']}.wav"), dtype="float32")[0]
        np.testing.assert_array_equal(official_mixture(s, n, float(a["snr"])).mixture,
                                      read(tmp_path / "theirs" / "mixture" / b["mixture"]))
    with pytest.raises(UsageError, match="--overwrite"):
        mix_from_official(tmp_path / "off.csv", tmp_path / "corpus", tmp_path / "theirs", jobs=1)


def test_jobs_do_not_change_a_byte(tmp_path):
    manifest = generated_corpus(tmp_path / "corpus")
    spec = MixSpec(-10, 10, num=24, duration=1.0, seed=3)
    split = tmp_path / "splits" / "j"
    make_mixtures(split, spec, [manifest], jobs=1)
    first = tree_bytes(split)
    make_mixtures(split, spec, [manifest], jobs=2, overwrite=True)
    assert tree_bytes(split) == first
    assert len([k for k in first if k.startswith("mixture/")]) == 24
    other = make_mixtures(tmp_path / "splits" / "j2", MixSpec(-10, 10, num=24, duration=1.0, seed=4), [manifest], jobs=1)
    assert other.rows == 24
    assert (tmp_path / "splits" / "j2" / "mixture" / "j2_0000.wav").read_bytes() != first["mixture/j_0000.wav"]


def test_guard_rails(tmp_path):
    manifest = generated_corpus(tmp_path / "corpus", n=6)
    spec = MixSpec(0, 5, num=6, duration=0.5)
    split = tmp_path / "splits" / "g"
    make_mixtures(split, spec, [manifest], jobs=1)
    with pytest.raises(UsageError, match=r"already exists, made with other options \(spec\); pass --overwrite"):
        make_mixtures(split, MixSpec(0, 6, num=6, duration=0.5), [manifest], jobs=1)
    again = make_mixtures(split, spec, [manifest], jobs=1)  # the same command: nothing to redo
    assert again.resumed == 6 and again.written == 0 and again.redone == {}
    (split / "mixtures.csv").unlink()  # now an unfinished run: other options are refused
    with pytest.raises(UsageError, match="unfinished split made with other options"):
        make_mixtures(split, MixSpec(0, 6, num=6, duration=0.5), [manifest], jobs=1)
    finished = make_mixtures(split, spec, [manifest], jobs=1)
    assert finished.resumed == 6 and (split / "mixtures.csv").is_file()
    with pytest.raises(UsageError, match="LOW <= HIGH"):
        MixSpec(5, 0).validate()
    with pytest.raises(UsageError, match="no integer"):
        MixSpec(0.2, 0.8, integer_snr=True).validate()
    foreign = tmp_path / "splits" / "foreign"
    foreign.mkdir(parents=True)
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="not made by `lasskit mix`"):
        make_mixtures(foreign, spec, [manifest], jobs=1)


def test_unlabeled_silent_and_noise_less_clips_are_skipped_and_counted(tmp_path):
    tone = soundgen.CLASSES["tone"]
    manifest = make_corpus(tmp_path / "corpus", [
        ("t1", "tone", 1.0, ["Tone"], tone.captions),
        ("t2", "tone", 1.0, ["tone "], ["Another tone."]),  # same class as t1 after normalising
        ("h1", "hum", 1.0, ["Engine", "Tone"], ["Hum and tone."]),  # shares 'tone' with all three
        ("r1", "rain", 1.0, ["Rain"], []),  # labels only: caption made from labels
        ("u1", "chirp", 1.0, [], ["Unlabeled chirps."]),
        ("z1", np.zeros(SR, dtype=np.float32), 1.0, ["Silence"], ["Nothing."]),
    ])
    report = make_mixtures(tmp_path / "s", MixSpec(-5, 5, duration=1.0), [manifest], jobs=1)
    assert report.skipped["target without labels"] == 1 and report.skipped["noise without labels"] == 1
    assert report.skipped["silent clip"] == 1
    assert report.without_noise == []
    frame = read_split(tmp_path / "s").frame
    used = set(frame["source_id"]) | set(frame["noise_id"])
    assert "z1" not in used and "u1" not in used
    assert set(frame["source_id"]) == {"t1", "t2", "h1", "r1"}  # default: each target once
    assert frame.set_index("source_id").loc["r1", "query"] == "The sound of rain."
    assert set(frame.set_index("source_id").loc[["t1", "t2", "h1"], "noise_id"]) == {"r1"}
    with_u = make_mixtures(tmp_path / "s2", MixSpec(-5, 5, duration=1.0, allow_unlabeled=True), [manifest], jobs=1)
    assert "target without labels" not in with_u.skipped and with_u.rows == 5
    only_tones = make_corpus(tmp_path / "tones", [
        ("a", "tone", 0.5, ["Tone"], ["x"]), ("b", "hum", 0.5, ["Tone", "Hum"], ["y"])])
    with pytest.raises(UsageError, match="no mixture possible"):
        make_mixtures(tmp_path / "s3", MixSpec(0, 1, duration=0.5), [only_tones], jobs=1)


@pytest.mark.slow
def test_killed_run_is_completed_by_a_rerun(tmp_path):
    manifest = generated_corpus(tmp_path / "corpus")
    spec = MixSpec(-10, 10, num=400, duration=1.0)
    reference = tmp_path / "ref" / "k"
    make_mixtures(reference, spec, [manifest], jobs=2)
    split = tmp_path / "splits" / "k"
    code = (
        "import sys; from pathlib import Path; from lasskit.mixing import MixSpec, make_mixtures; "
        f"make_mixtures(Path({str(split)!r}), MixSpec(-10, 10, num=400, duration=1.0), [Path({str(manifest)!r})], jobs=1)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        import time

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = list((split / "mixture").glob("*.wav")) if (split / "mixture").is_dir() else []
            if len(done) >= 20 or proc.poll() is not None:
                break
            time.sleep(0.01)
        proc.kill()
    finally:
        proc.wait()
    if (split / "mixtures.csv").exists():
        pytest.skip("the run finished before it could be killed (machine much faster than expected)")
    assert (split / "mix.json").is_file()
    report = make_mixtures(split, spec, [manifest], jobs=2)
    assert report.rows == 400 and report.written == 400 - report.resumed
    ours, ref = tree_bytes(split), tree_bytes(reference)
    assert ours.keys() == ref.keys()  # no leftover temporary files
    assert all(ours[k] == ref[k] for k in ref if k != "provenance.json")  # the ledger holds mtimes


@pytest.mark.slow
def test_organizers_statistics_on_the_validation_tags(tmp_path, metadata_dir):
    """--per-caption --integer-snr on the real tags and captions: each clip once per caption, all 31
    integer SNRs, no shared tag (audio generated: 0.05 s clips)."""
    items = json.loads((metadata_dir / "lass_validation.json").read_text(encoding="utf-8"))
    root = tmp_path / "val"
    (root / "audio").mkdir(parents=True)
    base = {name: soundgen.generate(name, 0.05, SR, seed=k) for k, name in enumerate(["tone", "chirp", "hum", "rain"])}
    clips = []
    for i, it in enumerate(items):
        sf.write(str(root / "audio" / f"{it['Index']}.wav"), base[list(base)[i % 4]], SR, subtype="PCM_16")
        clips.append(Clip(it["Index"], f"audio/{it['Index']}.wav", 0.05, SR, 800, "dcase2024_val", "val",
                          [str(c) for c in it["Captions"]], [str(t) for t in it["Tags"]]))
    write_manifest(root / "manifest.csv", clips)
    spec = MixSpec(-15, 15, per_caption=True, integer_snr=True, duration=0.05, seed=0)
    report = make_mixtures(tmp_path / "synth", spec, [root / "manifest.csv"], jobs=2)
    assert report.rows == 3000 == 3 * len(items) and report.distinct_targets == 1000
    frame = read_split(tmp_path / "synth").frame
    assert frame["source_id"].value_counts().eq(3).all()
    captions = {it["Index"]: [str(c) for c in it["Captions"]] for it in items}
    for sid, group in frame.groupby("source_id"):
        assert sorted(group["query"]) == sorted(captions[sid])
    assert sorted(set(frame["snr"].astype(int))) == list(range(-15, 16))
    tags = {it["Index"]: {normalize_label(t) for t in it["Tags"]} for it in items}
    assert all(not (tags[s] & tags[n]) for s, n in zip(frame["source_id"], frame["noise_id"]))
    assert (frame["source_id"] != frame["noise_id"]).all()
    for row in frame.to_dict("records"):  # every row, read back
        src, noise = read(tmp_path / "synth" / row["source"]), read(tmp_path / "synth" / row["noise"])
        assert abs(energy_snr(src, noise) - int(row["snr"])) < 0.01
        assert np.array_equal(read(tmp_path / "synth" / "mixture" / row["mixture"]), src + noise)


def test_dataset_items_equal_the_written_rows(tmp_path):
    pytest.importorskip("torch")
    from lasskit.mixing import mixture_dataset

    manifest = generated_corpus(tmp_path / "corpus")
    spec = MixSpec(-10, 10, num=10, duration=1.0, seed=5)
    make_mixtures(tmp_path / "s", spec, [manifest], jobs=1)
    frame = read_split(tmp_path / "s").frame
    dataset = mixture_dataset([manifest], spec)
    assert len(dataset) == 10
    for i in (0, 3, 9):
        mixture, reference, query = dataset[i]
        assert query == frame["query"][i]
        assert np.array_equal(mixture.numpy(), read(tmp_path / "s" / "mixture" / frame["mixture"][i]))
        assert np.array_equal(reference.numpy(), read(tmp_path / "s" / frame["source"][i]))
    dataset.set_epoch(1)
    mixed, row = dataset.row(0)
    assert abs(energy_snr(mixed.source, mixed.noise) - row.snr) < 0.01
    assert not shares_class(row.target.label_set, row.noise.label_set)


def test_import_does_not_load_torch():
    code = "import sys, lasskit.mixing, lasskit.ontology, lasskit.cli.mix; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_min_duration_skips_short_clips_and_dataset_replaces_silent_targets(tmp_path):
    pytest.importorskip("torch")
    from lasskit.mixing import mixture_dataset

    manifest = make_corpus(tmp_path / "c", [
        ("short", "tone", 0.3, ["Tone"], ["A short tone."]),
        ("z", np.zeros(SR, dtype=np.float32), 1.0, ["Silence"], ["Nothing."]),
        ("a", "chirp", 1.0, ["Chirp"], ["Chirps."]),
        ("b", "hum", 1.0, ["Hum"], ["A hum."]),
    ])
    report = make_mixtures(tmp_path / "s", MixSpec(0, 5, duration=1.0, min_duration=0.5), [manifest], jobs=1)
    assert report.skipped["target shorter than --min-duration"] == 1
    assert report.skipped["noise shorter than --min-duration"] == 1
    frame = read_split(tmp_path / "s").frame
    assert set(frame["source_id"]) == {"a", "b"} and "short" not in set(frame["noise_id"])
    dataset = mixture_dataset([manifest], MixSpec(0, 5, duration=1.0, min_duration=0.5))
    assert len(dataset) == 2  # z is silent: found by the same scan as mix's
    assert dataset.skipped["silent clip"] == 1 and dataset.skipped["target shorter than --min-duration"] == 1
    for i in range(2):
        mixed, row = dataset.row(i)
        assert row.target.id in ("a", "b") and row.noise.id in ("a", "b")
        assert abs(energy_snr(mixed.source, mixed.noise) - row.snr) < 0.01
        assert np.array_equal(mixed.mixture, read(tmp_path / "s" / "mixture" / frame["mixture"][i]))
