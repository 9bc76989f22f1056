"""`lasskit score` with CLAP columns: reference-free splits, --clap next to SDR, --compare, --by.

Weights are random and tiny (HTSAT width 8, RoBERTa width 32) in the real checkpoint layout
(``query_encoder.model.audio_branch.*`` ...), with a BPE tokenizer written by the test; expected
values are recomputed straight from the towers.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("torchaudio")

from lasskit import miniature, soundgen
from lasskit.models import clap_audio as ca
from lasskit.models.text_encoder import build_projection, load_clap_text_encoder, load_tokenizer
from lasskit.scoring import clap as sc
from lasskit.scoring.stats import summarize

SR = 16000
PREFIX = "query_encoder.model."


def write(path: Path, x, rate: int = SR) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.asarray(x, dtype=np.float32), rate, subtype="FLOAT")


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """(checkpoint path, tokenizer folder) of a tiny random CLAP in the baseline's layout."""
    root = tmp_path_factory.mktemp("clap_weights")
    vocab = miniature.byte_bpe_vocab()
    tokenizer = miniature.write_tokenizer(root / "tokenizer", vocab)
    torch.manual_seed(0)
    tower = ca.ClapAudioTower(ca.htsat_config(embed_dim=8, depths=(2, 2, 2, 2), heads=(1, 1, 2, 2)))
    config = transformers.RobertaConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=1, intermediate_size=37,
        max_position_embeddings=514, type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2,
        initializer_range=0.5)
    roberta = transformers.RobertaModel(config, add_pooling_layer=True)
    state = {f"{PREFIX}{k}": v for k, v in ca.laion_audio_state(tower).items()}
    state.update({f"{PREFIX}text_branch.{k}": v for k, v in roberta.state_dict().items()})
    state.update({f"{PREFIX}text_projection.{k}": v for k, v in build_projection(32).state_dict().items()})
    state["ss_model.base.bn0.weight"] = torch.ones(513)
    checkpoint = root / "audiosep_16k,baseline,step=200000.ckpt"
    torch.save({"state_dict": state, "epoch": 3}, checkpoint)
    return checkpoint, tokenizer


@pytest.fixture(scope="module")
def towers(weights):
    """The same towers, loaded straight (for expected values)."""
    from lasskit.models.baseline import load_checkpoint_state

    state = load_checkpoint_state(weights[0])
    tower = ca.load_clap_audio_tower(state)
    text = load_clap_text_encoder(state, load_tokenizer(weights[1]))
    return ca.ClapAudioEmbedder(tower, batch_size=3), text


@pytest.fixture(autouse=True)
def fresh_caches(monkeypatch, tmp_path):
    monkeypatch.setenv("LASSKIT_CACHE", str(tmp_path / "empty_cache"))
    sc._MODELS.clear()
    sc._EMBEDDINGS.clear()
    yield
    sc._MODELS.clear()
    sc._EMBEDDINGS.clear()


EVAL_QUERIES = ["someone knocks", "a bird sings in the morning", "a low engine hums and wobbles on a road", "a tone"]


@pytest.fixture
def ws(tmp_path):
    """An eval_real-like split (two queries share recording 0; no references) and a toy split with
    references, with outputs of `sep` and `passthrough`."""
    import pandas as pd

    from lasskit.splits import write_split_csv

    root = tmp_path / "ws"
    (root / "exp").mkdir(parents=True)
    evals = root / "data" / "splits" / "evalr"
    recordings = [soundgen.generate("knock", 4.0, SR, seed=1) + 0.3 * soundgen.generate("bird", 4.0, SR, seed=2),
                  soundgen.generate("hum", 6.0, SR, seed=3), soundgen.generate("tone", 1.5, SR, seed=4)]
    rows = []
    for i, (rec, query) in enumerate(zip([0, 0, 1, 2], EVAL_QUERIES)):
        name = f"eval_{i}.wav"
        write(evals / "mixture" / name, recordings[rec])
        rows.append({"mixture": name, "query": query})
        write(root / "exp" / "passthrough" / "evalr" / name, recordings[rec])
        write(root / "exp" / "sep" / "evalr" / name, recordings[rec] * np.linspace(0, 1, len(recordings[rec])))
    write_split_csv(evals, pd.DataFrame(rows))

    toy = root / "data" / "splits" / "toy"
    rows = []
    for i, (src, noise) in enumerate([("knock", "rain"), ("bird", "hum"), ("tone", "knock"), ("hum", "bird"),
                                      ("rain", "tone")]):
        name = f"toy_{i}.wav"
        s, n = soundgen.generate(src, 2.0, SR, seed=10 + i), soundgen.generate(noise, 2.0, SR, seed=20 + i)
        mixture = s + n
        write(toy / "mixture" / name, mixture)
        write(toy / "source" / name, s)
        rows.append({"mixture": name, "query": f"the sound of {src}", "source": f"source/{name}", "snr": "0"})
        write(root / "exp" / "passthrough" / "toy" / name, mixture)
        write(root / "exp" / "sep" / "toy" / name, s + (0.2 * i) * n)
    write_split_csv(toy, pd.DataFrame(rows))
    return root


