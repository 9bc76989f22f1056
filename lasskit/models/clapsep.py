"""``clapsep``: CLAPSep (Ma et al., arXiv 2402.17455), inference only: the model class, its
weights, queries and windows. The network is :mod:`lasskit.models.clapsep_net`.

CLAPSep masks the 32 kHz mixture's magnitude STFT with a decoder fed by the features of a
LoRA-tuned copy of CLAP's audio branch (HTSAT-base, hearing the mixture at 48 kHz) and by the CLAP
text embeddings of a positive and a negative query.

**Queries.** The query of each row is the positive one. The negative query is the option
``negative`` (``-o negative="people talking"``; surrounding spaces stripped, at most 77 tokens, else
refused), the same for every row; by default (or empty) there is none
and its half of the condition is the zero vector, as the authors' demo does for a missing side.
Each query goes through CLAP's RoBERTa text tower (at most 77 tokens, LAION-CLAP's tokenizer
length) to a unit 512-d embedding; the condition is ``normalize(concat(positive, negative))``
(1024-d): what training's loss path and the demo do (the repository's ``test_step`` skips the
normalisation). A positive query over 77 tokens is cut to 77 as the authors' code does, and counted:
:attr:`ClapSep.rate_note`, which the pipelines read again after a run, says how many distinct
queries were cut (with several ranks, rank 0's).

**Rates.** lasskit hands 16 kHz audio: it is resampled to 32 kHz with soxr (HQ) and the estimate
back, cropped to the input's length (:attr:`ClapSep.rate_note` says so in a run's summary and
``separate.json``). Inside, each window at 32 kHz is resampled to 48 kHz for the CLAP encoder
with ``torchaudio.functional.resample`` at its defaults (the authors' ``torchaudio`` Resample).

**Windows.** One pass takes at most 1024 frames (10.23 s at 32 kHz: HTSAT's fixed input; the
authors pad shorter spectrograms to it). ``max_seconds`` is 10, so ``lasskit separate`` cuts a
longer clip into 10 s windows with its overlap-add chunking (``--chunk-seconds``/``--chunk-overlap``,
recorded in ``separate.json``; the long-audio engine for recordings likewise). Called directly
(``separate`` / :meth:`ClapSep.separate_embedded`) on a longer input, the model cuts it itself like
the authors' demo: consecutive 320000-sample windows, each separated alone, the last holding the
rest (a rest of at most 7360 samples, 0.23 s, joins the window before it, which stays within 1024
frames); ``windows_run`` counts the windows of the last call. Inputs shorter than 1024 samples at
32 kHz are zero-padded to it and cropped back. The authors' demo also rescales a mixture whose peak
exceeds 1 to a peak of 0.9; lasskit does not (its inputs are the files' samples).

**Weights** (:mod:`lasskit.models.cards`): ``checkpoint`` is the authors' ``best_model.ckpt``:
the Lightning module's ``state_dict`` (under ``state_dict`` or bare) with ``decoder_model.*`` and
the tuned parts of ``audio_branch.*`` (every ``lora_A``/``lora_B`` of the attention ``qkv`` and
``proj`` layers; their biases; any other ``audio_branch.*`` tensor it holds replaces the CLAP
file's). ``clap_checkpoint`` is ``music_audioset_epoch_15_esc_90.14.pt``, the LAION-CLAP file whose
audio branch the LoRA copy starts from and whose text tower embeds the queries. ``clap_model.*``,
``stft.*`` and ``istft.*`` keys (the frozen CLAP copy and the fixed STFT kernels a full Lightning
state holds) are accepted and not used. Loading is strict otherwise: a missing or unexpected key
is named; a checkpoint of another model (``ss_model.*``) or a CLAP file is one line naming it. A state
saved from a ``DistributedDataParallel`` wrapper (every key under ``module.``) is read without the prefix. LoRA is merged at
load: ``W + (B @ A) / r`` (``lora_alpha`` 1, loralib's default).

**Sources.** The network, the STFT, the hooks, LoRA and the training/test paths are read from the
repository at 5404111a. The Space's ``app.py`` (the demo) could not be read here: what this doc
says the demo does (zero vector for a missing query side, ``normalize(concat(...))``, hard 10 s
windows, the 0.9 rescale) comes from a third party's account of it, and the weight files' sizes
likewise; no SHA-256 of them was found.

Training (``lasskit train --model clapsep``) is not supported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lasskit.errors import UsageError, WorkError
from lasskit.models import cards
from lasskit.models.base import SeparationModel

NAME = "clapsep"
SAMPLE_RATE = 16000
NETWORK_RATE = 32000
WINDOW_SAMPLES = 320000
"""The authors' demo window: 10 s at 32 kHz."""
TEXT_TOKENS = 77
"""LAION-CLAP's tokenizer length (``max_length=77``, truncating)."""
DECODER_PREFIX = "decoder_model."
BRANCH_PREFIX = "audio_branch."
IGNORED_PREFIXES = ("clap_model.", "stft.", "istft.")
LORA_LAYERS = (".attn.qkv", ".attn.proj")
OPTIONS = ("clap_checkpoint", "tokenizer", "negative", "text_batch_size")


