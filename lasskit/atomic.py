"""Atomic file writes: a temporary file in the target's folder, then a rename.

A reader never sees a half-written file, and an interrupted run leaves either the old file or
the new one, never a fragment, so any command can simply be re-run.

Outputs get the mode any normally created file gets (``0o666`` less the process umask), not the
``0o600`` of the temporary file. A run killed with ``kill -9`` may leave a temporary file
(``.<name>.<random>.lasskit.tmp``); :func:`remove_leftovers`, called by every stage at its start,
removes those an earlier run left in its output folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TMP_SUFFIX = ".lasskit.tmp"


def _file_mode() -> int:
    """0o666 less the current umask (read without changing it where /proc allows)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


FILE_MODE = _file_mode()


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it over ``path``.

    The temporary name is registered (:func:`remove_open_temporaries`) *before* the file is
    created, and the creation is inside the clean-up: a signal that lands while the kernel creates
    the file (about 0.4 ms on a journaling file system) can no longer leave an empty fragment.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        for _ in range(100):
            candidate = os.path.join(path.parent, temporary_name(path.name, _token()))
            _OPEN.add(candidate)
            tmp = candidate
            try:
                fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
            except FileExistsError:  # another writer's name: not ours to remove
                _OPEN.discard(candidate)
                tmp = None
                continue
            os.close(fd)
            break
        else:  # pragma: no cover - 100 random names all taken
            raise FileExistsError(f"{path.parent}: no free temporary name for {path.name}")
        yield Path(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        raise
    finally:
        if tmp is not None:
            _OPEN.discard(tmp)


NAME_MAX = 255
"""Bytes in one file name on Linux and macOS file systems (ext4, XFS, APFS, ...)."""


def temporary_name(name: str, token: str) -> str:
    """``.<name>.<token>.lasskit.tmp``, the temporary file of ``name``; for a name that leaves no room
    for the rest in :data:`NAME_MAX` bytes, ``name``'s first bytes and a digest of the whole, so
    that a file whose own name fits can be written atomically too."""
    full = f".{name}.{token}{TMP_SUFFIX}"
    if len(os.fsencode(full)) <= NAME_MAX:
        return full
    import hashlib

    raw = os.fsencode(name)
    digest = hashlib.blake2b(raw, digest_size=4).hexdigest()
    room = NAME_MAX - len(os.fsencode(f".~{digest}.{token}{TMP_SUFFIX}"))
    return f".{os.fsdecode(raw[:max(0, room)])}~{digest}.{token}{TMP_SUFFIX}"


def _token() -> str:
    """8 random characters for a temporary name (as tempfile's names)."""
    import secrets

    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789_"
    return "".join(secrets.choice(alphabet) for _ in range(8))


_OPEN: set[str] = set()
"""Temporary files this process is writing now (for :func:`remove_open_temporaries`)."""


def remove_open_temporaries() -> int:
    """Remove the temporary files this process is in the middle of writing; how many.

    For a process that is being stopped (a pool worker's SIGTERM handler), where the ``with``
    block's own clean-up will not run.
    """
    removed = 0
    for tmp in list(_OPEN):
        try:
            os.unlink(tmp)
            removed += 1
        except OSError:
            pass
        _OPEN.discard(tmp)
    return removed


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically (see :func:`utf8` for names that are not UTF-8)."""
    return write_bytes(path, utf8(text))


def utf8(text: str) -> bytes:
    """``text`` as UTF-8. A file name's bytes that are not UTF-8 (surrogate escapes, e.g. a workspace
    under ``caf\\xe9/``) are written as ``\\udcNN``: in JSON (lasskit's records) that is the escape
    ``json.loads`` turns back into the same name, exactly; in other text a visible escape, where
    encoding would have failed and lost the whole file."""
    return text.encode("utf-8", "backslashreplace")


def write_text_if_changed(path: str | os.PathLike, text: str) -> bool:
    """Write ``text`` atomically unless ``path`` already holds exactly it; True if written.

    Keeps re-runs from touching outputs that did not change.
    """
    path = Path(path)
    data = utf8(text)
    if path.is_file() and path.read_bytes() == data:
        return False
    write_bytes(path, data)
    return True


def is_leftover(name: str) -> bool:
    """True for the name of a temporary file that :func:`atomic_path` (this or an older lasskit) makes."""
    if not name.startswith("."):
        return False
    if name.endswith(TMP_SUFFIX):
        return True
    # older lasskit: ".<name>.<8 random chars>.tmp"
    parts = name[1:].rsplit(".", 2)
    return name.endswith(".tmp") and len(parts) == 3 and len(parts[1]) == 8


def remove_leftovers(folder: str | os.PathLike, recursive: bool = True) -> int:
    """Remove temporary files an interrupted run left in ``folder``; returns how many."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    removed = 0
    walker = os.walk(folder) if recursive else [(str(folder), [], os.listdir(folder))]
    for root, _, files in walker:
        for name in files:
            if is_leftover(name):
                try:
                    os.unlink(os.path.join(root, name))
                    removed += 1
                except OSError:
                    pass
    return removed
