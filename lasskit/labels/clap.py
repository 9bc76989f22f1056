"""Zero-shot class labels from audio with CLAP (``label_source: clap``).

A second source of derived labels for caption-only corpora, next to the keyword and caption rules
of :mod:`lasskit.labels.derive`, where the CLAP weights are available (the baseline checkpoint
holds both towers, :mod:`lasskit.models.clap_model`). For a clip and a list of class names:

- ``a``: the unit CLAP audio embedding of the clip (``path="physical"``, the true-speed 48 kHz
  input, by default; ``"paper"`` is CLAPScore's double-speed reading);
- ``t_c``: the unit CLAP text embedding of the prompt ``template.format(name)`` for each class
  (default ``"This is a sound of {}."``, the prompt of LAION-CLAP's zero-shot evaluation), each
  prompt embedded once per call;
- ``s_c = dot(a, t_c)``, a cosine; the labels are the ``top_k`` classes of highest score (ties
  broken by the order of ``class_names``), best first, dropping those below ``min_score`` when
  it is given. A clip with no class left gets no labels (counted by the caller).

Measuring it (needs the real weights; lasskit's tests use random weights, so they check only the
mechanics). The validation-tag benchmark of the caption rules (``benchmarks/bench_labels.py``)
compares derived labels with the verified tags of the challenge's 1000 validation clips through
:class:`lasskit.labels.ConflictCheck`. To measure CLAP labels on it, a team with the baseline
checkpoint and the validation audio (``lass_validation/*.wav``) builds the labels with::

    from lasskit.labels import Vocabulary
    from lasskit.labels.clap import clap_labels_for_files
    from lasskit.models.clap_model import load_clap_model

    vocabulary = Vocabulary.load(ontology="ontology.json")
    model = load_clap_model()                       # the cached baseline checkpoint
    labels = clap_labels_for_files([audio_dir / f"{item['Index']}.wav" for item in items],
                                   class_names(vocabulary), model, top_k=3, min_score=...)

and passes them where ``evaluate`` derives ``labels`` from captions; recall (pairs sharing a
verified tag that the labels also call sharing) and false alarms (the 3000 official pairs, which
share none) then read the same. ``top_k`` and ``min_score`` trade one for the other: sweep them
on this benchmark before trusting a setting. On a 2-core CPU the tower embeds about 3 clips/s.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from lasskit.errors import UsageError

PROMPT = "This is a sound of {}."
"""LAION-CLAP's zero-shot prompt."""
LABEL_SOURCE = "clap"
"""The manifest's ``label_source`` of labels set here."""


def class_names(vocabulary: Any) -> list[str]:
    """The label names of a :class:`~lasskit.labels.Vocabulary` usable as labels (no blacklisted
    AudioSet class), in the vocabulary's order; a plain sequence of names passes through."""
    classes = getattr(vocabulary, "classes", None)
    if classes is None:
        return [str(n) for n in vocabulary]
    return [info.name for info in classes.values() if not getattr(info, "blacklisted", False)]


def tag_scores(waveforms: Sequence[Any], sample_rate: int, names: Sequence[str], model: Any,
               template: str = PROMPT, path: str = "physical") -> np.ndarray:
    """(clips, classes) float64 cosines between each clip's audio embedding and each class prompt."""
    if not names:
        raise UsageError("CLAP labels need at least one class name")
    prompts = [template.format(n) for n in names]
    text = np.asarray(model.text_embeddings(prompts), dtype=np.float64)
    if getattr(model, "checkpoint", ""):  # a real model: through the disk cache of embeddings
        from lasskit.models.embedding_cache import cached_audio_embeddings

        audio = cached_audio_embeddings(model, list(waveforms), sample_rate, path).astype(np.float64)
    else:
        audio = np.asarray(model.audio_embeddings(list(waveforms), sample_rate, path), dtype=np.float64)
    return audio.reshape(-1, text.shape[1]) @ text.T


def pick_labels(scores: np.ndarray, names: Sequence[str], top_k: int = 3,
                min_score: float | None = None) -> list[list[str]]:
    """Per row of ``scores``: the ``top_k`` best names (stable order on ties), best first, each
    at least ``min_score`` when given."""
    if top_k < 1:
        raise UsageError(f"top_k {top_k}: must be at least 1")
    out = []
    for row in np.atleast_2d(scores):
        order = np.argsort(-row, kind="stable")[:top_k]
        out.append([names[j] for j in order if min_score is None or row[j] >= min_score])
    return out


def clap_labels(waveforms: Sequence[Any], sample_rate: int, names: Sequence[str], model: Any, *,
                top_k: int = 3, min_score: float | None = None, template: str = PROMPT,
                path: str = "physical") -> list[list[str]]:
    """Labels per clip (mono arrays at ``sample_rate``) by zero-shot CLAP tagging (module doc).

    ``model``: a :class:`~lasskit.models.clap_model.ClapModel` (or anything with
    ``text_embeddings(prompts)`` and ``audio_embeddings(waveforms, rate, path)``).
    """
    names = list(names)
    if not waveforms:
        return []
    return pick_labels(tag_scores(waveforms, sample_rate, names, model, template, path), names, top_k, min_score)