def window_spans(samples: int, window: int = WINDOW_SAMPLES, limit: int | None = None) -> list[tuple[int, int]]:
    """``(start, end)`` of the windows a long input is cut into (see the module doc): consecutive
    ``window``-sample windows, the last holding the rest; a rest that fits in the window before it
    (up to ``limit``, 327360 samples) joins it."""
    from lasskit.models.clapsep_net import MAX_SAMPLES

    limit = MAX_SAMPLES if limit is None else limit
    if samples <= limit:
        return [(0, samples)]
    spans = [(start, min(samples, start + window)) for start in range(0, samples, window)]
    last_start, last_end = spans[-1]
    if len(spans) > 1 and last_end - spans[-2][0] <= limit:
        spans[-2:] = [(spans[-2][0], last_end)]
    return spans


def _first(keys: list[str], n: int = 3) -> str:
    keys = list(dict.fromkeys(keys))
    return ", ".join(keys[:n]) + (", ..." if len(keys) > n else "")


def split_checkpoint(state: dict, source: str) -> tuple[dict, dict, dict]:
    """(decoder tensors, ``audio_branch.*`` non-LoRA tensors, LoRA tensors) of a CLAPSep state dict."""
    from lasskit.models.zoo import identify_separator

    if any(k.startswith("ss_model.") for k in state):
        owner = identify_separator({k[len("ss_model."):]: v for k, v in state.items() if k.startswith("ss_model.")})
        raise WorkError(f"{source}: this is a {owner or 'ResUNet30-family'} checkpoint, not clapsep; use "
                        f"--model {owner or 'dcase2024-baseline'}, or CLAPSep's best_model.ckpt")
    decoder = {k[len(DECODER_PREFIX):]: v for k, v in state.items() if k.startswith(DECODER_PREFIX)}
    if not decoder and any(k.startswith("text_branch.") for k in state):
        raise WorkError(f"{source}: this is a CLAP file (the text/audio encoder), not clapsep's checkpoint; give it "
                        "as --option clap_checkpoint=PATH and CLAPSep's best_model.ckpt as --checkpoint")
    if not decoder:
        raise WorkError(f"{source}: no CLAPSep decoder (decoder_model.* keys); use CLAPSep's best_model.ckpt "
                        "(`lasskit models download clapsep`)")
    branch = {k: v for k, v in state.items() if k.startswith(BRANCH_PREFIX) and ".lora_" not in k}
    lora = {k: v for k, v in state.items() if k.startswith(BRANCH_PREFIX) and ".lora_" in k}
    unexpected = [k for k in state if not k.startswith((DECODER_PREFIX, BRANCH_PREFIX) + IGNORED_PREFIXES)]
    if unexpected:
        raise WorkError(f"{source}: unexpected keys for clapsep: {_first(unexpected)}; use CLAPSep's best_model.ckpt")
    return decoder, branch, lora


