"""``clapsep`` (CLAPSep) against its authors' code's golden vectors, its loading rules, windows,
queries, and the commands (separate on a demo-like split, the ensemble).

Golden files (tests/data/clapsep_*) were written by the authors' own code (github Aisaka0v0/CLAPSep
at 5404111a30701ef36301cb7c7255b38ef24f7c6d, model/CLAPSep.py and model/CLAPSep_decoder.py, with
laion_clap's HTSAT) by ``parity/clapsep_parity.py upstream`` (CONTRIBUTING.md "CLAPSep parity
harness"), every tensor from the golden weight recipe (lasskit.miniature.recipe_tensor), on the
inputs of lasskit.models.golden at 32 kHz: the released size (``10s``, ``23s``) and a width-16
miniature of the same code (``mini_10s``, ``mini_23s``). The miniature runs by default (~1 s);
the released size (~10 s per case on a CPU) only with LASSKIT_ZOO_FULL=1.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")

from lasskit.errors import UsageError, WorkError  # noqa: E402
from lasskit.miniature import recipe_tensor  # noqa: E402
from lasskit.models import cards  # noqa: E402
from lasskit.models.clap_audio import ClapAudioTower, htsat_config, laion_audio_state  # noqa: E402
from lasskit.models.clapsep import ClapSep, decoder_config, window_spans  # noqa: E402
from lasskit.models.clapsep_net import ClapSepDecoder  # noqa: E402
from lasskit.models.golden import STRIDE, digest, pair_condition, parity_condition, parity_mixture  # noqa: E402

DATA = Path(__file__).parent / "data"
TOLERANCE = 1e-5
FULL = os.environ.get("LASSKIT_ZOO_FULL") == "1"
CASES = {"10s": (10.0, None), "23s": (23.0, 10)}  # as parity/clapsep_parity.py: seconds, negative's seed
MINI_HTSAT = (16, (2, 2, 2, 2), (1, 2, 2, 4))


def read_tsv(name: str) -> dict[str, tuple[tuple[int, ...], str]]:
    rows = [line.split("\t") for line in (DATA / f"{name}.tsv").read_text().splitlines()[1:]]
    return {k: (() if s == "scalar" else tuple(int(x) for x in s.split("x")), d) for k, s, d in rows}


def condition(tag: str) -> np.ndarray:
    return pair_condition(CASES[tag][1])


def _fixed(key: str) -> bool:
    return key.endswith(("relative_position_index", "attn_mask")) or "_extractor." in key


def released_state(name: str) -> dict:
    """The recipe ``best_model.ckpt`` state of the harness, from its key list (the decoder's Swin
    position index as the authors' code builds it: windows of 8)."""
    from lasskit.models.clapsep_net import relative_position_index

    return {k: relative_position_index(8) if k.endswith("relative_position_index") else recipe_tensor(k, shape)
            for k, (shape, _) in read_tsv(name).items()}


def clap_state(htsat: tuple = MINI_HTSAT) -> dict:
    """The harness's CLAP-layout file (``module.audio_branch.*``, ``module.audio_projection.*``): recipe
    weights, attention biases from the ``clap:`` recipe, fixed tensors as lasskit computes them."""
    layout = laion_audio_state(ClapAudioTower(htsat_config(*htsat)))
    state = {}
    for key, value in layout.items():
        if key.startswith("audio_branch.tscam_conv.") or key.startswith("audio_branch.head."):
            state["module." + key] = recipe_tensor(key, tuple(value.shape))
        elif _fixed(key):
            state["module." + key] = value
        elif key.endswith(("attn.qkv.bias", "attn.proj.bias")):
            state["module." + key] = recipe_tensor("clap:" + key, tuple(value.shape))
        else:
            state["module." + key] = recipe_tensor(key, tuple(value.shape))
    return state


def text_state(seed: int = 0) -> dict:
    """A tiny random CLAP text tower under ``module.`` (for the commands; byte-level tokenizer)."""
    from conftest import tiny_text_tower

    return tiny_text_tower("module.", seed)


class Fixed:
    """A text encoder giving ``rows[q]`` for each query."""

    def __init__(self, rows: dict) -> None:
        self.rows = rows

    def embed(self, queries):
        return torch.stack([torch.as_tensor(self.rows[q]) for q in queries])


@pytest.fixture(scope="module")
def mini_files(tmp_path_factory):
    base = tmp_path_factory.mktemp("clapsep")
    ckpt, clap = base / "best_model.ckpt", base / "clap.pt"
    torch.save({"state_dict": released_state("clapsep_mini_state_dict"), "epoch": 149}, ckpt)
    state = clap_state()
    state.update(text_state())
    torch.save({"state_dict": state, "epoch": 15}, clap)
    from lasskit import miniature

    return {"checkpoint": ckpt, "clap": clap, "tokenizer": miniature.write_tokenizer(base / "tokenizer"), "base": base}


@pytest.fixture(scope="module")
def mini(mini_files):
    return ClapSep(checkpoint=str(mini_files["checkpoint"]), clap_checkpoint=str(mini_files["clap"]),
                   text_encoder=Fixed({}))


def golden() -> dict:
    with np.load(DATA / "clapsep_golden.npz") as z:
        return {k: z[k] for k in z.files}


def check_golden(model: ClapSep, name: str, tag: str) -> None:
    g = golden()
    seconds = CASES[tag][0]
    mixture = parity_mixture(seconds, 32000)[:, 0]
    assert digest(mixture) == str(g[f"mixture_sha256_{name}"])
    assert digest(condition(tag)) == str(g[f"condition_sha256_{name}"])
    out = model.separate_embedded(torch.from_numpy(mixture), torch.from_numpy(condition(tag))).numpy().reshape(-1)
    assert out.size == int(g[f"stats_{name}"][3]) == mixture.size
    np.testing.assert_allclose(out[::STRIDE], g[f"strided_{name}"], atol=TOLERANCE, rtol=0)
    w = out.astype(np.float64)
    stats = g[f"stats_{name}"]
    assert abs(w.sum() - stats[0]) <= TOLERANCE * w.size
    assert abs(np.sqrt((w ** 2).sum()) - np.sqrt(stats[1])) <= TOLERANCE * np.sqrt(w.size)
    assert abs(np.abs(w).max() - stats[2]) <= TOLERANCE
    assert model.windows_run == len(window_spans(mixture.size))


@pytest.mark.parametrize("tag", ["10s", "23s"])
def test_miniature_reproduces_the_authors_code(mini, tag):
    check_golden(mini, f"mini_{tag}", tag)


@pytest.mark.slow
@pytest.mark.skipif(not FULL, reason="full-size CPU forward (~10 s a case); set LASSKIT_ZOO_FULL=1")
@pytest.mark.parametrize("tag", ["10s", "23s"])
def test_released_size_reproduces_the_authors_code(tmp_path_factory, tag):
    base = tmp_path_factory.mktemp("clapsep_full")
    torch.save({"state_dict": released_state("clapsep_state_dict")}, base / "best_model.ckpt")
    torch.save({"state_dict": clap_state(htsat=(128, (2, 2, 12, 2), (4, 8, 16, 32)))}, base / "clap.pt")
    model = ClapSep(checkpoint=str(base / "best_model.ckpt"), clap_checkpoint=str(base / "clap.pt"),
                    text_encoder=Fixed({}))
    check_golden(model, tag, tag)


def test_layouts_are_the_authors():
    # the miniature CLAP file lasskit writes has the keys and shapes laion_clap's HTSAT saved
    ours = {k: tuple(v.shape) for k, v in clap_state().items()}
    assert ours == {k: shape for k, (shape, _) in read_tsv("clapsep_mini_clap_state_dict").items()}
    for name, expected in (("clapsep_state_dict", (128, 128, (1, 1, 1, 1), (4, 8, 16, 32), 640, 3, 16)),
                           ("clapsep_mini_state_dict", (16, 16, (1, 1, 1, 1), (1, 2, 2, 4), 64, 1, 4))):
        layout = read_tsv(name)
        decoder_state = {k[len("decoder_model."):]: torch.empty(s) for k, (s, _) in layout.items()
                         if k.startswith("decoder_model.")}
        config = decoder_config(decoder_state, name)
        assert (config["embed_dim"], config["encoder_embed_dim"], config["depths"], config["heads"],
                config["d_attn"], config["n_masker_layer"]) == expected[:6]
        with torch.device("meta"):
            decoder = ClapSepDecoder(**config)
        assert {k: tuple(v.shape) for k, v in decoder.state_dict().items()} == \
            {k: tuple(v.shape) for k, v in decoder_state.items()}
        ranks = {s[0] for k, (s, _) in layout.items() if k.startswith("audio_branch.") and k.endswith("lora_A")}
        assert ranks == {expected[6]}
    full = read_tsv("clapsep_state_dict")
    lora = [k for k in full if k.startswith("audio_branch.") and ".lora_" in k]
    assert len(lora) == 2 * 2 * 18  # qkv and proj (A and B) of HTSAT-base's 18 blocks
    # 44.4 M float32 values and the decoder's int64 position index: 177,717,008 bytes of tensor data; the harness's
    # file in this layout has 177,817,677 bytes, the released best_model.ckpt 177,818,986
    assert sum(int(np.prod(s)) for s, d in full.values() if d == "float32") == 44_396_482
    assert sum(int(np.prod(s)) * (8 if d == "int64" else 4) for s, d in full.values()) == 177_717_008


def test_window_rule():
    assert window_spans(320000) == [(0, 320000)]
    assert window_spans(327360) == [(0, 327360)]  # 1024 frames: one pass
    assert window_spans(327361) == [(0, 320000), (320000, 327361)]  # one sample over one pass: a rest of 7361
    assert window_spans(647360) == [(0, 320000), (320000, 647360)]  # a rest of 7360 joins the window before
    assert window_spans(736000) == [(0, 320000), (320000, 640000), (640000, 736000)]  # 23 s
    assert window_spans(647361) == [(0, 320000), (320000, 640000), (640000, 647361)]
    for n in (327362, 700001, 1_000_000):
        spans = window_spans(n)
        assert spans[0][0] == 0 and spans[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
        assert all(1024 <= e - s <= 327360 for s, e in spans)


def test_condition_is_the_normalised_pair(mini):
    pos, neg = parity_condition(1)[0], parity_condition(2)[0]
    mini.text_encoder = Fixed({"dog": pos, "speech": neg})
    mini.negative = None
    got = mini.condition(["dog", "dog"]).numpy()
    np.testing.assert_allclose(got[0, :512], pos, atol=1e-7)
    assert np.all(got[:, 512:] == 0)
    mini.negative = "speech"
    got = mini.condition(["dog"]).numpy()[0]
    np.testing.assert_allclose(got, np.concatenate([pos, neg]) / np.sqrt(2), atol=1e-7)
    mini.negative = None


def test_separate_at_16k_keeps_the_length_and_short_inputs(mini):
    mini.text_encoder = Fixed({"q": parity_condition(1)[0]})
    for n in (200, 16000, 16001):
        x = torch.from_numpy(parity_mixture(n / 16000, 16000)[0]).float()
        y = mini.separate(x, ["q"])
        assert y.shape == x.shape and torch.isfinite(y).all()
    assert "32 kHz" in mini.rate_note and "at most 10 s per call: longer clips are separated in windows" in mini.rate_note
    assert "10 s windows" not in mini.rate_note  # it said so under --window-seconds 4 / --chunk-seconds 5 too


def test_loading_names_what_does_not_fit(mini_files, tmp_path):
    good = released_state("clapsep_mini_state_dict")
    clap = str(mini_files["clap"])

    def build(state):
        path = tmp_path / "c.ckpt"
        torch.save({"state_dict": state}, path)
        return ClapSep(checkpoint=str(path), clap_checkpoint=clap, text_encoder=Fixed({}))

    lora = next(k for k in good if k.endswith("attn.qkv.lora_A"))
    with pytest.raises(WorkError, match=f"missing {lora.replace('.', '[.]')}"):
        build({k: v for k, v in good.items() if k != lora})
    with pytest.raises(WorkError, match="unexpected decoder_model.extra"):
        build({**good, "decoder_model.extra": torch.zeros(1)})
    with pytest.raises(WorkError, match="missing decoder_model.spec_norm.weight"):
        build({k: v for k, v in good.items() if k != "decoder_model.spec_norm.weight"})
    with pytest.raises(WorkError, match="unexpected keys for clapsep: model.x"):
        build({**good, "model.x": torch.zeros(1)})
    with pytest.raises(WorkError, match="audiosep-dp-16k checkpoint, not clapsep"):
        build({"ss_model.base.bn0.weight": torch.ones(513), "ss_model.base.DPRNN.x": torch.ones(1)})
    with pytest.raises(WorkError, match="no CLAPSep decoder"):
        build({k: v for k, v in good.items() if not k.startswith("decoder_model.")})
    # the checkpoint's tuned attention bias replaces the CLAP file's
    bias = next(k for k in good if k.endswith("attn.qkv.bias") and k.startswith("audio_branch."))
    with pytest.raises(WorkError, match="no CLAP audio branch"):
        ClapSep(checkpoint=str(mini_files["checkpoint"]), clap_checkpoint=str(mini_files["checkpoint"]),
                text_encoder=Fixed({}))
    with pytest.raises(WorkError, match="this is a CLAP file .*give it as --option clap_checkpoint=PATH"):
        ClapSep(checkpoint=clap, clap_checkpoint=clap, text_encoder=Fixed({}))  # was: no CLAPSep decoder
    assert build({f"module.{k}": v for k, v in good.items()}).network is not None  # saved from a DDP wrapper
    with pytest.raises(UsageError, match="unknown option"):
        ClapSep(checkpoint=str(mini_files["checkpoint"]), clap_checkpoint=clap, text_encoder=Fixed({}), chunk=1)
    assert bias  # (exercised by the golden test: the CLAP file's biases differ)


def test_negative_query_is_stripped_and_never_cut(mini_files):
    """-o negative over 77 tokens was cut to 77 without a word; '  ' embedded spaces, not 'no negative'."""
    files = {"checkpoint": str(mini_files["checkpoint"]), "clap_checkpoint": str(mini_files["clap"]),
             "tokenizer": str(mini_files["tokenizer"])}
    with pytest.raises(UsageError, match="-o negative: 78 tokens; CLAPSep's text tower reads at most 77"):
        ClapSep(**files, negative="a" * 76)  # byte-level test tokenizer: 76 + <s> + </s>
    assert ClapSep(**files, negative="   ").negative is None
    with pytest.raises(UsageError, match="negative=100000.0 is not a text query"):  # -o negative=1e5
        ClapSep(**files, negative=100000.0)
    assert ClapSep(**files, negative=" " + "a" * 75 + " ").negative == "a" * 75



def test_positive_queries_cut_to_77_tokens_are_counted_in_the_run_note(mini_files):
    """A positive query over 77 tokens is cut as the authors' code does, and said: the note a run's
    summary and separate.json carry (read again after the run) counts the distinct queries cut."""
    files = {"checkpoint": str(mini_files["checkpoint"]), "clap_checkpoint": str(mini_files["clap"]),
             "tokenizer": str(mini_files["tokenizer"])}
    model = ClapSep(**files)
    model.condition(["a dog", "b" * 75])  # 75 + <s> + </s> = 77 tokens: not cut
    assert "cut" not in model.rate_note
    long = "c" * 200
    first = model.condition([long, "a dog"])
    assert "1 distinct query longer than 77 tokens were cut to 77" in model.rate_note
    model.condition([long, "d" * 100])
    assert "2 distinct queries longer than 77 tokens" in model.rate_note
    assert torch.equal(model.condition(["c" * 75 + "zzz"])[0], first[0])  # the same first 75 symbols: the same embedding

def test_card_and_listing():
    card = cards.CARDS["clapsep"]
    assert card.network_rate == 32000 and card.trained_seconds == 10.0
    assert [w.role for w in card.weights] == ["checkpoint", "clap"]
    assert [w.filename for w in card.weights] == ["best_model.ckpt", "music_audioset_epoch_15_esc_90.14.pt"]
    assert any("inference only" in n for n in card.notes)
    from lasskit.models.base import missing_training_methods
    from lasskit.models.registry import resolve

    assert resolve("clapsep")[0] is ClapSep
    # inference only: `lasskit train --model clapsep` refuses in one line naming what it lacks
    assert missing_training_methods(ClapSep) == ["trainable_network", "embed_queries", "forward_train"]


@pytest.mark.slow
def test_separate_and_ensemble_commands(mini_files, run_cli, tmp_path):
    from lasskit import soundgen
    from lasskit.manifest import Clip, write_manifest
    from lasskit.mixing import MixSpec, make_mixtures
    from lasskit.workspace import Workspace

    ws = tmp_path / "ws"
    clips = []
    for ci, name in enumerate(("tone", "alarm", "hum")):
        rel = f"audio/{name}.wav"
        soundgen.write_clip(ws / "data" / "gen" / rel, name, 0.5, seed=10 * ci)
        cls = soundgen.CLASSES[name]
        clips.append(Clip(name, rel, 0.5, 16000, 8000, "gen", "val", list(cls.captions), list(cls.labels)))
    manifest = ws / "data" / "gen" / "manifest.csv"
    write_manifest(manifest, clips)
    make_mixtures(ws / "data" / "splits" / "train_mix", MixSpec(snr_low=-5, snr_high=5, duration=0.5, seed=1),
                  [manifest], [manifest], splits=["val"], jobs=1)
    ckpt, clap, tok = mini_files["checkpoint"], mini_files["clap"], mini_files["tokenizer"]
    common = ("--device", "cpu", "--jobs", "1")
    code, out, err = run_cli("-w", ws, "separate", "--split", "train_mix", "--model", "clapsep", "--checkpoint", ckpt,
                             "-o", f"clap_checkpoint={clap}", "-o", f"tokenizer={tok}", *common)
    assert code == 0, err
    assert out.count("runs at 32 kHz") == 1, out
    record = json.loads((Workspace.open(ws).output_dir("clapsep", "train_mix") / "separate.json").read_text())
    assert "32 kHz" in record["rate_note"]
    outputs = sorted((ws / "exp" / "clapsep" / "train_mix").glob("*.wav"))
    assert len(outputs) >= 2
    assert "cut to 77" not in out and "cut to 77" not in record["rate_note"]
    csv_path = ws / "data" / "splits" / "train_mix" / "mixtures.csv"  # one caption of 200 symbols: cut, and said
    original = csv_path.read_text()
    lines = original.splitlines(keepends=True)
    head = lines[0].rstrip("\r\n").split(",")
    cells = lines[1].rstrip("\r\n").split(",")
    cells[head.index("query")] = "x" * 200
    csv_path.write_text("".join([lines[0], ",".join(cells) + "\n", *lines[2:]]))
    code, out, err = run_cli("-w", ws, "separate", "--split", "train_mix", "--model", "clapsep", "--checkpoint", ckpt,
                             "-o", f"clap_checkpoint={clap}", "-o", f"tokenizer={tok}", *common)
    assert code == 0, err
    record = json.loads((Workspace.open(ws).output_dir("clapsep", "train_mix") / "separate.json").read_text())
    assert "1 distinct query longer than 77 tokens were cut to 77" in out.replace("\n", " ")
    assert "1 distinct query longer than 77 tokens were cut to 77" in record["rate_note"]
    csv_path.write_text(original)
    code, out, err = run_cli("-w", ws, "separate", "--split", "train_mix", "--model", "clapsep", "--checkpoint", ckpt,
                             "-o", f"clap_checkpoint={clap}", "-o", f"tokenizer={tok}", *common)
    assert code == 0, err
    code, out, err = run_cli("-w", ws, "separate", "--split", "train_mix", "--model", "clapsep", "--name", "neg",
                             "--checkpoint", ckpt, "-o", f"clap_checkpoint={clap}", "-o", f"tokenizer={tok}",
                             "-o", "negative=people talking", *common)
    assert code == 0, err
    code, out, err = run_cli("-w", ws, "separate", "--split", "train_mix", "--model", "ensemble", "--name", "ens",
                             "-o", "members=clapsep,passthrough", "-o", f"m1_checkpoint={ckpt}",
                             "-o", f"m1_clap_checkpoint={clap}", "-o", f"m1_tokenizer={tok}", *common)
    assert code == 0, err
    from lasskit import audio
    from lasskit.splits import read_split

    split = read_split(ws / "data" / "splits" / "train_mix")
    for path in outputs:
        mixture = audio.load(split.mixture_path(path.name))
        alone = audio.load(path)
        np.testing.assert_allclose(audio.load(ws / "exp" / "ens" / "train_mix" / path.name),
                                   0.5 * (alone + mixture), atol=1e-4, rtol=0)
        assert np.abs(audio.load(ws / "exp" / "neg" / "train_mix" / path.name) - alone).max() > 1e-4