def expected(towers, audio_paths, queries, path="paper") -> np.ndarray:
    embedder, text = towers
    waves = [sf.read(str(p), dtype="float32")[0] for p in audio_paths]
    a = embedder.embed(waves, SR, path).astype(np.float64)
    t = text.embed(list(queries)).numpy().astype(np.float64)
    return np.sum(a * t, axis=1)


@pytest.mark.slow
def test_eval_split_scored_by_clap_with_known_values(ws, weights, towers, run_cli):
    ckpt, tok = weights
    code, out, err = run_cli("-w", ws, "score", "--split", "evalr", "--model", "sep,passthrough",
                             "--checkpoint", ckpt, "--tokenizer", tok, "--by", "query_length", "--device", "cpu")
    assert code == 0, err
    split = ws / "data" / "splits" / "evalr"
    mixtures = [split / "mixture" / f"eval_{i}.wav" for i in range(4)]
    mix_expected = expected(towers, mixtures, EVAL_QUERIES)
    for model in ("sep", "passthrough"):
        folder = ws / "exp" / model / "evalr"
        rows = read_csv(folder / "scores.csv")
        assert list(rows[0]) == ["mixture", "query", "snr", "clap", "clap_mixture", "clap_gain"]
        got = {m: np.array([float(r[m]) for r in rows]) for m in sc.CLAP_METRICS}
        est_expected = expected(towers, [folder / f"eval_{i}.wav" for i in range(4)], EVAL_QUERIES)
        assert np.abs(got["clap"] - est_expected).max() < 1e-5
        assert np.abs(got["clap_mixture"] - mix_expected).max() < 1e-5
        assert np.array_equal(got["clap_gain"], got["clap"] - got["clap_mixture"])
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["count"] == 4 and set(summary["metrics"]) == set(sc.CLAP_METRICS)
        assert summary["metrics"]["clap"] == summarize(got["clap"])
        assert summary["clap"]["path"] == "paper" and summary["clap"]["checkpoint"] == ckpt.name
        assert "vs_sdri" not in summary["clap"]
        bands = read_csv(folder / "scores_by_query_length.csv")
        assert [b["group"] for b in bands] == ["1-5", "6-10"] and [b["count"] for b in bands] == ["2", "2"]
    passthrough = read_csv(ws / "exp" / "passthrough" / "evalr" / "scores.csv")
    assert all(float(r["clap_gain"]) == 0.0 for r in passthrough)
    assert "CLAP gain" in out and "published double-speed" in out
    # 3 recordings (mixtures = passthrough) + 3 distinct `sep` estimates (rows 0 and 1 share one), once
    assert "CLAP audio embeddings: 6 computed, 0 read from the disk cache" in " ".join(out.split())
    sc._EMBEDDINGS.clear()  # a new process: everything from the disk cache
    code, out, err = run_cli("-w", ws, "score", "--split", "evalr", "--model", "sep,passthrough",
                             "--checkpoint", ckpt, "--tokenizer", tok, "--device", "cpu")
    assert code == 0 and "CLAP audio embeddings: 0 computed, 6 read from the disk cache" in " ".join(out.split())


