"""WavCaps: one JSON file per source (``json_files/<Source>/<x>_final.json``:
``{"num_captions_per_audio": 1, "data": [{"id", "caption", "duration", ...}]}``, or the entries
as a bare JSON list as in the GitHub repository's ``SoundBible/sb_final.json``) and the audio
from the release's archives (flac at 32 kHz, one file per clip named by its ``id``).

Sources, told apart by their JSON's name (``fsd_``, ``bbc_``, ``sb_``, ``as_``) or folder:

- ``FreeSound`` (``id`` = the Freesound sound id, ``tags``, ``description``, ``author``, ``href``):
  the id is kept as ``freesound_id``, the tags as ``keywords``;
- ``BBC_Sound_Effects`` (``id`` = the BBC catalogue number, ``description``, ``category``);
- ``SoundBible`` (``id``, ``title``, ``description``, ``author``);
- ``AudioSet_SL`` (``id`` = ``Y<youtube id>.wav``, AudioSet's strongly labelled subset): the
  video id is kept as ``youtube_id`` (:mod:`lasskit.corpora.youtube`).

The audio may sit in the release's tree (``<Source>_flac/``, ``Zip_files/<Source>/``, ...) or all
in one folder: a file belongs to the source named by a folder on its path, else to the one source
whose JSON lists its name (a name two sources list is ambiguous and left out, counted).

**Blacklists.** WavCaps publishes lists of its clips that overlap evaluation sets
(``json_files/blacklist/*.json``: ``{"AudioSet": ["Y<id>.wav", ...], "FreeSound": ["<id>", ...]}``).
``blacklist_exclude_test_ac.json`` (the AudioCaps and Clotho test sets) is applied by default when
it is under the raw folder; ``--blacklist FILE`` adds others (e.g. ``blacklist_exclude_all_ac.json``).
Blacklisted clips are left out, counted per file and listed in ``excluded.csv``; ``mix`` and
``train`` check every prepared corpus's held-out recordings on top (:mod:`lasskit.mixing.pool`).
Every clip is ``train``. Labels are derived from captions (AudioSet_SL's from ``--audioset-labels``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from lasskit.corpora.common import ClipJob, PrepareReport, convert_corpus
from lasskit.corpora.youtube import (
    audio_index,
    label_notes,
    labels_for,
    read_audioset_labels,
    split_segment,
    write_excluded,
)
from lasskit.errors import UsageError

SOURCES = {"fsd": "FreeSound", "bbc": "BBC_Sound_Effects", "sb": "SoundBible", "as": "AudioSet_SL"}
"""JSON name prefix -> source."""
FOLDER_HINTS = {"freesound": "FreeSound", "bbc": "BBC_Sound_Effects", "soundbible": "SoundBible",
                "audioset": "AudioSet_SL"}
"""What a folder name starts with (lower case) -> the source its audio belongs to."""
DEFAULT_BLACKLIST = "blacklist_exclude_test_ac.json"


def source_of_json(path: Path) -> str | None:
    """The source a metadata JSON describes, by its name or its folder."""
    prefix = path.name.split("_", 1)[0].lower()
    if prefix in SOURCES and path.name.endswith("_final.json"):
        return SOURCES[prefix]
    for part in reversed(path.parent.parts):
        for hint, source in FOLDER_HINTS.items():
            if part.lower().startswith(hint):
                return source
    return None


def _source_of_audio(path: Path, src: Path) -> str | None:
    for part in path.relative_to(src).parent.parts:
        for hint, source in FOLDER_HINTS.items():
            if part.lower().startswith(hint):
                return source
    return None


def read_metadata(path: Path) -> list[dict]:
    """The ``data`` entries of one source's JSON (or the entries of a JSON list: the GitHub
    repository's ``SoundBible/sb_final.json`` is one)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"{path}: unreadable WavCaps JSON ({exc})")
    entries = data.get("data") if isinstance(data, dict) else data  # the repository's sb_final.json: a bare list
    if not isinstance(entries, list):
        raise UsageError(f"{path}: not a WavCaps metadata file (expected {{\"data\": [...]}} or a list of entries)")
    return [e for e in entries if isinstance(e, dict) and str(e.get("id", "")).strip()]


