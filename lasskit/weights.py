"""Known weight files: download once into a cache folder, with a checksum and a progress bar.

The cache is ``$LASSKIT_CACHE`` or ``~/.cache/lasskit`` (``$XDG_CACHE_HOME/lasskit`` when set);
files go to ``<cache>/weights/<file name>``. Downloads go through the one downloader,
:func:`lasskit.download.fetch.fetch_file`: streamed into ``<file>.part`` next to the target,
resumed with HTTP ranges, retried on timeouts and 5xx, checked (SHA-256 and size when known) and
renamed into place, so the cache never holds a partial file under its real name.

A model declares its weight files here (``WEIGHTS`` + ``MODEL_WEIGHTS``) or on its class
(``weight_files = (WeightFile(...), ...)``), or in a zoo model card (see :mod:`lasskit.models.downloads`); either way
``lasskit download <model>`` and ``lasskit models download <model>`` fetch them, and the model
gets a file's path with :func:`fetch_file` (downloading it on first use).

Tokenizers: the baseline's text encoder needs roberta-base's BPE files (``vocab.json`` and
``merges.txt``); ``lasskit models download dcase2024-baseline`` fetches them too, into
``<cache>/tokenizers/roberta-base/`` (:data:`TOKENIZERS`), where the text encoder looks first, so
an offline machine gets everything from one command (copy the cache folder over). The text
encoder checks them against the checkpoint before use (:func:`lasskit.models.text_encoder.check_tokenizer`).

:func:`sha256_cached` remembers each file's SHA-256 by ``(size, mtime_ns, inode)`` in
``<cache>/sha256.json``, so a model that records its checkpoint's digest hashes a 1 GB file once.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from lasskit.download.cache import cache_dir
from lasskit.errors import UsageError

CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class WeightFile:
    """A published weight file: where it comes from and how to check it."""

    name: str
    """Short name used by ``lasskit models download``."""
    filename: str
    """Name of the file in the cache folder (the publisher's name)."""
    url: str
    sha256: str | None = None
    """Expected SHA-256 (hex); None when the publisher gives none (the download's hash is printed)."""
    size: int | None = None
    """Expected size in bytes; None when unknown."""
    description: str = ""
    archive: str | None = None
    """The publisher ships this file inside that zip (``url`` points at the zip; ``sha256``/``size``
    describe the zip): ``lasskit models download`` fetches and checks it, takes the member out and
    removes the zip (:mod:`lasskit.download.member`)."""


WEIGHTS: dict[str, WeightFile] = {
    "dcase2024-baseline": WeightFile(
        name="dcase2024-baseline",
        filename="audiosep_16k,baseline,step=200000.ckpt",
        url="https://zenodo.org/records/10887460/files/audiosep_16k,baseline,step%3D200000.ckpt?download=1",
        description="DCASE 2024 Task 9 baseline (AudioSep, 16 kHz; ResUNet30 + CLAP), Zenodo record 10887460",
    ),
    "clap-music-speech-audioset": WeightFile(
        name="clap-music-speech-audioset",
        filename="music_speech_audioset_epoch_15_esc_89.98.pt",
        url="https://huggingface.co/spaces/Audio-AGI/AudioSep/resolve/main/checkpoint/"
            "music_speech_audioset_epoch_15_esc_89.98.pt",
        # its Git LFS pointer: https://huggingface.co/spaces/Audio-AGI/AudioSep/commit/5638854dccfaea5c5fa4f634c00fe74fbb119244
        sha256="51c68f12f9d7ea25fdaaccf741ec7f81e93ee594455410f3bca4f47f88d8e006",
        size=2_352_471_003,
        description="LAION CLAP (HTSAT + RoBERTa) used as the baseline's query encoder",
    ),
}
"""Every weight file lasskit knows, by name."""

MODEL_WEIGHTS: dict[str, tuple[str, ...]] = {
    "dcase2024-baseline": ("dcase2024-baseline",),
}
"""Weight files each registered model needs (the baseline checkpoint holds its CLAP text encoder)."""

_HF_ROBERTA = "https://huggingface.co/FacebookAI/roberta-base/resolve/main/"
TOKENIZERS: dict[str, tuple[WeightFile, ...]] = {
    "roberta-base": (
        WeightFile("roberta-base/vocab.json", "vocab.json", _HF_ROBERTA + "vocab.json",
                   description="roberta-base BPE vocabulary (50265 tokens)"),
        WeightFile("roberta-base/merges.txt", "merges.txt", _HF_ROBERTA + "merges.txt",
                   description="roberta-base BPE merges"),
    ),
}
"""Tokenizer files by tokenizer name (stored in ``<cache>/tokenizers/<name>/``)."""

MODEL_TOKENIZERS: dict[str, str] = {"dcase2024-baseline": "roberta-base"}
"""The tokenizer each registered model's text encoder needs."""


def weight_path(name: str, cache: str | os.PathLike | None = None) -> Path:
    """Where weight file ``name`` lives (or will live) in the cache."""
    return Path(cache or cache_dir()) / "weights" / weight_file(name).filename


def weight_file(name: str) -> WeightFile:
    try:
        return WEIGHTS[name]
    except KeyError:
        raise UsageError(f"unknown weight file {name!r}; known: {', '.join(sorted(WEIGHTS))}") from None


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def tokenizer_dir(name: str = "roberta-base", cache: str | os.PathLike | None = None) -> Path:
    """Where tokenizer ``name``'s files live (or will live) in the cache."""
    return Path(cache or cache_dir()) / "tokenizers" / name


def fetch_tokenizer(name: str = "roberta-base", cache: str | os.PathLike | None = None,
                    progress: bool | None = None) -> Path:
    """The folder of tokenizer ``name`` in the cache, downloading its missing files first."""
    if name not in TOKENIZERS:
        raise UsageError(f"unknown tokenizer {name!r}; known: {', '.join(sorted(TOKENIZERS))}")
    folder = tokenizer_dir(name, cache)
    for spec in TOKENIZERS[name]:
        target = folder / spec.filename
        if not (target.is_file() and target.stat().st_size > 0):
            download(spec.url, target, sha256=spec.sha256, size=spec.size, progress=progress)
    return folder


def sha256_cached(path: str | os.PathLike, cache: str | os.PathLike | None = None) -> str:
    """SHA-256 of a file, remembered in ``<cache>/sha256.json`` by ``(size, mtime_ns, inode)``.

    A cache that cannot be read or written only costs hashing the file again.
    """
    import json

    path = Path(path)
    st = path.stat()
    key = str(path.resolve())
    stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
    store = Path(cache or cache_dir()) / "sha256.json"
    try:
        known = json.loads(store.read_text(encoding="utf-8"))
        if not isinstance(known, dict):
            known = {}
    except (OSError, ValueError):
        known = {}
    hit = known.get(key)
    if isinstance(hit, list) and hit[:3] == stamp and len(hit) == 4:
        return str(hit[3])
    digest = sha256_file(path)
    known[key] = [*stamp, digest]
    try:
        from lasskit.atomic import write_text

        write_text(store, json.dumps(known, separators=(",", ":")))
    except OSError:
        pass
    return digest


def fetch(name: str, cache: str | os.PathLike | None = None, progress: bool | None = None,
          registry: dict[str, WeightFile] | None = None) -> Path:
    """Path of weight file ``name`` in the cache, downloading it first if it is not there.

    A cached file is trusted as is when its size matches (downloads are verified before they are
    renamed into place); ``registry`` replaces :data:`WEIGHTS` (tests).
    """
    registry = WEIGHTS if registry is None else registry
    if name not in registry:
        raise UsageError(f"unknown weight file {name!r}; known: {', '.join(sorted(registry))}")
    spec = registry[name]
    target = Path(cache or cache_dir()) / "weights" / spec.filename
    if target.is_file() and (spec.size is None or target.stat().st_size == spec.size):
        return target
    return download(spec.url, target, sha256=spec.sha256, size=spec.size, progress=progress)


def fetch_file(spec: WeightFile, cache: str | os.PathLike | None = None, progress: bool | None = None) -> Path:
    """Path of a declared weight file in ``<cache>/weights/``, downloading (and verifying) it first if needed.

    For a model class's own ``weight_files``: the model calls this when it loads. A file declared
    inside a zip (``archive``) is taken out of the checked zip, which is then removed.
    """
    target = Path(cache or cache_dir()) / "weights" / spec.filename
    if target.is_file() and (spec.archive or spec.size is None or target.stat().st_size == spec.size):
        return target
    if spec.archive:
        from lasskit.download.member import take_member

        zipped = download(spec.url, target.with_name(spec.archive), sha256=spec.sha256, size=spec.size,
                          progress=progress)
        return take_member(zipped, spec.filename, target)
    return download(spec.url, target, sha256=spec.sha256, size=spec.size, progress=progress)


def download_model_weights(model: str, cache: str | os.PathLike | None = None,
                           progress: bool | None = None) -> list[Path]:
    """Fetch every file model ``model`` needs: its weights and its tokenizer's files (or the
    weight file or tokenizer of that name); their paths (a tokenizer as its folder)."""
    if model in MODEL_WEIGHTS:
        names = MODEL_WEIGHTS[model]
        tokenizer = MODEL_TOKENIZERS.get(model)
    elif model in WEIGHTS:
        names, tokenizer = (model,), None
    elif model in TOKENIZERS:
        names, tokenizer = (), model
    else:
        known = sorted(set(MODEL_WEIGHTS) | set(WEIGHTS) | set(TOKENIZERS))
        raise UsageError(f"no downloadable weights for {model!r}; known: {', '.join(known)}")
    paths = [fetch(name, cache, progress) for name in names]
    if tokenizer is not None:
        paths.append(fetch_tokenizer(tokenizer, cache, progress))
    return paths


def download(url: str, target: str | os.PathLike, sha256: str | None = None, size: int | None = None,
             progress: bool | None = None, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``target`` with :func:`lasskit.download.fetch.fetch_file` (resumed, retried,
    verified against ``sha256``/``size`` when given, renamed into place when complete).

    Without a known checksum, the download's SHA-256 is printed on stderr.
    """
    from lasskit.download import zenodo
    from lasskit.download.fetch import ByteProgress, RemoteFile, digests
    from lasskit.download.fetch import fetch_file as fetch_remote

    target = Path(target)
    md5, found = None, zenodo.lookup(url)
    if found is not None:  # a file on Zenodo: its record's API gives the MD5 and size
        url, hit = found
        if hit is not None and sha256 is None:
            md5, size = hit.md5, size if size is not None else hit.size
    remote = RemoteFile(target.name, url, size=size, md5=md5, sha256=sha256,
                        source="the Zenodo record's API" if md5 else "")
    from lasskit.download.lock import cache_lock, hold

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    with hold(target.parent, say, at=cache_lock(target.parent)):  # others wait, then reuse the file
        with ByteProgress(progress) as bar:
            fetch_remote(remote, target, progress=bar, timeout=timeout)
    if sha256 is None and md5 is None:
        print(f"{target.name}: no published checksum; SHA-256 of the download is {digests(target, md5=False)[1]}", file=sys.stderr)
    return target