def merge_lora(audio: dict, lora: dict, source: str) -> dict:
    """``audio`` (LAION ``audio_branch.*`` names) with each attention ``qkv``/``proj`` weight merged
    with its LoRA pair; every such layer must have one, and no other layer may."""
    from lasskit.models.clapsep_net import lora_merged

    layers = sorted({k.rsplit(".", 1)[0] for k in audio
                     if k.endswith(".weight") and k.rsplit(".", 1)[0].endswith(LORA_LAYERS)
                     and ".blocks." in k})
    expected = {f"{layer}.lora_{ab}" for layer in layers for ab in ("A", "B")}
    missing = sorted(expected - set(lora))
    unexpected = sorted(set(lora) - expected)
    if missing or unexpected:
        detail = "; ".join(p for p in (f"missing {_first(missing)}" if missing else "",
                                       f"unexpected {_first(unexpected)}" if unexpected else "") if p)
        raise WorkError(f"{source}: CLAPSep's LoRA weights do not fit the audio branch: {detail}; "
                        "use CLAPSep's best_model.ckpt with music_audioset_epoch_15_esc_90.14.pt")
    merged = dict(audio)
    for layer in layers:
        a, b, w = lora[f"{layer}.lora_A"], lora[f"{layer}.lora_B"], audio[f"{layer}.weight"]
        if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1] or (b.shape[0], a.shape[1]) != tuple(w.shape):
            raise WorkError(f"{source}: {layer}.lora_A {tuple(a.shape)} / lora_B {tuple(b.shape)} do not fit "
                            f"its weight {tuple(w.shape)}")
        merged[f"{layer}.weight"] = lora_merged(w.float(), a, b)
    return merged


def decoder_config(decoder_state: dict, source: str) -> dict:
    """The :class:`~lasskit.models.clapsep_net.ClapSepDecoder` keywords the tensors describe (the
    released decoder: width 128, depths 1/1/1/1, heads 4/8/16/32, masker 640 x 3; smaller ones in tests)."""
    from lasskit.models.clapsep_net import MEL_BINS

    def count(prefix: str) -> int:
        return len({k[len(prefix):].split(".")[0] for k in decoder_state if k.startswith(prefix)})

    try:
        stages = count("layers.")
        layer = [f"layers.{stages - 1 - i}." for i in range(stages)]  # stage i (narrowest first) is layers.<last - i>
        embed_dim = int(decoder_state["inverse_patch_embed.norm.weight"].shape[0])
        config = {
            "embed_dim": embed_dim,
            "encoder_embed_dim": int(decoder_state[f"skip.{stages - 1}.feature_proj.weight"].shape[1]),
            "depths": tuple(count(p + "blocks.") for p in layer),
            "heads": tuple(int(decoder_state[p + "blocks.0.attn.relative_position_bias_table"].shape[1])
                           for p in layer),
            "lan_embed_dim": int(decoder_state["film.skip_conv.beta.weight"].shape[1]),
            "d_attn": int(decoder_state["mask_net.0.weight"].shape[0]),
            "n_masker_layer": count("mask_net.2.layers."),
            "mlp_ratio": decoder_state[f"{layer[0]}blocks.0.mlp.fc1.weight"].shape[0] / embed_dim,
        }
        bins = int(decoder_state["mask_net.3.weight"].shape[0])
    except (KeyError, IndexError) as exc:
        raise WorkError(f"{source}: CLAPSep decoder weights lack {exc}; use CLAPSep's best_model.ckpt") from None
    if stages < 1 or bins != MEL_BINS * 8 + 1:
        raise WorkError(f"{source}: the CLAPSep decoder has {stages} stages and a {bins}-bin mask; lasskit runs "
                        "the 1024-point STFT (513 bins); use CLAPSep's best_model.ckpt")
    return config


