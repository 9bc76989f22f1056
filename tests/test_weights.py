"""Weight download into the cache, against a local HTTP server on 127.0.0.1 (never the internet)."""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lasskit import weights
from lasskit.errors import UsageError, WorkError

PAYLOAD = bytes(range(256)) * 4096 + b"tail"  # 1 MiB + 4 bytes: more than one read chunk
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


class Server:
    """Serves ``files`` (path -> bytes); records each request's path and Range header."""

    def __init__(self, ranges: bool = True) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.ranges = ranges
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                server.requests.append((self.path, self.headers.get("Range")))
                data = server.files.get(self.path.split("?")[0])
                if data is None:
                    self.send_error(404, "Not Found")
                    return
                start, status = 0, 200
                asked = self.headers.get("Range")
                if asked and server.ranges:
                    start = int(asked.removeprefix("bytes=").split("-")[0])
                    if start >= len(data):
                        self.send_error(416, "Range Not Satisfiable")
                        return
                    status = 206
                self.send_response(status)
                self.send_header("Content-Length", str(len(data) - start))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                self.wfile.write(data[start:])

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    """The downloader remembers verified files in the cache: keep it out of the home folder; no back-off waits."""
    monkeypatch.setenv("LASSKIT_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("LASSKIT_DOWNLOAD_BACKOFF", "0")


@pytest.fixture
def server():
    srv = Server()
    srv.files["/files/model.ckpt"] = PAYLOAD
    yield srv
    srv.close()


def leftovers(folder):
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def test_good_download_is_verified_and_renamed(server, tmp_path, capsys):
    target = tmp_path / "weights" / "model.ckpt"
    path = weights.download(f"{server.url}/files/model.ckpt?download=1", target, sha256=PAYLOAD_SHA256,
                            size=len(PAYLOAD), progress=True)
    assert path == target and target.read_bytes() == PAYLOAD
    assert leftovers(tmp_path) == ["model.ckpt"]  # no .part left
    assert weights.sha256_file(target) == PAYLOAD_SHA256


def test_unknown_checksum_prints_the_downloads_hash(server, tmp_path, capsys):
    weights.download(f"{server.url}/files/model.ckpt", tmp_path / "model.ckpt", progress=False)
    assert f"SHA-256 of the download is {PAYLOAD_SHA256}" in capsys.readouterr().err


def test_checksum_mismatch_leaves_no_file(server, tmp_path):
    with pytest.raises(WorkError, match=f"downloaded twice and both times it has SHA-256 {PAYLOAD_SHA256}, expected 0+"):
        weights.download(f"{server.url}/files/model.ckpt", tmp_path / "model.ckpt", sha256="0" * 64, progress=False)
    assert leftovers(tmp_path) == []


def test_size_mismatch_leaves_no_file(server, tmp_path):
    with pytest.raises(WorkError, match=f"has {len(PAYLOAD)} bytes, expected 12"):
        weights.download(f"{server.url}/files/model.ckpt", tmp_path / "model.ckpt", size=12, progress=False)
    assert leftovers(tmp_path) == []


def test_404_is_a_clear_error(server, tmp_path):
    with pytest.raises(WorkError, match=r"HTTP 404 Not Found; the file is not \(or no longer\) at this address"):
        weights.download(f"{server.url}/files/absent.ckpt", tmp_path / "absent.ckpt", progress=False)
    assert leftovers(tmp_path) == []


def test_unreachable_server_is_a_clear_error(tmp_path):
    srv = Server()
    url = f"{srv.url}/files/model.ckpt"
    srv.close()  # nothing listens there now
    with pytest.raises(WorkError, match="cannot download .*check the network"):
        weights.download(url, tmp_path / "model.ckpt", progress=False, timeout=5)


def test_interrupted_download_resumes_from_the_part_file(server, tmp_path):
    target = tmp_path / "model.ckpt"
    (tmp_path / "model.ckpt.part").write_bytes(PAYLOAD[:1000])
    weights.download(f"{server.url}/files/model.ckpt", target, sha256=PAYLOAD_SHA256, progress=False)
    assert target.read_bytes() == PAYLOAD and server.requests[-1][1] == "bytes=1000-"
    assert leftovers(tmp_path) == ["model.ckpt"]


def test_server_without_ranges_restarts_the_download(tmp_path):
    srv = Server(ranges=False)
    srv.files["/m"] = PAYLOAD
    try:
        (tmp_path / "m.part").write_bytes(b"stale bytes from another file")
        weights.download(f"{srv.url}/m", tmp_path / "m", sha256=PAYLOAD_SHA256, progress=False)
    finally:
        srv.close()
    assert (tmp_path / "m").read_bytes() == PAYLOAD


def test_fetch_downloads_once_then_uses_the_cache(server, tmp_path, monkeypatch):
    monkeypatch.setenv("LASSKIT_CACHE", str(tmp_path / "cache"))
    registry = {"tiny": weights.WeightFile("tiny", "tiny,step=1.ckpt", f"{server.url}/files/model.ckpt",
                                           sha256=PAYLOAD_SHA256, size=len(PAYLOAD))}
    path = weights.fetch("tiny", registry=registry, progress=False)
    assert path == tmp_path / "cache" / "weights" / "tiny,step=1.ckpt" and path.read_bytes() == PAYLOAD
    assert len(server.requests) == 1
    assert weights.fetch("tiny", registry=registry, progress=False) == path
    assert len(server.requests) == 1  # cached: no request
    with pytest.raises(UsageError, match="unknown weight file 'other'; known: tiny"):
        weights.fetch("other", registry=registry)


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LASSKIT_CACHE", str(tmp_path / "c"))
    assert weights.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("LASSKIT_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert weights.cache_dir() == tmp_path / "xdg" / "lasskit"
    assert weights.weight_path("dcase2024-baseline") == tmp_path / "xdg" / "lasskit" / "weights" / (
        "audiosep_16k,baseline,step=200000.ckpt")


def test_registry_names_the_published_files():
    baseline = weights.WEIGHTS["dcase2024-baseline"]
    assert baseline.url.startswith("https://zenodo.org/records/10887460/files/audiosep_16k,baseline,step%3D200000.ckpt")
    assert weights.WEIGHTS["clap-music-speech-audioset"].filename == "music_speech_audioset_epoch_15_esc_89.98.pt"
    assert weights.MODEL_WEIGHTS["dcase2024-baseline"] == ("dcase2024-baseline",)


def test_models_download_command(server, tmp_path, monkeypatch, run_cli, capsys):
    monkeypatch.setenv("LASSKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(weights.WEIGHTS, "dcase2024-baseline", weights.WeightFile(
        "dcase2024-baseline", "audiosep_16k,baseline,step=200000.ckpt", f"{server.url}/files/model.ckpt",
        sha256=PAYLOAD_SHA256))
    monkeypatch.setitem(weights.TOKENIZERS, "roberta-base", (
        weights.WeightFile("roberta-base/vocab.json", "vocab.json", f"{server.url}/missing/vocab.json"),))
    code, out, err = run_cli("models", "download", "dcase2024-baseline", cwd=tmp_path)
    # the tokenizer's file is missing on the server: one line saying where the file goes
    assert code == 1 and err.count("\n") == 1 and "download the file by hand to" in err
    assert str(tmp_path / "cache" / "tokenizers" / "roberta-base" / "vocab.json") in err
    expected = tmp_path / "cache" / "weights" / "audiosep_16k,baseline,step=200000.ckpt"
    assert expected.read_bytes() == PAYLOAD
    monkeypatch.setitem(weights.TOKENIZERS, "roberta-base", ())
    code, out, err = run_cli("models", "download", "dcase2024-baseline", cwd=tmp_path)
    assert code == 0 and len(server.requests) == 2  # the weights cached; one failed tokenizer request
    code, out, err = run_cli("models", "download", "no-such-model", cwd=tmp_path)
    assert code == 2 and "no downloadable weights for 'no-such-model'" in err


def test_models_download_also_fetches_the_tokenizer(server, tmp_path, monkeypatch, run_cli):
    """One command gives an offline machine everything: the checkpoint and roberta-base's vocab.json
    and merges.txt, in <cache>/tokenizers/roberta-base, where the text encoder looks first."""
    monkeypatch.setenv("LASSKIT_CACHE", str(tmp_path / "cache"))
    vocab, merges = b'{"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4}', b"#version: 0.2\n"
    server.files["/rb/vocab.json"], server.files["/rb/merges.txt"] = vocab, merges
    monkeypatch.setitem(weights.WEIGHTS, "dcase2024-baseline", weights.WeightFile(
        "dcase2024-baseline", "audiosep_16k,baseline,step=200000.ckpt", f"{server.url}/files/model.ckpt",
        sha256=PAYLOAD_SHA256))
    monkeypatch.setitem(weights.TOKENIZERS, "roberta-base", tuple(
        weights.WeightFile(f"roberta-base/{n}", n, f"{server.url}/rb/{n}") for n in ("vocab.json", "merges.txt")))
    code, out, err = run_cli("models", "download", "dcase2024-baseline", cwd=tmp_path)
    assert code == 0, err
    folder = tmp_path / "cache" / "tokenizers" / "roberta-base"
    assert out.split() == [str(tmp_path / "cache" / "weights" / "audiosep_16k,baseline,step=200000.ckpt"), str(folder)]
    assert (folder / "vocab.json").read_bytes() == vocab and (folder / "merges.txt").read_bytes() == merges
    assert weights.tokenizer_dir() == folder
    code, out, err = run_cli("models", "download", "dcase2024-baseline", cwd=tmp_path)
    assert code == 0 and len(server.requests) == 3  # second run: everything cached
    assert weights.MODEL_TOKENIZERS["dcase2024-baseline"] == "roberta-base"
    assert weights.TOKENIZERS["roberta-base"] != ()


def test_published_tokenizer_urls():
    urls = [f.url for f in weights.TOKENIZERS["roberta-base"]]
    assert urls == ["https://huggingface.co/FacebookAI/roberta-base/resolve/main/vocab.json",
                    "https://huggingface.co/FacebookAI/roberta-base/resolve/main/merges.txt"]


def test_sha256_is_cached_by_stat(tmp_path, monkeypatch):
    path = tmp_path / "w.ckpt"
    path.write_bytes(PAYLOAD)
    assert weights.sha256_cached(path, cache=tmp_path / "c") == PAYLOAD_SHA256
    monkeypatch.setattr(weights, "sha256_file", lambda p: pytest.fail("hashed again"))
    assert weights.sha256_cached(path, cache=tmp_path / "c") == PAYLOAD_SHA256
    path.write_bytes(b"other")
    monkeypatch.undo()
    assert weights.sha256_cached(path, cache=tmp_path / "c") == hashlib.sha256(b"other").hexdigest()
