"""Errors that reach the user as one line, without a traceback.

``UsageError`` (exit 2) is a mistake in how lasskit was called: a missing folder, a bad
option, an unreadable CSV. ``WorkError`` (exit 1) is work that failed: a batch with
failed files, a model that returned NaN. Each message names the file and the fix.

:func:`os_error` turns what the machine can cause (a full disk, a permission, a read-only
file system, a missing file, a link loop) into one of these, naming the file: the CLI's last
line of defence, and what batch stages write into their ``failures.csv``.
"""

from __future__ import annotations

import errno
import os


class LasskitError(Exception):
    """Base class: a message for the user and the exit code to leave with."""

    exit_code = 1


class UsageError(LasskitError):
    """The user asked for something impossible or gave bad input (exit code 2)."""

    exit_code = 2


class WorkError(LasskitError):
    """Work was attempted and failed (exit code 1)."""

    exit_code = 1


class AudioError(WorkError):
    """An audio file is unreadable, empty, truncated or holds non-finite samples."""


_AGAIN = "run the same command again"
_SPACE = f"free some space (or write to another disk with --workspace/--out) and {_AGAIN}; finished outputs are kept"
_PATH = "check the path"

# errno -> (what happened, the fix, error class)
OS_ERRORS: dict[int, tuple[str, str, type[LasskitError]]] = {
    errno.ENOSPC: ("no space left on the device", _SPACE, WorkError),
    errno.EDQUOT: ("disk quota exceeded", _SPACE, WorkError),
    errno.EFBIG: ("file too large for this file system", f"write to another file system and {_AGAIN}", WorkError),
    errno.EACCES: ("permission denied", "fix the permissions (chmod/chown) or use a folder you may write to", UsageError),
    errno.EPERM: ("operation not permitted", "fix the permissions (chmod/chown) or use a folder you may write to",
                  UsageError),
    errno.EROFS: ("read-only file system", "write to a folder on a writable disk (--workspace/--out)", UsageError),
    errno.ENOENT: ("no such file or folder", _PATH, UsageError),
    errno.ENOTDIR: ("a part of this path is a file, not a folder", _PATH, UsageError),
    errno.EISDIR: ("is a folder, where a file was expected", "pass a file, or remove the folder in the way",
                   UsageError),
    errno.EEXIST: ("already exists", "remove it or choose another name", UsageError),
    errno.ENOTEMPTY: ("folder not empty", "remove what is in it or choose another folder", UsageError),
    errno.ENAMETOOLONG: ("name too long for the file system", "use a shorter name or folder", UsageError),
    errno.ELOOP: ("too many levels of symbolic links (a link loop)", "fix or remove the link", UsageError),
    errno.EMFILE: ("too many open files", f"raise the limit (ulimit -n) or use fewer --jobs, and {_AGAIN}", WorkError),
    errno.ENFILE: ("too many open files on this machine", f"close some programs and {_AGAIN}", WorkError),
    errno.ENOMEM: ("out of memory", f"use fewer --jobs and {_AGAIN}", WorkError),
    errno.EIO: ("input/output error (a failing disk or network drive)", f"check the device and {_AGAIN}", WorkError),
    errno.ENXIO: ("no such device", f"check the device and {_AGAIN}", WorkError),
    errno.ESTALE: ("stale network file handle", f"remount the network drive and {_AGAIN}", WorkError),
    errno.ETXTBSY: ("file busy", f"close the program using it and {_AGAIN}", WorkError),
    errno.EXDEV: ("cannot move across file systems", "keep the output folder on one disk", UsageError),
}


def _name(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(os.fspath(value)) if isinstance(value, (str, os.PathLike)) else str(value)


def os_error(exc: OSError, path: str | os.PathLike | None = None) -> LasskitError:
    """One line for an ``OSError``: ``<file>: <what happened>; <the fix>``, as the right error class.

    The file is the exception's own (``filename``, then ``filename2``), else ``path``.
    Unknown errno values give ``<file>: <strerror>; run the same command again`` (a WorkError).
    """
    what, fix, cls = OS_ERRORS.get(exc.errno or -1, (None, _AGAIN, WorkError))
    if what is None:
        what = (exc.strerror or str(exc) or type(exc).__name__).strip().rstrip(".").lower()
    file = _name(exc.filename) or _name(path)
    other = _name(getattr(exc, "filename2", None))
    if file and other:
        file = f"{file} -> {other}"
    return cls(f"{file}: {what}; {fix}" if file else f"{what}; {fix}")