def load_decoder(decoder_state: dict, source: str):
    """A :class:`~lasskit.models.clapsep_net.ClapSepDecoder` loaded strictly from ``decoder_model.*``."""
    import torch

    from lasskit.models.clapsep_net import ClapSepDecoder

    decoder = ClapSepDecoder(**decoder_config(decoder_state, source))
    own = decoder.state_dict()
    missing = [DECODER_PREFIX + k for k in own if k not in decoder_state and not k.endswith("num_batches_tracked")]
    unexpected = [DECODER_PREFIX + k for k in decoder_state if k not in own]
    wrong = [f"{DECODER_PREFIX}{k} {tuple(v.shape)} != {tuple(own[k].shape)}" for k, v in decoder_state.items()
             if k in own and tuple(v.shape) != tuple(own[k].shape)]
    fixed = [DECODER_PREFIX + k for k, v in decoder_state.items() if k.endswith("relative_position_index")
             and k in own and tuple(v.shape) == tuple(own[k].shape) and not torch.equal(v.long(), own[k])]
    if missing or unexpected or wrong or fixed:
        detail = "; ".join(p for p in (
            f"missing {_first(missing)}" if missing else "", f"unexpected {_first(unexpected)}" if unexpected else "",
            f"shape {_first(wrong)}" if wrong else "",
            f"{_first(fixed)} differs from the Swin relative position index" if fixed else "") if p)
        raise WorkError(f"{source}: CLAPSep decoder weights do not fit: {detail}; use CLAPSep's best_model.ckpt")
    decoder.load_state_dict({k: v for k, v in decoder_state.items()}, strict=False)
    return decoder.eval()


