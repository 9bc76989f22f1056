"""Submissions for DCASE 2024 Task 9: the challenge's rules, the packager and the validator.

Owns: :mod:`~lasskit.submission.rules` (naming and metadata rules, placeholder, PDF and WAV
checks: the one place both sides read), :mod:`~lasskit.submission.archive` (deterministic ZIP
writing), :mod:`~lasskit.submission.packager` (``lasskit package``: :func:`build_package`),
:mod:`~lasskit.submission.checker` (``lasskit check``: :func:`check_submission`) and
:mod:`~lasskit.submission.audiocheck` (what an audio zip must hold; the per-entry check in workers).

Layer: a stage. It reads what ``separate`` and ``score`` wrote (files on disk) and imports core
modules only; never torch. ``packager`` and ``checker`` both import ``rules``, never each other.
"""

from __future__ import annotations

from lasskit.submission.rules import (  # noqa: F401
    AUDIO_SPLITS,
    AUDIO_URL_PLACEHOLDER,
    DecodedWav,
    EMAIL_RE,
    INDEX_RE,
    INSTITUTE_RE,
    LASTNAME_RE,
    MAX_ABBREVIATION,
    MAX_SYSTEMS,
    Naming,
    OFFICIAL_COUNTS,
    OFFICIAL_SAMPLES,
    PACKAGE_FIX,
    PDF_PROBLEM,
    PLACEHOLDER_EMAIL_DOMAINS,
    PLACEHOLDER_EMAIL_TLDS,
    PLACEHOLDER_PATTERNS,
    PLACEHOLDER_VALUES,
    Problem,
    RESULT_KEYS,
    RESULT_RANGE,
    SILENCE_PEAK,
    URL_RE,
    VALIDATION_SPLIT,
    WAV_FORMATS,
    decode_wav,
    email_problem,
    label_problems,
    lastname_for_label,
    meta_problems,
    pdf_problem,
    placeholder_reason,
)
from lasskit.submission.archive import (  # noqa: F401
    AUDIO_FORMATS,
    DeterministicZipWriter,
    ZIP_DATE_TIME,
    ZIP_LEVEL,
    ZipEntry,
    deflate_entry,
    write_zip,
)
from lasskit.submission.packager import (  # noqa: F401
    AudioResult,
    AudioTask,
    BATCH_FILES,
    OPTION_HINTS,
    PackageReport,
    build_package,
    make_audio_entry,
    pcm16_wav_bytes,
    write_team_zip,
)
from lasskit.submission.checker import (  # noqa: F401
    CHUNK_ENTRIES,
    CheckReport,
    MAX_ENTRY_BYTES,
    MAX_TOTAL_BYTES,
    ZipChunk,
    check_submission,
    check_zip_chunk,
)
