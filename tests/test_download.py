"""``lasskit download`` against a local server that plays Zenodo (never the internet).

The server answers ``/api/records/<id>`` and ``/records/<id>/files/<name>`` for the real record
ids, with small generated archives in the real formats: Clotho's 7z, FSD50K's split zip
(``.z01`` + ``.zip``) and plain zips, the organizers' JSON/CSV files and a checkpoint.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lasskit.download import extract as ex
from lasskit.download import fetch as fe
from lasskit.download.fetch import RemoteFile
from lasskit.errors import UsageError, WorkError

REPO = Path(__file__).resolve().parents[1]


# --- archives in the real formats ---------------------------------------------------------------------
def zip_bytes(files: dict[str, bytes], compression=zipfile.ZIP_DEFLATED, zip64: bool = False) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0))
            info.compress_type = compression
            with z.open(info, "w", force_zip64=zip64) as fh:
                fh.write(data)
    return buf.getvalue()


def write_split_zip(zip_path: Path, files: dict[str, bytes], part_size: int, zip64: bool = False) -> list[Path]:
    """An Info-ZIP style split archive (``zip -s``): ``X.z01 .. X.zNN`` + ``X.zip``.

    The first part starts with the split signature; every member's and the central directory's
    offset is relative to the part it starts on, with its part number, as `zip -s` writes them.
    """
    data = zip_bytes(files, zip64=zip64)
    _, _, _, _, count, cd_size, cd_offset, _ = struct.unpack("<IHHHHIIH", data[-22:])
    stream = bytearray(b"PK\x07\x08" + data[:cd_offset])
    cd, pos, out = data[cd_offset:cd_offset + cd_size], 0, bytearray()
    for _ in range(count):
        nlen, elen, clen = struct.unpack("<HHH", cd[pos + 28:pos + 34])
        entry = bytearray(cd[pos:pos + 46 + nlen + elen + clen])
        (old,) = struct.unpack("<I", entry[42:46])
        disk, rel = divmod(old + 4, part_size)
        entry[34:36], entry[42:46] = struct.pack("<H", disk), struct.pack("<I", rel)
        out += entry
        pos += len(entry)
    cd_disk, cd_rel = divmod(len(stream), part_size)
    stream += out
    last = len(stream) // part_size  # the end record lies wholly in the last part
    stream += struct.pack("<IHHHHIIH", 0x06054B50, last, cd_disk, count, count, len(out), cd_rel, 0)
    paths = []
    for i in range(last):
        paths.append(zip_path.with_suffix(f".z{i + 1:02d}"))
        paths[-1].write_bytes(bytes(stream[i * part_size:(i + 1) * part_size]))
    zip_path.write_bytes(bytes(stream[last * part_size:]))
    return [*paths, zip_path]


def folder_files(root: Path, sub: str) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted((root / sub).rglob("*")) if p.is_file()}


def seven_zip(path: Path, root: Path, sub: str) -> None:
    import py7zr

    with py7zr.SevenZipFile(path, "w") as z:
        z.writeall(root / sub, sub)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# --- a server that plays Zenodo ----------------------------------------------------------------------
class Zenodo:
    """Records (id -> {name: bytes}); knobs to misbehave like real servers do."""

    def __init__(self):
        self.records: dict[str, dict[str, bytes]] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.ranges = True
        self.cut: dict[str, int] = {}       # file name -> close the connection after this many bytes (once)
        self.corrupt: set[str] = set()      # file names served with a flipped byte (once)
        self.fail: dict[str, list[int]] = {}  # file name -> statuses to answer first
        self.slow: float = 0.0              # seconds between 64 KiB blocks
        self.api_down = False
        self.gate: dict[str, threading.Event] = {}  # file name -> answer only once the event is set
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 - http.server's naming
                server.requests.append((self.path, self.headers.get("Range")))
                parts = self.path.split("?")[0].strip("/").split("/")
                if parts[:2] == ["api", "records"] and len(parts) == 3:
                    return self._api(parts[2])
                if parts[0] == "records" and len(parts) == 4 and parts[2] == "files":
                    from urllib.parse import unquote

                    return self._file(parts[1], unquote(parts[3]))
                self._status(404)

            def _status(self, code):
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _api(self, record):
                if server.api_down or record not in server.records:
                    return self._status(503 if server.api_down else 404)
                files = [{"key": n, "size": len(d), "checksum": f"md5:{md5(d)}",
                          "links": {"self": f"/api/records/{record}/files/{n}/content"}}
                         for n, d in server.records[record].items()]
                body = json.dumps({"id": int(record), "files": files, "metadata": {"title": "t"}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _file(self, record, name):
                data = server.records.get(record, {}).get(name)
                if data is None:
                    return self._status(404)
                if server.fail.get(name):
                    return self._status(server.fail[name].pop(0))
                if name in server.gate:
                    server.gate[name].wait(60)
                if name in server.corrupt:
                    server.corrupt.discard(name)
                    data = bytes([data[0] ^ 0xFF]) + data[1:]
                start, status = 0, 200
                asked = self.headers.get("Range")
                if asked and server.ranges:
                    start = int(asked.removeprefix("bytes=").split("-")[0])
                    if start >= len(data):
                        return self._status(416)
                    status = 206
                self.send_response(status)
                self.send_header("Content-Length", str(len(data) - start))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                body = data[start:]
                cut = server.cut.pop(name, None)
                if cut is not None:
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                for i in range(0, len(body), 65536):
                    if server.slow:
                        time.sleep(server.slow)
                    try:
                        self.wfile.write(body[i:i + 65536])
                    except (BrokenPipeError, ConnectionResetError):
                        return

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def file_requests(self, name: str) -> list[str | None]:
        return [rng for path, rng in self.requests if path.split("?")[0].endswith("/" + name)]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    monkeypatch.setenv("LASSKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LASSKIT_DOWNLOAD_BACKOFF", "0")


@pytest.fixture
def zenodo(monkeypatch):
    srv = Zenodo()
    monkeypatch.setenv("LASSKIT_ZENODO_URL", srv.url)
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    """Miniature raw downloads, and the record files built from them (name -> bytes), once."""
    from lasskit import miniature

    root = tmp_path_factory.mktemp("raw")
    clotho = miniature.write_clotho(root / "clotho", per_split=2, duration=0.5)
    fsd = miniature.write_fsd50k(root / "fsd", dev=4, eval=2, duration=0.5)
    dcase = miniature.write_dcase2024(root / "dcase", clips=4, mixtures=4, real=1, synth_eval=2, duration=0.5)
    arch = root / "archives"
    arch.mkdir()
    records: dict[str, dict[str, bytes]] = {"4783391": {}, "4060432": {}, "10886481": {}, "11425256": {},
                                              "10887496": {}}
    for split in ("development", "validation", "evaluation"):
        seven_zip(arch / f"clotho_audio_{split}.7z", clotho, split)
        records["4783391"][f"clotho_audio_{split}.7z"] = (arch / f"clotho_audio_{split}.7z").read_bytes()
        for kind in ("captions", "metadata"):
            records["4783391"][f"clotho_{kind}_{split}.csv"] = (clotho / f"clotho_{kind}_{split}.csv").read_bytes()
    records["4783391"]["LICENSE"] = b"generated for the tests\n"
    parts = write_split_zip(arch / "FSD50K.dev_audio.zip", folder_files(fsd, "FSD50K.dev_audio"), 20000)
    assert len(parts) >= 3
    for p in parts:
        records["4060432"][p.name] = p.read_bytes()
    evals = folder_files(fsd, "FSD50K.eval_audio")  # like the record: FSD50K.eval_audio.z01 + .zip
    parts = write_split_zip(arch / "FSD50K.eval_audio.zip", evals, len(zip_bytes(evals)) // 2 + 64)
    assert [p.name for p in parts] == ["FSD50K.eval_audio.z01", "FSD50K.eval_audio.zip"]
    for p in parts:
        records["4060432"][p.name] = p.read_bytes()
    records["4060432"]["FSD50K.ground_truth.zip"] = zip_bytes(folder_files(fsd, "FSD50K.ground_truth"))
    records["4060432"]["FSD50K.metadata.zip"] = zip_bytes({"FSD50K.metadata/readme.txt": b"metadata\n"})
    records["4060432"]["FSD50K.doc.zip"] = zip_bytes({"FSD50K.doc/README.md": b"doc\n"})
    records["10886481"]["lass_validation.zip"] = zip_bytes(folder_files(dcase, "lass_validation"))
    for name in ("lass_validation.json", "lass_synthetic_validation.csv"):
        records["10886481"][name] = (dcase / name).read_bytes()
    records["11425256"]["lass_evaluation_synth.zip"] = zip_bytes(folder_files(dcase, "lass_evaluation_synth"))
    records["11425256"]["lass_evaluation_real.zip"] = zip_bytes(folder_files(dcase, "lass_evaluation_real"))
    for name in ("lass_synthetic_evaluation.csv", "lass_real_evaluation.csv"):
        records["11425256"][name] = (dcase / name).read_bytes()
    records["10887496"]["fsd50k_dev_auto_caption.json"] = (fsd / "fsd50k_captions.json").read_bytes()
    records["10887496"]["README.md"] = b"not a JSON: not taken\n"
    return {"records": records, "clotho": clotho, "fsd": fsd, "dcase": dcase}


def serve(zenodo: Zenodo, raw) -> Zenodo:
    zenodo.records = {k: dict(v) for k, v in raw["records"].items()}
    return zenodo


# --- fetch: one file -----------------------------------------------------------------------------------
PAYLOAD = bytes(range(256)) * 5000  # 1.2 MB: more than one chunk


def remote(zenodo: Zenodo, name: str = "model.ckpt", data: bytes = PAYLOAD, **kw) -> RemoteFile:
    zenodo.records.setdefault("1", {})[name] = data
    return RemoteFile(name, f"{zenodo.url}/records/1/files/{name}?download=1", len(data), md5(data), **kw)


def test_cut_mid_file_then_resumed_gives_identical_bytes(zenodo, tmp_path):
    r = remote(zenodo)
    zenodo.cut["model.ckpt"] = 300_000
    with pytest.raises(WorkError, match=r"connection closed early|cannot download"):
        fe.fetch_file(r, tmp_path / "model.ckpt", retries=0, say=lambda s: None)
    part = tmp_path / "model.ckpt.part"
    assert part.stat().st_size == 300_000 and not (tmp_path / "model.ckpt").exists()
    result = fe.fetch_file(r, tmp_path / "model.ckpt", say=lambda s: None)
    assert (tmp_path / "model.ckpt").read_bytes() == PAYLOAD and not part.exists()
    assert zenodo.file_requests("model.ckpt") == [None, "bytes=300000-"]
    assert result.resumed_from == 300_000 and result.downloaded == len(PAYLOAD) - 300_000


def test_a_dropped_connection_is_retried_and_continues(zenodo, tmp_path):
    r = remote(zenodo)
    zenodo.cut["model.ckpt"] = 500_000
    notes = []
    fe.fetch_file(r, tmp_path / "model.ckpt", say=notes.append)
    assert (tmp_path / "model.ckpt").read_bytes() == PAYLOAD
    assert zenodo.file_requests("model.ckpt") == [None, "bytes=500000-"] and len(notes) == 1


def test_corrupted_download_is_refused_and_fetched_again(zenodo, tmp_path):
    r = remote(zenodo)
    zenodo.corrupt.add("model.ckpt")
    notes = []
    result = fe.fetch_file(r, tmp_path / "model.ckpt", say=notes.append)
    assert (tmp_path / "model.ckpt").read_bytes() == PAYLOAD and result.refetched
    assert len(notes) == 1 and "has MD5" in notes[0] and "fetched again" in notes[0]


def test_a_corrupted_file_already_there_is_replaced(zenodo, tmp_path):
    r = remote(zenodo)
    (tmp_path / "model.ckpt").write_bytes(b"x" + PAYLOAD[1:])
    notes = []
    fe.fetch_file(r, tmp_path / "model.ckpt", say=notes.append)
    assert (tmp_path / "model.ckpt").read_bytes() == PAYLOAD and "has MD5" in notes[0]


def test_server_without_range_restarts_the_file_and_says_so_once(zenodo, tmp_path):
    r = remote(zenodo)
    zenodo.ranges = False
    (tmp_path / "model.ckpt.part").write_bytes(PAYLOAD[:1000])
    notes = []
    result = fe.fetch_file(r, tmp_path / "model.ckpt", say=notes.append)
    assert (tmp_path / "model.ckpt").read_bytes() == PAYLOAD and result.restarted
    assert [n for n in notes if "ignores HTTP ranges" in n] == notes and len(notes) == 1


def test_404_is_one_line_and_leaves_nothing(zenodo, tmp_path):
    r = RemoteFile("absent.ckpt", f"{zenodo.url}/records/1/files/absent.ckpt", 10, "0" * 32)
    with pytest.raises(WorkError) as info:
        fe.fetch_file(r, tmp_path / "absent.ckpt")
    assert "HTTP 404" in str(info.value) and "\n" not in str(info.value) and "--from DIR" in str(info.value)
    assert list(tmp_path.glob("absent*")) == []


def test_403_says_how_to_pass_a_token_and_the_token_goes_only_to_the_hub():
    line = fe.http_error_line("https://huggingface.co/x/resolve/main/m.bin", 403, "Forbidden", Path("/c/m.bin"))
    assert "--token TOKEN" in line and "HF_TOKEN" in line
    assert fe._token_for("https://huggingface.co/a/b", "secret") == "secret"
    assert fe._token_for("https://zenodo.org/records/1/files/a", "secret") is None


def test_5xx_is_retried_with_back_off(zenodo, tmp_path):
    r = remote(zenodo)
    zenodo.fail["model.ckpt"] = [503, 500]
    notes = []
    fe.fetch_file(r, tmp_path / "model.ckpt", say=notes.append)
    assert (tmp_path / "model.ckpt").read_bytes() == PAYLOAD
    assert [n.split(";")[0] for n in notes] == ["model.ckpt: HTTP 503", "model.ckpt: HTTP 500"]


def test_too_many_5xx_stop_with_one_line(zenodo, tmp_path):
    r = remote(zenodo)
    zenodo.fail["model.ckpt"] = [503] * 10
    with pytest.raises(WorkError, match=r"HTTP 503; 3 tries\): check the network"):
        fe.fetch_file(r, tmp_path / "model.ckpt", retries=2, say=lambda s: None)


@pytest.fixture
def small_disk(tmp_path):
    """A 512 KiB tmpfs when mounting works (root), else None (the test simulates ENOSPC)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)],
                              capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        done = None
    if done is None or done.returncode != 0:
        yield None
        return
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=10)


