"""Short and sparse targets: the floor on active target time, the active share and the SNR over the
target's active frames per row, and --official-csv refused where it cannot describe the rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lasskit.errors import UsageError
from lasskit.manifest import Clip, write_manifest
from lasskit.mixing import MixSpec, make_mixtures, mix_from_official
from lasskit.splits import read_split

SR = 16000


def write_corpus(root: Path, clips: dict[str, tuple[np.ndarray, list[str]]]) -> Path:
    rows = []
    (root / "audio").mkdir(parents=True, exist_ok=True)
    for cid, (x, labels) in clips.items():
        sf.write(str(root / "audio" / f"{cid}.wav"), x, SR, subtype="PCM_16")
        rows.append(Clip(cid, f"audio/{cid}.wav", len(x) / SR, SR, len(x), "gen", "train", [f"{cid} sound"], labels))
    write_manifest(root / "manifest.csv", rows)
    return root / "manifest.csv"


def tone(seconds: float, start: float = 0.0, total: float | None = None, f: float = 440.0) -> np.ndarray:
    total = seconds + start if total is None else total
    x = np.zeros(int(round(total * SR)), np.float32)
    n = int(round(seconds * SR))
    a = int(round(start * SR))
    x[a:a + n] = 0.3 * np.sin(2 * np.pi * f * np.arange(n) / SR)
    return x


def noise(seconds: float, seed: int) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * SR))).astype(np.float32)


def test_floor_on_active_target_time_and_active_snr(tmp_path):
    m = write_corpus(tmp_path / "c", {
        "blip": (np.full(1, 0.5, np.float32), ["Blip"]),  # one sample (63 us): never a target
        "short": (tone(0.5), ["Beep"]),  # 0.5 s of tone: under the default 1 s floor of 10 s segments
        "sparse": (tone(1.5, start=4.0, total=10.0), ["Tone"]),  # 1.5 s active in 10 s
        "full": (tone(10.0, f=300.0), ["Hum"]),
        "n1": (noise(10.0, 1), ["Rain"]),
        "n2": (noise(10.0, 2), ["Wind"]),
    })
    report = make_mixtures(tmp_path / "s", MixSpec(0, 10, num=20, seed=1), [m], jobs=1)
    assert report.skipped["silent clip"] == 1  # the blip: one sample, nothing left once its offset is removed
    assert report.skipped["target with less than --min-active active"] == 1  # short
    assert report.skipped["noise with less than --noise-min-active active"] == 1  # short: the same floor (issue 22)
    assert report.min_active == 1.0
    frame = read_split(tmp_path / "s").frame
    assert not {"blip", "short"} & set(frame["source_id"])
    assert not {"blip", "short"} & set(frame["noise_id"])
    for row in frame.to_dict("records"):
        src = sf.read(str(tmp_path / "s" / row["source"]), dtype="float32")[0]
        nz = sf.read(str(tmp_path / "s" / row["noise"]), dtype="float32")[0]
        frames = src.reshape(100, 1600).astype(np.float64)
        active = (frames ** 2).mean(axis=1) >= (10 ** (-60 / 10)) * json.loads(row["gains"])["source"] ** 2
        assert abs(float(row["source_active"]) - active.sum() / 10) < 0.11
        nframes = nz.reshape(100, 1600).astype(np.float64)
        noise_energy = (nframes[active] ** 2).sum()
        if noise_energy == 0:  # the one-sample noise: silent where the target is active
            assert row["snr_active"] == "inf"
        else:
            want = 10 * np.log10((frames[active] ** 2).sum() / noise_energy)
            assert abs(float(row["snr_active"]) - want) < 1e-3
        if row["source_id"] == "sparse":  # 1.5 s of target in 10 s: the active SNR is ~8 dB above
            assert abs(float(row["source_active"]) - 1.5) <= 0.2
            assert float(row["snr_active"]) - float(row["snr"]) > 7
    assert report.active_quartiles is not None and report.low_active_rows >= 1
    state = json.loads((tmp_path / "s" / "mix.json").read_text())
    assert state["counts"]["min_active_seconds"] == 1.0 and state["counts"]["rows_target_under_half_active"] >= 1
    # the floor is overridable, and 0 lets the short target in
    loose = make_mixtures(tmp_path / "loose", MixSpec(0, 10, num=20, seed=1, min_active=0.3), [m], jobs=1)
    assert loose.skipped.get("target with less than --min-active active") is None
    assert loose.skipped.get("noise with less than --noise-min-active active") is None  # the noises' floor follows
    assert loose.skipped["silent clip"] == 1  # the blip
    with pytest.raises(UsageError, match="--min-active"):
        MixSpec(0, 10, min_active=11).validate()


def test_official_csv_only_when_it_describes_the_rows(tmp_path):
    ten = {f"k{i}": (tone(10.0, f=200.0 + 100 * i), [f"Class{i}"]) for i in range(4)}
    m = write_corpus(tmp_path / "ten", ten)
    make_mixtures(tmp_path / "ours", MixSpec(-5, 5, num=6, integer_snr=True), [m], jobs=1,
                  official_csv=tmp_path / "off.csv")
    rebuilt = mix_from_official(tmp_path / "off.csv", tmp_path / "ten", tmp_path / "theirs", jobs=1)
    assert rebuilt.rows == 6
    ours, theirs = read_split(tmp_path / "ours").frame, read_split(tmp_path / "theirs").frame
    for a, b in zip(ours.to_dict("records"), theirs.to_dict("records")):
        x = sf.read(str(tmp_path / "ours" / "mixture" / a["mixture"]), dtype="float32")[0]
        y = sf.read(str(tmp_path / "theirs" / "mixture" / b["mixture"]), dtype="float32")[0]
        assert len(x) == len(y) == 160000 and np.allclose(x, y, atol=1e-6)
    mixed = write_corpus(tmp_path / "mixed", {**ten, "long": (noise(14.0, 3), ["Rain"]), "shorty": (tone(3.0), ["B"])})
    with pytest.raises(UsageError, match=r"rows crop or pad their clips.*mixtures.csv's offsets and gains"):
        make_mixtures(tmp_path / "bad", MixSpec(-5, 5, num=12), [mixed], jobs=1, official_csv=tmp_path / "bad.csv")
    assert not (tmp_path / "bad.csv").exists() and not (tmp_path / "bad" / "mixture").exists()


def test_an_organizers_csv_never_outlives_its_rows(tmp_path):
    ten = {f"k{i}": (tone(10.0, f=200.0 + 100 * i), [f"Class{i}"]) for i in range(4)}
    m = write_corpus(tmp_path / "ten", ten)
    off = tmp_path / "off.csv"
    make_mixtures(tmp_path / "s", MixSpec(-5, 5, num=6, integer_snr=True), [m], jobs=1, official_csv=off)
    first = off.read_bytes()
    state = json.loads((tmp_path / "s" / "mix.json").read_text())
    assert state["official_csv_files"][0]["path"] == str(off.resolve())
    # the same rows without --official-csv: the file still describes them, kept and still tracked
    same = make_mixtures(tmp_path / "s", MixSpec(-5, 5, num=6, integer_snr=True), [m], jobs=1, overwrite=True)
    assert off.read_bytes() == first and not same.warnings
    assert json.loads((tmp_path / "s" / "mix.json").read_text())["official_csv_files"][0]["path"] == str(off.resolve())
    # other rows (another seed) without --official-csv: the stale file is removed, and said
    other = make_mixtures(tmp_path / "s", MixSpec(-5, 5, num=6, integer_snr=True, seed=9), [m], jobs=1,
                          overwrite=True)
    assert not off.exists() and any("removed the organizers' CSV" in w and str(off) in w for w in other.warnings)
    assert "official_csv_files" not in json.loads((tmp_path / "s" / "mix.json").read_text())
    # written again, then edited by hand, then the rows change: left in place, with a warning naming it
    make_mixtures(tmp_path / "s", MixSpec(-5, 5, num=6, integer_snr=True), [m], jobs=1, official_csv=off,
                  overwrite=True)
    off.write_text(off.read_text() + "# my note\n")
    moved = make_mixtures(tmp_path / "s", MixSpec(-5, 5, num=6, integer_snr=True, seed=4), [m], jobs=1,
                          official_csv=tmp_path / "new.csv", overwrite=True)
    assert off.exists() and (tmp_path / "new.csv").exists()
    assert any(str(off) in w and "no longer describes" in w for w in moved.warnings)


def test_padded_and_cropped_rows_are_counted(tmp_path):
    clips = {"long": (tone(8.0, f=300.0), ["Long"]), "short": (tone(2.0, f=500.0), ["Short"]),
             "exact": (tone(5.0, f=700.0), ["Exact"])}
    m = write_corpus(tmp_path / "c", clips)
    report = make_mixtures(tmp_path / "s", MixSpec(-5, 5, num=9, seed=1, duration=5.0), [m], jobs=1)
    frame = read_split(tmp_path / "s").frame
    want = {role: {"padded": int((frame[f"{col}_id"] == "short").sum()), "cropped": int((frame[f"{col}_id"] == "long").sum())}
            for role, col in (("target", "source"), ("noise", "noise"))}
    assert report.padded == {r: want[r]["padded"] for r in want} and report.cropped == {r: want[r]["cropped"] for r in want}
    assert sum(report.padded.values()) > 0 and sum(report.cropped.values()) > 0
    counts = json.loads((tmp_path / "s" / "mix.json").read_text())["counts"]
    assert counts["rows_zero_padded"] == report.padded and counts["rows_cropped_from_longer_clips"] == report.cropped
