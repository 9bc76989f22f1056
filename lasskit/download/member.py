"""One weight file out of the zip its publisher ships it in (``WeightFile.archive``).

AudioSep-DP's checkpoints sit on Zenodo record 14208090 inside zips (``resunet_with_dprnn_16k.zip``
and ``_32k.zip``). ``lasskit models download`` fetches and checks the zip like any file (size and
MD5 from the record's API), then :func:`take_member` copies the one member whose base name is the
declared file name (whatever folder it sits in) into the cache, atomically, and removes the zip.
A zip without that member is one line naming what it holds; the zip is then kept, so nothing is
downloaded twice while the declaration is being fixed.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path, PurePosixPath

from lasskit.errors import WorkError

CHUNK_BYTES = 1 << 20


def take_member(archive: Path, filename: str, dest: Path) -> Path:
    """Extract the member of zip ``archive`` named ``filename`` (in any folder) to ``dest``, then
    remove ``archive``; ``dest``. One line (:class:`WorkError`) when the zip holds none or several."""
    from lasskit.atomic import atomic_path

    try:
        with zipfile.ZipFile(archive) as zf:
            names = [i for i in zf.infolist() if not i.is_dir()]
            hits = [i for i in names if PurePosixPath(i.filename).name == filename]
            if len(hits) != 1:
                held = ", ".join(i.filename for i in names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
                why = "no member" if not hits else f"{len(hits)} members"
                raise WorkError(f"{archive}: the zip holds {why} named {filename} (it holds: {held or 'nothing'}); "
                                "the model card's declaration is out of date: pass --checkpoint PATH with the "
                                "checkpoint you take out of it")
            with zf.open(hits[0]) as src, atomic_path(dest) as tmp, open(tmp, "wb") as out:
                shutil.copyfileobj(src, out, CHUNK_BYTES)
    except zipfile.BadZipFile as exc:
        raise WorkError(f"{archive}: not a readable zip ({exc}); remove it and run the same command again") from None
    except OSError as exc:
        from lasskit.errors import os_error

        raise os_error(exc, dest) from None
    archive.unlink(missing_ok=True)
    return dest
