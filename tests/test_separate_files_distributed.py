"""`separate --devices N` / torchrun / srun (a split or recordings): sharding, the bytes of one process, resuming."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lasskit.separation.distributed import Shard, env_shard

TINY = '''
import os
import torch


class Tiny:
    """A small conv model with fixed weights and a query-dependent gain."""

    name = "tiny"
    sample_rate = 16000

    def __init__(self, checkpoint=None, device="cpu"):
        g = torch.Generator().manual_seed(0)
        self.conv = torch.nn.Conv1d(1, 4, 31, padding=15)
        self.out = torch.nn.Conv1d(4, 1, 31, padding=15)
        with torch.no_grad():
            for p in list(self.conv.parameters()) + list(self.out.parameters()):
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
        self.calls = 0
        self.options = {}

    def separate(self, mixtures, queries):
        self.calls += 1
        kill = os.environ.get("TINY_KILL_RANK")
        if kill is not None and kill == os.environ.get("RANK") and self.calls == 2:
            os._exit(9)  # a rank killed in the middle of the run
        gain = torch.tensor([1.0 + (sum(map(ord, q)) % 7) / 10 for q in queries])[:, None]
        return self.out(torch.tanh(self.conv(mixtures[:, None])))[:, 0] * gain
'''


def test_every_batch_goes_to_exactly_one_rank():
    batches = [[f"m{i}"] for i in range(11)]
    shares = [Shard(rank, 3).select(batches) for rank in range(3)]
    assert shares == [batches[0::3], batches[1::3], batches[2::3]]
    assert sorted(b[0] for share in shares for b in share) == sorted(b[0] for b in batches)  # no padding rows
    assert Shard(0, 1).select(batches) == batches


def test_the_rank_comes_from_torchrun_or_slurm(monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID",
                "SLURM_NTASKS_PER_NODE", "SLURM_STEP_NUM_TASKS"):
        monkeypatch.delenv(key, raising=False)
    assert env_shard() is None
    monkeypatch.setenv("SLURM_PROCID", "0")
    monkeypatch.setenv("SLURM_NTASKS", "8")  # a batch script of an 8-task allocation: one process, not a group
    assert env_shard() is None
    monkeypatch.setenv("SLURM_PROCID", "5")
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "8")  # srun
    monkeypatch.setenv("SLURM_LOCALID", "1")
    assert env_shard() == Shard(5, 8, 1, 1)
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "2")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert env_shard() == Shard(2, 4, 2, 4)  # torchrun's variables first
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "1")
    assert env_shard() is None


def test_the_slurm_rendezvous_is_the_first_node():
    from lasskit.separation.distributed import first_host

    assert first_host("gpu[03-05,09],cpu1") == "gpu03"
    assert first_host("node7,node8") == "node7"
    assert first_host("a[1,4]") == "a1"
    assert first_host("single") == "single"


def test_devices_options_are_checked(tmp_path: Path, run_cli):
    from tests.test_separate import make_split

    make_split(tmp_path)
    code, _, err = run_cli("--workspace", tmp_path, "separate", "--split", "synth", "--devices", "0")
    assert code == 2 and "--devices 0" in err
    code, _, err = run_cli("--workspace", tmp_path, "separate", "--split", "synth", "--num-nodes", "2",
                           "--device", "cpu")
    assert code == 2 and "srun or torchrun" in err
    assert not (tmp_path / "exp").exists()


def _outputs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.wav"))}


@pytest.mark.slow
def test_two_gloo_processes_give_the_bytes_of_one_and_a_killed_rank_is_finished(tmp_path: Path, run_cli,
                                                                                  monkeypatch):
    from tests.test_separate import make_split

    make_split(tmp_path, lengths=(1.0, 1.0, 0.75, 1.25, 1.0, 0.5, 0.5, 1.0, 2.0, 1.0))
    (tmp_path / "tiny.py").write_text(TINY, encoding="utf-8")
    model = str(tmp_path / "tiny.py") + ":Tiny"
    common = ("--workspace", tmp_path, "separate", "--split", "synth", "--model", model, "--device", "cpu",
              "--batch-size", "2")
    code, out, err = run_cli(*common, "--name", "one")
    assert code == 0, err
    code, out, err = run_cli(*common, "--name", "two", "--devices", "2")
    assert code == 0, err
    one, two = tmp_path / "exp/one/synth", tmp_path / "exp/two/synth"
    assert _outputs(two) == _outputs(one) and len(_outputs(one)) == 10
    record = json.loads((two / "separate.json").read_text())
    assert record["complete"] and record["written"] == 10
    assert [(r["rank"], r["written"]) for r in record["ranks"]] == [(0, 6), (1, 4)]  # 6 batches: 3 each
    ledgers = [json.loads((d / "provenance.json").read_text()) for d in (one, two)]
    assert [{k: v[:3] for k, v in led["outputs"].items()} for led in ledgers][0] == \
        {k: v[:3] for k, v in ledgers[1]["outputs"].items()}
    assert not list(two.glob("provenance.rank*.json"))
    assert "rank 1 on cpu: 4 written" in out

    monkeypatch.setenv("TINY_KILL_RANK", "1")  # rank 1 dies on its second batch
    code, out, err = run_cli(*common, "--name", "three", "--devices", "2")
    assert code == 1 and "rank 1 stopped" in err
    three = tmp_path / "exp/three/synth"
    assert 0 < len(_outputs(three)) < 10
    monkeypatch.delenv("TINY_KILL_RANK")
    code, out, err = run_cli(*common, "--name", "three", "--devices", "2")
    assert code == 0, err
    record = json.loads((three / "separate.json").read_text())
    assert record["complete"] and 0 < record["written"] < 10 and record["skipped"] == 10 - record["written"]
    assert _outputs(three) == _outputs(one)


@pytest.mark.slow
def test_recordings_on_two_processes_give_the_bytes_of_one(tmp_path: Path, run_cli):
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    for i, (seconds, rate, channels) in enumerate([(3.0, 16000, 1), (12.5, 44100, 2), (1.0, 22050, 1)]):
        sf.write(tmp_path / f"rec{i}.wav", (rng.standard_normal((int(seconds * rate), channels)) * 0.1), rate)
    (tmp_path / "tiny.py").write_text(TINY, encoding="utf-8")
    common = ("separate", *(str(tmp_path / f"rec{i}.wav") for i in range(3)), "-q", "rain", "-q", "a dog",
              "--model", str(tmp_path / "tiny.py") + ":Tiny", "--device", "cpu", "--residual",
              "--window-seconds", "4", "--context-seconds", "0.5", "--crossfade-seconds", "0.5")
    code, _, err = run_cli(*common, "--out", tmp_path / "one")
    assert code == 0, err
    code, out, err = run_cli(*common, "--out", tmp_path / "two", "--devices", "2")
    assert code == 0, err
    one, two = _outputs(tmp_path / "one"), _outputs(tmp_path / "two")
    assert len(one) == 12 and one == two
    assert (tmp_path / "one/separations.csv").read_bytes() == (tmp_path / "two/separations.csv").read_bytes()
    assert "rank 1 on cpu: 4 written" in out  # recording 1 (2 queries, estimate + residual each)
    assert not list((tmp_path / "two").glob("provenance.rank*.json"))
    code, out, err = run_cli(*common, "--out", tmp_path / "two", "--devices", "2")
    assert code == 0 and "0 of 12 output(s)" in out and "12 already done" in out
