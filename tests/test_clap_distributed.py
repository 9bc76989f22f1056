"""`score --devices N` and `label --clap --devices N`: the CLAP audio embeddings shared by ranks (2 gloo
CPU processes, tiny random towers), the bytes of one process, a killed rank finished from the cache."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from lasskit.models.embedding_cache import FILE_NAME, plan_batches

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("torchaudio")

from tests.test_score_clap import weights, write, ws  # noqa: E402,F401  (fixtures: tiny CLAP, eval split)


def test_the_plan_is_distinct_contents_in_order_cut_by_size_and_rate():
    rates = [16000, 16000, 16000, 8000, 8000, 16000, 16000, 16000]
    assert plan_batches([0, 1, 2, 3, 4, 5, 7], rates, 2) == [[0, 1], [2], [3, 4], [5, 7]]
    assert plan_batches([], rates, 4) == []


def _embeddings(cache: Path) -> dict:
    with sqlite3.connect(cache / FILE_NAME) as db:
        return {bytes(d): bytes(v) for d, v in db.execute("SELECT digest, value FROM embeddings")}


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    from lasskit.scoring import clap as sc

    def use(name: str) -> Path:  # a new process: nothing in memory, the cache folder `name`
        sc._MODELS.clear()
        sc._EMBEDDINGS.clear()
        monkeypatch.setenv("LASSKIT_CACHE", str(tmp_path / name))
        return tmp_path / name

    yield use
    sc._MODELS.clear()
    sc._EMBEDDINGS.clear()


@pytest.mark.slow
def test_score_on_two_processes_gives_the_bytes_of_one(ws, weights, fresh, run_cli):
    ckpt, tok = weights
    common = ("-w", ws, "score", "--split", "evalr", "--model", "sep,passthrough", "--checkpoint", ckpt,
              "--tokenizer", tok, "--device", "cpu", "--clap-batch", "1")
    outputs = [ws / "exp" / m / "evalr" / f for m in ("sep", "passthrough") for f in ("scores.csv", "summary.json")]
    one = fresh("one")
    code, out, err = run_cli(*common)
    assert code == 0, err
    first = [p.read_bytes() for p in outputs]
    two = fresh("two")
    code, out, err = run_cli(*common, "--devices", "2")
    assert code == 0, err
    assert [p.read_bytes() for p in outputs] == first
    # 6 distinct contents (3 recordings, 3 `sep` estimates), one a batch: 3 each, the same float32 bits
    assert "6 computed (rank 0: 3, rank 1: 3), 0 read from the disk cache" in " ".join(out.split())
    assert _embeddings(two) == _embeddings(one) and len(_embeddings(one)) == 6


def _label_killing_rank_1(**kwargs):
    """label_corpus whose rank 1 dies on its second audio-tower batch (module level: ranks import it)."""
    from lasskit.labels.run import label_corpus
    from lasskit.models.clap_model import ClapModel

    real, calls = ClapModel.audio_embeddings, []

    def dying(self, *args, **kw):
        calls.append(1)
        if os.environ.get("RANK") == "1" and len(calls) == 2:
            os._exit(9)
        return real(self, *args, **kw)

    ClapModel.audio_embeddings = dying
    return label_corpus(**kwargs)


@pytest.mark.slow
def test_label_on_two_processes_finishes_a_killed_run_with_the_bytes_of_one(weights, fresh, tmp_path):
    from lasskit import soundgen
    from lasskit.distributed import run_on
    from lasskit.errors import WorkError
    from lasskit.labels.run import label_corpus
    from lasskit.manifest import Clip, write_manifest

    vocabulary = tmp_path / "vocabulary.csv"
    vocabulary.write_text("0,Rain,/m/06mb1\n1,Bird,/m/015p6\n2,Knock,/m/07r4wb8\n3,Hum,/m/07rcgpl\n")
    sounds = ["rain", "knock", "hum", "bird", "tone", "rain", "knock", "hum"]
    for corpus in ("one", "two"):
        root = tmp_path / corpus
        clips = []
        for i, name in enumerate(sounds):
            write(root / "audio" / f"c{i}.wav", soundgen.generate(name, 1.0, 16000, seed=i))
            clips.append(Clip(f"c{i}", f"audio/c{i}.wav", 1.0, 16000, 16000, "gen", "train", ["zzz"],
                              ["Rain"] if i == 0 else []))
        write_manifest(root / "manifest.csv", clips)
    clap = dict(checkpoint=str(weights[0]), tokenizer=str(weights[1]), device="cpu", top_k=2, chunk=1)
    fresh("one")
    run = label_corpus(tmp_path / "one" / "manifest.csv", vocabulary, clap=clap)
    assert (run.clap_done, run.by_rank, run.cached) == (7, [7], 0)
    fresh("two")
    kwargs = dict(manifest=str(tmp_path / "two" / "manifest.csv"), vocabulary=str(vocabulary), clap=clap)
    with pytest.raises(WorkError, match="stopped"):  # rank 1 dies in the middle: rank 0's batches are stored
        run_on(_label_killing_rank_1, 2, **kwargs)
    run = run_on(label_corpus, 2, **kwargs)  # the same command again: only what is missing is embedded
    assert run.cached > 0 and run.cached + sum(run.by_rank) == 7 and run.by_rank[1] > 0
    assert (tmp_path / "two/manifest.csv").read_bytes() == (tmp_path / "one/manifest.csv").read_bytes()
    assert _embeddings(tmp_path / "two") == _embeddings(tmp_path / "one")
