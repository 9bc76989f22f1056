"""Corpus recipes: one module per raw corpus, each a plain function from the raw folder to manifests.

``prepare_corpus(corpus, src, data_dir, ...)`` dispatches to ``lasskit.corpora.<corpus>.prepare``
and returns one :class:`~lasskit.corpora.common.PrepareReport` per corpus or split it wrote. Options
(``--resampler``, ``--name``) are checked before any work starts (:func:`check_resampler`,
:func:`check_name`). What is fingerprinted and when work is redone: :mod:`lasskit.corpora.common`
(batches, records, manifest, notes); one file's conversion in a worker: :mod:`lasskit.corpora.convert`.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from lasskit.corpora.common import PrepareReport, check_output_outside
from lasskit.errors import UsageError

CORPORA = {
    "clotho": "Clotho v2: development/validation/evaluation audio with 5 captions a clip",
    "fsd50k": "FSD50K: dev/eval audio with labels (and the organizers' generated captions)",
    "dcase2024": "DCASE 2024 Task 9 validation and evaluation sets (val_synth, eval_synth, eval_real)",
    "folder": "any folder of audio, with an optional CSV of captions and labels",
    "audiocaps": "AudioCaps v1/v2: caption CSVs over AudioSet segments + the YouTube audio a user fetched",
    "wavcaps": "WavCaps: JSON metadata per source (FreeSound, BBC Sound Effects, SoundBible, AudioSet_SL) + audio",
    "autoacd": "Auto-ACD: caption CSV over AudioSet/VGGSound videos + the YouTube audio a user fetched",
}


def check_name(name: str, folder: Path | None = None) -> str:
    """A corpus name is one plain folder name under the data folder (never a path out of it), in
    UTF-8 (it goes in the manifest). ``folder``: the name was the source folder's, not ``--name``'s."""
    bad = (not name or name in (".", "..") or name != name.strip() or name.startswith(".")
           or any(c in name for c in "/\\\0") or not name.isprintable())
    if bad:
        shown = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        rule = ("a corpus name must be a plain folder name (letters, digits, _ and -; no /, no leading dot, "
                "valid UTF-8)")
        if folder is not None:
            raise UsageError(f"{folder}: the folder's name '{shown}' would be the corpus name, and {rule}; "
                             "pass --name my_sounds")
        raise UsageError(f"--name '{shown}': {rule}; e.g. --name my_sounds")
    return name


def check_resampler(resampler: str) -> str:
    """``soxr`` or ``torchaudio`` (installed), checked before any work."""
    from lasskit.audio import RESAMPLERS

    if resampler not in RESAMPLERS:
        raise UsageError(f"--resampler {resampler!r}: unknown; use one of {', '.join(RESAMPLERS)}")
    if resampler == "torchaudio":
        import importlib.util

        if importlib.util.find_spec("torchaudio") is None:
            raise UsageError("--resampler torchaudio: torchaudio is not installed; "
                             "pip install 'lasskit[torch]' or use --resampler soxr")
    return resampler


def prepare_corpus(corpus: str, src: Path, data_dir: Path, **options) -> list[PrepareReport]:
    """Prepare raw ``src`` of ``corpus`` into ``data_dir`` (``<workspace>/data`` by default).

    ``options`` are the recipe's keyword arguments: ``jobs``, ``overwrite``, ``resampler`` and
    recipe-specific ones (``captions`` for fsd50k, ``metadata``/``name`` for folder, ``labeler`` -- a
    :class:`lasskit.labels.Labeler` deriving labels from keywords and captions -- for clotho, folder, audiocaps,
    wavcaps and autoacd; ``audioset_labels`` -- AudioSet's segment CSVs and class_labels_indices.csv -- for
    audiocaps, autoacd and wavcaps; ``blacklist`` -- more WavCaps blacklist JSONs -- for wavcaps). Every
    option is checked before any work starts.
    """
    if corpus not in CORPORA:
        raise UsageError(f"unknown corpus {corpus!r}; choose one of {', '.join(CORPORA)}")
    options = {k: v for k, v in options.items() if v is not None}
    check_resampler(options.get("resampler", "soxr"))
    if "name" in options:
        check_name(options["name"])
    src = Path(src)
    if not src.is_dir():
        raise UsageError(f"{src}: no such folder; pass the raw {corpus} download folder")
    if corpus == "folder" and "name" not in options:
        check_name(src.resolve().name, src)
    check_output_outside(src, data_dir)
    module = importlib.import_module(f"lasskit.corpora.{corpus}")
    return module.prepare(src, data_dir, **options)