def test_full_disk_stops_with_one_line_and_resumes(zenodo, tmp_path, small_disk, monkeypatch):
    r = remote(zenodo)
    if small_disk is not None:
        target = small_disk / "model.ckpt"
    else:  # simulate: writes past 400 kB fail with ENOSPC
        target = tmp_path / "model.ckpt"
        real_open = open

        class Full:
            def __init__(self, fh):
                self.fh, self.n = fh, fh.tell()

            def write(self, data):
                if self.n + len(data) > 400_000:  # like a real disk: what fits is written, then ENOSPC
                    self.fh.write(data[:400_000 - self.n])
                    self.n = 400_000
                    raise OSError(errno.ENOSPC, "No space left on device")
                self.n += len(data)
                return self.fh.write(data)

            def __getattr__(self, name):
                return getattr(self.fh, name)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.fh.close()

        monkeypatch.setattr(fe, "open", lambda *a, **k: Full(real_open(*a, **k)), raising=False)
    with pytest.raises(WorkError) as info:
        fe.fetch_file(r, target, say=lambda s: None)
    line = str(info.value)
    assert "no space left on the device" in line and "\n" not in line and "resumes" in line
    part = target.with_name("model.ckpt.part")
    have = part.stat().st_size
    assert 0 < have < len(PAYLOAD)
    # space is freed and the same command runs again: it continues from what arrived
    monkeypatch.delattr(fe, "open", raising=False)
    if small_disk is not None:
        subprocess.run(["mount", "-o", "remount,size=4m", str(small_disk)], check=True, timeout=10)
    result = fe.fetch_file(r, target, say=lambda s: None)
    assert target.read_bytes() == PAYLOAD and result.resumed_from == have
    assert zenodo.file_requests("model.ckpt")[-1] == f"bytes={have}-"


