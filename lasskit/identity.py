"""One identity for a recording across corpora (used by ``mix``, ``train`` and ``lasskit corpora``).

Two clips are the same recording when they share any of:

- the Freesound sound id (``fs:<id>``): Clotho's metadata ``sound_id``, FSD50K's ``fname``,
  WavCaps' FreeSound ``id``, the ``<id>_<user>-hq`` names of the challenge's own sets;
- the YouTube video (``yt:<id>``): AudioSet, AudioCaps, Auto-ACD, VGGSound and WavCaps'
  AudioSet_SL clips are 10 s segments of YouTube videos, at most one segment a video in AudioSet
  (WavCaps names AudioSet_SL clips ``Y<id>`` without a start time), so a video is one recording:
  two segments of one video (VGGSound and Auto-ACD cut their own, overlapping or not) are the same
  recording, for pairing and for the held-out rule;
- the digest of the decoded samples as prepared (``dg:<digest>``, the manifest's ``digest``):
  the same audio under two names, whatever its source.
"""

from __future__ import annotations

import re

CHALLENGE_PREFIX = "dcase"
"""Datasets whose name starts with this are the challenge's own validation/evaluation sets."""

_LEADING_ID = re.compile(r"^(\d+)_")


def is_challenge_dataset(dataset: str) -> bool:
    """True for the challenge's own validation/evaluation sets (``dcase2024_val``, ...)."""
    return dataset.lower().startswith(CHALLENGE_PREFIX)


def freesound_id_of(clip) -> str:
    """A manifest clip's Freesound id: its ``freesound_id``, else what its name says for corpora
    whose names are Freesound ids (FSD50K's ``fname``; ``<id>_<user>-hq`` in the challenge's sets)."""
    if clip.freesound_id:
        return str(clip.freesound_id).strip()
    dataset = clip.dataset.lower()
    if dataset.startswith("fsd50k") and clip.id.isdigit():
        return clip.id
    if is_challenge_dataset(dataset):
        m = _LEADING_ID.match(clip.id)
        if m:
            return m.group(1)
    return ""


def recording_identities(freesound_id: str = "", youtube_id: str = "", digest: str = "") -> tuple[str, ...]:
    """``("fs:<id>", "yt:<id>", "dg:<digest>")``, those that are known."""
    return tuple(x for x in (freesound_id and "fs:" + freesound_id, youtube_id and "yt:" + youtube_id,
                             digest and "dg:" + digest) if x)


def clip_identities(clip) -> tuple[str, ...]:
    """:func:`recording_identities` of a manifest clip."""
    return recording_identities(freesound_id_of(clip), getattr(clip, "youtube_id", "") or "", clip.digest or "")