def test_each_query_and_each_audio_content_embedded_once(ws, weights, monkeypatch):
    from lasskit.scoring.types import ScoreOptions

    ckpt, tok = weights
    options = ScoreOptions(checkpoint=str(ckpt), tokenizer=str(tok), device="cpu")
    model = sc.clap_model(options)
    clips, texts = [], []
    real_clips, real_text = model.audio.embed_clips, model.text.encode
    monkeypatch.setattr(model.audio, "embed_clips", lambda x: clips.append(x.shape[0]) or real_clips(x))
    monkeypatch.setattr(model.text, "encode", lambda q: texts.extend(q) or real_text(q))
    split = ws / "data" / "splits" / "evalr"
    mixtures = [str(split / "mixture" / f"eval_{i}.wav") for i in range(4)]
    queries = ["a", "b", "a", "b"]
    # passthrough estimates == mixtures: 3 distinct contents in all (eval_0 and eval_1 are one recording)
    values, failures, _ = sc.clap_columns(mixtures, mixtures, queries, options)
    assert failures == [] and sum(clips) == 3 and sorted(texts) == ["a", "b"]
    assert values["clap"][0] != values["clap"][1]  # same audio, other query
    sc.clap_columns(mixtures, mixtures, queries, options)  # cached: nothing new
    assert sum(clips) == 3


@pytest.mark.slow
def test_audio_embeddings_are_kept_on_disk_for_the_next_process(ws, weights, monkeypatch, tmp_path, capsys):
    import os

    from lasskit.models.embedding_cache import FILE_NAME
    from lasskit.scoring.types import ScoreOptions

    ckpt, tok = weights
    options = ScoreOptions(checkpoint=str(ckpt), tokenizer=str(tok), device="cpu")
    split = ws / "data" / "splits" / "evalr"
    mixtures = [str(split / "mixture" / f"eval_{i}.wav") for i in range(4)]
    estimates = [str(ws / "exp" / "sep" / "evalr" / f"eval_{i}.wav") for i in range(4)]
    clips = []

    def fresh_process():  # what a new `lasskit score` starts with: nothing in memory
        sc._MODELS.clear()
        sc._EMBEDDINGS.clear()
        model = sc.clap_model(options)
        real = model.audio.embed_clips
        monkeypatch.setattr(model.audio, "embed_clips", lambda x: clips.append(x.shape[0]) or real(x))

    fresh_process()
    first, _, _ = sc.clap_columns(mixtures, estimates, EVAL_QUERIES, options)
    assert sum(clips) == 6 and (Path(os.environ["LASSKIT_CACHE"]) / FILE_NAME).is_file()  # 3 mixtures + 3 estimates
    fresh_process()
    again, _, _ = sc.clap_columns(mixtures, estimates, EVAL_QUERIES, options)
    assert sum(clips) == 6  # nothing embedded: all read from the disk cache
    for m in sc.CLAP_METRICS:
        assert np.array_equal(first[m], again[m])  # bit for bit
    # the other input path, or new weights in the same file, is another key: embedded afresh
    fresh_process()
    sc.clap_columns(mixtures, estimates, EVAL_QUERIES, ScoreOptions(**{**options.__dict__, "clap_path": "physical"}))
    assert sum(clips) == 12
    os.utime(ckpt, ns=(ckpt.stat().st_atime_ns, ckpt.stat().st_mtime_ns + 10**9))
    fresh_process()
    sc.clap_columns(mixtures, estimates, EVAL_QUERIES, options)
    assert sum(clips) == 18
    # a damaged cache is set aside with one warning; the scores are still right
    (Path(os.environ["LASSKIT_CACHE"]) / FILE_NAME).write_bytes(b"not a database" * 100)
    fresh_process()
    capsys.readouterr()
    damaged, _, _ = sc.clap_columns(mixtures, estimates, EVAL_QUERIES, options)
    assert sum(clips) == 24 and np.array_equal(damaged["clap"], first["clap"])
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and "embedding cache not used" in err


def test_compare_on_eval_split_is_paired(ws, weights, run_cli):
    ckpt, tok = weights
    code, out, err = run_cli("-w", ws, "score", "--split", "evalr", "--model", "sep", "--compare", "passthrough",
                             "--checkpoint", ckpt, "--tokenizer", tok)
    assert code == 0, err
    comparison = json.loads((ws / "exp" / "sep" / "evalr" / "compare_passthrough.json").read_text())
    sep = read_csv(ws / "exp" / "sep" / "evalr" / "scores.csv")
    differences = [float(r["clap"]) - float(r["clap_mixture"]) for r in sep]  # passthrough's clap == clap_mixture
    assert comparison["metrics"]["clap"]["mean"] == pytest.approx(np.mean(differences), abs=1e-12)
    assert comparison["metrics"]["clap_mixture"]["mean"] == 0.0
    assert comparison["count"] == 4
    assert "sep - passthrough" in out