def test_parallel_downloads_keep_going_past_one_failure(zenodo, tmp_path):
    good = [remote(zenodo, f"f{i}.bin", bytes([i]) * 300_000) for i in range(3)]
    bad = RemoteFile("gone.bin", f"{zenodo.url}/records/1/files/gone.bin", 1, "0" * 32)
    jobs = [(r, tmp_path / r.name) for r in [good[0], bad, *good[1:]]]
    with pytest.raises(WorkError, match="HTTP 404"):
        fe.fetch_all(jobs, parallel=3, say=lambda s: None)
    assert [(tmp_path / r.name).read_bytes() for r in good] == [bytes([i]) * 300_000 for i in range(3)]
    results = fe.fetch_all([(r, tmp_path / r.name) for r in good], parallel=2, progress=True)
    assert [r.cached for r in results] == [True, True, True]


# --- extraction --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("zip64", [False, True], ids=["zip", "zip64-members"])
def test_split_zip_is_read_as_one_stream(tmp_path, zip64):
    files = {f"FSD50K.dev_audio/{i}.wav": os.urandom(7000) * (i + 1) for i in range(6)}
    files["FSD50K.dev_audio/text.csv"] = b"fname,labels\n" * 3000
    parts = write_split_zip(tmp_path / "FSD50K.dev_audio.zip", files, 10_000, zip64=zip64)
    assert [p.name for p in parts][:2] == ["FSD50K.dev_audio.z01", "FSD50K.dev_audio.z02"]
    assert parts[0].read_bytes()[:4] == b"PK\x07\x08"
    report = ex.extract(tmp_path / "FSD50K.dev_audio.zip", tmp_path / "out", folder="FSD50K.dev_audio")
    assert folder_files(tmp_path / "out", "FSD50K.dev_audio") == files
    assert (report.members, report.written, report.into) == (7, 7, ".")
    assert ex.extract(tmp_path / "FSD50K.dev_audio.zip", tmp_path / "out").already


@pytest.mark.skipif(not any((Path(d) / "zip").is_file() for d in os.environ.get("PATH", "").split(os.pathsep)),
                    reason="the zip binary is not installed (only used to cross-check the split format)")
def test_split_zip_made_by_info_zip(tmp_path):
    src = tmp_path / "FSD50K.eval_audio"
    src.mkdir()
    for i in range(5):
        (src / f"{i}.wav").write_bytes(os.urandom(30_000))
    subprocess.run(["zip", "-q", "-r", "-s", "64k", "FSD50K.eval_audio.zip", "FSD50K.eval_audio"], cwd=tmp_path,
                   check=True)
    assert (tmp_path / "FSD50K.eval_audio.z02").is_file()
    ex.extract(tmp_path / "FSD50K.eval_audio.zip", tmp_path / "out", folder="FSD50K.eval_audio")
    assert folder_files(tmp_path / "out", "FSD50K.eval_audio") == folder_files(tmp_path, "FSD50K.eval_audio")


def test_zip64_and_stored_members(tmp_path):
    files = {"a/one.bin": os.urandom(5000), "a/two.txt": b"two\n" * 100}
    (tmp_path / "x.zip").write_bytes(zip_bytes(files, zip64=True))
    (tmp_path / "y.zip").write_bytes(zip_bytes(files, compression=zipfile.ZIP_STORED))
    for name in ("x.zip", "y.zip"):
        ex.extract(tmp_path / name, tmp_path / name.replace(".", "_"), folder="a")
        assert folder_files(tmp_path / name.replace(".", "_"), "a") == files


def test_a_missing_part_is_named(tmp_path):
    files = {f"d/{i}.bin": os.urandom(9000) for i in range(4)}
    parts = write_split_zip(tmp_path / "d.zip", files, 10_000)
    parts[1].unlink()
    with pytest.raises(ex.ArchiveError, match=r"has 4 parts but 2 are here \(d.z01, d.zip\): d.z02 is missing; download it"):
        ex.extract(tmp_path / "d.zip", tmp_path / "out")


@pytest.mark.parametrize("name", ["../evil.txt", "/etc/evil.txt", "a/../../evil.txt", "C:/evil.txt", "a\\..\\evil"])
def test_zip_slip_is_refused_before_anything_is_written(tmp_path, name):
    (tmp_path / "slip.zip").write_bytes(zip_bytes({"ok/first.txt": b"fine", name: b"evil"}))
    with pytest.raises(ex.ArchiveError, match="zip slip"):
        ex.extract(tmp_path / "slip.zip", tmp_path / "out" / "in")
    assert not (tmp_path / "out" / "in" / "ok").exists() and not (tmp_path / "evil.txt").exists()


def test_symlink_member_is_refused(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        info = zipfile.ZipInfo("link")
        info.create_system = 3
        info.external_attr = 0o120777 << 16
        z.writestr(info, "/etc/passwd")
    (tmp_path / "l.zip").write_bytes(buf.getvalue())
    with pytest.raises(ex.ArchiveError, match="symbolic link"):
        ex.extract(tmp_path / "l.zip", tmp_path / "out")


def test_zip_bomb_is_refused(tmp_path):
    (tmp_path / "bomb.zip").write_bytes(zip_bytes({"zeros.bin": b"\0" * 30_000_000}))
    assert (tmp_path / "bomb.zip").stat().st_size < 100_000
    with pytest.raises(ex.ArchiveError, match="zip bomb"):
        ex.extract(tmp_path / "bomb.zip", tmp_path / "out")
    assert not (tmp_path / "out" / "zeros.bin").exists()


def test_a_member_that_inflates_past_its_declared_size_stops(tmp_path):
    data = bytearray(zip_bytes({"a.txt": os.urandom(2000) + b"a" * 3000}))
    # declare 2500 bytes instead of 5000, in the local header (offset 22) and the central directory
    data[22:26] = struct.pack("<I", 2500)
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 24:cd + 28] = struct.pack("<I", 2500)
    (tmp_path / "liar.zip").write_bytes(bytes(data))
    with pytest.raises(ex.ArchiveError, match="inflates past its declared 2500 bytes"):
        ex.extract(tmp_path / "liar.zip", tmp_path / "out")
    assert not (tmp_path / "out" / "a.txt").exists()


def test_overlapping_members_are_refused(tmp_path):
    data = bytearray(zip_bytes({"a.bin": os.urandom(3000), "b.bin": os.urandom(3000)}))
    cd = data.rfind(b"PK\x01\x02")  # the second entry: point it at the first member's data
    data[cd + 42:cd + 46] = struct.pack("<I", 0)
    (tmp_path / "overlap.zip").write_bytes(bytes(data))
    with pytest.raises(ex.ArchiveError, match="overlap"):
        ex.extract(tmp_path / "overlap.zip", tmp_path / "out")


