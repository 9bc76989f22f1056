"""CLAP's text branch (the baseline's query encoder), on ``transformers``' RoBERTa.

``embedding = normalize(Linear(512 -> 512)(relu(Linear(768 -> 512)(pooler_output))))``, where
``pooler_output = tanh(dense(h[<s>]))`` of RoBERTa-base run on the roberta-base BPE tokens of
the query (at most 512 tokens). The organizers pad every query to 512 tokens; with the attention
mask, padding to the longest query of the batch gives the same embedding (to float rounding)
at a fraction of the cost, so that is what :class:`ClapTextEncoder` does.

Weights sit under ``text_branch.`` and ``text_projection.`` in a CLAP checkpoint (maybe behind
``module.``) and under ``query_encoder.model.`` + the same in the baseline's Lightning checkpoint.
``transformers`` is imported only when an encoder is built (``pip install 'lasskit[baseline]'``).

The tokenizer must be roberta-base's, and it is proved so before any query is embedded
(:func:`check_tokenizer`): its vocabulary has exactly as many tokens as the checkpoint's embedding
has rows (50265), ``<s>``, ``<pad>``, ``</s>``, ``<unk>`` sit at ids 0, 1, 2, 3 and ``<mask>``
at the last id, and a non-empty query gives more tokens than those two special ones. Otherwise
a wrong tokenizer would run silently: transformers 5 without roberta-base in its cache returns a
5-token tokenizer, every query becomes ``<s></s>`` and the baseline ignores the text.
:func:`load_tokenizer` looks in the ``tokenizer`` folder given, else in lasskit's cache
(``<cache>/tokenizers/roberta-base``, filled by ``lasskit models download dcase2024-baseline``),
else in the Hugging Face cache, never on the network.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from lasskit.errors import UsageError, WorkError

EMBEDDING_SIZE = 512
"""Width of CLAP's joint text/audio space."""
MAX_TOKENS = 512
"""Longest token sequence (RoBERTa's 514 positions less the 2 reserved ones)."""
ROBERTA_HEAD_WIDTH = 64
"""RoBERTa-base: 768 = 12 heads x 64; the head count is inferred as width / 64."""
TEXT_PREFIXES = ("query_encoder.model.", "module.", "")
"""Where a checkpoint may keep ``text_branch.*`` and ``text_projection.*`` (tried in order)."""
IGNORED_BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids")
"""Non-learned buffers that older ``transformers`` versions saved in the text branch."""


class TextEncoder(Protocol):
    """What the baseline needs from a query encoder: unit-norm embeddings, one row per query."""

    def embed(self, queries: Sequence[str]) -> torch.Tensor:
        """(len(queries), 512) float32 tensor."""


def require_transformers():
    """Import ``transformers`` or say how to install it."""
    try:
        import transformers
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise UsageError("the dcase2024-baseline model needs transformers: pip install 'lasskit[baseline]'") from exc
    return transformers


def build_projection(width: int = 768, size: int = EMBEDDING_SIZE) -> nn.Sequential:
    """CLAP's ``text_projection``: Linear(width, size), ReLU, Linear(size, size) (keys ``0.*`` and ``2.*``)."""
    return nn.Sequential(nn.Linear(width, size), nn.ReLU(), nn.Linear(size, size))


class ClapTextEncoder(nn.Module):
    """Queries -> unit-norm 512-d CLAP text embeddings, computed in batches and cached per string.

    ``roberta`` is a ``transformers.RobertaModel`` with its pooler, ``projection`` the
    :func:`build_projection` MLP, ``tokenizer`` any callable with the Hugging Face signature
    ``tokenizer(texts, padding=..., truncation=True, max_length=512, return_tensors="pt")``
    returning ``input_ids`` and ``attention_mask``. ``padding`` is ``"longest"`` (default) or
    ``"max_length"`` (the organizers' 512-token padding; same result, slower).
    """

    def __init__(self, roberta: nn.Module, projection: nn.Module, tokenizer: Callable[..., Any],
                 batch_size: int = 32, padding: str = "longest") -> None:
        super().__init__()
        if padding not in ("longest", "max_length"):
            raise ValueError(f"padding must be 'longest' or 'max_length', not {padding!r}")
        self.roberta = roberta
        self.projection = projection
        self.tokenizer = tokenizer
        self.batch_size = max(1, int(batch_size))
        self.padding = padding
        self.cache: dict[str, torch.Tensor] = {}

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """One batch, no cache: (len(texts), 512) unit-norm embeddings on the encoder's device."""
        tokens = self.tokenizer(list(texts), padding=self.padding, truncation=True, max_length=MAX_TOKENS,
                                return_tensors="pt")
        with torch.inference_mode():
            pooled = self.roberta(input_ids=tokens["input_ids"].to(self.device),
                                  attention_mask=tokens["attention_mask"].to(self.device)).pooler_output
            return nn.functional.normalize(self.projection(pooled), dim=-1)

    def embed(self, queries: Sequence[str]) -> torch.Tensor:
        """(len(queries), 512) embeddings on the encoder's device; each distinct string is encoded once."""
        todo = list(dict.fromkeys(q for q in queries if q not in self.cache))
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start:start + self.batch_size]
            for text, row in zip(chunk, self.encode(chunk).float().cpu()):
                self.cache[text] = row.clone()
        if not queries:
            return torch.zeros(0, EMBEDDING_SIZE, device=self.device)
        return torch.stack([self.cache[q] for q in queries]).to(self.device)


