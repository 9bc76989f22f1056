"""Silence that is not silence (issue 22): activity and levels on the audible signal (a DC offset
is not sound), a floor on active noise time like the targets', and the signal functions."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from lasskit.audible import audible, level_energy
from lasskit.manifest import Clip, write_manifest
from lasskit.mixing import MixSpec, make_mixtures
from lasskit.mixing.activity import analyse_clip
from lasskit.splits import read_split

SR = 16000


def _corpus(root, clips):
    (root / "audio").mkdir(parents=True, exist_ok=True)
    rows = []
    for cid, (x, labels) in clips.items():
        sf.write(str(root / "audio" / f"{cid}.wav"), x, SR, subtype="FLOAT")
        rows.append(Clip(cid, f"audio/{cid}.wav", len(x) / SR, SR, len(x), "gen", "train", [f"{cid} sound"], labels))
    write_manifest(root / "manifest.csv", rows)
    return root / "manifest.csv"


def _noise(seconds, level, seed):
    return (level * np.random.default_rng(seed).standard_normal(int(seconds * SR))).astype(np.float32)


def test_audible_signal_and_level_energy():
    x = np.full(4000, 0.1)
    assert np.abs(audible(x)).max() < 1e-15  # a constant offset: nothing left
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(3200) / SR)
    assert np.allclose(audible(tone + 0.2), tone - tone[:1600].mean() * 0, atol=2e-3)
    # the level: a mostly-offset segment without its mean, an ordinary one exactly sum(x^2)
    dc = 0.1 + 0.005 * np.random.default_rng(0).standard_normal(16000)
    energy, removed = level_energy(float((dc ** 2).sum()), float(dc.sum()), len(dc))
    assert removed and abs(energy - float(((dc - dc.mean()) ** 2).sum())) < 1e-9
    plain = 0.1 * np.random.default_rng(1).standard_normal(16000)
    assert level_energy(float((plain ** 2).sum()), float(plain.sum()), len(plain)) == (float((plain ** 2).sum()), False)


def test_a_dc_offset_is_not_activity(tmp_path):
    room = tmp_path / "room.wav"
    sf.write(str(room), np.full(4 * SR, 0.1, np.float32) + _noise(4, 1e-5, 0), SR, subtype="FLOAT")  # -100 dBFS hiss
    a = analyse_clip(room)
    assert a.num_samples == 4 * SR and not a.active.any()  # was 40 active frames on the raw signal


def test_dc_offset_clips_are_neither_targets_nor_silent_noises(tmp_path):
    """The issue's clips: a quiet room at a 0.1 offset, a 20-sample click, and one noise that is
    mostly offset but holds audible hiss: levelled on what can be heard."""
    m = _corpus(tmp_path / "c", {
        "room": (np.full(4 * SR, 0.1, np.float32), ["Silence"]),
        "click": (np.r_[np.zeros(10), np.full(20, 0.9), np.zeros(10)].astype(np.float32), ["Click"]),
        "offset_hiss": ((0.1 + _noise(10, 0.01, 1)).astype(np.float32), ["Hiss"]),
        "bird": (_noise(10, 0.1, 2), ["Bird"]),
        "dog": (_noise(10, 0.05, 3), ["Dog"]),
    })
    report = make_mixtures(tmp_path / "s", MixSpec(0, 0, num=12, seed=3), [m], jobs=1)
    assert report.skipped["silent clip"] == 1  # the room: a constant offset is silence
    assert report.skipped["target with less than --min-active active"] == 1  # the click
    assert report.skipped["noise with less than --noise-min-active active"] == 1  # the click, as a noise too
    frame = read_split(tmp_path / "s").frame
    assert not {"room", "click"} & (set(frame["source_id"]) | set(frame["noise_id"]))
    rows = frame.to_dict("records")
    hissy = sum(1 for r in rows if r["noise_id"] == "offset_hiss")
    assert hissy and any(f"have a target or noise that is mostly a DC offset (source {sum(r['source_id'] == 'offset_hiss' for r in rows)}, noise {hissy})" in n for n in report.notes)
    for r in rows:  # 0 dB on the audible signal: the offset does not count as noise
        src = sf.read(str(tmp_path / "s" / r["source"]), dtype="float64")[0]
        nz = sf.read(str(tmp_path / "s" / r["noise"]), dtype="float64")[0]
        snr = 10 * np.log10(((src - src.mean()) ** 2).sum() / ((nz - nz.mean()) ** 2).sum())
        assert abs(snr) < 0.01, (r["source_id"], r["noise_id"], snr)
    # the floor on noises can be lowered
    loose = make_mixtures(tmp_path / "loose", MixSpec(0, 0, num=12, seed=3, noise_min_active=0), [m], jobs=1)
    assert "noise with less than --noise-min-active active" not in loose.skipped


# -- outside check (Q2): a slow drift is not sound either -------------------------------------------
def test_sub_audible_drift_is_not_activity(tmp_path):
    """A 0.5-8 Hz swing at half scale (a drifting offset, wind rumble on a microphone) left 40 of 40
    frames active after the per-frame mean; an audible bass or a quiet tone stays active."""
    t = np.arange(4 * SR) / SR
    for f in (0.5, 2, 5, 8):
        path = tmp_path / f"drift{f}.wav"
        sf.write(str(path), (0.1 + 0.5 * np.sin(2 * np.pi * f * t)).astype(np.float32), SR, subtype="FLOAT")
        assert int(analyse_clip(path).active.sum()) == 0, f
    for f, level in ((40, 0.1), (440, 0.01)):
        path = tmp_path / f"tone{f}.wav"
        sf.write(str(path), (0.3 + level * np.sin(2 * np.pi * f * t)).astype(np.float32), SR, subtype="FLOAT")
        assert int(analyse_clip(path).active.sum()) == 40, f
    # an offset that starts mid-clip marks only the frame of the step (a click), not its neighbours
    step = np.zeros(4 * SR, np.float32)
    step[SR + 800:] = 0.5
    path = tmp_path / "step.wav"
    sf.write(str(path), step, SR, subtype="FLOAT")
    assert np.flatnonzero(analyse_clip(path).active).tolist() == [10]
