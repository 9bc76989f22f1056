"""Clotho v2: ``development/``, ``validation/``, ``evaluation/``, ``clotho_captions_<split>.csv``
and, where present, ``clotho_metadata_<split>.csv``.

Each captions CSV has ``file_name, caption_1 .. caption_5``: five captions a clip, no labels. An
audio file missing from its captions CSV is skipped and counted in the notes (a caption-less
clip is no use as a target). The optional metadata CSV has ``file_name, keywords, sound_id,
sound_link, start_end_samples, manufacturer, license`` (keywords are the Freesound tags,
``;``-separated); the manifest keeps ``keywords``, ``freesound_id`` (``sound_id``) and
``license``. Labels are then derived from keywords and captions (:mod:`lasskit.labels`) when a
vocabulary or ontology is given. Splits become ``train``, ``val`` and ``eval``; a clip's id is
``<folder>/<file stem>``.
"""

from __future__ import annotations

from pathlib import Path

from lasskit.audio import AUDIO_EXTENSIONS
from lasskit.corpora.common import ClipJob, PrepareReport, convert_corpus, find_file
from lasskit.errors import UsageError

SPLITS = {"development": "train", "validation": "val", "evaluation": "eval"}
METADATA_COLUMNS = ("file_name", "keywords", "sound_id")


def _read_csv(path: Path, what: str):
    """A CSV as strings; UTF-8, else Windows-1252 (some Clotho metadata files are not UTF-8)."""
    import pandas as pd

    for encoding in ("utf-8", "cp1252"):
        try:
            return pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding)
        except UnicodeDecodeError:
            continue
        except Exception as exc:
            raise UsageError(f"{path}: unreadable {what} CSV ({exc})")
    raise UsageError(f"{path}: unreadable {what} CSV (neither UTF-8 nor Windows-1252 text)")


def read_captions(path: Path) -> dict[str, list[str]]:
    """``file_name`` -> its non-empty captions, from a ``clotho_captions_<split>.csv``."""
    frame = _read_csv(path, "captions")
    cols = [c for c in frame.columns if c.startswith("caption")]
    if "file_name" not in frame.columns or not cols:
        raise UsageError(f"{path}: expected columns file_name, caption_1 .. caption_5")
    return {
        row["file_name"]: [row[c].strip() for c in cols if row[c].strip()]
        for _, row in frame.iterrows()
    }


def read_metadata(path: Path) -> dict[str, dict]:
    """``file_name`` -> ``{"keywords", "freesound_id", "license"}`` from a ``clotho_metadata_<split>.csv``."""
    frame = _read_csv(path, "metadata")
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in METADATA_COLUMNS if c not in frame.columns]
    if missing:
        raise UsageError(f"{path}: metadata CSV lacks column(s) {', '.join(missing)}; expected file_name, "
                         "keywords, sound_id, sound_link, start_end_samples, manufacturer, license")
    out = {}
    for row in frame.to_dict("records"):
        keywords = [k.strip() for k in str(row["keywords"]).split(";") if k.strip()]
        sound_id = str(row["sound_id"]).strip()
        if sound_id.endswith(".0"):  # a number column read back from a spreadsheet
            sound_id = sound_id[:-2]
        out[row["file_name"]] = {"keywords": keywords, "freesound_id": sound_id,
                                 "license": str(row.get("license", "")).strip()}
    return out


def scan(src: Path) -> tuple[list[ClipJob], list[str], dict[str, dict]]:
    """Clip jobs for the Clotho folders present, notes on what is missing or skipped, and the
    metadata of each clip id (keywords, freesound_id, license) where a metadata CSV has it."""
    jobs, notes, extras = [], [], {}
    for folder, split in SPLITS.items():
        audio_dir = src / folder
        captions_csv = find_file(src, (f"clotho_captions_{folder}.csv",))
        metadata_csv = find_file(src, (f"clotho_metadata_{folder}.csv",))
        if not audio_dir.is_dir():
            notes.append(f"missing {folder}/ (split {split})")
            continue
        captions = read_captions(captions_csv) if captions_csv else {}
        if captions_csv is None:
            notes.append(f"missing clotho_captions_{folder}.csv: {folder} clips have no captions")
        metadata = read_metadata(metadata_csv) if metadata_csv else {}
        found, uncaptioned, no_meta = set(), 0, 0
        for path in sorted(audio_dir.rglob("*")):
            if path.suffix.lower() not in AUDIO_EXTENSIONS or not (path.is_file() or path.is_symlink()):
                continue
            found.add(path.name)
            if captions_csv is not None and path.name not in captions:
                uncaptioned += 1
                continue
            rel = path.relative_to(src).with_suffix(".wav")
            clip_id = str(rel.with_suffix("").as_posix())
            jobs.append(ClipJob(
                id=clip_id, source=path, audio=f"audio/{rel.as_posix()}",
                dataset="clotho", split=split, captions=captions.get(path.name, []),
            ))
            if path.name in metadata:
                extras[clip_id] = metadata[path.name]
            elif metadata_csv is not None:
                no_meta += 1
        if uncaptioned:
            notes.append(f"{uncaptioned} file(s) in {folder}/ are not in clotho_captions_{folder}.csv "
                         "and were skipped")
        listed = set(captions) - found
        if listed:
            notes.append(f"{len(listed)} clip(s) in clotho_captions_{folder}.csv have no audio file")
        held = sum(1 for j in jobs if j.split == split)
        if metadata_csv is None and split != "train" and held:
            notes.append(f"missing clotho_metadata_{folder}.csv: the Freesound ids of the {held} {folder} clip(s) are "
                         "unknown, so other corpora's copies of them (WavCaps' FreeSound, FSD50K) are not recognised "
                         "as held-out recordings by mix and train; put the metadata CSV beside the captions")
        if metadata_csv is not None and no_meta:
            notes.append(f"{no_meta} clip(s) of {folder}/ are not in clotho_metadata_{folder}.csv "
                         "(no keywords or Freesound id)")
    return jobs, notes, extras


def prepare(src: Path, data_dir: Path, *, name: str = "clotho", jobs=None, overwrite=False,
            resampler="soxr", labeler=None) -> list[PrepareReport]:
    """Prepare Clotho v2 from ``src`` into ``data_dir/<name>``; ``labeler`` (a
    :class:`lasskit.labels.Labeler`) derives labels from keywords and captions."""
    from lasskit.labels import label_clips

    clip_jobs, notes, extras = scan(src)
    if not clip_jobs:
        raise UsageError(f"{src}: no Clotho audio found; expected development/, validation/ or evaluation/")
    labels_report = label_clips(clip_jobs, labeler, extras)
    if labeler is None:
        notes.append("labels not derived: no class vocabulary (pass --vocabulary "
                     "FSD50K.ground_truth/vocabulary.csv or --ontology ontology.json)")

    def label_notes(clips) -> list[str]:  # counted on the clips that reached the manifest
        from lasskit.labels.corpus import count_labels

        return count_labels(clips, labels_report.vocabulary).notes() if labeler is not None else []

    return [convert_corpus(name, clip_jobs, data_dir / name, jobs=jobs, overwrite=overwrite,
                           resampler=resampler, notes=notes, amend=label_notes)]