def test_clap_next_to_sdr_reports_rank_correlation(ws, weights, run_cli):
    from scipy.stats import spearmanr

    ckpt, tok = weights
    code, out, err = run_cli("-w", ws, "score", "--split", "toy", "--model", "sep", "--clap",
                             "--checkpoint", ckpt, "--tokenizer", tok, "--clap-path", "physical")
    assert code == 0, err
    folder = ws / "exp" / "sep" / "toy"
    rows = read_csv(folder / "scores.csv")
    assert list(rows[0]) == ["mixture", "query", "snr", "sdr", "sdri", "si_sdr", "clap", "clap_mixture", "clap_gain"]
    summary = json.loads((folder / "summary.json").read_text())
    vs = summary["clap"]["vs_sdri"]
    gain, sdri = ([float(r[c]) for r in rows] for c in ("clap_gain", "sdri"))
    assert vs["spearman"] == pytest.approx(spearmanr(gain, sdri).statistic)
    assert vs["count"] == 5 and vs["ci95"][0] <= vs["spearman"] <= vs["ci95"][1]
    assert summary["clap"]["path"] == "physical"
    assert "Spearman rho" in out
    # plain scoring leaves CLAP out
    code, out, err = run_cli("-w", ws, "score", "--split", "toy", "--model", "sep")
    assert code == 0 and "clap" not in read_csv(folder / "scores.csv")[0]


@pytest.mark.slow
def test_paths_give_different_scores_and_bad_path_is_an_error(ws, weights, run_cli):
    ckpt, tok = weights
    values = {}
    for path in ("paper", "physical"):
        code, out, err = run_cli("-w", ws, "score", "--split", "evalr", "--model", "sep", "--clap-path", path,
                                 "--checkpoint", ckpt, "--tokenizer", tok)
        assert code == 0, err
        values[path] = [float(r["clap"]) for r in read_csv(ws / "exp" / "sep" / "evalr" / "scores.csv")]
    assert np.abs(np.subtract(values["paper"], values["physical"])).max() > 1e-4
    code, out, err = run_cli("-w", ws, "score", "--split", "evalr", "--clap-path", "fast")
    assert code == 2 and "--clap-path fast" in err


def test_without_weights_one_line_says_what_to_run(ws, run_cli):
    code, out, err = run_cli("-w", ws, "score", "--split", "evalr", "--model", "sep")
    assert code == 2
    message = err.strip()
    assert "evalr has no references" in message and "lasskit models download dcase2024-baseline" in message
    assert "Traceback" not in err
    code, out, err = run_cli("-w", ws, "score", "--split", "evalr", "--model", "sep", "--checkpoint", ws / "nope.ckpt")
    assert code == 2 and "nope.ckpt: checkpoint not found" in err


def test_failed_rows_are_counted(ws, weights, run_cli):
    ckpt, tok = weights
    write(ws / "exp" / "sep" / "evalr" / "eval_2.wav", np.zeros(8000) + 0.1, rate=8000)
    code, out, err = run_cli("-w", ws, "score", "--split", "evalr", "--model", "sep", "--checkpoint", ckpt,
                             "--tokenizer", tok)
    assert code == 1 and "1 mixture(s) could not be scored" in err
    folder = ws / "exp" / "sep" / "evalr"
    assert [r["mixture"] for r in read_csv(folder / "scores.csv")] == ["eval_0.wav", "eval_1.wav", "eval_3.wav"]
    assert "8000 Hz" in read_csv(folder / "score_failures.csv")[0]["reason"]
    assert json.loads((folder / "summary.json").read_text())["failed"] == 1


@pytest.mark.slow
def test_default_run_includes_eval_splits_only_with_clap(ws, weights, run_cli):
    ckpt, tok = weights
    code, out, err = run_cli("-w", ws, "score", "--model", "sep")
    assert code == 0, err
    assert "split evalr: skipped, it has no references" in out and "--clap" in out
    code, out, err = run_cli("-w", ws, "score", "--model", "sep", "--clap", "--checkpoint", ckpt, "--tokenizer", tok)
    assert code == 0, err
    assert (ws / "exp" / "sep" / "evalr" / "scores.csv").is_file()
    assert "clap_gain" in read_csv(ws / "exp" / "sep" / "toy" / "scores.csv")[0]


