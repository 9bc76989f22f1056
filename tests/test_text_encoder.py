"""The CLAP text branch on transformers, with a tiny RoBERTa (2 layers, width 32) and a tiny BPE
tokenizer written by the test (no hub access)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers")

from lasskit import miniature  # noqa: E402
from lasskit.errors import UsageError, WorkError  # noqa: E402
from lasskit.models.text_encoder import (  # noqa: E402
    EMBEDDING_SIZE,
    ClapTextEncoder,
    build_projection,
    load_clap_text_encoder,
    load_tokenizer,
    roberta_config_from_state,
    text_state_from_checkpoint,
)

QUERIES = ["a dog barks", "rain on a tin roof", "a dog", "people talking in a busy cafe", "birds"]


def tiny_vocab(extra: tuple[str, ...] = ()) -> dict[str, int]:
    """A byte-level BPE vocabulary laid out like roberta-base's (special tokens 0-3, <mask> last)."""
    return miniature.byte_bpe_vocab(("Ġd", "Ġdo", "Ġdog", "ra", "Ġa", *extra))


TINY_MERGES = "#version: 0.2\nĠ d\nĠd o\nĠdo g\nr a\nĠ a\n"


def write_tokenizer(folder: Path, vocab: dict[str, int] | None = None) -> Path:
    return miniature.write_tokenizer(folder, vocab or tiny_vocab(), TINY_MERGES)


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory) -> Path:
    return write_tokenizer(tmp_path_factory.mktemp("tokenizer"))


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir):
    return load_tokenizer(tokenizer_dir)


def tiny_config(heads: int = 2):
    return transformers.RobertaConfig(
        vocab_size=len(tiny_vocab()), hidden_size=32, num_hidden_layers=2, num_attention_heads=heads, intermediate_size=37,
        max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0,
        eos_token_id=2, initializer_range=0.5,  # large weights: texts give clearly different embeddings
    )


