"""The split folder's state for ``mix``: ``mix.json`` (options, inputs, data rules, counts), whether a
folder may be updated, replaced or must be refused, clearing what an earlier mix wrote, stale and
leftover files, the organizers' CSVs an earlier run wrote (tracked by checksum and retired when
they no longer describe the rows), and each mixture's fingerprint for later stages.

**--official-csv** writes the organizers' ``source, noise, snr, caption`` file only when it
describes every row exactly: each target exactly ``length`` samples long and each noise taken from
its start (shorter noises are zero-padded by both). Otherwise it is refused before any audio is
written (the CSV cannot carry crops or padding; ``mixtures.csv`` rebuilds every row).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from lasskit.atomic import remove_leftovers
from lasskit.errors import UsageError
from lasskit.mixing.report import MixReport
from lasskit.mixing.rows import OUTPUTS

MIX_JSON = "mix.json"
"""Options, inputs, data rules and counts of a split made by :func:`make_mixtures`."""

def file_sha(path: Path) -> str:
    from lasskit.provenance import file_digest

    return file_digest(path)

def read_state(split_dir: Path) -> dict | None:
    try:
        state = json.loads((split_dir / MIX_JSON).read_text(encoding="utf-8"))
        return state if isinstance(state, dict) else None
    except (OSError, ValueError):
        return None

def check_split_dir(split_dir: Path, options: dict, overwrite: bool) -> str:
    """``"new"``, ``"same"`` (made by this command: update in place) or ``"replace"`` (``--overwrite``)."""
    from lasskit.splits import MIXTURES_CSV

    if split_dir.exists() and not split_dir.is_dir():
        raise UsageError(f"{split_dir}: exists and is not a folder; choose another --name")
    if not split_dir.is_dir() or not any(split_dir.iterdir()):
        return "new"
    state = read_state(split_dir)
    if state is not None and state.get("options") == json.loads(json.dumps(options)):
        return "same"
    if overwrite:
        return "replace"
    if state is not None:
        from lasskit.provenance import settings_diff

        diff = ", ".join(settings_diff(state.get("options") or {}, json.loads(json.dumps(options))))
        if (split_dir / MIXTURES_CSV).is_file():
            raise UsageError(f"{split_dir}: split already exists, made with other options ({diff}); "
                             "pass --overwrite to replace it or choose another --name")
        raise UsageError(f"{split_dir}: an unfinished split made with other options or inputs is here ({diff}); "
                         "re-run its own command to finish it, or pass --overwrite")
    if (split_dir / MIXTURES_CSV).is_file():
        raise UsageError(f"{split_dir}: split already exists; pass --overwrite to replace it or choose another --name")
    raise UsageError(f"{split_dir}: folder is not empty and was not made by `lasskit mix`; "
                     "pass --overwrite or choose another --name")

def clear_split(split_dir: Path) -> None:
    """Remove what a previous mix wrote here (its CSVs, state, ledger and WAV files), nothing else."""
    from lasskit.provenance import LEDGER_FILE

    if not split_dir.is_dir():
        return
    for name in ("mixtures.csv", MIX_JSON, "failures.csv", LEDGER_FILE):
        (split_dir / name).unlink(missing_ok=True)
    remove_split_leftovers(split_dir, every_wav=True)

def remove_split_leftovers(split_dir: Path, every_wav: bool = False) -> None:
    """Temporary files an interrupted run left behind (and, with ``every_wav``, all WAVs)."""
    remove_leftovers(split_dir, recursive=False)
    for sub in OUTPUTS:
        folder = split_dir / sub
        if not folder.is_dir():
            continue
        remove_leftovers(folder, recursive=False)
        if every_wav:
            for p in folder.iterdir():
                if p.is_file() and p.suffix == ".wav":
                    p.unlink()

def stale_files(split_dir: Path, names: set[str]) -> list[Path]:
    """WAV files in mixture/, source/, noise/ that are not rows of the new set."""
    out = []
    for sub in OUTPUTS:
        folder = split_dir / sub
        if folder.is_dir():
            with os.scandir(folder) as it:
                out += [Path(e.path) for e in it if e.name.endswith(".wav") and e.name not in names and e.is_file()]
    return sorted(out)

def official_record(path: Path, data: bytes) -> dict:
    import hashlib

    return {"path": str(Path(path).resolve()), "sha256": hashlib.sha256(data).hexdigest()}

def official_files(state: dict | None) -> list[dict]:
    """The organizers' CSVs an earlier run of this split wrote (mix.json), with their checksums."""
    if not state:
        return []
    files = state.get("official_csv_files")
    if isinstance(files, list):
        return [f for f in files if isinstance(f, dict) and isinstance(f.get("path"), str)]
    path = (state.get("options") or {}).get("official_csv")  # a mix.json from before the checksums
    return [{"path": path, "sha256": None}] if isinstance(path, str) else []

