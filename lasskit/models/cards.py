"""Model cards of the zoo: what each registered model declares (rate, trained length, batching,
licence, weight files and their sources, citation), read by ``lasskit models`` and the downloader.

No torch here: ``lasskit models`` and ``lasskit models download`` read the cards without loading a
network. A model class points at its card with ``card = cards.CARDS[name]``.

**For the downloader** (:mod:`lasskit.download`, ``lasskit models download NAME``): call
:func:`weight_files` ``(NAME)`` -> the :class:`WeightDecl` tuple to fetch into
``<cache>/weights/<filename>`` (:func:`weight_path`). Each declares ``url``; ``size`` and ``sha256``
where the publisher gives them (None: unknown, print the download's hash); ``zenodo_record`` when
the file sits in a Zenodo record (its API gives the size and MD5 of each file by name); ``archive``
when the publisher ships it inside a zip (fetched, checked, and the file taken out of it);
``tokenizer`` names the tokenizer folder the text encoder needs (``roberta-base``, the baseline's).
Models find their files again with :func:`cached_weight`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class WeightDecl:
    """One published weight file."""

    filename: str
    """Name in the cache (the publisher's name)."""
    url: str
    """Direct download URL."""
    source: str
    """The page that publishes it (for people)."""
    size: int | None = None
    """Bytes of the published file (the archive when ``archive`` is set), where the publisher states
    it exactly (a Git LFS pointer, a Zenodo record); None: unknown."""
    sha256: str | None = None
    """Hex SHA-256 of the published file where the publisher states it (e.g. a Git LFS pointer); None: unknown."""
    zenodo_record: str | None = None
    """Zenodo record id holding the file (its API lists size and MD5 by file name)."""
    role: str = "checkpoint"
    """``checkpoint`` (separator, with or without the text encoder) or ``clap`` (the CLAP file)."""
    archive: str | None = None
    """The published file is this zip (``url`` points at it): the downloader fetches and checks the
    zip, takes out the member named ``filename`` (in any folder of it) and removes the zip."""


@dataclass(frozen=True)
class ModelCard:
    """What a zoo model declares about itself."""

    name: str
    network_rate: int
    """Hz the network runs at (lasskit feeds it 16 kHz audio resampled with soxr when it differs)."""
    trained_seconds: float
    """Longest input (s) it was trained on (segments of this length)."""
    padding_harmless: bool
    """True when zero samples appended to a row cannot change its estimate (never for these models)."""
    licence: str
    citation: str
    """One line."""
    code: str
    """Upstream repository and the file with the network."""
    weights: tuple[WeightDecl, ...] = ()
    tokenizer: str | None = "roberta-base"
    separator_parameters: int | None = None
    """Parameters of the separator (the frozen CLAP text tower, ~125 M, not counted)."""
    reported: str = ""
    """Results the authors report, with where."""
    notes: tuple[str, ...] = field(default_factory=tuple)


_TQSED = "https://github.com/apple-yinhan/TQ-SED"
_DP_RECORD = "14208090"
_DP_PAGE = f"https://zenodo.org/records/{_DP_RECORD}"
# The record holds each checkpoint inside a zip (resunet_with_dprnn_16k.zip, resunet_with_dprnn_32k.zip),
# as scripts that fetch them write; the record's API, asked at download time, gives each zip's size and MD5,
# and a name it does not hold is refused in one line naming what it holds.
_AUDIOSEP_LFS = "https://huggingface.co/spaces/Audio-AGI/AudioSep/commit/5638854dccfaea5c5fa4f634c00fe74fbb119244"
"""The Space's commit "Add models to LFS": the Git LFS pointers (oid sha256, size) of both files."""
_CLAPSEP_SPACE = "https://huggingface.co/spaces/AisakaMikoto/CLAPSep"
_CLAP = WeightDecl(
    filename="music_speech_audioset_epoch_15_esc_89.98.pt",
    url="https://huggingface.co/spaces/Audio-AGI/AudioSep/resolve/main/checkpoint/"
        "music_speech_audioset_epoch_15_esc_89.98.pt",
    source="https://huggingface.co/spaces/Audio-AGI/AudioSep/tree/main/checkpoint",
    size=2_352_471_003,  # its Git LFS pointer (_AUDIOSEP_LFS); the same oid as lukewys/laion_clap's copy
    sha256="51c68f12f9d7ea25fdaaccf741ec7f81e93ee594455410f3bca4f47f88d8e006",
    role="clap",
)

CARDS: dict[str, ModelCard] = {
    "audiosep": ModelCard(
        name="audiosep",
        network_rate=32000,
        trained_seconds=5.0,  # config/audiosep_base.yaml: segment_seconds 5
        padding_harmless=False,
        licence="MIT",
        citation="Liu et al., Separate Anything You Describe, IEEE/ACM TASLP 2024 (arXiv 2308.05037)",
        code="https://github.com/Audio-AGI/AudioSep models/resunet.py (ResUNet30, STFT 2048/320 at 32 kHz)",
        weights=(
            WeightDecl(
                filename="audiosep_base_4M_steps.ckpt",
                url="https://huggingface.co/spaces/Audio-AGI/AudioSep/resolve/main/checkpoint/audiosep_base_4M_steps.ckpt",
                source="https://huggingface.co/spaces/Audio-AGI/AudioSep/tree/main/checkpoint",
                size=1_264_844_076,  # its Git LFS pointer (_AUDIOSEP_LFS)
                sha256="f8cda01bfd0ebd141eef45d41db7a3ada23a56568465840d3cff04b8010ce82c",
            ),
            _CLAP,
        ),
        separator_parameters=26_447_941,
        reported="not on the DCASE 2024 Task 9 sets; its README's benchmark (benchmark.py, this checkpoint): "
                 "SDRi / SI-SDR dB: AudioCaps 8.220 / 7.189, Clotho 6.850 / 5.242, AudioSet 7.739 / 6.903, "
                 "VGGSound 9.144 / 9.043, MUSIC 10.508 / 9.425, ESC-50 10.040 / 8.810 "
                 "(https://github.com/Audio-AGI/AudioSep#benchmark-evaluation); not re-measured here",
    ),
    "audiosep-dp-16k": ModelCard(
        name="audiosep-dp-16k",
        network_rate=16000,
        trained_seconds=10.0,
        padding_harmless=False,
        licence="MIT (code: TQ-SED LICENSE; weights: the Zenodo record's terms)",
        citation="Yin et al., Exploring Text-Queried Sound Event Detection with Audio Source Separation "
                 "(arXiv 2409.13292); AudioSep-DP, DCASE 2024 Task 9 first place (objective, single model)",
        code=f"{_TQSED} LASS_codes/models/resunet.py + models/FaSNet.py (ResUNet30, dprnn=True)",
        weights=(
            WeightDecl(
                filename="model-epoch=19-val_sdr=8.1018.ckpt",  # the name datasets/separate_audio.py loads
                url=f"{_DP_PAGE}/files/resunet_with_dprnn_16k.zip?download=1",
                source=_DP_PAGE,
                zenodo_record=_DP_RECORD,
                archive="resunet_with_dprnn_16k.zip",
            ),
        ),
        separator_parameters=54_993_862,
        reported="first place, DCASE 2024 Task 9 objective single-model track (arXiv 2409.13292, abstract); "
                 "val_sdr 8.1018 dB (its training run's validation SDR) as the checkpoint's file name states "
                 "(TQ-SED datasets/separate_audio.py); evaluation-set SDR/SDRi/SI-SDR and which rate was submitted: "
                 "unknown here (https://dcase.community/challenge2024/task-language-queried-audio-source-separation-results)",
        notes=("dual-path RNN size (6 layers, 256 hidden by default) is read from the checkpoint",),
    ),
    "audiosep-dp-32k": ModelCard(
        name="audiosep-dp-32k",
        network_rate=32000,
        trained_seconds=10.0,
        padding_harmless=False,
        licence="MIT (code: TQ-SED LICENSE; weights: the Zenodo record's terms)",
        citation="Yin et al., Exploring Text-Queried Sound Event Detection with Audio Source Separation "
                 "(arXiv 2409.13292); AudioSep-DP at 32 kHz",
        code=f"{_TQSED} LASS_codes/models/resunet_32k.py + models/FaSNet.py (ResUNet30, dprnn=True, STFT 2048/320)",
        weights=(
            WeightDecl(
                filename="model-epoch=01-val_sdr=8.6049.ckpt",
                url=f"{_DP_PAGE}/files/resunet_with_dprnn_32k.zip?download=1",
                source=_DP_PAGE,
                zenodo_record=_DP_RECORD,
                archive="resunet_with_dprnn_32k.zip",
            ),
        ),
        separator_parameters=54_994_886,
        reported="val_sdr 8.6049 dB (its training run's validation SDR) as the checkpoint's file name states "
                 "(TQ-SED datasets/separate_audio.py); no other figure for the 32 kHz model found (arXiv 2409.13292)",
        notes=("dual-path RNN size (6 layers, 256 hidden by default) is read from the checkpoint",),
    ),
    "clapsep": ModelCard(
        name="clapsep",
        network_rate=32000,  # its CLAP encoder hears each window resampled to 48 kHz
        trained_seconds=10.0,  # data_utils/audiocap_dataset.py: 10 s AudioCaps clips
        padding_harmless=False,
        licence="none stated (the repository has no licence file; weights: the Space's terms)",
        citation="Ma et al., CLAPSep: Leveraging Contrastive Pre-trained Model for Multi-Modal "
                 "Query-Conditioned Target Sound Extraction (arXiv 2402.17455)",
        code="https://github.com/Aisaka0v0/CLAPSep model/CLAPSep.py + model/CLAPSep_decoder.py "
             "(LoRA HTSAT-base features, Swin decoder, magnitude mask on a 1024/320 STFT at 32 kHz)",
        weights=(
            WeightDecl(
                filename="best_model.ckpt",
                url=f"{_CLAPSEP_SPACE}/resolve/main/model/best_model.ckpt",
                source=f"{_CLAPSEP_SPACE}/tree/main/model",
                # size: not enforced (the card holds what the publisher states): a third-party download
                # reports 177,818,986 bytes; the harness's file of the same layout is 177,817,677
            ),
            WeightDecl(
                filename="music_audioset_epoch_15_esc_90.14.pt",
                url=f"{_CLAPSEP_SPACE}/resolve/main/model/music_audioset_epoch_15_esc_90.14.pt",
                source=f"{_CLAPSEP_SPACE}/tree/main/model",
                # size: not enforced: third parties report 2,352,471,003 bytes (the same as the other
                # HTSAT-base CLAP file's, plausible for the same tensors) and SHA-256 fae3e9c0...6dedd
                role="clap",
            ),
        ),
        separator_parameters=111_285_976,
        reported="see the paper's tables (arXiv 2402.17455); not re-measured here",
        notes=("inference only: `lasskit train --model clapsep` is not supported",
               "trained tensors: LoRA (rank 16) of every HTSAT attention layer and their biases, "
               "and the 43.5 M-parameter decoder; the rest of the HTSAT copy is the CLAP file's",
               "negative query: -o negative=TEXT (default none: the zero vector)"),
    ),
}
"""Every zoo card by registered name."""


def card(name: str) -> ModelCard | None:
    """The card of model ``name``; None for a model without one."""
    return CARDS.get(name)


def weight_files(name: str) -> tuple[WeightDecl, ...]:
    """The weight files model ``name`` needs (empty for a model without a card)."""
    found = CARDS.get(name)
    return found.weights if found else ()


def weight_path(decl: WeightDecl, cache: str | Path | None = None) -> Path:
    """Where a declared file lives (or will live) in the cache: ``<cache>/weights/<filename>``."""
    from lasskit import weights

    return Path(cache or weights.cache_dir()) / "weights" / decl.filename


def cached_weight(name: str, role: str = "checkpoint", cache: str | Path | None = None) -> Path | None:
    """The cached file of model ``name`` with ``role``, if it is there (non-empty); else None."""
    for decl in weight_files(name):
        if decl.role == role:
            path = weight_path(decl, cache)
            if path.is_file() and path.stat().st_size > 0:
                return path
    return None


def cards_table() -> str:
    """The cards as a plain-text table (``lasskit models --cards``), then each model's weight files and citation."""
    header = ("model", "network rate", "trained on", "batch padding", "licence", "separator params")
    rows = [header]
    for name in sorted(CARDS):
        c = CARDS[name]
        params = f"{c.separator_parameters / 1e6:.1f} M" if c.separator_parameters else "-"
        rows.append((name, f"{c.network_rate // 1000} kHz", f"{c.trained_seconds:g} s",
                     "harmless" if c.padding_harmless else "changes estimates", c.licence.split(" (")[0], params))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    for name in sorted(CARDS):
        c = CARDS[name]
        lines.append("")
        lines.append(f"{name}: {c.citation}")
        lines.append(f"  code: {c.code}")
        for w in c.weights:
            size = f"{w.size} bytes" if w.size else "size unknown"
            digest = f"sha256 {w.sha256}" if w.sha256 else ("checked against the Zenodo record's MD5"
                                                            if w.zenodo_record else "sha256 unknown")
            inside = f" inside {w.archive}" if w.archive else ""
            lines.append(f"  {w.role}: {w.filename}{inside} ({size}, {digest}) from {w.source}")
        if c.reported:
            lines.append(f"  reported: {c.reported}")
    return "\n".join(lines)