def test_interrupted_extraction_is_finished_not_redone(tmp_path):
    files = {f"development/{i}.wav": os.urandom(4000) for i in range(8)}
    (tmp_path / "a.zip").write_bytes(zip_bytes(files))
    calls = []
    real = ex._write_member

    def stop_after_three(target, chunks, size):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(target.name)
        return real(target, chunks, size)

    ex._write_member = stop_after_three
    try:
        with pytest.raises(KeyboardInterrupt):
            ex.extract(tmp_path / "a.zip", tmp_path / "out", folder="development")
    finally:
        ex._write_member = real
    assert len(list((tmp_path / "out" / "development").iterdir())) == 3  # no temporary file left
    report = ex.extract(tmp_path / "a.zip", tmp_path / "out", folder="development")
    assert (report.kept, report.written) == (3, 5)
    assert folder_files(tmp_path / "out", "development") == files


def test_7z_into_the_folder_prepare_expects(tmp_path):
    src = tmp_path / "src"
    (src / "development").mkdir(parents=True)
    files = {f"development/{i}.wav": os.urandom(3000) for i in range(4)}
    for name, data in files.items():
        (src / name).write_bytes(data)
    seven_zip(tmp_path / "clotho_audio_development.7z", src, "development")
    report = ex.extract(tmp_path / "clotho_audio_development.7z", tmp_path / "out", folder="development")
    assert folder_files(tmp_path / "out", "development") == files and report.written == 4
    (tmp_path / "out" / "development" / "2.wav").unlink()
    (tmp_path / "out" / ex.DONE_NAME).unlink()
    again = ex.extract(tmp_path / "clotho_audio_development.7z", tmp_path / "out", folder="development")
    assert (again.kept, again.written) == (3, 1) and folder_files(tmp_path / "out", "development") == files
    # an archive whose files are not in the expected folder is put into it
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "x.wav").write_bytes(b"x" * 100)
    import py7zr

    with py7zr.SevenZipFile(tmp_path / "flat.7z", "w") as z:
        z.write(flat / "x.wav", "x.wav")
    ex.extract(tmp_path / "flat.7z", tmp_path / "out2", folder="evaluation")
    assert (tmp_path / "out2" / "evaluation" / "x.wav").read_bytes() == b"x" * 100


# --- the command ----------------------------------------------------------------------------------------
def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


@pytest.mark.slow
def test_end_to_end_download_then_prepare_with_no_path(zenodo, raw, tmp_path, run_cli):
    serve(zenodo, raw)
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "lasskit.yaml").write_text("# my settings\njobs: 1\npaths:\n  # clotho: /old\n  fsd50k: /somewhere/else\n")
    code, out, err = run_cli("-w", ws, "download", "clotho", "fsd50k", "dcase2024", "--parallel", "3")
    assert code == 0, err
    to = (ws / "downloads").resolve()
    config = (ws / "lasskit.yaml").read_text()
    assert "# my settings" in config and "jobs: 1" in config and "# clotho: /old" in config
    from lasskit.workspace import load_config

    assert load_config(ws / "lasskit.yaml")["paths"] == {"clotho": str(to / "clotho"), "fsd50k": str(to / "FSD50K"),
                                                         "dcase2024": str(to / "dcase2024_task9")}
    # the layouts prepare expects, byte for byte
    assert folder_files(to / "clotho", "development") == folder_files(raw["clotho"], "development")
    assert folder_files(to / "FSD50K", "FSD50K.dev_audio") == folder_files(raw["fsd"], "FSD50K.dev_audio")
    assert (to / "FSD50K" / "FSD50K.ground_truth" / "vocabulary.csv").is_file()
    assert folder_files(to / "dcase2024_task9", "lass_validation") == folder_files(raw["dcase"], "lass_validation")
    assert (to / "dcase2024_task9" / "captions" / "fsd50k_dev_auto_caption.json").is_file()
    assert not (to / "dcase2024_task9" / "captions" / "README.md").exists()
    # archives removed (no --keep-archives); a second run downloads nothing
    assert not list(to.rglob("*.7z")) and not list(to.rglob("*.z01")) and not list(to.rglob("*.part"))
    before = len(zenodo.requests)
    code, out, err = run_cli("-w", ws, "download", "clotho", "fsd50k", "dcase2024")
    assert code == 0 and len(zenodo.requests) == before, err  # the record lists are cached too
    assert "0 downloaded" in out
    code, out, err = run_cli("-w", ws, "prepare", "clotho", "--jobs", "1")
    assert code == 0, err
    assert (ws / "data" / "clotho" / "manifest.csv").read_text().count("\n") == 1 + 6
    code, out, err = run_cli("-w", ws, "prepare", "dcase2024", "--jobs", "1")
    assert code == 0, err
    assert (ws / "data" / "splits" / "val_synth" / "mixtures.csv").is_file()


def test_keep_archives_and_from_dir_offline(zenodo, raw, tmp_path, run_cli):
    serve(zenodo, raw)
    ws = tmp_path / "ws"
    code, out, err = run_cli("-w", ws, "download", "clotho", "--keep-archives", "--to", tmp_path / "dl")
    assert code == 0, err
    archives = tmp_path / "dl" / "clotho"
    assert (archives / "clotho_audio_validation.7z").read_bytes() == raw["records"]["4783391"]["clotho_audio_validation.7z"]
    # another machine: the same files, no network (the server is gone), the user's folder untouched
    zenodo.close()
    before = snapshot(archives)
    ws2 = tmp_path / "ws2"
    code, out, err = run_cli("-w", ws2, "download", "clotho", "--from", archives, "--to", tmp_path / "dl2")
    assert code == 0, err
    assert snapshot(archives) == before
    assert folder_files(tmp_path / "dl2" / "clotho", "evaluation") == folder_files(raw["clotho"], "evaluation")
    assert (tmp_path / "dl2" / "clotho" / "clotho_captions_validation.csv").is_file()
    assert "clotho:" in (ws2 / "lasskit.yaml").read_text()


def test_from_dir_checks_each_file(zenodo, raw, tmp_path, run_cli):
    serve(zenodo, raw)
    mine = tmp_path / "mine"
    mine.mkdir()
    for name, data in raw["records"]["10886481"].items():
        (mine / name).write_bytes(data)
    for name, data in raw["records"]["11425256"].items():
        (mine / name).write_bytes(data)
    (mine / "fsd50k_dev_auto_caption.json").write_bytes(raw["records"]["10887496"]["fsd50k_dev_auto_caption.json"])
    code, out, err = run_cli("-w", tmp_path, "download", "dcase2024", "--to", tmp_path / "a")  # caches the lists
    assert code == 0, err
    zenodo.close()
    (mine / "lass_validation.json").write_bytes(b"[]")
    code, out, err = run_cli("-w", tmp_path, "download", "dcase2024", "--from", mine, "--to", tmp_path / "b")
    assert code == 1 and err.count("\n") == 1 and "lass_validation.json: has 2 bytes, expected" in err
    assert not (tmp_path / "b").exists()  # every copy is checked before anything is written
    (mine / "lass_validation.json").write_bytes(raw["records"]["10886481"]["lass_validation.json"])
    (mine / "lass_real_evaluation.csv").write_bytes(b"x")  # a later file: the earlier ones are not copied either
    code, out, err = run_cli("-w", tmp_path, "download", "dcase2024", "--from", mine, "--to", tmp_path / "b")
    assert code == 1 and "lass_real_evaluation.csv: has 1 bytes, expected" in err and not (tmp_path / "b").exists()
    (mine / "lass_validation.json").write_bytes(b"[]")
    (mine / "lass_synthetic_validation.csv").unlink()
    code, out, err = run_cli("-w", tmp_path, "download", "dcase2024", "--from", mine, "--to", tmp_path / "b")
    assert code == 2 and "needs lass_synthetic_validation.csv which are not there" in err


