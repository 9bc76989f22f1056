"""Zoo models through the commands, with small random weights in the released layouts: separate
(val_synth and eval_real of a miniature DCASE 2024 download, and a mixed split like the demo's), the ensemble, score --compare and
listen create; and `lasskit train` for audiosep-dp-16k and audiosep with --init.

Networks are narrow (``channels=4``; dual-path RNN 1 layer, 8 hidden) and the CLAP text tower is a
tiny random RoBERTa with a byte-level tokenizer written here (no hub access).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")

from lasskit import audio, miniature  # noqa: E402
from lasskit.models.dual_path import dual_path_network  # noqa: E402
from lasskit.models.resunet import ResUNet30, conv_stft_kernels  # noqa: E402
from lasskit.workspace import Workspace  # noqa: E402


def text_tower(seed: int = 0) -> dict:
    from conftest import tiny_text_tower

    return tiny_text_tower("query_encoder.model.", seed)


def write_zoo_checkpoint(path: Path, model: str, seed: int) -> Path:
    """A released-layout Lightning file of a small random ``model`` network with a tiny CLAP text tower."""
    n_fft = 2048 if model in ("audiosep", "audiosep-dp-32k") else 1024
    torch.manual_seed(seed)
    if model.startswith("audiosep-dp"):
        net = dual_path_network(4, n_fft, n_fft // 1024 * 160, hidden=8, layers=1)
    else:
        net = ResUNet30(channels=4, n_fft=n_fft, hop=n_fft // 1024 * 160)
    net.init_weights()
    state = {f"ss_model.{k}": v for k, v in net.state_dict().items()}
    state.update({f"ss_model.{k}": v for k, v in conv_stft_kernels(n_fft).items()})
    state.update(text_tower(seed))
    torch.save({"state_dict": state, "epoch": 1}, path)
    return path


def write_demo_split(ws: Path, split: str = "train_mix") -> None:
    """A mixed split like the demo's (lasskit.demo.TRAIN_SPLIT): generated classes, class-disjoint pairs."""
    from lasskit import soundgen
    from lasskit.manifest import Clip, write_manifest
    from lasskit.mixing import MixSpec, make_mixtures

    clips = []
    for ci, name in enumerate(("tone", "alarm", "hum")):
        cls = soundgen.CLASSES[name]
        rel = f"audio/{name}.wav"
        soundgen.write_clip(ws / "data" / "gen" / rel, name, 0.5, seed=10 * ci)
        clips.append(Clip(name, rel, 0.5, 16000, 8000, "gen", "val", list(cls.captions), list(cls.labels)))
    write_manifest(ws / "data" / "gen" / "manifest.csv", clips)
    manifest = ws / "data" / "gen" / "manifest.csv"
    make_mixtures(ws / "data" / "splits" / split, MixSpec(snr_low=-5, snr_high=5, duration=0.5, seed=1),
                  [manifest], [manifest], splits=["val"], jobs=1)
    assert (ws / "data" / "splits" / split / "mixtures.csv").read_text().count("\n") >= 3  # header + rows


@pytest.fixture(scope="module")
def zoo_ws(tmp_path_factory):
    from lasskit.corpora import prepare_corpus

    base = tmp_path_factory.mktemp("zoo")
    miniature.write_dcase2024(base / "raw", clips=4, mixtures=3, real=1, synth_eval=1, duration=0.5)
    prepare_corpus("dcase2024", base / "raw", base / "ws" / "data", jobs=1)
    write_demo_split(base / "ws")
    return {"ws": base / "ws", "tokenizer": miniature.write_tokenizer(base / "tokenizer"),
            "audiosep-dp-16k": write_zoo_checkpoint(base / "dp16.ckpt", "audiosep-dp-16k", 1),
            "audiosep": write_zoo_checkpoint(base / "as.ckpt", "audiosep", 2)}


