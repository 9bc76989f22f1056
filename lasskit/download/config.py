"""``paths.<corpus>`` in the workspace's lasskit.yaml, set by ``lasskit download`` (every other line kept).

Split out of :mod:`lasskit.download.run` (which re-exports :func:`record_path`): editing the user's
settings file is its own concern, with its own rules (comments and other keys kept, a form it
cannot edit left alone with a note, never a file that says something else than was meant).
"""

from __future__ import annotations

import json
import re
from pathlib import Path


def record_path(root: Path, corpus: str, folder: Path, say) -> Path:
    """Set ``paths.<corpus>: <folder>`` in ``<root>/lasskit.yaml``, keeping every other line and comment.

    A missing file is created from the template; a ``paths:`` written in a form this cannot edit
    (a flow mapping) is left alone, with a note saying which line to add.
    """
    from lasskit.atomic import write_text
    from lasskit.workspace import CONFIG_NAME, CONFIG_TEMPLATE, load_config

    path = root / CONFIG_NAME
    text = path.read_text(encoding="utf-8") if path.is_file() else CONFIG_TEMPLATE
    value = json.dumps(str(folder))
    line = f"  {corpus}: {value}"
    lines = text.splitlines()
    head = next((i for i, ln in enumerate(lines) if re.match(r"^paths:\s*(#.*)?$", ln)), None)
    if head is None:
        if any(re.match(r"^paths:", ln) for ln in lines):
            say(f"{path}: paths: is not a block this can edit; add `{corpus}: {value}` under it by hand")
            return path
        lines += ["", "paths:", line]
    else:
        end = head + 1
        while end < len(lines) and (not lines[end].strip() or lines[end][:1] in (" ", "\t") or
                                    lines[end].lstrip().startswith("#") and lines[end][:1] != "#"):
            end += 1
        mine = next((i for i in range(head + 1, end) if re.match(rf"^\s+{re.escape(corpus)}\s*:", lines[i])), None)
        if mine is not None:
            lines[mine] = line
        else:
            lines.insert(head + 1, line)
    new = "\n".join(lines) + "\n"
    if new == text:
        return path
    write_text(path, new)
    got = (load_config(path).get("paths") or {}).get(corpus)
    if got != str(folder):  # never leave a file that says something else
        write_text(path, text) if path.exists() else None
        say(f"{path}: could not record paths.{corpus}; add `{corpus}: {value}` under paths: by hand")
    return path