def test_records_api_down_falls_back_to_known_md5s(zenodo, raw, tmp_path, monkeypatch):
    from lasskit.download import catalogue, run

    serve(zenodo, raw)
    zenodo.api_down = True
    files = raw["records"]["10886481"]
    known = tuple(catalogue.KnownFile(n, md5(d), len(d)) for n, d in files.items())
    ds = catalogue.Dataset("mini", "t", "l", "1 kB", "mini", (catalogue.Source("10886481", known=known),), "next")
    monkeypatch.setitem(catalogue.CATALOGUE, "mini", ds)
    monkeypatch.setattr(run, "CATALOGUE", catalogue.CATALOGUE)
    notes = []
    report = run.download(["mini"], tmp_path / "to", say=notes.append, progress=False)
    assert any("records API answered HTTP 503" in n and "MD5s lasskit knows" in n for n in notes)
    assert report.items[0].fetched == 3
    assert (tmp_path / "to" / "mini" / "lass_validation.json").read_bytes() == files["lass_validation.json"]


def test_unknown_name_and_list(run_cli, tmp_path):
    code, out, err = run_cli("-w", tmp_path, "download", "clothoo")
    assert code == 2 and "unknown download 'clothoo'" in err and "clotho" in err
    code, out, err = run_cli("-w", tmp_path, "download", "--list")
    assert code == 0
    names = [line.split()[0] for line in out.splitlines() if line and not line.startswith(" ")]
    assert names[:4] == ["clotho", "fsd50k", "dcase2024", "labels"] and "dcase2024-baseline" in names
    assert "lasskit prepare clotho" in out and "CC BY 4.0" in out
    assert not (tmp_path / "downloads").exists()


class ZooModel:
    """A registered model that declares its weight files (what engineer Z's zoo models do)."""

    description = "a zoo model"
    weight_files: tuple = ()

    def separate(self, mixtures, queries):  # pragma: no cover - never run here
        raise NotImplementedError


def test_a_registered_model_downloads_its_declared_weight_files(zenodo, tmp_path, monkeypatch, run_cli):
    from importlib.metadata import EntryPoint

    from lasskit.weights import WeightFile

    data = os.urandom(200_000)
    zenodo.records["77"] = {"zoo.ckpt": data}
    monkeypatch.setattr(ZooModel, "weight_files", (WeightFile(
        "zoo", "zoo.ckpt", f"{zenodo.url}/records/77/files/zoo.ckpt", hashlib.sha256(data).hexdigest(), len(data)),))
    ep = EntryPoint("zoo-model", f"{__name__}:ZooModel", "lasskit.models")
    import importlib.metadata

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group=None: [ep] if group == "lasskit.models" else [])
    code, out, err = run_cli("-w", tmp_path, "download", "zoo-model")
    assert code == 0, err
    assert (tmp_path / "cache" / "weights" / "zoo.ckpt").read_bytes() == data
    code, out, err = run_cli("-w", tmp_path, "models", "download", "zoo-model")
    assert code == 0 and out.strip() == str(tmp_path / "cache" / "weights" / "zoo.ckpt")
    assert len(zenodo.file_requests("zoo.ckpt")) == 1


@pytest.mark.slow  # CLI subprocesses, interrupted
def test_ctrl_c_leaves_a_part_that_the_next_run_continues(zenodo, tmp_path):
    big = os.urandom(3_000_000)
    zenodo.records["10886481"] = {"lass_validation.json": big, "lass_synthetic_validation.csv": b"x\n",
                                  "lass_validation.zip": zip_bytes({"lass_validation/a.wav": b"a"})}
    zenodo.records["11425256"] = {"lass_real_evaluation.csv": b"x\n"}
    zenodo.records["10887496"] = {"captions.json": b"{}"}
    zenodo.slow = 0.02  # ~3 MB/s: long enough to interrupt
    env = {**os.environ, "LASSKIT_ZENODO_URL": zenodo.url, "LASSKIT_CACHE": str(tmp_path / "cache"),
           "LASSKIT_PROGRESS": "0", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "lasskit", "-w", str(tmp_path), "download", "dcase2024", "--to", str(tmp_path / "d")]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    part = tmp_path / "d" / "dcase2024_task9" / "lass_validation.json.part"
    deadline = time.time() + 30
    while time.time() < deadline and not (part.is_file() and part.stat().st_size > 200_000):
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("error: interrupted")
    have = part.stat().st_size
    assert 200_000 <= have < len(big)
    zenodo.slow = 0
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "d" / "dcase2024_task9" / "lass_validation.json").read_bytes() == big
    assert zenodo.file_requests("lass_validation.json")[-1] == f"bytes={have}-"


def test_record_path_keeps_the_file_and_edits_one_line(tmp_path):
    from lasskit.download.run import record_path
    from lasskit.workspace import load_config

    (tmp_path / "lasskit.yaml").write_text("jobs: 2\npaths:\n  clotho: /old  # mine\n\nmix:\n  seed: 1\n")
    record_path(tmp_path, "clotho", tmp_path / "new", print)
    record_path(tmp_path, "fsd50k", tmp_path / "f s d", print)
    text = (tmp_path / "lasskit.yaml").read_text()
    assert text.startswith("jobs: 2\npaths:\n") and "mix:\n  seed: 1\n" in text
    assert load_config(tmp_path / "lasskit.yaml")["paths"] == {"clotho": str(tmp_path / "new"),
                                                                "fsd50k": str(tmp_path / "f s d")}
    (tmp_path / "fresh").mkdir()
    record_path(tmp_path / "fresh", "dcase2024", tmp_path / "d", print)
    assert load_config(tmp_path / "fresh" / "lasskit.yaml")["paths"] == {"dcase2024": str(tmp_path / "d")}


def test_bad_options_change_nothing(run_cli, tmp_path):
    code, out, err = run_cli("-w", tmp_path, "download", "clotho", "--parallel", "0")
    assert code == 2 and "--parallel 0" in err
    code, out, err = run_cli("-w", tmp_path, "download", "clotho", "--from", tmp_path / "nope")
    assert code == 2 and "--from must be a folder" in err
    code, out, err = run_cli("-w", tmp_path, "download")
    assert code == 2 and "lasskit download --list" in err
    code, out, err = run_cli("-w", tmp_path, "download", "clotho", "--to", os.fsdecode(bytes(tmp_path) + b"/d\xff"))
    assert code == 2 and err.count("\n") == 1 and "/d\\xff: the folder's name is not valid UTF-8" in err, err
    assert not (tmp_path / "downloads").exists() and not (tmp_path / "lasskit.yaml").exists()


def test_one_failing_name_does_not_stop_the_others(zenodo, raw, tmp_path, run_cli):
    serve(zenodo, raw)
    for name in ("lass_validation.zip", "lass_synthetic_validation.csv"):
        zenodo.fail[name] = [404]
    code, out, err = run_cli("-w", tmp_path, "download", "dcase2024", "clotho")
    assert code == 1 and err.count("\n") == 1, err
    assert "1 of 2 downloads failed (dcase2024; done: clotho)" in err and "HTTP 404" in err
    assert "clotho: 10 file(s)" in out and "paths.clotho" in out
    assert "clotho:" in (tmp_path / "lasskit.yaml").read_text()


def test_a_zoo_card_declares_the_files_and_the_record_gives_the_md5(zenodo, tmp_path, monkeypatch, run_cli):
    """A model card (lasskit.models.cards) names a file in a Zenodo record without a SHA-256:
    the record's API supplies its MD5 and size, and a corrupted copy is refused and fetched again."""
    from lasskit.models import cards

    data = os.urandom(300_000)
    zenodo.records["14208090"] = {"model-epoch=19.ckpt": data}
    decl = cards.WeightDecl("model-epoch=19.ckpt", f"{zenodo.url}/records/14208090/files/model-epoch%3D19.ckpt",
                            "a page", zenodo_record="14208090")
    card = cards.ModelCard("zoo-dp", 16000, 10.0, False, "MIT", "cite", "code", weights=(decl,), tokenizer=None)
    monkeypatch.setitem(cards.CARDS, "zoo-dp", card)
    zenodo.corrupt.add("model-epoch=19.ckpt")
    code, out, err = run_cli("-w", tmp_path, "models", "download", "zoo-dp")
    assert code == 0, err
    assert (tmp_path / "cache" / "weights" / "model-epoch=19.ckpt").read_bytes() == data
    assert "has MD5" in err and len(zenodo.file_requests("model-epoch%3D19.ckpt")) == 2
    code, out, err = run_cli("-w", tmp_path, "download", "--list")
    assert "zoo-dp" in out and "lasskit separate --model zoo-dp" in out