class ClapSep(SeparationModel):
    """CLAPSep (see the module doc). After construction: ``network``
    (:class:`~lasskit.models.clapsep_net.ClapSepNetwork`), ``text_encoder``, ``checkpoint``,
    ``checkpoint_sha256`` (of the checkpoint and the CLAP file together)."""

    name = NAME
    description = "CLAPSep (Ma et al.): LoRA-tuned CLAP audio encoder + Swin mask decoder at 32 kHz; inference only"
    sample_rate = SAMPLE_RATE
    network_rate = NETWORK_RATE
    max_seconds = 10.0
    trained_seconds = 10.0
    padding_invariant = False
    bytes_per_sample = 8000.0
    """Peak memory of one pass per 16 kHz input sample: a 10 s window peaked at 1367 MiB of RSS on the CPU
    (benchmarks/bench_models.py), ~0.45 GB of it weights: ~5.6 kB per sample of activations; with margin."""

    @property
    def card(self) -> cards.ModelCard:
        return cards.CARDS[self.name]

    @property
    def rate_note(self) -> str:
        """The run's note (read again after the run): rates and windows, and the queries cut to 77 tokens."""
        note = ("clapsep runs at 32 kHz (its CLAP encoder at 48 kHz): 16 kHz mixtures are resampled to 32 kHz "
                "and the estimates back to 16 kHz (soxr HQ); it takes at most 10 s per call: longer clips are separated "
                "in windows (their length: the run's chunk/window settings)")
        cut = sorted(getattr(getattr(self, "text_encoder", None), "cut_queries", ()) or ())
        if cut:
            note += (f"; {len(cut)} distinct quer{'y' if len(cut) == 1 else 'ies'} longer than {TEXT_TOKENS} tokens "
                     f"were cut to {TEXT_TOKENS} (LAION-CLAP's length, as the authors' code does), e.g. "
                     f"{cut[0][:60]!r}")
        return note

    def __init__(self, checkpoint: str | None = None, device: str = "cpu", clap_checkpoint: str | None = None,
                 tokenizer: str | None = None, negative: str | None = None, text_batch_size: int = 32,
                 text_encoder: Any = None, **options: Any) -> None:
        import torch

        from lasskit import weights
        from lasskit.models.baseline import count_option, load_checkpoint_state, without_module_prefix
        from lasskit.models.clap_audio import audio_state_from_checkpoint, load_clap_audio_tower
        from lasskit.models.clapsep_net import ClapSepNetwork

        if options:
            raise UsageError(f"{self.name}: unknown option(s) {', '.join(sorted(options))}; known: {', '.join(OPTIONS)}")
        device = str(device)
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise UsageError(f"device {device}: CUDA is not available here; use --device cpu")
        text_batch_size = count_option(self.name, "text_batch_size", text_batch_size)
        if negative is not None and not isinstance(negative, str):  # -o negative=1e5 arrives as 100000.0
            raise UsageError(f"{self.name}: negative={negative!r} is not a text query (-o reads true/false/numbers "
                             "as such); give words, e.g. -o negative=\"people talking\"")
        self.negative = None if negative is None or not negative.strip() else negative.strip()
        path = Path(checkpoint).expanduser() if checkpoint else self._cached("checkpoint")
        clap_path = Path(clap_checkpoint).expanduser() if clap_checkpoint else self._cached("clap")
        super().__init__(str(path), device, clap_checkpoint=str(clap_path), tokenizer=tokenizer,
                         negative=self.negative, text_batch_size=int(text_batch_size))
        state = without_module_prefix(load_checkpoint_state(path))
        decoder_state, branch, lora = split_checkpoint(state, str(path))
        decoder = load_decoder(decoder_state, str(path))
        clap_state = load_checkpoint_state(clap_path)
        audio = audio_state_from_checkpoint(clap_state)
        if audio is None:
            raise WorkError(f"{clap_path}: no CLAP audio branch (audio_branch.*, audio_projection.*); use "
                            "music_audioset_epoch_15_esc_90.14.pt")
        audio.update(branch)
        audio = merge_lora(audio, lora, str(path))
        tower = load_clap_audio_tower(audio, f"{path} + {clap_path}")
        self.network = ClapSepNetwork(tower, decoder).eval().to(device)
        self.checkpoint_sha256 = _joint_sha256(weights.sha256_cached(path), weights.sha256_cached(clap_path))
        if text_encoder is None:
            text_encoder = self._text_encoder(clap_state, clap_path, tokenizer, int(text_batch_size))
        self.text_encoder = text_encoder.to(device) if hasattr(text_encoder, "to") else text_encoder
        self._check_negative_fits()
        self.windows_run = 0

    def _check_negative_fits(self) -> None:
        """A negative query longer than the text tower reads (77 tokens) is refused, not cut without a word."""
        tokenizer = getattr(self.text_encoder, "tokenizer", None)
        if self.negative is None or tokenizer is None:
            return
        count = len(tokenizer([self.negative], truncation=False)["input_ids"][0])
        if count > TEXT_TOKENS:
            raise UsageError(f"-o negative: {count} tokens; CLAPSep's text tower reads at most {TEXT_TOKENS} "
                             "(LAION-CLAP's length): give a shorter negative query")

    def _cached(self, role: str) -> Path:
        path = cards.cached_weight(self.name, role=role)
        if path is None:
            decl = next(d for d in cards.weight_files(self.name) if d.role == role)
            option = "--checkpoint PATH" if role == "checkpoint" else "-o clap_checkpoint=PATH"
            raise UsageError(f"{self.name}: no {decl.filename}; run `lasskit models download {self.name}` "
                             f"or pass {option} ({decl.filename} from {decl.source})")
        return path

    @staticmethod
    def _text_encoder(clap_state, clap_path, tokenizer, batch_size):
        from lasskit.models.text_encoder import load_clap_text_encoder, load_tokenizer, text_state_from_checkpoint

        text_state = text_state_from_checkpoint(clap_state)
        if text_state is None:
            raise WorkError(f"{clap_path}: no CLAP text tower (text_branch.*, text_projection.*); use "
                            "music_audioset_epoch_15_esc_90.14.pt")
        encoder = load_clap_text_encoder(text_state, load_tokenizer(tokenizer), source=str(clap_path),
                                         batch_size=batch_size)
        encoder.encode = _encode_77(encoder)
        return encoder

    def condition(self, queries: list[str]):
        """(len(queries), 1024): ``normalize(concat(positive, negative))`` (negative: the option or zeros)."""
        import torch
        import torch.nn.functional as F

        positive = self.text_encoder.embed(list(queries)).to(self.device, torch.float32)
        if self.negative is None:
            negative = torch.zeros_like(positive)
        else:
            negative = self.text_encoder.embed([self.negative]).to(self.device, torch.float32).expand_as(positive)
        return F.normalize(torch.cat([positive, negative], dim=-1), dim=-1)

    def separate(self, mixtures, queries: list[str]):
        """(batch, samples) 16 kHz mixtures and one query each -> (batch, samples) 16 kHz estimates."""
        import torch

        from lasskit.models.zoo import resample

        if len(queries) != mixtures.shape[0]:
            raise UsageError(f"{len(queries)} queries for {mixtures.shape[0]} mixtures")
        length = mixtures.shape[-1]
        with torch.inference_mode():
            conditions = self.condition(list(queries))
            x = resample(mixtures.to(torch.float32), SAMPLE_RATE, NETWORK_RATE).to(self.device)
            y = resample(self.separate_embedded(x, conditions), NETWORK_RATE, SAMPLE_RATE)
            if y.shape[-1] < length:
                y = torch.nn.functional.pad(y, (0, length - y.shape[-1]))
        return y[..., :length].to(mixtures.device)

    def separate_embedded(self, mixtures, conditions):
        """(batch, samples) 32 kHz mixtures and (batch, 1024) conditions -> (batch, samples) at 32 kHz,
        in the windows of :func:`window_spans` (counted in ``windows_run``)."""
        import torch
        import torch.nn.functional as F

        from lasskit.models.clap_audio import resample as to_48k
        from lasskit.models.clapsep_net import ENCODER_RATE, N_FFT

        samples = mixtures.shape[-1]
        if samples == 0:
            return mixtures.clone()
        if samples < N_FFT:
            return self.separate_embedded(F.pad(mixtures, (0, N_FFT - samples)), conditions)[:, :samples]
        spans = window_spans(samples)
        self.windows_run = len(spans)
        out = torch.empty_like(mixtures)
        with torch.inference_mode():
            for start, end in spans:
                x = mixtures[:, start:end]
                out[:, start:end] = self.network(x, conditions, to_48k(x, NETWORK_RATE, ENCODER_RATE))
        return out


def _encode_77(encoder):
    """``encoder.encode`` with LAION-CLAP's 77-token truncation (same embedding for shorter queries)."""
    import torch
    from torch import nn

    encoder.cut_queries = set()  # counted, not cut without a word (ClapSep.rate_note says how many)

    def encode(texts):
        texts = list(texts)
        lengths = encoder.tokenizer(texts, truncation=False)["input_ids"]
        encoder.cut_queries.update(t for t, ids in zip(texts, lengths) if len(ids) > TEXT_TOKENS)
        tokens = encoder.tokenizer(texts, padding=encoder.padding, truncation=True, max_length=TEXT_TOKENS,
                                   return_tensors="pt")
        with torch.inference_mode():
            pooled = encoder.roberta(input_ids=tokens["input_ids"].to(encoder.device),
                                     attention_mask=tokens["attention_mask"].to(encoder.device)).pooler_output
            return nn.functional.normalize(encoder.projection(pooled), dim=-1)

    return encode


def _joint_sha256(*digests: str | None) -> str | None:
    """One SHA-256 for the files that make the outputs (checkpoint, CLAP file), in order."""
    import hashlib

    if any(d is None for d in digests):
        return None
    return hashlib.sha256(" ".join(digests).encode()).hexdigest()