# ---------------------------------------------------------------------------------------------
# Loading


def text_state_from_checkpoint(state: Mapping[str, Any]) -> dict[str, Any] | None:
    """``{"text_branch.*", "text_projection.*"}`` tensors of a CLAP or baseline state dict; None if absent."""
    for prefix in TEXT_PREFIXES:
        branch, projection = prefix + "text_branch.", prefix + "text_projection."
        if any(k.startswith(branch) for k in state) and any(k.startswith(projection) for k in state):
            return {k[len(prefix):]: v for k, v in state.items() if k.startswith((branch, projection))}
    return None


def roberta_config_from_state(branch: Mapping[str, Any], num_attention_heads: int | None = None):
    """A ``RobertaConfig`` matching the text-branch tensors (roberta-base's other settings)."""
    transformers = require_transformers()
    try:
        vocab_size, width = branch["embeddings.word_embeddings.weight"].shape
        positions = branch["embeddings.position_embeddings.weight"].shape[0]
        token_types = branch["embeddings.token_type_embeddings.weight"].shape[0]
        intermediate = branch["encoder.layer.0.intermediate.dense.weight"].shape[0]
    except KeyError as exc:
        raise WorkError(f"text branch lacks {exc.args[0]}: not a RoBERTa text encoder") from None
    layers = len({k.split(".")[2] for k in branch if k.startswith("encoder.layer.")})
    heads = num_attention_heads or max(1, width // ROBERTA_HEAD_WIDTH)
    return transformers.RobertaConfig(
        vocab_size=vocab_size, hidden_size=width, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=intermediate, max_position_embeddings=positions, type_vocab_size=token_types,
        hidden_act="gelu", layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0, eos_token_id=2,
    )


def load_clap_text_encoder(state: Mapping[str, Any], tokenizer: Callable[..., Any], config=None,
                           source: str = "the checkpoint", batch_size: int = 32) -> ClapTextEncoder:
    """Build a :class:`ClapTextEncoder` from ``text_branch.*``/``text_projection.*`` tensors (strict).

    ``state`` may be a whole CLAP or baseline state dict (see :data:`TEXT_PREFIXES`). The
    ``position_ids``/``token_type_ids`` buffers that older ``transformers`` saved are ignored; any
    other missing or unexpected key raises :class:`WorkError` naming ``source``.
    """
    transformers = require_transformers()
    text = text_state_from_checkpoint(state)
    if text is None:
        raise WorkError(f"{source}: no CLAP text encoder weights (text_branch.* and text_projection.*)")
    branch = {k[len("text_branch."):]: v for k, v in text.items() if k.startswith("text_branch.")}
    branch = {k: v for k, v in branch.items() if k not in IGNORED_BUFFERS}
    projection_state = {k[len("text_projection."):]: v for k, v in text.items() if k.startswith("text_projection.")}
    config = config or roberta_config_from_state(branch)
    check_tokenizer(tokenizer, int(config.vocab_size),
                    getattr(tokenizer, "lasskit_source", None) or "the tokenizer")
    roberta = transformers.RobertaModel(config, add_pooling_layer=True)
    _load_strict(roberta, branch, "text_branch.", source, ignore=IGNORED_BUFFERS)
    width = config.hidden_size
    size = projection_state.get("2.weight", torch.empty(EMBEDDING_SIZE)).shape[0]
    projection = build_projection(width, size)
    _load_strict(projection, projection_state, "text_projection.", source)
    return ClapTextEncoder(roberta.eval(), projection.eval(), tokenizer, batch_size=batch_size)


def _load_strict(module: nn.Module, state: Mapping[str, Any], prefix: str, source: str,
                 ignore: Sequence[str] = ()) -> None:
    expected = {k: v for k, v in module.state_dict().items() if k not in ignore}
    missing = [prefix + k for k in expected if k not in state]
    unexpected = [prefix + k for k in state if k not in expected]
    wrong = [f"{prefix}{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
             if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or wrong:
        detail = "; ".join(part for part in (
            f"missing {_first(missing)}" if missing else "",
            f"unexpected {_first(unexpected)}" if unexpected else "",
            f"shape {_first(wrong)}" if wrong else "",
        ) if part)
        raise WorkError(f"{source}: CLAP text encoder weights do not fit RoBERTa: {detail}; "
                        "use music_speech_audioset_epoch_15_esc_89.98.pt or the baseline checkpoint")
    module.load_state_dict(dict(state), strict=False)  # buffers in `ignore` keep their built values


def _first(keys: list[str], n: int = 3) -> str:
    return ", ".join(keys[:n]) + (", ..." if len(keys) > n else "")


TOKENIZER_HELP = (
    "get roberta-base's tokenizer with `lasskit models download dcase2024-baseline` (on a machine with "
    "internet; copy its cache folder to an offline one), or pass --tokenizer DIR with roberta-base's "
    "vocab.json and merges.txt"
)

SPECIAL_IDS = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
"""roberta-base's special tokens and their ids (``<mask>`` is the last id, 50264)."""
ROBERTA_VOCAB_SIZE = 50265


def check_tokenizer(tokenizer: Any, vocab_size: int | None = None, source: str = "the tokenizer") -> None:
    """Prove ``tokenizer`` is roberta-base's BPE for an embedding of ``vocab_size`` rows, else a UsageError.

    Checks: ``len(tokenizer) == vocab_size`` (when given), the special tokens at roberta-base's ids,
    and that a non-empty query gives more than ``<s>`` and ``</s>``. A tokenizer that is a plain
    callable without a vocabulary (tests) is only given the last check.
    """
    problems = []
    size = None
    try:
        size = len(tokenizer)
    except TypeError:
        pass
    if size is not None and vocab_size is not None and size != vocab_size:
        problems.append(f"{size} tokens where the checkpoint's embedding has {vocab_size} rows")
    convert = getattr(tokenizer, "convert_tokens_to_ids", None)
    if size is not None and callable(convert):
        for token, want in SPECIAL_IDS.items():
            got = convert(token)
            if got != want:
                problems.append(f"{token} at id {got}, not {want}")
                break
        if not problems and size is not None and convert("<mask>") != size - 1:
            problems.append(f"<mask> at id {convert('<mask>')}, not {size - 1}")
    if not problems:
        try:
            ids = tokenizer(["a dog barks"], padding="longest", truncation=True, max_length=MAX_TOKENS,
                            return_tensors="pt")["input_ids"][0].tolist()
        except Exception as exc:  # noqa: BLE001 - a broken tokenizer is a wrong tokenizer
            problems.append(f"it fails on a query ({type(exc).__name__})")
        else:
            if len(ids) <= 2:
                problems.append(f"the query 'a dog barks' becomes only {len(ids)} token(s)")
    if problems:
        detail = problems[0] if size is None or vocab_size is not None else f"{size} tokens; {problems[0]}"
        raise UsageError(f"{source} is not roberta-base's ({detail}); {TOKENIZER_HELP}")


def _has_tokenizer_files(folder: Path) -> bool:
    return (folder / "tokenizer.json").is_file() or ((folder / "vocab.json").is_file() and
                                                    (folder / "merges.txt").is_file())


def load_tokenizer(path: str | Path | None = None):
    """roberta-base's BPE tokenizer from folder ``path``, else lasskit's cache, else the Hugging Face
    cache (never the network); checked with :func:`check_tokenizer` (without the vocabulary size)."""
    transformers = require_transformers()
    if path is None:
        from lasskit import weights

        cached = weights.tokenizer_dir("roberta-base")
        path = cached if _has_tokenizer_files(cached) else None
    if path is not None:
        folder = Path(path).expanduser()
        if not _has_tokenizer_files(folder):
            raise UsageError(f"{folder}: no RoBERTa tokenizer here (tokenizer.json, or vocab.json + merges.txt); "
                             f"{TOKENIZER_HELP}")
        source = str(folder)
        label = f"the tokenizer in {folder}"
    else:
        source = "roberta-base"
        label = "the tokenizer transformers returned for roberta-base (offline, Hugging Face cache)"
    try:
        tokenizer = transformers.RobertaTokenizerFast.from_pretrained(source, local_files_only=True)
    except (OSError, ValueError) as exc:
        where = f"{source}" if path is not None else "roberta-base is not in the Hugging Face cache"
        raise UsageError(f"{where}: cannot load the tokenizer ({_first_sentence(exc)}); {TOKENIZER_HELP}") from None
    check_tokenizer(tokenizer, None, label)
    tokenizer.lasskit_source = label
    return tokenizer


def _first_sentence(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    end = text.find(". ")
    return (text if end < 0 else text[:end]).rstrip(".")
