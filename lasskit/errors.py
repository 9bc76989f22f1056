"""Errors that reach the user as one line, without a traceback.

``UsageError`` (exit 2) is a mistake in how lasskit was called: a missing folder, a bad
option, an unreadable CSV. ``WorkError`` (exit 1) is work that failed: a batch with
failed files, a model that returned NaN. Each message names the file and the fix.
"""

from __future__ import annotations


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