def test_too_little_room_is_said_before_downloading(zenodo, raw, tmp_path, monkeypatch):
    from collections import namedtuple

    from lasskit.download import run

    serve(zenodo, raw)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(run.shutil, "disk_usage", lambda p: usage(10**6, 0, 1000))
    notes = []
    run.download(["clotho"], tmp_path / "to", say=notes.append, progress=False)
    warning = [n for n in notes if n.startswith("warning:")]
    assert len(warning) == 1 and "has 1.0 kB free" in warning[0] and "resumes" in warning[0]
    need = sum(len(d) for d in raw["records"]["4783391"].values()) + sum(
        len(d) for n, d in raw["records"]["4783391"].items() if n.endswith(".7z"))
    assert f"needs about {run._human(need)}:" in warning[0]  # what is left plus its extraction, not "0.0 GB"


def test_a_full_disk_while_extracting_is_one_line_with_the_fix_download_has(zenodo, raw, tmp_path, monkeypatch):
    from lasskit.download import extract as extract_module
    from lasskit.download import run

    serve(zenodo, raw)

    def full(archive, dest, **kw):
        raise OSError(errno.ENOSPC, "No space left on device", str(dest / ".a.wav.x.lasskit.tmp"))

    monkeypatch.setattr(extract_module, "extract", full)
    with pytest.raises(WorkError) as err:
        run.download(["clotho"], tmp_path / "to", progress=False, say=lambda line: None)
    line = str(err.value)
    assert "no space left on the device while extracting clotho_audio_development.7z" in line
    assert "--to DIR" in line and "--workspace" not in line and "--out" not in line


def test_a_complete_part_left_before_the_rename_is_checked_not_fetched(zenodo, tmp_path):
    r = remote(zenodo)
    (tmp_path / "model.ckpt.part").write_bytes(PAYLOAD)  # killed between the last byte and the rename
    result = fe.fetch_file(r, tmp_path / "model.ckpt", say=lambda s: None)
    assert (tmp_path / "model.ckpt").read_bytes() == PAYLOAD and result.downloaded == 0
    assert zenodo.file_requests("model.ckpt") == []  # the size says it is whole: no request at all
    # size unknown: the range asked for starts at the end, the server answers 416, the bytes are checked
    (tmp_path / "model.ckpt").rename(tmp_path / "again.part")
    zenodo.records["1"]["again"] = PAYLOAD
    r2 = RemoteFile("again", f"{zenodo.url}/records/1/files/again", None, r.md5)
    fe.fetch_file(r2, tmp_path / "again", say=lambda s: None)
    assert (tmp_path / "again").read_bytes() == PAYLOAD and zenodo.file_requests("again") == [f"bytes={len(PAYLOAD)}-"]


def test_the_baseline_checkpoint_is_checked_against_its_records_md5(zenodo, tmp_path, monkeypatch, run_cli):
    """lasskit/weights.py names the baseline by its Zenodo address only: the record's API gives the
    MD5 and size (the address follows $LASSKIT_ZENODO_URL), and the tokenizer comes along."""
    from lasskit import weights

    ckpt = os.urandom(250_000)
    zenodo.records["10887460"] = {"audiosep_16k,baseline,step=200000.ckpt": ckpt}
    zenodo.records["rb"] = {"vocab.json": b"{}", "merges.txt": b"#version: 0.2\n"}
    monkeypatch.setitem(weights.TOKENIZERS, "roberta-base", tuple(
        weights.WeightFile(f"roberta-base/{n}", n, f"{zenodo.url}/records/rb/files/{n}") for n in ("vocab.json",
                                                                                                 "merges.txt")))
    zenodo.corrupt.add("audiosep_16k,baseline,step=200000.ckpt")
    code, out, err = run_cli("-w", tmp_path, "download", "dcase2024-baseline")
    assert code == 0, err
    assert (tmp_path / "cache" / "weights" / "audiosep_16k,baseline,step=200000.ckpt").read_bytes() == ckpt
    assert "has MD5" in err  # the corrupted first copy was caught by the record's MD5
    assert (tmp_path / "cache" / "tokenizers" / "roberta-base" / "merges.txt").read_bytes() == b"#version: 0.2\n"
    assert "lasskit separate --model dcase2024-baseline" in out


@pytest.mark.parametrize("name", ["../../escape.json", "/tmp/abs.json", "sub/inner.json", "..", "a\\..\\b.json"])
def test_a_record_file_name_that_is_not_a_plain_name_is_refused_before_anything_is_fetched(zenodo, raw, tmp_path,
                                                                                            name):
    from lasskit.download import run

    serve(zenodo, raw)
    zenodo.records["11425256"][name] = b"{}"  # a record whose API lists a name with a folder in it
    with pytest.raises(WorkError) as err:
        run.download(["dcase2024"], tmp_path / "to", progress=False, say=lambda line: None)
    assert repr(name) in str(err.value) and "11425256" in str(err.value)
    assert not [p for p, _ in zenodo.requests if p.startswith("/records/")]  # no file was asked for
    assert not (tmp_path / "to").exists() and not (tmp_path / "escape.json").exists()


@pytest.mark.slow  # two CLI subprocesses
def test_two_runs_into_the_same_folder_wait_for_each_other(zenodo, raw, tmp_path):
    """A second run of the same download waits for the first, then finds every file there."""
    serve(zenodo, raw)
    zenodo.gate["LICENSE"] = gate = threading.Event()  # the first run holds the folder until the second waits
    env = {**os.environ, "LASSKIT_ZENODO_URL": zenodo.url, "LASSKIT_CACHE": str(tmp_path / "cache"),
           "LASSKIT_PROGRESS": "0", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "lasskit", "-w", str(tmp_path), "download", "clotho", "--to", str(tmp_path / "d")]
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    while time.time() < deadline and not list((tmp_path / "d").rglob("*.part")):
        time.sleep(0.01)
    second = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    said = second.stderr.readline()
    gate.set()
    outs = [first.communicate(timeout=120), second.communicate(timeout=120)]
    outs[1] = (outs[1][0], said + outs[1][1])
    assert [first.returncode, second.returncode] == [0, 0], outs
    assert "waiting for" not in outs[0][1] and f"(pid {first.pid}) is writing here; waiting" in outs[1][1], outs
    assert "10 downloaded" in outs[0][0] and "0 downloaded" in outs[1][0], outs
    got = tmp_path / "d" / "clotho"
    assert folder_files(got, "evaluation") == folder_files(raw["clotho"], "evaluation")
    assert not list(got.rglob("*.part")) and not list(got.rglob("*.7z"))
    assert all(len(zenodo.file_requests(n)) == 1 for n in raw["records"]["4783391"])  # each file fetched once


def test_a_damaged_archive_does_not_stop_the_others_and_is_named_with_its_folder(zenodo, raw, tmp_path):
    from lasskit.download import run

    serve(zenodo, raw)
    zenodo.records["10886481"]["lass_validation.zip"] = b"PK\x03\x04" + bytes(3000)  # the API's MD5 matches it
    with pytest.raises(WorkError) as err:
        run.download(["dcase2024"], tmp_path / "to", progress=False, say=lambda line: None)
    to = tmp_path / "to" / "dcase2024_task9"
    assert str(err.value).startswith(f"{to}/lass_validation.zip: not a readable zip archive"), err.value
    assert folder_files(to, "lass_evaluation_synth") == folder_files(raw["dcase"], "lass_evaluation_synth")
    assert folder_files(to, "lass_evaluation_real") == folder_files(raw["dcase"], "lass_evaluation_real")
    assert (to / "lass_validation.zip").is_file() and not (to / "lass_evaluation_real.zip").exists()