def read_blacklist(path: Path) -> tuple[set[str], set[str]]:
    """Freesound ids and YouTube ids a blacklist names."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"{path}: unreadable WavCaps blacklist ({exc}); pass one of its json_files/blacklist/*.json")
    if not isinstance(data, dict):
        raise UsageError(f"{path}: not a WavCaps blacklist (expected {{\"FreeSound\": [...], \"AudioSet\": [...]}})")
    freesound = {str(x).strip() for x in data.get("FreeSound", []) or []}
    youtube = {split_segment(Path(str(x)).stem)[0] for x in data.get("AudioSet", []) or []} - {""}
    return freesound, youtube


def _metadata_files(src: Path) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for dirpath, _, files in os.walk(src):
        for name in sorted(files):
            path = Path(dirpath) / name
            if name.endswith(".json") and not name.startswith("blacklist"):
                source = source_of_json(path)
                if source is not None:
                    out.setdefault(source, []).append(path)
    return out


def scan(src: Path, blacklists: list[Path], audioset_labels: dict[str, list[str]] | None = None):
    """Clip jobs, notes and excluded ``(id, rule)`` rows."""
    metadata = _metadata_files(src)
    if not metadata:
        raise UsageError(f"{src}: no WavCaps metadata (json_files/<Source>/<x>_final.json, e.g. "
                         "FreeSound/fsd_final.json); pass the folder holding the release's json_files and audio")
    index = audio_index(src)
    entries: dict[str, list[dict]] = {s: [e for p in paths for e in read_metadata(p)] for s, paths in metadata.items()}
    listed: dict[str, set[str]] = {}
    for source, items in entries.items():
        for e in items:
            listed.setdefault(Path(str(e["id"]).strip()).stem, set()).add(source)
    by_source: dict[tuple[str, str], Path] = {}
    ambiguous = 0
    for stem, paths in index.items():
        for path in sorted(paths):
            source = _source_of_audio(path, src)
            if source is None:
                owners = listed.get(stem, set())
                if len(owners) > 1:
                    ambiguous += 1
                    continue
                source = next(iter(owners), None)
            if source is not None:
                by_source.setdefault((source, stem), path)
    banned_fs: dict[str, str] = {}
    banned_yt: dict[str, str] = {}
    for path in blacklists:
        fs, yt = read_blacklist(path)
        for x in fs:
            banned_fs.setdefault(x, Path(path).name)
        for x in yt:
            banned_yt.setdefault(x, Path(path).name)
    jobs, notes, excluded = [], [], []
    for source in sorted(entries):
        missing = 0
        for e in entries[source]:
            raw_id = str(e["id"]).strip()
            stem = Path(raw_id).stem
            clip_id = f"{source}/{stem}"
            freesound_id = stem if source == "FreeSound" else ""
            youtube_id = split_segment(stem)[0] if source == "AudioSet_SL" else ""
            rule = None
            if freesound_id and freesound_id in banned_fs:
                rule = f"blacklist {banned_fs[freesound_id]}"
            elif youtube_id and youtube_id in banned_yt:
                rule = f"blacklist {banned_yt[youtube_id]}"
            if rule is not None:
                excluded.append((clip_id, rule))
                continue
            audio = by_source.get((source, stem))
            if audio is None:
                missing += 1
                excluded.append((clip_id, "missing audio"))
                continue
            caption = str(e.get("caption") or "").strip()
            tags = e.get("tags") if isinstance(e.get("tags"), list) else []
            labels = (labels_for(audioset_labels, youtube_id, split_segment(stem)[1]) or []) if youtube_id else []
            jobs.append(ClipJob(id=clip_id, source=audio, audio=f"audio/{source}/{stem}.wav", dataset="wavcaps",
                                split="train", captions=[caption] if caption else [], labels=labels,
                                label_source="given" if labels else "", freesound_id=freesound_id,
                                keywords=[str(t).strip() for t in tags if str(t).strip()], youtube_id=youtube_id))
        notes.append(f"{source}: {len(entries[source])} clip(s) listed, {missing} without audio here")
    rules: dict[str, int] = {}
    for _, rule in excluded:
        rules[rule] = rules.get(rule, 0) + 1
    for rule, n in sorted(rules.items()):
        if rule.startswith("blacklist"):
            notes.append(f"left out {n} clip(s) on WavCaps' {rule[len('blacklist '):]} (listed in excluded.csv)")
    if ambiguous:
        notes.append(f"{ambiguous} audio file(s) in a folder of no source are named like clips of two sources; "
                     "left out: keep each source's audio in its own folder (e.g. FreeSound_flac/)")
    return jobs, notes, excluded


def prepare(src: Path, data_dir: Path, *, name: str = "wavcaps", jobs=None, overwrite=False, resampler="soxr",
            labeler=None, audioset_labels=(), blacklist=()) -> list[PrepareReport]:
    """Prepare WavCaps from ``src`` into ``data_dir/<name>`` (module doc)."""
    from lasskit.labels import label_clips

    found = sorted(p for p in src.rglob(DEFAULT_BLACKLIST) if p.is_file())
    lists = [*found[:1], *[Path(p) for p in blacklist]]
    for path in lists:
        if not Path(path).is_file():
            raise UsageError(f"--blacklist {path}: no such file; pass one of WavCaps' json_files/blacklist/*.json")
    given = read_audioset_labels(audioset_labels) if audioset_labels else {}
    clip_jobs, notes, excluded = scan(src, lists, given)
    notes += given.notes() if hasattr(given, "notes") else []
    if not found:
        notes.append(f"{DEFAULT_BLACKLIST} not found under {src}: WavCaps' own list of clips in the AudioCaps and "
                     "Clotho test sets was not applied (pass it with --blacklist); mix and train still leave out "
                     "every recording of a prepared val/eval split")
    if not clip_jobs:
        raise UsageError(f"{src}: no WavCaps audio matches its metadata; extract the release's archives here "
                         "(e.g. FreeSound_flac/<id>.flac)")
    labels_report = label_clips(clip_jobs, labeler)
    write_excluded(data_dir / name, excluded)
    return [convert_corpus(name, clip_jobs, data_dir / name, jobs=jobs, overwrite=overwrite, resampler=resampler,
                           notes=notes, amend=label_notes(labeler, labels_report))]