def retire_official_csvs(earlier: Sequence[dict], written: set[str], text: str, report: MixReport) -> list[dict]:
    """An organizers' CSV an earlier run wrote must not outlive the rows it describes.

    Still equal to this split's rows: kept (and still tracked). Unchanged since lasskit wrote it
    (same checksum) but describing replaced rows: removed, with a warning. Changed since by
    someone else: left in place, with a warning naming it. Returns the files still tracked.
    """
    import hashlib

    kept = []
    for record in earlier:
        path = Path(record["path"])
        if str(path) in written or not path.is_file():
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if data == text.encode("utf-8"):
            kept.append(record)
        elif record.get("sha256") and hashlib.sha256(data).hexdigest() == record["sha256"]:
            path.unlink(missing_ok=True)
            report.warnings.append(f"{path}: removed the organizers' CSV an earlier `lasskit mix` wrote for this "
                                   "split: it described rows that were replaced; pass --official-csv to write it "
                                   "for the new rows")
        else:
            report.warnings.append(f"{path}: the organizers' CSV written for an earlier version of this split no "
                                   "longer describes it (it was edited since, so it was left in place); delete it "
                                   f"or pass --official-csv {path}")
    return kept

def state_json(options: dict, inputs: dict, report: MixReport | None, partial: MixReport | None = None,
                official_files: Sequence[dict] = ()) -> str:
    """mix.json: options, inputs, data rules and counts (the same set gives the same bytes), and
    the organizers' CSVs written for these rows (path and sha256), so that a later run that
    replaces the rows can retire them."""
    state = {"options": options, "inputs": inputs, "status": "complete" if report is not None else "running"}
    if official_files:
        state["official_csv_files"] = list(official_files)
    src = report if report is not None else partial
    if src is not None and src.pool is not None:
        state["data"] = src.pool.as_dict()
        state["skipped"] = src.skipped
    if report is not None:
        state["counts"] = {
            "rows": report.rows, "distinct_targets": report.distinct_targets,
            "distinct_noises": report.distinct_noises, "skipped": report.skipped,
            "without_noise": report.without_noise, "derived_label_rows": report.derived_rows,
            "min_active_seconds": report.min_active,
            "target_active_share_quartiles": list(report.active_quartiles) if report.active_quartiles else None,
            "rows_target_under_half_active": report.low_active_rows,
            "rows_zero_padded": report.padded, "rows_cropped_from_longer_clips": report.cropped,
            "snr_histogram": {str(k): v for k, v in report.snr_histogram.items()},
        }
        state["warnings"] = report.warnings
    return json.dumps(state, indent=2, ensure_ascii=False) + "\n"

def mixture_fingerprints(split_dir: str | os.PathLike) -> dict[str, str | None]:
    """Mixture file name -> its row fingerprint while the file is the one ``mix`` wrote, else None.

    A ``stat`` per file against the split's ledger, no hashing: a later stage can tell a mixture
    it has seen from a new one of the same name.
    """
    from lasskit.provenance import Ledger

    split_dir = Path(split_dir)
    ledger = Ledger(split_dir)
    out: dict[str, str | None] = {}
    for key, rec in ledger.records.items():
        if not key.startswith("mixture/"):
            continue
        name = key[len("mixture/"):]
        try:
            st = os.stat(split_dir / key)
        except OSError:
            out[name] = None
            continue
        out[name] = rec.input if (st.st_size, st.st_mtime_ns) == (rec.size, rec.mtime_ns) else None
    return out
