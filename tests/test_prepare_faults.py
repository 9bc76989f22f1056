"""`prepare` under faults: kill -9 and Ctrl-C mid-run, a full disk, leftovers, hostile names, bad
options. Each gives one line naming the file or option, and a re-run gives the clean run's bytes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lasskit import soundgen
from lasskit.corpora import prepare_corpus
from lasskit.manifest import read_manifest

N_FILES = 24
# a prepare run slowed down (and recorded every 4 files) so that it can be interrupted mid-way
SLOW_RUN = """
import sys, time
import lasskit.corpora.common as c
c.BATCH = 4
_convert = c.convert_file
def slow(task):
    time.sleep(0.03)
    return _convert(task)
c.convert_file = slow
from lasskit.cli import main
main(sys.argv[1:])
"""


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults") / "mine"
    for i in range(N_FILES):
        soundgen.write_clip(root / f"c{i:02d}.wav", ["tone", "rain", "hum", "knock"][i % 4], 0.5,
                            [44100, 48000, 22050][i % 3], seed=i, channels=1 + i % 2)
    return root


@pytest.fixture(scope="module")
def clean(src, tmp_path_factory):
    """The corpus an uninterrupted run makes: the reference every recovered run must equal."""
    out = tmp_path_factory.mktemp("clean")
    prepare_corpus("folder", src, out, jobs=1)
    return out / "mine"


def _products(folder: Path) -> dict[str, bytes]:
    """Audio, manifest and failures (not the records, which hold mtimes)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name not in ("provenance.json", "sources.json")}


def _env():
    return {**os.environ, "LASSKIT_PROGRESS": "0", "COLUMNS": "200"}


def _start(args, jobs=1):
    return subprocess.Popen([sys.executable, "-c", SLOW_RUN, *map(str, args), "--jobs", str(jobs)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), start_new_session=True)


def _wait_for_outputs(folder: Path, count: int, proc, timeout=60.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            pytest.fail(f"the run ended before it could be interrupted: {proc.communicate()}")
        if folder.is_dir() and sum(1 for p in folder.glob("*.wav")) >= count:
            return
        time.sleep(0.005)
    pytest.fail("the run made no progress")


def _rerun(ws, src):
    return subprocess.run([sys.executable, "-m", "lasskit", "-w", str(ws), "prepare", "folder", str(src)],
                          capture_output=True, text=True, env=_env())


@pytest.mark.slow  # CLI subprocesses, killed and re-run
@pytest.mark.parametrize("how", ["kill -9", "SIGINT"])
def test_interrupted_run_then_rerun_equals_a_clean_run(src, clean, tmp_path, how):
    ws = tmp_path / "ws"
    jobs = 1 if how == "kill -9" else 2
    proc = _start(["-w", ws, "prepare", "folder", src], jobs=jobs)
    _wait_for_outputs(ws / "data/mine/audio", 9, proc)
    os.killpg(proc.pid, signal.SIGKILL if how == "kill -9" else signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    if how == "SIGINT":
        lines = err.decode().strip().splitlines()
        assert proc.returncode == 130 and len(lines) == 1 and "interrupted" in lines[0], err
        assert "Traceback" not in err.decode()
    else:
        assert proc.returncode == -signal.SIGKILL
    assert not (ws / "data/mine/manifest.csv").exists()  # an interrupted run leaves no manifest
    done = _rerun(ws, src)
    assert done.returncode == 0, done.stderr
    made = next(line for line in done.stdout.splitlines() if "made " in line and " of 24" in line)
    assert int(made.split("made ")[1].split(" of")[0]) < N_FILES  # resumed, not redone from scratch
    assert _products(ws / "data/mine") == _products(clean)
    assert not [p for p in (ws / "data").rglob("*") if p.name.endswith(".tmp")]


@pytest.mark.slow  # a full-disk subprocess run, then a re-run
def test_full_disk_one_line_failures_listed_and_resumable(src, clean, tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mnt)], check=True,
                       capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount a small tmpfs here ({exc}); needs root and mount rights")
    try:
        ws = tmp_path / "ws"
        run = subprocess.run([sys.executable, "-m", "lasskit", "-w", str(ws), "prepare", "folder", str(src),
                              "--out", str(mnt), "--jobs", "2"], capture_output=True, text=True, env=_env())
        lines = run.stderr.strip().splitlines()
        assert run.returncode == 1 and len(lines) == 1, run.stderr
        assert "no space left" in lines[0] and str(mnt) in lines[0] and "Traceback" not in run.stderr
        failures = (mnt / "mine/failures.csv").read_text()
        assert "no space left" in failures
        assert not [p for p in mnt.rglob("*") if p.name.endswith(".tmp")]
        subprocess.run(["mount", "-o", "remount,size=4m", str(mnt)], check=True)  # space freed
        again = subprocess.run([sys.executable, "-m", "lasskit", "-w", str(ws), "prepare", "folder", str(src),
                                "--out", str(mnt)], capture_output=True, text=True, env=_env())
        assert again.returncode == 0, again.stderr
        assert _products(mnt / "mine") == _products(clean)
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_leftovers_of_a_killed_run_are_removed(src, tmp_path):
    audio_dir = tmp_path / "data/mine/audio"
    audio_dir.mkdir(parents=True)
    (audio_dir / ".c00.wav.k3j5x9a2.lasskit.tmp").write_bytes(b"half a file")
    (report,) = prepare_corpus("folder", src, tmp_path / "data", jobs=1)
    assert not list(audio_dir.glob(".*")) and "removed 1 temporary file(s)" in " ".join(report.notes)


def test_hostile_names_are_reported_not_skipped(tmp_path, run_cli):
    src = tmp_path / "odd"
    soundgen.write_clip(src / "ok.wav", "tone", 0.2, 16000)
    bad = os.fsencode(src) + b"/caf\xe9.wav"
    with open(bad, "wb") as fh:
        fh.write((src / "ok.wav").read_bytes())
    (src / "dangling.wav").symlink_to(src / "gone.wav")
    (src / "loop.wav").symlink_to(src / "loop.wav")
    code, out, err = run_cli("--workspace", tmp_path, "prepare", "folder", src, "--jobs", "2")
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "3 file(s) failed" in lines[0], err
    assert "Traceback" not in err and "internal error" not in err
    failures = (tmp_path / "data/odd/failures.csv").read_text(encoding="utf-8")
    assert "caf\\xe9.wav" in failures and "not valid UTF-8" in failures
    assert "dangling.wav" in failures and "broken symbolic link" in failures
    assert "loop.wav" in failures and "symbolic link loop" in failures
    assert [c.id for c in read_manifest(tmp_path / "data/odd/manifest.csv").clips] == ["ok"]


def test_bad_options_are_usage_errors_before_any_work(src, tmp_path, run_cli):
    code, out, err = run_cli("--workspace", tmp_path, "prepare", "folder", src, "--resampler", "sinc9")
    assert code == 2 and "--resampler" in err and "sinc9" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "data").exists()
    code, out, err = run_cli("--workspace", tmp_path / "ws", "prepare", "folder", src, "--name", "../../escaped")
    assert code == 2 and "--name" in err and "../../escaped" in err
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "ws").exists()
    for name in ("a/b", "..", ".hidden", ""):
        code, out, err = run_cli("--workspace", tmp_path / "ws", "prepare", "folder", src, "--name", name)
        assert code == 2, name
