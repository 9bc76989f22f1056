"""`score --devices N` and `label --clap --devices N`: the CLAP audio embeddings shared by ranks (2 gloo
CPU processes, tiny random towers), the bytes of one process; a killed rank costs only its unfinished
batch (in-process: a group whose rank 1 dies; the launcher's side is separate's test)."""

from __future__ import annotations

import re
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
    import json  # what made the embeddings' last bits is in summary.json (the tower's batch, the device kind)
    clap = json.loads(outputs[1].read_bytes())["clap"]
    assert (clap["batch"], clap["device"]) == (1, "cpu")
    # 6 distinct contents (3 recordings, 3 `sep` estimates), one a batch: 3 each, the same float32 bits
    assert "6 computed (rank 0: 3, rank 1: 3), 0 read from the disk cache" in " ".join(out.split())
    assert _embeddings(two) == _embeddings(one) and len(_embeddings(one)) == 6


class _Rank1Dies:
    """Rank 0 of a 2-process group whose rank 1 hashes its share, embeds its first batch, then dies."""

    rank, world, lead = 0, 2, True

    def __init__(self, model, sources, read):
        self.model, self.sources, self.read, self.calls, self.plan = model, sources, read, 0, None

    def select(self, batches):
        return batches[0::2]

    def from_lead(self, plan):
        self.plan = plan
        return plan

    def gather(self, value):
        from lasskit.models.embedding_cache import _digest_of

        self.calls += 1
        if self.calls == 1:  # the hashing: rank 1 hashes every other source
            return [value, [_digest_of(self.read, s) for s in self.sources[1::2]]]
        if self.calls == 2:  # round 0: rank 1's batch 1
            return [value, self.model.audio_embeddings([self.read(self.sources[k])[0] for k in self.plan[1]],
                                                       16000, "paper")]
        raise RuntimeError("rank 1 is gone")  # round 1: the group breaks


def test_a_killed_rank_costs_only_its_unfinished_batch(tmp_path, monkeypatch):
    import numpy as np

    from lasskit.models.embedding_cache import embed_missing

    monkeypatch.setenv("LASSKIT_CACHE", str(tmp_path / "cache"))
    weights = tmp_path / "w.ckpt"
    weights.write_bytes(b"w")
    calls = []

    class Model:  # an embedding of each clip's first samples; counts the clips it embeds
        checkpoint = str(weights)

        def audio_embeddings(self, waves, rate, path):
            calls.append(len(waves))
            return np.stack([np.asarray(w[:4], np.float32) for w in waves])

    sources = list(range(9))  # 9 clips, contents 0..7 (the last repeats the first)

    def read(k):
        return np.full(8, k % 8, np.float32), 16000

    with pytest.raises(RuntimeError, match="gone"):
        embed_missing(Model(), "paper", sources, read, shard=_Rank1Dies(Model(), sources, read), batch=2)
    # batches [0,1] [2,3] [4,5] [6,7]: round 0 (both ranks) and rank 0's batch 2 of round 1 were stored
    found = {}
    done = embed_missing(Model(), "paper", sources, read, found=lambda d, v: found.update(zip(d, map(tuple, v))),
                         batch=2)
    assert (done.cached, done.by_rank) == (6, [2]) and calls[-1] == 2  # only batch 3 again
    assert [found[d][0] for d in done.digests] == [k % 8 for k in sources]


@pytest.mark.slow
def test_label_on_two_processes_gives_the_bytes_of_one(weights, fresh, tmp_path):
    from lasskit import soundgen
    from lasskit.distributed import run_on
    from lasskit.labels.run import label_corpus
    from lasskit.manifest import Clip, write_manifest

    vocabulary = tmp_path / "vocabulary.csv"
    vocabulary.write_text("0,Rain,/m/06mb1\n1,Bird,/m/015p6\n2,Knock,/m/07r4wb8\n3,Hum,/m/07rcgpl\n")
    for corpus in ("one", "two"):
        root = tmp_path / corpus
        clips = []
        for i, name in enumerate(["rain", "knock", "hum", "bird", "tone"]):
            write(root / "audio" / f"c{i}.wav", soundgen.generate(name, 1.0, 16000, seed=i))
            clips.append(Clip(f"c{i}", f"audio/c{i}.wav", 1.0, 16000, 16000, "gen", "train", ["zzz"],
                              ["Rain"] if i == 0 else []))
        write_manifest(root / "manifest.csv", clips)
    clap = dict(checkpoint=str(weights[0]), tokenizer=str(weights[1]), device="cpu", top_k=2, batch=1)
    fresh("one")
    run = label_corpus(tmp_path / "one" / "manifest.csv", vocabulary, clap=clap)
    assert (run.clap_done, run.by_rank, run.cached) == (4, [4], 0)
    fresh("two")
    run = run_on(label_corpus, 2, manifest=str(tmp_path / "two" / "manifest.csv"), vocabulary=str(vocabulary),
                 clap=clap)
    assert (run.clap_done, run.by_rank, run.cached, run.world) == (4, [2, 2], 0, 2)
    assert (tmp_path / "two/manifest.csv").read_bytes() == (tmp_path / "one/manifest.csv").read_bytes()
    assert _embeddings(tmp_path / "two") == _embeddings(tmp_path / "one")