def test_spearman_matches_scipy_with_ties_and_a_seeded_interval():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(3)
    x = np.round(rng.standard_normal(40), 1)
    y = x + rng.standard_normal(40)
    assert sc.spearman(x, y) == pytest.approx(spearmanr(x, y).statistic)
    one = sc.spearman_summary(x, y, seed=1, resamples=200)
    assert one == sc.spearman_summary(x, y, seed=1, resamples=200)
    assert one["ci95"][0] < one["spearman"] < one["ci95"][1] and one["count"] == 40
    y[3] = np.nan
    assert sc.spearman_summary(x, y)["count"] == 39
    assert np.isnan(sc.spearman([1, 2], [2, 1])) and np.isnan(sc.spearman_summary([1, 1, 1], [1, 2, 3])["spearman"])
    assert sc.CLAP_PATHS == ca.PATHS


# --- zero-shot labels (lasskit.labels.clap): mechanics only, the weights are random --------------

class StubModel:
    """Text prompt j -> unit vector e_j; a clip -> its given embedding (the waveform's first 512 values)."""

    def __init__(self):
        self.prompts = []

    def text_embeddings(self, prompts):
        self.prompts.extend(prompts)
        return np.eye(512, dtype=np.float32)[: len(prompts)]

    def audio_embeddings(self, waveforms, rate, path):
        return np.stack([np.asarray(w[:512], dtype=np.float32) for w in waveforms])


def test_labels_are_the_best_classes_above_the_floor():
    from types import SimpleNamespace

    from lasskit.labels import clap as lc

    names = ["Dog", "Rain", "Bird", "Car"]
    clips = [np.zeros(600, np.float32) for _ in range(3)]
    clips[0][[0, 1, 2, 3]] = [0.1, 0.5, 0.3, 0.5]  # tie Rain/Car: class order decides
    clips[1][[0, 2]] = [0.9, -0.2]
    model = StubModel()
    labels = lc.clap_labels(clips, SR, names, model, top_k=2)
    assert labels == [["Rain", "Car"], ["Dog", "Rain"], ["Dog", "Rain"]]
    assert model.prompts == [f"This is a sound of {n}." for n in names]
    assert lc.clap_labels(clips, SR, names, StubModel(), top_k=3, min_score=0.2) == [["Rain", "Car", "Bird"],
                                                                                  ["Dog"], []]
    vocabulary = SimpleNamespace(classes={"a": SimpleNamespace(name="Dog", blacklisted=False),
                                          "b": SimpleNamespace(name="Outside", blacklisted=True)})
    assert lc.class_names(vocabulary) == ["Dog"] and lc.class_names(("X", "Y")) == ["X", "Y"]
    with pytest.raises(Exception, match="top_k"):
        lc.pick_labels(np.zeros((1, 2)), ["a", "b"], top_k=0)


@pytest.mark.slow
def test_clap_labels_on_files_with_random_towers(ws, weights, towers, tmp_path):
    from types import SimpleNamespace

    from lasskit.labels import clap as lc
    from lasskit.models.clap_model import ClapModel

    embedder, text = towers
    model = ClapModel(embedder, text)
    names = ["Knock", "Bird", "Hum", "Tone", "Rain"]
    split = ws / "data" / "splits" / "evalr" / "mixture"
    paths = [split / "eval_0.wav", split / "eval_2.wav", tmp_path / "low.wav", split / "eval_3.wav"]
    write(paths[2], soundgen.generate("rain", 2.0, 8000, seed=5), rate=8000)  # another rate: its own call
    labels = lc.clap_labels_for_files(paths, names, model, top_k=2, chunk=3)
    assert len(labels) == 4 and all(len(x) == 2 and set(x) <= set(names) for x in labels)
    waves = [sf.read(str(p), dtype="float32")[0] for p in paths]
    scores = np.stack([lc.tag_scores([w], r, names, model)[0] for w, r in zip(waves, (SR, SR, 8000, SR))])
    assert labels == lc.pick_labels(scores, names, top_k=2)
    clips = [SimpleNamespace(labels=["Dog"], label_source="given"), SimpleNamespace(labels=[], label_source=""),
             SimpleNamespace(labels=["Rain"], label_source="caption"), SimpleNamespace(labels=[], label_source="")]
    assert lc.label_clips_with_clap(clips, paths, names, model, top_k=2) == 2
    assert [c.label_source for c in clips] == ["given", "clap", "caption", "clap"]
    assert clips[0].labels == ["Dog"] and clips[1].labels == labels[1] and clips[3].labels == labels[3]
    assert lc.label_clips_with_clap(clips, paths, names, model, top_k=1, replace_derived=True) == 3
    assert clips[2].label_source == "clap" and clips[0].labels == ["Dog"]