def _read_clip(path) -> tuple[np.ndarray, int]:
    from lasskit.audio import read, to_mono

    signal, rate = read(path)
    return np.ascontiguousarray(to_mono(signal), dtype=np.float32), rate


def clap_labels_for_files(paths: Sequence[str | os.PathLike], names: Sequence[str], model: Any, *,
                          top_k: int = 3, min_score: float | None = None, template: str = PROMPT,
                          path: str = "physical", chunk: int | None = None, shard: Any = None,
                          record: list | None = None) -> list[list[str]]:
    """:func:`clap_labels` of audio files (any rate, channels averaged).

    The distinct contents are embedded through the disk cache in the batches of
    :func:`lasskit.models.embedding_cache.embed_missing` (``chunk`` clips of one rate a batch,
    default the tower's batch size); ``shard``: this process's rank
    of a group, which embeds its share (only rank 0 gets the labels; the others get ``[]``).
    ``record`` gets the :class:`~lasskit.models.embedding_cache.Embedded` counts. A file that
    cannot be read is an :class:`~lasskit.errors.AudioError` naming it."""
    from lasskit.errors import AudioError
    from lasskit.models.embedding_cache import embed_missing

    names = list(names)
    if not paths:
        return []
    if not names:
        raise UsageError("CLAP labels need at least one class name")
    pick_labels(np.zeros((0, len(names))), names, top_k)  # a bad top_k is said on every rank, before any work
    text = np.asarray(model.text_embeddings([template.format(n) for n in names]), dtype=np.float64)
    found: dict[bytes, list[str]] = {}

    def pick(digests, vectors) -> None:
        scores = np.asarray(vectors, dtype=np.float64).reshape(-1, text.shape[1]) @ text.T
        found.update(zip(digests, pick_labels(scores, names, top_k, min_score)))

    done = embed_missing(model, path, [str(p) for p in paths], _read_clip, shard=shard, found=pick,
                         batch=chunk, desc="CLAP labels")
    bad = next((d for d in done.digests if isinstance(d, str)), None)
    if bad is not None:
        raise AudioError(bad)
    if record is not None:
        record.append(done)
    if shard is not None and not shard.lead:
        return []
    return [list(found[d]) for d in done.digests]


def label_clips_with_clap(clips: Sequence[Any], paths: Sequence[str | os.PathLike], names: Sequence[str],
                          model: Any, *, replace_derived: bool = False, **options: Any) -> int:
    """Set ``labels`` and ``label_source = "clap"`` on the clips that have no labels or CLAP labels
    (tagged again, so new weights or options take effect; the disk cache makes it cheap) and,
    with ``replace_derived``, on those with labels derived from keywords or captions; given labels
    are never touched. ``paths[i]`` is the audio of ``clips[i]``. Returns how many clips got labels."""
    if len(paths) != len(clips):
        raise UsageError(f"{len(paths)} audio paths for {len(clips)} clips")
    todo = [i for i, c in enumerate(clips) if _to_tag(c, replace_derived)]
    labels = clap_labels_for_files([paths[i] for i in todo], names, model, **options)
    done = 0
    for i, found in zip(todo, labels):
        if found:
            clips[i].labels, clips[i].label_source = found, LABEL_SOURCE
            done += 1
        elif clips[i].label_source == LABEL_SOURCE:  # earlier CLAP labels that these settings do not give
            clips[i].labels, clips[i].label_source = [], ""
    return done


def _to_tag(clip: Any, replace_derived: bool) -> bool:
    """Whether CLAP tags ``clip`` (see :func:`label_clips_with_clap`)."""
    return clip.label_source != "given" and (not clip.labels or clip.label_source == LABEL_SOURCE
                                             or (replace_derived and clip.label_source in ("keywords", "caption")))


def clap_label_manifest(manifest_path: str | os.PathLike, names: Sequence[str], model: Any, *,
                        replace_derived: bool = False, **options: Any) -> tuple[int, int, bool]:
    """:func:`label_clips_with_clap` over the manifest at ``manifest_path``, written back only if changed.

    Returns ``(labelled, still_without_labels, written)``: clips that got CLAP labels, clips left
    with none (their best classes all under ``min_score``), and whether the manifest changed.
    With ``shard`` (one rank of a group, see :func:`clap_labels_for_files`), only rank 0 writes.
    """
    from lasskit.manifest import read_manifest, write_manifest

    manifest = read_manifest(manifest_path)
    clips = manifest.clips
    missing = [c.audio for c in clips if _to_tag(c, replace_derived) and not manifest.audio_path(c).is_file()]
    if missing:
        raise UsageError(f"{manifest.audio_path(next(c for c in clips if c.audio == missing[0]))}: audio of "
                         f"{len(missing)} clip(s) to label is missing; prepare the corpus again")
    done = label_clips_with_clap(clips, [manifest.audio_path(c) for c in clips], names, model,
                                 replace_derived=replace_derived, **options)
    without = sum(1 for c in clips if not c.labels)
    shard = options.get("shard")
    if shard is not None and not shard.lead:  # one of a group (lasskit.labels.run): rank 0 writes
        return 0, 0, False
    return done, without, write_manifest(manifest_path, clips)