@pytest.mark.slow
def test_two_zoo_models_and_their_ensemble_through_separate_score_and_listen(zoo_ws, run_cli):
    from lasskit.models.zoo import AudioSepDP16k
    from lasskit.splits import read_split

    ws, tok = zoo_ws["ws"], zoo_ws["tokenizer"]
    for split in ("val_synth", "eval_real", "train_mix"):
        for model in ("audiosep-dp-16k", "audiosep"):
            code, out, err = run_cli("-w", ws, "separate", "--split", split, "--model", model, "--checkpoint",
                                     zoo_ws[model], "-o", f"tokenizer={tok}", "--device", "cpu", "--jobs", "1")
            assert code == 0, err
            assert "separated" in out
            # a 32 kHz network is said once in the summary and recorded in separate.json
            assert out.count("runs at 32 kHz") == (1 if model == "audiosep" else 0), out
            record = json.loads((Workspace.open(ws).output_dir(model, split) / "separate.json").read_text())
            assert ("32 kHz" in (record["rate_note"] or "")) == (model == "audiosep")
    code, out, err = run_cli("-w", ws, "separate", "--split", "val_synth", "--model", "ensemble", "--name", "ens",
                             "-o", "members=audiosep-dp-16k,audiosep", "-o", "weights=1,3",
                             "-o", f"m1_checkpoint={zoo_ws['audiosep-dp-16k']}", "-o", f"m1_tokenizer={tok}",
                             "-o", f"m2_checkpoint={zoo_ws['audiosep']}", "-o", f"m2_tokenizer={tok}",
                             "--device", "cpu", "--jobs", "1")
    assert code == 0, err

    split = read_split(ws / "data" / "splits" / "val_synth")
    model = AudioSepDP16k(checkpoint=str(zoo_ws["audiosep-dp-16k"]), tokenizer=str(tok))
    rows = list(split.frame.iterrows())
    assert len(rows) == 3
    for _, row in rows:
        mixture = audio.load(split.mixture_path(row["mixture"]))
        expected = model.separate(torch.from_numpy(mixture)[None], [row["query"]])[0].numpy()
        dp = audio.load(ws / "exp" / "audiosep-dp-16k" / "val_synth" / row["mixture"])
        np.testing.assert_allclose(dp, expected, atol=2e-6, rtol=0)
        sep32 = audio.load(ws / "exp" / "audiosep" / "val_synth" / row["mixture"])
        assert sep32.shape == mixture.shape and float(np.abs(sep32 - dp).max()) > 1e-3
        ens = audio.load(ws / "exp" / "ens" / "val_synth" / row["mixture"])
        np.testing.assert_allclose(ens, (dp.astype(np.float64) + 3 * sep32) / 4, atol=2e-6, rtol=0)

    code, out, err = run_cli("-w", ws, "score", "--split", "val_synth", "--model", "audiosep-dp-16k",
                             "--compare", "audiosep")
    assert code == 0, err
    assert "audiosep-dp-16k" in out and "audiosep" in out

    code, out, err = run_cli("-w", ws, "listen", "create", "--split", "eval_real", "--models",
                             "audiosep-dp-16k,audiosep", "--name", "zoo", "--raters", "1", "--gold", "0", "--no-trap",
                             "--no-headphone-check", "--training", "none")
    assert code == 0, err
    assert (ws / "listen" / "zoo").is_dir()


def test_ensemble_refuses_bad_options(run_cli, tmp_path):
    from lasskit.errors import UsageError
    from lasskit.models.ensemble import Ensemble, parse_weights

    assert parse_weights("2,1", 2) == [2.0, 1.0] and parse_weights(None, 3) == [1.0, 1.0, 1.0]
    with pytest.raises(UsageError, match="has 1 value"):
        parse_weights("1", 2)
    with pytest.raises(UsageError, match=">= 0"):
        parse_weights("1,-1", 2)
    with pytest.raises(UsageError, match="at least two members"):
        Ensemble(members="passthrough")
    with pytest.raises(UsageError, match="unknown option m3_checkpoint"):
        Ensemble(members="passthrough,passthrough", m3_checkpoint="x")
    with pytest.raises(UsageError, match="takes no --checkpoint"):
        Ensemble(checkpoint="x.ckpt", members="passthrough,oracle")
    a = Ensemble(members="passthrough,oracle", weights="1,1")
    b = Ensemble(members="passthrough,oracle", weights="1,2")
    assert a.needs_reference and a.padding_invariant and a.checkpoint_sha256 != b.checkpoint_sha256
    x, ref = torch.ones(1, 8), torch.zeros(1, 8)
    np.testing.assert_allclose(b.separate(x, ["q"], references=ref).numpy(), np.full((1, 8), 1 / 3), atol=1e-7)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["audiosep-dp-16k", "audiosep"])
def test_train_builds_the_zoo_separator_with_init(zoo_ws, tmp_path, model):
    """Two steps of `lasskit train --model MODEL --init released.ckpt`: the network starts from the
    file's weights and its checkpoint loads back into the zoo model."""
    pytest.importorskip("lightning")
    from lasskit import soundgen
    from lasskit.manifest import Clip, write_manifest
    from lasskit.models.registry import resolve
    from lasskit.training import TrainConfig, train
    from lasskit.workspace import Workspace

    ws = tmp_path / "ws"
    clips = []
    for ci, name in enumerate(("tone", "alarm", "hum")):
        for k in range(4):
            rel = f"audio/{name}{k}.wav"
            soundgen.write_clip(ws / "data" / "gen" / rel, name, 1.0, seed=100 * ci + k)
            cls = soundgen.CLASSES[name]
            clips.append(Clip(f"{name}{k}", rel, 1.0, 16000, 16000, "gen", "train", list(cls.captions), list(cls.labels)))
    write_manifest(ws / "data" / "gen" / "manifest.csv", clips)
    init = zoo_ws[model]
    config = TrainConfig(model=model, name="z", init=str(init), options={"tokenizer": str(zoo_ws["tokenizer"])},
                         steps=2, batch_size=2, segment=0.25, snr=(-5.0, 5.0), warmup_steps=0, lr=1e-3,
                         bn_momentum=0.1, val=None, workers=0, log_every=1, seed=0)
    result = train(config, Workspace.open(ws))
    trained = result["trained_model"]
    cls, _ = resolve(model)
    assert type(trained) is cls
    before = cls(checkpoint=str(init), tokenizer=str(zoo_ws["tokenizer"])).network.state_dict()
    after = trained.network.state_dict()
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before if k.endswith("weight"))
    reloaded = cls(checkpoint=str(ws / "exp" / "train" / "z" / "last.ckpt"), tokenizer=str(zoo_ws["tokenizer"]))
    assert all(torch.equal(reloaded.network.state_dict()[k], after[k].cpu()) for k in after)
