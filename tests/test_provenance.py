"""Fingerprints and the ledger (lasskit.provenance), and what atomic writes leave behind."""

from __future__ import annotations

import os
import stat
import time

from lasskit import atomic, provenance


def test_ledger_says_why_an_output_is_redone(tmp_path):
    out = tmp_path / "a.wav"
    out.write_bytes(b"x" * 10)
    led = provenance.Ledger(tmp_path)
    s1 = {"resampler": "soxr", "format": "pcm16"}
    assert led.check("a", out, "d1", s1) == "new"
    led.record("a", out, "d1", s1)
    led.save()
    led = provenance.Ledger(tmp_path)
    assert led.check("a", out, "d1", s1) is None
    assert led.check("a", out, "d2", s1) == "input changed"
    assert led.check("a", out, "d1", {**s1, "resampler": "torchaudio"}) == "settings changed: resampler"
    time.sleep(0.01)
    out.write_bytes(b"y" * 11)
    assert led.check("a", out, "d1", s1) == "output changed on disk"
    out.unlink()
    assert led.check("a", out, "d1", s1) == "output missing"


def test_damaged_ledger_redoes_everything(tmp_path):
    (tmp_path / provenance.LEDGER_FILE).write_text("{not json")
    led = provenance.Ledger(tmp_path)
    assert led.records == {} and led.check("a", tmp_path / "a", "d", {}) == "new"


def test_digest_cache_hashes_only_changed_files(tmp_path):
    f = tmp_path / "in.bin"
    f.write_bytes(b"abc")
    cache = provenance.DigestCache(tmp_path / "cache.json")
    d = cache.digest(f)
    assert d == provenance.digest_bytes(b"abc") and cache.hashed == 1
    cache.save()
    cache = provenance.DigestCache(tmp_path / "cache.json")
    assert cache.digest(f) == d and cache.hashed == 0
    f.write_bytes(b"abcd")
    assert cache.digest(f) == provenance.digest_bytes(b"abcd") and cache.hashed == 1


def test_settings_id_is_canonical():
    assert provenance.settings_id({"a": 1, "b": [1, 2]}) == provenance.settings_id({"b": [1, 2], "a": 1})
    assert provenance.settings_id({"a": 1}) != provenance.settings_id({"a": 2})
    assert provenance.summarize_reasons({"input changed": 2, "new": 1}, 5) == "made 3 of 5: input changed 2, new 1"


def test_atomic_outputs_get_the_normal_file_mode(tmp_path):
    old = os.umask(0o022)
    try:
        mode = atomic._file_mode()
    finally:
        os.umask(old)
    assert mode == 0o644
    p = atomic.write_text(tmp_path / "x.txt", "hi")
    assert stat.S_IMODE(p.stat().st_mode) == atomic.FILE_MODE


def test_leftovers_are_removed(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in (".a.wav.k3j2h1g0.tmp", ".b.wav.zz.lasskit.tmp", "sub/.c.wav.abcdefgh.tmp"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "keep.tmp").write_bytes(b"")
    (tmp_path / ".hidden").write_bytes(b"")
    assert atomic.remove_leftovers(tmp_path) == 3
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [".hidden", "keep.tmp"]


def _threads(_):
    from lasskit.parallel import worker_threads

    return worker_threads()


def test_workers_use_one_math_thread():
    from lasskit.parallel import run_parallel

    outcomes = run_parallel(_threads, list(range(4)), jobs=2)
    assert [o.value for o in outcomes] == [1, 1, 1, 1]


def _allocator(_):
    import os

    from lasskit import allocator

    return allocator._done, os.getpid()


def test_workers_keep_freed_memory():
    """Every pool worker has glibc keep freed memory (lasskit.allocator) before its first item."""
    import os

    from lasskit.parallel import run_parallel

    outcomes = run_parallel(_allocator, list(range(6)), jobs=2)
    states = {o.value[0] for o in outcomes}
    assert states <= {"threshold", "no-mmap", "unsupported", "refused"} and None not in states
    assert {o.value[1] for o in outcomes} - {os.getpid()}  # really in workers