_LAUNCH_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "SLURM_PROCID", "SLURM_STEP_NUM_TASKS",
                "SLURM_LOCALID", "SLURM_NTASKS", "SLURM_NTASKS_PER_NODE", "MASTER_ADDR", "MASTER_PORT")


@pytest.mark.parametrize("env, says", [
    ({"RANK": "1"}, "RANK=1 is set but WORLD_SIZE is not"),  # ran the whole work as one process
    ({"WORLD_SIZE": "2"}, "WORLD_SIZE=2 is set but RANK is not"),
    ({"RANK": "5", "WORLD_SIZE": "2"}, "RANK=5 with WORLD_SIZE=2: a rank must be below"),  # waited for ever
    ({"RANK": "-1", "WORLD_SIZE": "2"}, "RANK='-1': must be a whole number"),  # ran as one process
    ({"RANK": "1", "WORLD_SIZE": "two"}, "WORLD_SIZE='two': must be a whole number"),
    ({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "2", "LOCAL_WORLD_SIZE": "2"}, "LOCAL_RANK=2 with LOCAL_WORLD"),
    ({"SLURM_PROCID": "3", "SLURM_STEP_NUM_TASKS": "2"}, "SLURM_PROCID=3 with SLURM_STEP_NUM_TASKS=2"),
])
def test_launcher_variables_that_no_launcher_sets_are_one_line(monkeypatch, env, says):
    from lasskit.distributed import env_shard
    from lasskit.errors import UsageError

    for key in _LAUNCH_VARS:
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(UsageError, match=says.replace("(", r"\(")):
        env_shard()


def test_a_group_without_a_meeting_point_or_with_two_ranks_on_one_gpu_is_one_line(monkeypatch):
    """init_group refuses before torch.distributed: MASTER_ADDR missing was an 'internal error'
    (torch's ValueError), an unknown host waited for hours, two local ranks on one GPU failed in nccl."""
    from lasskit.distributed import Shard, init_group
    from lasskit.errors import UsageError

    for key in _LAUNCH_VARS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    shard = Shard(1, 2, 1, 2)
    with pytest.raises(UsageError, match="MASTER_ADDR and MASTER_PORT .* are not both set"):
        init_group(shard, "cpu")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "99999")
    with pytest.raises(UsageError, match="MASTER_PORT='99999': must be a port number"):
        init_group(shard, "cpu")
    monkeypatch.setenv("MASTER_PORT", "29500")
    monkeypatch.setenv("MASTER_ADDR", "no-such-host.invalid")
    with pytest.raises(UsageError, match="MASTER_ADDR=no-such-host.invalid: no such host"):
        init_group(shard, "cpu")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(UsageError, match="local rank 1 on this machine, but torch sees 1 GPU"):
        init_group(shard, "cuda")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(UsageError, match=r"--device cuda:0 on rank 1: .* \(cuda:1 here\); give --device cuda"):
        init_group(shard, "cuda:0")  # was run on cuda:1 without a word
    assert not torch.distributed.is_initialized()