def test_a_file_deleted_after_extraction_is_restored_by_the_next_run(zenodo, raw, tmp_path):
    from lasskit.download import run

    serve(zenodo, raw)
    run.download(["dcase2024"], tmp_path / "to", progress=False, say=lambda line: None)
    to = tmp_path / "to" / "dcase2024_task9"
    want = folder_files(raw["dcase"], "lass_validation")
    lost = to / sorted(want)[0]
    lost.unlink()
    (to / sorted(want)[1]).write_bytes(b"cut")  # and one cut short
    report = run.download(["dcase2024"], tmp_path / "to", progress=False, say=lambda line: None)
    assert folder_files(to, "lass_validation") == want
    item = report.items[0]
    assert item.extracted == ["lass_validation.zip"] and item.fetched == 1 and item.extracted_before == 2
    assert any(f"extraction resumed ({len(want) - 2} of {len(want)} files" in n for n in item.notes), item.notes
    again = run.download(["dcase2024"], tmp_path / "to", progress=False, say=lambda line: None)
    assert again.items[0].extracted == [] and again.items[0].fetched == 0


def test_labels_end_to_end_gives_the_files_its_next_command_names(zenodo, raw, tmp_path, monkeypatch):
    import dataclasses

    from lasskit.download import catalogue, run

    serve(zenodo, raw)
    zenodo.records["9"] = {"ontology.json": b'[{"id": "/m/0", "name": "Sound", "child_ids": []}]'}
    labels = catalogue.CATALOGUE["labels"]
    onto = dataclasses.replace(labels.sources[0], known=(
        dataclasses.replace(labels.sources[0].known[0], url=f"{zenodo.url}/records/9/files/ontology.json"),))
    monkeypatch.setitem(catalogue.CATALOGUE, "labels", dataclasses.replace(labels, sources=(onto, *labels.sources[1:])))
    monkeypatch.setattr(run, "CATALOGUE", catalogue.CATALOGUE)
    report = run.download(["labels"], tmp_path / "to", progress=False, say=lambda line: None)
    item = report.items[0]
    named = [w for w in item.next.split() if w.startswith(str(tmp_path))]
    assert len(named) == 2 and all(Path(p).is_file() for p in named), (item.next, list((tmp_path / "to").rglob("*")))
    assert Path(named[1]).read_bytes() == (raw["fsd"] / "FSD50K.ground_truth" / "vocabulary.csv").read_bytes()


@pytest.mark.parametrize("record,gone,said", [("4060432", "FSD50K.dev_audio.z02", "FSD50K.dev_audio.z02"),
                                              ("10887496", "fsd50k_dev_auto_caption.json", "*.json"),
                                              ("4783391", "clotho_audio_evaluation.7z", "clotho_audio_evaluation.7z")])
def test_a_record_that_no_longer_lists_a_needed_file_is_an_error_not_a_smaller_dataset(zenodo, raw, tmp_path,
                                                                                      record, gone, said):
    from lasskit.download import run

    serve(zenodo, raw)
    del zenodo.records[record][gone]
    name = {"4060432": "fsd50k", "10887496": "dcase2024", "4783391": "clotho"}[record]
    with pytest.raises(WorkError) as err:
        run.download([name], tmp_path / "to", progress=False, say=lambda line: None)
    assert f"Zenodo record {record}" in str(err.value) and f"does not list {said}" in str(err.value)
    assert not [p for p, _ in zenodo.requests if p.startswith("/records/")] and not (tmp_path / "to").exists()


def test_a_record_listing_a_file_twice_is_refused(zenodo, raw, tmp_path):
    from lasskit.download import run, zenodo as zen

    serve(zenodo, raw)
    data = raw["records"]["10887496"]["fsd50k_dev_auto_caption.json"]
    entry = {"key": "fsd50k_dev_auto_caption.json", "size": len(data), "checksum": f"md5:{md5(data)}"}
    path = zen.cache_path("10887496")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"files": [entry, dict(entry)]}))  # a broken (cached) answer
    with pytest.raises(WorkError, match="list fsd50k_dev_auto_caption.json more than once"):
        run.download(["dcase2024"], tmp_path / "to", progress=False, say=lambda line: None)
    assert not [p for p, _ in zenodo.requests if p.startswith("/records/")] and not (tmp_path / "to").exists()


def test_a_part_that_is_a_symbolic_link_is_not_written_through(zenodo, tmp_path):
    other = tmp_path / "other.bin"
    other.write_bytes(PAYLOAD[:1000])  # looks like a resumable start of the file
    target = tmp_path / "d" / "model.ckpt"
    target.parent.mkdir()
    (target.parent / "model.ckpt.part").symlink_to(other)
    notes = []
    fe.fetch_file(remote(zenodo), target, say=notes.append)
    assert target.read_bytes() == PAYLOAD and not target.is_symlink()
    assert other.read_bytes() == PAYLOAD[:1000] and any("symbolic link" in n for n in notes)


def test_prepare_fsd50k_hint_names_the_caption_json_when_dcase2024_is_there(zenodo, raw, tmp_path):
    from lasskit.download import run

    serve(zenodo, raw)
    report = run.download(["fsd50k"], tmp_path / "to", progress=False, say=lambda line: None)
    assert report.items[0].next == run.CATALOGUE["fsd50k"].prepare  # not there yet: the hole says where from
    report = run.download(["fsd50k", "dcase2024"], tmp_path / "to", progress=False, say=lambda line: None)
    json_path = tmp_path / "to" / "dcase2024_task9" / "captions" / "fsd50k_dev_auto_caption.json"
    assert report.items[0].next == f"lasskit prepare fsd50k --captions {json_path}"


def test_weights_from_a_folder_with_no_checksum_known_are_not_called_verified(tmp_path, run_cli):
    src = tmp_path / "usb"
    src.mkdir()
    (src / "audiosep_16k,baseline,step=200000.ckpt").write_bytes(b"not a checkpoint")
    (src / "vocab.json").write_text("{}")
    (src / "merges.txt").write_text("x\n")
    code, out, err = run_cli("-w", tmp_path, "download", "dcase2024-baseline", "--from", src)
    assert code == 0, err
    assert "0 already there and verified; 3 copied unchecked (no checksum known)" in out
    assert "no checksum known offline" in out and "once online checks them" in out


def test_paths_with_brackets_are_printed_as_they_are(zenodo, raw, tmp_path, run_cli):
    serve(zenodo, raw)
    to = tmp_path / "d[red]"
    code, out, err = run_cli("-w", tmp_path, "download", "dcase2024", "--to", to)
    assert code == 0, err
    assert f"-> {to}/dcase2024_task9" in out and f"paths.dcase2024 = {to}/dcase2024_task9" in out  # not rich markup


def test_a_complete_download_on_a_read_only_disk_is_checked_without_the_lock(zenodo, raw, tmp_path, monkeypatch):
    from lasskit.download import lock, run

    serve(zenodo, raw)
    run.download(["dcase2024"], tmp_path / "to", progress=False, say=lambda line: None)

    def read_only(path):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(lock, "_open", read_only)  # a shared copy mounted read-only
    report = run.download(["dcase2024"], tmp_path / "to", progress=False, say=lambda line: None)
    assert report.items[0].fetched == 0 and report.items[0].extracted_before == 3


# --- zoo cards: the declared files as their publishers ship them (issue 25) ------------------------------
def _tokenizer_served(zenodo, monkeypatch):
    from lasskit import weights

    zenodo.records["rb"] = {"vocab.json": b"{}", "merges.txt": b"#version: 0.2\n"}
    monkeypatch.setitem(weights.TOKENIZERS, "roberta-base", tuple(
        weights.WeightFile(f"roberta-base/{n}", n, f"{zenodo.url}/records/rb/files/{n}")
        for n in ("vocab.json", "merges.txt")))


