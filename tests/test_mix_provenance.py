"""`mix` outputs tied to what made them: re-runs redo exactly what changed, an overwrite leaves nothing of
the old set, an unchanged re-run decodes nothing, and Ctrl-C / kill -9 mid-run then a re-run give the
bytes of a clean run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lasskit import soundgen
from lasskit.manifest import Clip, write_manifest
from lasskit.mixing import MixSpec, make_mixtures, mixture_fingerprints
from lasskit.splits import read_split

SR = 16000
CLASSES = ["tone", "alarm", "chirp", "hum", "rain", "bird"]


def corpus(root: Path, n: int = 12, duration: float = 1.0) -> Path:
    clips = []
    for i in range(n):
        cls = soundgen.CLASSES[CLASSES[i % 6]]
        soundgen.write_clip(root / "audio" / f"c{i:02d}.wav", cls.name, duration, seed=i)
        clips.append(Clip(f"c{i:02d}", f"audio/c{i:02d}.wav", duration, SR, int(duration * SR), "gen", "train",
                          list(cls.captions), list(cls.labels)))
    write_manifest(root / "manifest.csv", clips)
    return root / "manifest.csv"


def tree(root: Path, skip=("provenance.json",), ws: Path | None = None) -> dict[str, bytes]:
    """Every file's bytes (the ledger holds mtimes; mix.json names the workspace: ``ws`` is cut out)."""
    out = {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
           if p.is_file() and p.name not in skip}
    if ws is not None and "mix.json" in out:
        out["mix.json"] = out["mix.json"].replace(str(ws).encode(), b"WS")
    return out


def test_overwrite_with_another_seed_leaves_nothing_of_the_old_set(tmp_path):
    m = corpus(tmp_path / "c")
    split = tmp_path / "splits" / "s"
    make_mixtures(split, MixSpec(-5, 5, num=12, duration=1.0, seed=1), [m], jobs=1)
    old = mixture_fingerprints(split)
    old_bytes = tree(split)
    report = make_mixtures(split, MixSpec(-5, 5, num=8, duration=1.0, seed=2), [m], jobs=1, overwrite=True)
    assert report.removed == 3 * 4  # rows 8..11 of the old set: their three files each
    clean = tmp_path / "clean" / "s"
    make_mixtures(clean, MixSpec(-5, 5, num=8, duration=1.0, seed=2), [m], jobs=1)
    assert tree(split) == tree(clean)  # byte for byte a clean seed-2 set
    new = mixture_fingerprints(split)
    assert sorted(new) == [f"s_{i:04d}.wav" for i in range(8)] and all(new.values())
    assert all(new[k] != old[k] for k in new)  # every mixture is known to be another one
    frame = read_split(split).frame
    assert list(frame["fingerprint"]) == [new[n] for n in frame["mixture"]]
    assert all(old_bytes[f"mixture/{k}"] != tree(split)[f"mixture/{k}"] for k in new)


def test_unchanged_rerun_decodes_nothing_and_changes_are_redone_with_reasons(tmp_path, monkeypatch):
    m = corpus(tmp_path / "c")
    split = tmp_path / "s"
    s = MixSpec(-5, 5, num=20, duration=1.0, seed=3)
    make_mixtures(split, s, [m], jobs=1)
    before = tree(split)
    stamps = {p: p.stat().st_mtime_ns for p in split.rglob("*.wav")}

    import lasskit.audio
    import lasskit.mixing.activity
    import lasskit.mixing.rows
    import lasskit.mixing.segments

    def no_decoding(*args, **kwargs):
        raise AssertionError("an unchanged re-run decoded audio")

    with monkeypatch.context() as mp:
        for mod, name in ((lasskit.audio, "load"), (lasskit.mixing.activity, "analyse_clip"),
                          (lasskit.mixing.rows, "read_segment"), (lasskit.mixing.segments, "read_segment")):
            mp.setattr(mod, name, no_decoding)
        again = make_mixtures(split, s, [m], jobs=1)
        again_overwrite = make_mixtures(split, s, [m], jobs=1, overwrite=True)
    assert again.written == 0 and again.resumed == 20 and again_overwrite.written == 0
    assert tree(split) == before and all(p.stat().st_mtime_ns == t for p, t in stamps.items())

    # one clip replaced: exactly the rows that use it are redone, and the report says why
    frame = read_split(split).frame
    uses = {i for i, (a, b) in enumerate(zip(frame["source_id"], frame["noise_id"])) if "c04" in (a, b)}
    time.sleep(0.01)
    soundgen.write_clip(tmp_path / "c" / "audio" / "c04.wav", "rain", 1.0, seed=99)
    changed = make_mixtures(split, s, [m], jobs=1)
    assert changed.written == len(uses) > 0 and changed.redone == {"input changed": len(uses)}
    # an output edited by hand is noticed
    victim = split / "noise" / frame["mixture"][0]
    sf.write(str(victim), np.zeros(SR, np.float32), SR, subtype="FLOAT")
    fixed = make_mixtures(split, s, [m], jobs=1)
    assert fixed.redone == {"output changed on disk": 1}
    clean = tmp_path / "clean" / "s"
    make_mixtures(clean, s, [m], jobs=1)
    assert tree(split) == tree(clean)


def _cli(ws: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "lasskit", "-w", str(ws), "mix", *args]


@pytest.mark.slow
@pytest.mark.parametrize("how", ["sigint", "kill"])
def test_interrupted_mix_then_rerun_equals_a_clean_run(tmp_path, how):
    ws = tmp_path / "ws"
    corpus(ws / "data" / "gen", n=12, duration=2.0)
    args = ["gen", "--snr", "-5", "5", "--num", "600", "--duration", "2", "--name", "k", "-j", "2"]
    clean_ws = tmp_path / "clean"
    corpus(clean_ws / "data" / "gen", n=12, duration=2.0)
    subprocess.run(_cli(clean_ws, *args), check=True, capture_output=True)
    split = ws / "data" / "splits" / "k"
    env = {**os.environ, "LASSKIT_PROGRESS": "0"}
    proc = subprocess.Popen(_cli(ws, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        done = list((split / "mixture").glob("*.wav")) if (split / "mixture").is_dir() else []
        if len(done) >= 30:
            break
        time.sleep(0.005)
    if proc.poll() is not None:
        pytest.skip("the run finished before it could be interrupted")
    # as a terminal's Ctrl-C, or a kill -9 of the job: the whole process group
    os.killpg(proc.pid, signal.SIGINT if how == "sigint" else signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    if how == "sigint":
        assert proc.returncode == 130
        lines = [x for x in err.strip().splitlines() if x.strip()]
        assert len(lines) == 1 and "interrupted" in lines[0] and "Traceback" not in err, err
        time.sleep(0.5)  # no worker keeps writing after the command returned
        count = len(list((split / "mixture").glob("*.wav")))
        time.sleep(1.0)
        assert len(list((split / "mixture").glob("*.wav"))) == count
    assert not (split / "mixtures.csv").exists()
    rerun = subprocess.run(_cli(ws, *args), capture_output=True, text=True, env=env)
    assert rerun.returncode == 0, rerun.stderr
    assert tree(split, ws=ws) == tree(clean_ws / "data" / "splits" / "k", ws=clean_ws)  # no leftovers, same bytes