@pytest.mark.slow
def test_cli_label_clap_tags_the_clips_left_without_labels(weights, tmp_path, run_cli):
    import os

    from lasskit.manifest import Clip, read_manifest, write_manifest

    ws = tmp_path / "ws"
    root = ws / "data" / "gen"
    clips = []
    for i, (name, labels) in enumerate([("rain", ["Rain"]), ("knock", []), ("hum", [])]):
        write(root / "audio" / f"c{i}.wav", soundgen.generate(name, 1.0, SR, seed=i))
        clips.append(Clip(f"c{i}", f"audio/c{i}.wav", 1.0, SR, SR, "gen", "train", ["zzz qqq"], labels))
    write_manifest(root / "manifest.csv", clips)
    vocabulary = tmp_path / "vocabulary.csv"
    vocabulary.write_text("0,Rain,/m/06mb1\n1,Bird,/m/015p6\n2,Knock,/m/07r4wb8\n3,Hum,/m/07rcgpl\n")
    audio = {p: p.read_bytes() for p in (root / "audio").glob("*.wav")}
    checkpoint, tokenizer = weights
    base = ["--workspace", ws, "label", "gen", "--vocabulary", vocabulary]
    code, _, err = run_cli(*base, "--top-k", "2")
    assert code == 2 and "go with --clap" in err and err.count("\n") == 1
    code, _, err = run_cli(*base, "--clap", "--min-score", "3")
    assert code == 2 and "--min-score 3" in err
    clap = ["--clap", "--checkpoint", checkpoint, "--tokenizer", tokenizer, "--device", "cpu", "--top-k", "2"]
    code, out, err = run_cli(*base, *clap)
    assert code == 0, err
    assert "2 clip(s) tagged" in out and "0 clip(s) without labels" in out and "manifest rewritten" in out
    by_id = {c.id: c for c in read_manifest(root / "manifest.csv").clips}
    assert (by_id["c0"].labels, by_id["c0"].label_source) == (["Rain"], "given")  # given labels are never touched
    for cid in ("c1", "c2"):
        assert by_id[cid].label_source == "clap" and len(by_id[cid].labels) == 2
        assert set(by_id[cid].labels) <= {"Rain", "Bird", "Knock", "Hum"}
    # the labels are the towers' own choice for the clip
    from lasskit.labels import clap as lc
    from lasskit.models.clap_model import load_clap_model

    model = load_clap_model(checkpoint, tokenizer, "cpu")
    want = lc.clap_labels_for_files([root / "audio" / "c1.wav"], ["Rain", "Bird", "Knock", "Hum"], model, top_k=2)
    assert by_id["c1"].labels == want[0]
    # again: the CLAP clips are tagged again (from the disk cache) to the same labels: nothing changes
    from lasskit.models.embedding_cache import FILE_NAME

    assert (Path(os.environ["LASSKIT_CACHE"]) / FILE_NAME).is_file()
    code, out, err = run_cli(*base, *clap)
    assert code == 0 and "2 clip(s) tagged" in out and "manifest unchanged" in out
    assert {p: p.read_bytes() for p in (root / "audio").glob("*.wav")} == audio
    # other settings take effect: top 1 now; a floor no class reaches leaves them without labels
    code, out, err = run_cli(*base, *clap[:-1], "1")
    assert code == 0 and all(len(c.labels) == 1 for c in read_manifest(root / "manifest.csv").clips)
    code, out, err = run_cli(*base, *clap, "--min-score", "0.999")
    assert code == 0 and "2 clip(s) without labels" in out
    by_id = {c.id: c for c in read_manifest(root / "manifest.csv").clips}
    assert (by_id["c1"].labels, by_id["c1"].label_source) == ([], "") and by_id["c0"].labels == ["Rain"]