def test_audiosep_dp_checkpoint_is_taken_out_of_its_zip_on_the_record(zenodo, tmp_path, monkeypatch, run_cli):
    """Zenodo record 14208090 ships each AudioSep-DP checkpoint inside a zip: the real card's address
    (following $LASSKIT_ZENODO_URL) fetches the zip, checks it against the record's MD5, takes the
    checkpoint out of its folder in the zip and removes the zip; a second run asks for nothing."""
    from lasskit.models import cards

    ckpt = os.urandom(200_000)
    zenodo.records["14208090"] = {
        "resunet_with_dprnn_16k.zip": zip_bytes({"resunet_with_dprnn_16k/model-epoch=19-val_sdr=8.1018.ckpt": ckpt,
                                                 "resunet_with_dprnn_16k/config.yaml": b"sample_rate: 16000\n"}),
        "resunet_with_dprnn_32k.zip": b"not asked for"}
    _tokenizer_served(zenodo, monkeypatch)
    zenodo.corrupt.add("resunet_with_dprnn_16k.zip")
    code, out, err = run_cli("-w", tmp_path, "models", "download", "audiosep-dp-16k")
    assert code == 0, err
    weights_dir = tmp_path / "cache" / "weights"
    assert (weights_dir / "model-epoch=19-val_sdr=8.1018.ckpt").read_bytes() == ckpt
    assert sorted(p.name for p in weights_dir.iterdir()) == ["model-epoch=19-val_sdr=8.1018.ckpt"]  # zip gone
    assert "has MD5" in err and len(zenodo.file_requests("resunet_with_dprnn_16k.zip")) == 2
    assert cards.cached_weight("audiosep-dp-16k") == weights_dir / "model-epoch=19-val_sdr=8.1018.ckpt"
    asked = len(zenodo.requests)
    code, out, err = run_cli("-w", tmp_path, "models", "download", "audiosep-dp-16k")
    assert code == 0, err
    assert not [p for p, _ in zenodo.requests[asked:] if "dprnn" in p]  # taken out before: nothing fetched
    assert zenodo.file_requests("resunet_with_dprnn_32k.zip") == []


def test_a_zip_without_the_declared_checkpoint_is_one_line_and_kept(zenodo, tmp_path, monkeypatch, run_cli):
    zenodo.records["14208090"] = {"resunet_with_dprnn_16k.zip": zip_bytes({"other/model-epoch=7.ckpt": b"x"})}
    _tokenizer_served(zenodo, monkeypatch)
    code, out, err = run_cli("-w", tmp_path, "models", "download", "audiosep-dp-16k")
    assert code == 1 and err.count("\n") == 1, err
    assert "holds no member named model-epoch=19-val_sdr=8.1018.ckpt (it holds: other/model-epoch=7.ckpt)" in err
    weights_dir = tmp_path / "cache" / "weights"
    assert sorted(p.name for p in weights_dir.iterdir()) == ["resunet_with_dprnn_16k.zip"]  # not fetched twice


def test_a_file_the_record_does_not_hold_is_refused_before_anything_is_fetched(zenodo, tmp_path, monkeypatch,
                                                                               run_cli):
    zenodo.records["14208090"] = {"model-epoch=19-val_sdr=8.1018.ckpt": b"a loose checkpoint"}
    _tokenizer_served(zenodo, monkeypatch)
    code, out, err = run_cli("-w", tmp_path, "models", "download", "audiosep-dp-16k")
    assert code == 1 and err.count("\n") == 1, err
    assert ("audiosep-dp-16k: Zenodo record 14208090 holds no file resunet_with_dprnn_16k.zip "
            "(it holds: model-epoch=19-val_sdr=8.1018.ckpt)") in err
    assert not [p for p, _ in zenodo.requests if p.startswith("/records/")]
    assert not (tmp_path / "cache" / "weights").exists()


@pytest.mark.parametrize("wrong", ["size", "sha256"])
def test_a_declared_size_or_sha256_that_the_file_does_not_have_is_refused(zenodo, tmp_path, monkeypatch, run_cli,
                                                                          wrong):
    """A card's size and SHA-256 (Git LFS pointers) are enforced: a file that does not match is
    fetched once more, then refused in one line, and nothing is left in the cache."""
    from lasskit.models import cards

    data = os.urandom(100_000)
    zenodo.records["hf"] = {"audiosep_base_4M_steps.ckpt": data}
    good = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    decl = cards.WeightDecl("audiosep_base_4M_steps.ckpt", f"{zenodo.url}/records/hf/files/audiosep_base_4M_steps.ckpt",
                            "a page", **{**good, wrong: len(data) + 1 if wrong == "size" else "0" * 64})
    monkeypatch.setitem(cards.CARDS, "zoo-hf", cards.ModelCard("zoo-hf", 32000, 5.0, False, "MIT", "cite", "code",
                                                               weights=(decl,), tokenizer=None))
    code, out, err = run_cli("-w", tmp_path, "models", "download", "zoo-hf")
    assert code == 1 and err.count("error:") == 1 and err.splitlines()[-1].startswith("error: "), err
    why = f"has {len(data)} bytes, expected {len(data) + 1}" if wrong == "size" else "has SHA-256"
    assert "error: audiosep_base_4M_steps.ckpt: downloaded twice and both times it " + why in err
    assert len(zenodo.file_requests("audiosep_base_4M_steps.ckpt")) == 2
    assert list((tmp_path / "cache" / "weights").iterdir()) == []  # no file, no .part


def test_a_plugins_weight_file_inside_a_zip_is_taken_out_on_first_use(zenodo, tmp_path):
    """weights.fetch_file (a model's first use) honours WeightFile.archive like `models download`."""
    from lasskit import weights

    data = os.urandom(50_000)
    zenodo.records["7"] = {"bundle.zip": zip_bytes({"bundle/net.ckpt": data, "bundle/notes.txt": b"n"})}
    spec = weights.WeightFile("p/checkpoint", "net.ckpt", f"{zenodo.url}/records/7/files/bundle.zip",
                              archive="bundle.zip")
    path = weights.fetch_file(spec, cache=tmp_path / "c", progress=False)
    assert path == tmp_path / "c" / "weights" / "net.ckpt" and path.read_bytes() == data
    assert sorted(p.name for p in path.parent.iterdir()) == ["net.ckpt"]
    assert weights.fetch_file(spec, cache=tmp_path / "c", progress=False) == path  # cached: nothing asked
    assert len(zenodo.file_requests("bundle.zip")) == 1


@pytest.mark.parametrize("given", ["checkpoint", "zip"])
def test_audiosep_dp_from_a_folder_takes_the_zip_or_the_checkpoint(tmp_path, run_cli, given):
    ckpt = b"a checkpoint"
    src = tmp_path / "usb"
    src.mkdir()
    if given == "zip":
        (src / "resunet_with_dprnn_16k.zip").write_bytes(zip_bytes({"d/model-epoch=19-val_sdr=8.1018.ckpt": ckpt}))
    else:
        (src / "model-epoch=19-val_sdr=8.1018.ckpt").write_bytes(ckpt)
    (src / "vocab.json").write_text("{}")
    (src / "merges.txt").write_text("x\n")
    code, out, err = run_cli("-w", tmp_path, "download", "audiosep-dp-16k", "--from", src)
    assert code == 0, err
    weights_dir = tmp_path / "cache" / "weights"
    assert sorted(p.name for p in weights_dir.iterdir()) == ["model-epoch=19-val_sdr=8.1018.ckpt"]
    assert (weights_dir / "model-epoch=19-val_sdr=8.1018.ckpt").read_bytes() == ckpt
    assert "model-epoch=19-val_sdr=8.1018.ckpt: unchecked (no checksum is published for a file inside its zip)" in out
    assert "resunet_with_dprnn_16k.zip" not in out  # not offered as checkable later: what was taken out is trusted
    assert (src / ("resunet_with_dprnn_16k.zip" if given == "zip" else "model-epoch=19-val_sdr=8.1018.ckpt")).is_file()