def tiny_text_state(heads: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    """``text_branch.*`` + ``text_projection.*`` of a random tiny CLAP text side."""
    torch.manual_seed(seed)
    roberta = transformers.RobertaModel(tiny_config(heads), add_pooling_layer=True)
    projection = build_projection(32, EMBEDDING_SIZE)
    state = {f"text_branch.{k}": v for k, v in roberta.state_dict().items()}
    state.update({f"text_projection.{k}": v for k, v in projection.state_dict().items()})
    return state


@pytest.fixture(scope="module")
def encoder(tokenizer) -> ClapTextEncoder:
    return load_clap_text_encoder(tiny_text_state(), tokenizer, config=tiny_config())


def reference_embedding(encoder: ClapTextEncoder, text: str) -> torch.Tensor:
    """normalize(proj(pooler_output)) for one text, unpadded, computed by hand."""
    tokens = encoder.tokenizer([text], return_tensors="pt")
    with torch.no_grad():
        hidden = encoder.roberta(input_ids=tokens["input_ids"]).last_hidden_state
        pooled = torch.tanh(encoder.roberta.pooler.dense(hidden[:, 0]))
        first = torch.relu(encoder.projection[0](pooled))
        out = encoder.projection[2](first)
    return (out / out.norm(dim=-1, keepdim=True))[0]


def test_tokenizer_from_folder(tokenizer):
    ids = tokenizer(["a dog"], return_tensors="pt")["input_ids"][0].tolist()
    assert ids[0] == 0 and ids[-1] == 2  # <s> ... </s>
    assert tokenizer.convert_ids_to_tokens(ids) == ["<s>", "a", "Ġdog", "</s>"]


def test_embedding_is_the_clap_formula(encoder):
    embeddings = encoder.embed(QUERIES)
    assert embeddings.shape == (len(QUERIES), EMBEDDING_SIZE) and embeddings.dtype == torch.float32
    assert torch.allclose(embeddings.norm(dim=-1), torch.ones(len(QUERIES)), atol=1e-6)
    for text, row in zip(QUERIES, embeddings):
        assert torch.allclose(row, reference_embedding(encoder, text), atol=1e-5)
    assert float((embeddings[0] - embeddings[1]).abs().max()) > 0.01  # the text matters


def test_longest_padding_equals_the_organizers_512_tokens(tokenizer):
    state, config = tiny_text_state(), tiny_config()
    longest = load_clap_text_encoder(state, tokenizer, config=config)
    full = load_clap_text_encoder(state, tokenizer, config=config)
    full.padding = "max_length"
    tokens = tokenizer(QUERIES, padding="max_length", truncation=True, max_length=512, return_tensors="pt")
    assert tokens["input_ids"].shape == (len(QUERIES), 512)
    assert torch.allclose(longest.encode(QUERIES), full.encode(QUERIES), atol=1e-5)


class CountingTokenizer:
    def __init__(self, tokenizer):
        self.tokenizer, self.batches = tokenizer, []

    def __call__(self, texts, **kwargs):
        self.batches.append(list(texts))
        return self.tokenizer(texts, **kwargs)


def test_queries_are_cached_per_string_and_batched(tokenizer, encoder):
    counting = CountingTokenizer(tokenizer)
    small = ClapTextEncoder(encoder.roberta, encoder.projection, counting, batch_size=2)
    first = small.embed(["a dog", "birds", "a dog"])
    assert counting.batches == [["a dog", "birds"]]
    assert torch.equal(first[0], first[2])
    again = small.embed(["birds", "a dog"])
    assert counting.batches == [["a dog", "birds"]] and torch.equal(again[0], first[1])
    rest = small.embed(QUERIES)
    assert counting.batches[1:] == [["a dog barks", "rain on a tin roof"], ["people talking in a busy cafe"]]
    assert torch.allclose(rest, encoder.encode(QUERIES), atol=1e-5)  # batches of 2 == one batch of 5
    assert small.embed([]).shape == (0, EMBEDDING_SIZE)


@pytest.mark.parametrize("prefix", ["query_encoder.model.", "module.", ""])
def test_weights_found_under_every_checkpoint_prefix(tokenizer, encoder, prefix):
    state = {prefix + k: v for k, v in tiny_text_state().items()}
    state[prefix + "text_branch.embeddings.position_ids"] = torch.arange(514)[None]  # older transformers
    state[prefix + "audio_branch.x"] = torch.zeros(1)  # the rest of CLAP is ignored
    found = text_state_from_checkpoint(state)
    assert found is not None and all(k.startswith(("text_branch.", "text_projection.")) for k in found)
    loaded = load_clap_text_encoder(state, tokenizer, config=tiny_config())
    assert torch.allclose(loaded.embed(QUERIES[:2]), encoder.embed(QUERIES[:2]), atol=1e-6)


def test_config_is_inferred_from_the_tensors():
    branch = {k[len("text_branch."):]: v for k, v in tiny_text_state(heads=1).items() if k.startswith("text_branch.")}
    config = roberta_config_from_state(branch)
    assert (config.vocab_size, config.hidden_size, config.num_hidden_layers, config.intermediate_size) == (266, 32, 2, 37)
    assert (config.max_position_embeddings, config.num_attention_heads, config.type_vocab_size) == (514, 1, 1)


def test_bad_text_weights_are_clear_errors(tokenizer):
    assert text_state_from_checkpoint({"ss_model.base.bn0.weight": torch.zeros(1)}) is None
    with pytest.raises(WorkError, match="x.ckpt: no CLAP text encoder weights"):
        load_clap_text_encoder({"a": torch.zeros(1)}, tokenizer, source="x.ckpt")
    state = tiny_text_state()
    del state["text_branch.pooler.dense.weight"]
    with pytest.raises(WorkError, match=r"x.ckpt: .*missing text_branch\.pooler\.dense\.weight"):
        load_clap_text_encoder(state, tokenizer, config=tiny_config(), source="x.ckpt")
    state = {**tiny_text_state(), "text_projection.4.weight": torch.zeros(2)}
    with pytest.raises(WorkError, match=r"unexpected text_projection\.4\.weight"):
        load_clap_text_encoder(state, tokenizer, config=tiny_config(), source="x.ckpt")


def test_missing_tokenizer_folder_says_how_to_get_it(tmp_path):
    with pytest.raises(UsageError, match=r"no RoBERTa tokenizer here.*lasskit models download dcase2024-baseline"):
        load_tokenizer(tmp_path)


def test_a_tokenizer_that_does_not_fit_the_checkpoint_is_refused(tmp_path, tokenizer):
    from lasskit.models.text_encoder import check_tokenizer

    state = tiny_text_state()
    # one token too many: the vocabulary and the embedding rows disagree
    bigger = load_tokenizer(write_tokenizer(tmp_path / "bigger", tiny_vocab(("Ġextra",))))
    with pytest.raises(UsageError, match=r"is not roberta-base's \(267 tokens where the checkpoint's embedding "
                                         r"has 266 rows\).*lasskit models download dcase2024-baseline"):
        load_clap_text_encoder(state, bigger, config=tiny_config())
    # the special tokens elsewhere than roberta-base's ids
    swapped = {**tiny_vocab(), "<s>": 2, "</s>": 0}
    with pytest.raises(UsageError, match=r"<s> at id 2, not 0"):
        load_tokenizer(write_tokenizer(tmp_path / "swapped", swapped))

    class OnlySpecials:
        """What transformers 5 returns for roberta-base without its files: every query is <s></s>."""

        def __len__(self):
            return len(tiny_vocab())

        def convert_tokens_to_ids(self, token):
            return tiny_vocab()[token]

        def __call__(self, texts, **kwargs):
            return {"input_ids": torch.tensor([[0, 2]] * len(texts)), "attention_mask": torch.ones(len(texts), 2)}

    with pytest.raises(UsageError, match=r"'a dog barks' becomes only 2 token\(s\)"):
        check_tokenizer(OnlySpecials(), len(tiny_vocab()), "the test's tokenizer")
    check_tokenizer(tokenizer, len(tiny_vocab()))  # the right one passes


def write_baseline_checkpoint(path: Path, text_prefix: str | None) -> Path:
    from lasskit.models.resunet import ResUNet30

    state = {f"ss_model.{k}": v for k, v in ResUNet30().state_dict().items()}
    if text_prefix is not None:
        state.update({text_prefix + k: v for k, v in tiny_text_state(heads=1).items()})
    torch.save({"global_step": 200000, "state_dict": state}, path)
    return path


@pytest.fixture(scope="module")
def baseline_ckpt(tmp_path_factory) -> Path:
    """A Lightning-style baseline checkpoint: random separator, tiny text side under query_encoder.model."""
    return write_baseline_checkpoint(tmp_path_factory.mktemp("ckpt") / "baseline.ckpt", "query_encoder.model.")


@pytest.mark.slow
def test_baseline_takes_its_text_encoder_from_the_checkpoint(tmp_path, tokenizer_dir, tokenizer, baseline_ckpt):
    from lasskit.models.baseline import DCASE2024Baseline

    reference = load_clap_text_encoder(tiny_text_state(heads=1), tokenizer, config=tiny_config(heads=1))
    ckpt = baseline_ckpt
    model = DCASE2024Baseline(checkpoint=str(ckpt), tokenizer=str(tokenizer_dir), text_batch_size=4)
    assert torch.allclose(model.text_encoder.embed(QUERIES), reference.embed(QUERIES), atol=1e-5)
    # a separation checkpoint without query_encoder.*: the CLAP file supplies the text side
    bare = write_baseline_checkpoint(tmp_path / "bare.ckpt", None)
    with pytest.raises(UsageError, match="has no CLAP text encoder.*clap_checkpoint=PATH"):
        DCASE2024Baseline(checkpoint=str(bare), tokenizer=str(tokenizer_dir))
    clap = tmp_path / "music_speech_audioset_epoch_15_esc_89.98.pt"
    torch.save({"epoch": 15, "state_dict": {"module." + k: v for k, v in tiny_text_state(heads=1).items()}}, clap)
    model = DCASE2024Baseline(checkpoint=str(bare), tokenizer=str(tokenizer_dir), clap_checkpoint=str(clap))
    assert torch.allclose(model.text_encoder.embed(QUERIES[:2]), reference.embed(QUERIES[:2]), atol=1e-5)
    with pytest.raises(UsageError, match="unknown option.*colour"):
        DCASE2024Baseline(checkpoint=str(ckpt), tokenizer=str(tokenizer_dir), colour="red")


@pytest.mark.slow
def test_separate_command_runs_the_baseline(tmp_path, tokenizer_dir, run_cli, baseline_ckpt):
    """`lasskit separate --model dcase2024-baseline --checkpoint PATH -o tokenizer=DIR` end to end."""
    import hashlib

    import numpy as np
    import pandas as pd

    from lasskit import audio, soundgen
    from lasskit.splits import write_split_csv

    ckpt = baseline_ckpt
    split_dir = tmp_path / "ws" / "data" / "splits" / "mini"
    names = list(soundgen.CLASSES)[:3]
    rows = []
    for i, name in enumerate(names):
        clip = soundgen.generate(name, 0.5 + 0.25 * i, 16000, seed=i).astype(np.float32)
        audio.write(split_dir / "mixture" / f"m{i}.wav", clip, 16000, "float")
        rows.append({"mixture": f"m{i}.wav", "query": soundgen.CLASSES[name].captions[0]})
    write_split_csv(split_dir, pd.DataFrame(rows))
    code, out, err = run_cli("separate", "--split", "mini", "--model", "dcase2024-baseline", "--checkpoint", ckpt,
                             "--tokenizer", tokenizer_dir, "--device", "cpu", "--batch-size", "2",
                             cwd=tmp_path / "ws")
    assert code == 0, err
    out_dir = tmp_path / "ws" / "exp" / "dcase2024-baseline" / "mini"
    record = json.loads((out_dir / "separate.json").read_text())
    assert record["model"] == "dcase2024-baseline" and record["count"] == 3
    assert record["checkpoint"] == str(ckpt)
    assert record["checkpoint_sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    for i in range(3):
        estimate, rate = audio.read(out_dir / f"m{i}.wav")
        assert rate == 16000 and estimate.shape[-1] == int(16000 * (0.5 + 0.25 * i))


def _baseline_cli(tmp_path, ckpt, env_extra, *extra):
    """`python -m lasskit separate --model dcase2024-baseline` in a subprocess with ``env_extra``."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "LASSKIT_PROGRESS": "0", **env_extra}
    return subprocess.run([sys.executable, "-m", "lasskit", "separate", "--split", "real", "--model",
                           "dcase2024-baseline", "--checkpoint", str(ckpt), "--device", "cpu", *extra],
                          cwd=tmp_path / "ws", env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_an_empty_hugging_face_cache_offline_is_refused_then_the_download_fills_it(tmp_path, baseline_ckpt):
    """Really offline with nothing cached (HF_HOME empty, HF_HUB_OFFLINE=1): transformers 5 hands back
    a 5-token stand-in for roberta-base; the encoder refuses it in one line saying how to get the
    files; once they are where `lasskit models download` puts them, the same command runs and two
    queries on one recording give different estimates."""
    import numpy as np
    import pandas as pd

    from lasskit import audio, soundgen
    from lasskit.splits import write_split_csv

    split_dir = tmp_path / "ws" / "data" / "splits" / "real"
    clip = (soundgen.generate("bird", 0.5, 16000, seed=1) + soundgen.generate("rain", 0.5, 16000, seed=2))
    audio.write(split_dir / "mixture" / "case-0.wav", clip.astype(np.float32), 16000, "float")
    audio.write(split_dir / "mixture" / "case-1.wav", clip.astype(np.float32), 16000, "float")
    write_split_csv(split_dir, pd.DataFrame([{"mixture": "case-0.wav", "query": "a dog"},
                                             {"mixture": "case-1.wav", "query": "rain"}]))
    (tmp_path / "hf").mkdir()
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "LASSKIT_CACHE": str(tmp_path / "cache")}
    proc = _baseline_cli(tmp_path, baseline_ckpt, env)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "not roberta-base's" in proc.stderr and "lasskit models download dcase2024-baseline" in proc.stderr
    out_dir = tmp_path / "ws/exp/dcase2024-baseline/real"
    assert not list(out_dir.glob("*.wav"))
    write_tokenizer(tmp_path / "cache" / "tokenizers" / "roberta-base")  # what the download writes
    proc = _baseline_cli(tmp_path, baseline_ckpt, env)
    assert proc.returncode == 0, proc.stderr
    dog, rain = (audio.read(out_dir / f"case-{i}.wav")[0] for i in (0, 1))
    assert not np.array_equal(dog, rain)  # the text reaches the separator
