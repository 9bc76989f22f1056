"""The lasskit cache folder (weights, tokenizers, Zenodo record lists, verified-file stamps).

``$LASSKIT_CACHE``, else ``$XDG_CACHE_HOME/lasskit``, else ``~/.cache/lasskit``. It lives here,
below both :mod:`lasskit.weights` and the downloader, so that neither imports the other's way up.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The lasskit cache folder: ``$LASSKIT_CACHE``, else ``$XDG_CACHE_HOME/lasskit``, else ``~/.cache/lasskit``."""
    if os.environ.get("LASSKIT_CACHE"):
        return Path(os.environ["LASSKIT_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "lasskit"
