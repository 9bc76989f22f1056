"""Zenodo records: the file list, sizes and MD5s of a record, from its API, cached on disk.

``GET <base>/api/records/<id>`` answers JSON whose ``files`` list holds, for each file, ``key``
(its name), ``size`` and ``checksum`` (``"md5:<hex>"``). The answer is cached in
``<cache>/zenodo/<id>.json`` (a published record version never changes), so a second run, or a
run with ``--from DIR``, asks nothing. Files are downloaded from
``<base>/records/<id>/files/<name>?download=1``.

The base is ``$LASSKIT_ZENODO_URL`` (default ``https://zenodo.org``): the tests and the benchmark
point it at a local server that plays Zenodo.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from lasskit.errors import WorkError

DEFAULT_BASE = "https://zenodo.org"
ADDRESS = re.compile(r"://(?:www\.)?zenodo\.org/records?/(\d+)/files/([^?#]+)")
"""A file's address on zenodo.org: its record id and (quoted) name."""


@dataclass(frozen=True)
class RecordFile:
    """One file of a Zenodo record."""

    name: str
    size: int | None
    md5: str | None
    url: str


def base_url() -> str:
    return (os.environ.get("LASSKIT_ZENODO_URL") or DEFAULT_BASE).rstrip("/")


def file_url(record: str, name: str) -> str:
    return f"{base_url()}/records/{record}/files/{urllib.parse.quote(name)}?download=1"


def record_page(record: str) -> str:
    return f"{base_url()}/records/{record}"


def cache_path(record: str, cache: str | os.PathLike | None = None) -> Path:
    from lasskit.download.cache import cache_dir

    return Path(cache or cache_dir()) / "zenodo" / f"{record}.json"


def parse_record(data: dict, record: str) -> list[RecordFile]:
    """The files of a records-API answer (both the current and the legacy layout)."""
    files = data.get("files")
    if isinstance(files, dict):  # {"entries": {...}} layout
        files = list((files.get("entries") or {}).values())
    if not isinstance(files, list):
        raise ValueError("no 'files' list")
    out = []
    for item in files:
        name = item.get("key") or item.get("filename")
        if not isinstance(name, str) or not name:
            raise ValueError("a file without a name")
        checksum = item.get("checksum") or ""
        md5 = checksum.split(":", 1)[1] if isinstance(checksum, str) and checksum.startswith("md5:") else None
        size = item.get("size", item.get("filesize"))
        out.append(RecordFile(name, int(size) if isinstance(size, (int, float)) else None, md5,
                              file_url(record, name)))
    return out


def read_cached(record: str, cache: str | os.PathLike | None = None) -> list[RecordFile] | None:
    """The cached file list of ``record``, or None."""
    path = cache_path(record, cache)
    try:
        return parse_record(json.loads(path.read_text(encoding="utf-8")), record)
    except (OSError, ValueError, AttributeError, TypeError):
        return None


def record_files(record: str, cache: str | os.PathLike | None = None, offline: bool = False,
                 timeout: float = 30.0) -> tuple[list[RecordFile] | None, str]:
    """``(files, how)`` for Zenodo record ``record``: from the cache, else from the API (then cached).

    ``files`` is None when neither works (offline, or the API failed); ``how`` says which source
    was used, or why none was (for the caller's note about falling back to known MD5s).
    """
    cached = read_cached(record, cache)
    if cached is not None:
        return cached, "cached records API answer"
    if offline:
        return None, "offline (--from)"
    url = f"{base_url()}/api/records/{record}"
    request = urllib.request.Request(url, headers={"User-Agent": "lasskit", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
        data = json.loads(raw)
        files = parse_record(data, record)
    except urllib.error.HTTPError as exc:
        return None, f"the records API answered HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError, AttributeError, TypeError) as exc:
        return None, f"the records API is unreachable or answered nonsense ({getattr(exc, 'reason', exc)})"
    from lasskit.atomic import write_bytes

    try:
        write_bytes(cache_path(record, cache), raw)
    except OSError as exc:
        raise WorkError(f"{cache_path(record, cache)}: cannot cache the record's file list ({exc.strerror}); "
                        "set LASSKIT_CACHE to a writable folder") from None
    return files, "records API"


def absent(record: str, name: str, offline: bool = False) -> str | None:
    """One phrase when Zenodo ``record``'s file list is known and has no file ``name``, naming what
    it holds; None otherwise (listed, or the list unknown: offline, or the API cannot be reached)."""
    files = record_files(record, offline=offline)[0]
    if files is None or any(f.name == name for f in files):
        return None
    held = ", ".join(f.name for f in files[:10]) + (f" and {len(files) - 10} more" if len(files) > 10 else "")
    return (f"Zenodo record {record} holds no file {name} (it holds: {held or 'nothing'}); the declaration is out "
            f"of date: see {record_page(record)}, and pass --checkpoint PATH meanwhile")


def record_of(url: str) -> str | None:
    """The record id of a file's address on zenodo.org; None for any other address."""
    m = ADDRESS.search(url)
    return m.group(1) if m else None


def lookup(url: str, offline: bool = False) -> tuple[str, RecordFile | None] | None:
    """For a file's address on zenodo.org: ``(the address to fetch it from, its entry in the record's
    API or None when the API cannot say)``; None for any other address. The address follows
    ``$LASSKIT_ZENODO_URL``."""
    m = ADDRESS.search(url)
    if m is None:
        return None
    record, name = m.group(1), urllib.parse.unquote(m.group(2))
    files, _ = record_files(record, offline=offline)
    return file_url(record, name), next((f for f in files or () if f.name == name), None)