def test_a_rank_whose_group_never_meets_is_one_line_after_the_rendezvous_wait(monkeypatch):
    """Rank 1 of 2 with nobody at the meeting point waited GROUP_TIMEOUT (6 h) before failing."""
    from lasskit import distributed
    from lasskit.errors import WorkError

    if not hasattr(torch.distributed, "set_timeout"):
        pytest.skip("torch < 2.6 keeps the long wait (no set_timeout after the group met)")
    for key in _LAUNCH_VARS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(distributed._free_port()))
    monkeypatch.setattr(distributed, "RENDEZVOUS_TIMEOUT", 1)
    with pytest.raises(WorkError, match=r"rank 1 of 2: the group did not meet at 127\.0\.0\.1:\d+ within 1 s"):
        distributed.init_group(distributed.Shard(1, 2), "cpu")
    assert not torch.distributed.is_initialized()


@pytest.mark.slow  # starts two processes (each imports torch)
def test_a_refusal_on_every_rank_of_devices_2_is_one_line(tmp_path, capfd):
    """Each rank printed its own 'error: rank r: ...' and torch logged 'Terminating process ...' before
    the launcher's line: four lines on stderr for one mistake."""
    from lasskit.distributed import run_on
    from lasskit.errors import UsageError
    from lasskit.labels.run import label_corpus

    with pytest.raises(UsageError, match="no class vocabulary") as caught:
        run_on(label_corpus, 2, manifest=str(tmp_path / "manifest.csv"))
    assert type(caught.value) is UsageError  # exit 2, as on one process
    assert capfd.readouterr().err == ""


def test_rank_0_failing_alone_in_label_stops_the_other_ranks_too(monkeypatch, tmp_path):
    """Rank 0 derives the labels alone; when that failed the others waited at the barrier for the
    group's timeout (6 h) under srun, which does not stop a step's other tasks."""
    from lasskit import distributed
    from lasskit.errors import UsageError
    from lasskit.labels import run as label_run
    from lasskit.models import clap_model

    class Rank:
        def __init__(self, rank, sent=None):
            self.rank, self.world, self.lead, self.sent, self.local_rank = rank, 2, rank == 0, sent, rank

        def from_lead(self, value):
            self.sent = value if self.lead else self.sent
            return self.sent

    vocabulary = tmp_path / "vocabulary.csv"
    vocabulary.write_text("0,Rain,/m/06mb1\n")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("id,audio\n")  # a manifest without its columns: rank 0's keyword step refuses it
    monkeypatch.setattr(distributed, "init_group", lambda shard, device: device)
    monkeypatch.setattr(clap_model, "load_clap_model", lambda *a, **k: object())
    clap = dict(checkpoint="w.ckpt", tokenizer="t", device="cpu")
    lead = Rank(0)
    monkeypatch.setattr(distributed, "env_shard", lambda: lead)
    with pytest.raises(UsageError) as caught:
        label_run.label_corpus(manifest, vocabulary, clap=clap)
    assert lead.sent == (True, str(caught.value))  # said to the group before leaving
    monkeypatch.setattr(distributed, "env_shard", lambda: Rank(1, sent=lead.sent))
    with pytest.raises(UsageError, match=re.escape(f"rank 0 stopped: {caught.value}")):
        label_run.label_corpus(manifest, vocabulary, clap=clap)


def test_rank_0_failing_alone_in_separate_stops_the_other_ranks_too(monkeypatch, tmp_path):
    """`separate --split` on several ranks: rank 0 folds in old ledgers and scans the split alone;
    its error reaches the others (they waited at the barrier for the group's timeout under srun)."""
    import types

    from lasskit.errors import WorkError
    from lasskit.separation import pipeline

    class Rank:
        def __init__(self, rank, sent=None):
            self.rank, self.world, self.lead, self.sent = rank, 2, rank == 0, sent

        def from_lead(self, value):
            self.sent = value if self.lead else self.sent
            return self.sent

        def barrier(self):
            raise AssertionError("a rank waits at a barrier after rank 0 failed")

    def scan(*args, **kwargs):
        raise WorkError("data/splits/x/mixture/a.wav: cannot be read")

    monkeypatch.setattr(pipeline, "_scan_split", scan)
    lead = Rank(0)
    with pytest.raises(WorkError, match="a.wav: cannot be read") as caught:
        pipeline._prepare_ranks(lead, None, tmp_path, False, False, types.SimpleNamespace())
    assert lead.sent == (False, str(caught.value))
    with pytest.raises(WorkError, match=re.escape(f"rank 0 stopped: {caught.value}")):
        pipeline._prepare_ranks(Rank(1, sent=lead.sent), None, tmp_path, False, False, types.SimpleNamespace())
