"""lasskit train: it learns, resumes bit-identically, trains in step under DDP (gloo), and its
checkpoints run in ``separate``; plus the plan and the one-line errors.

Data: generated sound classes (lasskit.soundgen), 1 s clips, ``train`` and ``val`` splits in one
manifest; held-out mixtures made by ``lasskit.mixing`` from the ``val`` clips. Model: the baseline
with a small ResUNet (``channels=4``) and a tiny random CLAP text tower (1 layer, width 32) with
a byte-level tokenizer written here (no hub access).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import needs  # noqa: E402

# Training tests are slow (Lightning runs, subprocesses): `make test` runs them, `make test-fast` does not.
pytestmark = [pytest.mark.slow, needs("transformers", "lightning")]

from lasskit import soundgen  # noqa: E402
from lasskit.errors import UsageError  # noqa: E402
from lasskit.manifest import Clip, write_manifest  # noqa: E402
from lasskit.training import TrainConfig, train  # noqa: E402
from lasskit.miniature import write_tokenizer  # noqa: E402
from lasskit.workspace import Workspace  # noqa: E402

CLASSES = ("tone", "alarm", "hum", "bird")
REPO = Path(__file__).resolve().parents[1]


def write_clap(path: Path, seed: int = 0) -> Path:
    """A CLAP-style file (``module.text_branch.*``, ``module.text_projection.*``) of a tiny random text tower."""
    from conftest import tiny_text_tower

    torch.save({"state_dict": tiny_text_tower("module.", seed)}, path)
    return path


def write_corpus(root: Path, train: int = 12, held_out: int = 3, duration: float = 1.0) -> Path:
    clips = []
    for ci, name in enumerate(CLASSES):
        cls = soundgen.CLASSES[name]
        for k in range(train + held_out):
            rel = f"audio/{name}{k}.wav"
            soundgen.write_clip(root / rel, name, duration, seed=1000 * ci + k)
            clips.append(Clip(f"{name}{k}", rel, duration, 16000, int(duration * 16000), "gen",
                              "train" if k < train else "val", list(cls.captions), list(cls.labels)))
    write_manifest(root / "manifest.csv", clips)
    return root / "manifest.csv"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A workspace with the corpus and a held-out split, the tokenizer folder and the CLAP file."""
    from lasskit.mixing import MixSpec, make_mixtures

    base = tmp_path_factory.mktemp("train")
    ws = base / "ws"
    manifest = write_corpus(ws / "data" / "gen")
    spec = MixSpec(snr_low=-5, snr_high=5, duration=1.0, seed=1, per_caption=True)
    make_mixtures(ws / "data" / "splits" / "heldout", spec, [manifest], [manifest], splits=["val"], jobs=1)
    return {"ws": ws, "tokenizer": write_tokenizer(base / "tokenizer"), "clap": write_clap(base / "clap.pt")}


def config(setup, name: str, **kw) -> TrainConfig:
    values = dict(model="dcase2024-baseline", name=name, options={
        "tokenizer": str(setup["tokenizer"]), "clap_checkpoint": str(setup["clap"]), "channels": 4},
        steps=4, batch_size=4, segment=0.25, snr=(-5.0, 5.0), warmup_steps=0, lr=3e-3, bn_momentum=0.1,
        val=None, workers=0, log_every=1, seed=0)
    values.update(kw)
    return TrainConfig(**values)


def load_state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def heldout_sdri(model, ws: Path) -> dict[str, float]:
    """Mean SDRi per query over every held-out mixture, the model in eval mode."""
    from lasskit import audio
    from lasskit.metrics import sdri
    from lasskit.splits import read_split

    split = read_split(ws / "data" / "splits" / "heldout")
    model.network.eval()
    per_query: dict[str, list[float]] = {}
    for _, row in split.frame.iterrows():
        mixture = audio.load(split.mixture_path(row["mixture"]))
        source = audio.load(split.root / row["source"])
        estimate = model.separate(torch.from_numpy(mixture)[None], [row["query"]])[0].numpy()
        per_query.setdefault(row["query"], []).append(float(sdri(source, estimate, mixture)))
    return {q: float(np.mean(v)) for q, v in per_query.items()}


# --- it learns, and its checkpoint runs in `separate` --------------------------------------------

@pytest.mark.slow
def test_it_learns(setup):
    """120 steps of 16 x 0.125 s (about 35 s of CPU): held-out SDRi >= 5 dB on average, and every
    class's queries gain >= 2 dB over the untrained network.

    Measured (2-core CPU, 2 torch threads, 12 training clips per class): mean held-out SDRi 7.7 dB
    after 120 steps; per class the gain over the untrained network is 5.7 (alarm) to 17.4 dB
    (hum); every trained query above 4.0 dB, every untrained one below 0.6 dB. Until 2026-12 the
    test trained on 0.25 s segments (mean 10.8 dB, twice the CPU time for the same bars).
    A seeded run this small is chaotic in its rounding: the same run on 1 torch thread ends
    elsewhere (mean 3.8 dB, the alarm class +0.5 dB), and so do its neighbours (0.25 s segments on
    1 thread: alarm +0.4 dB; lr 0.002: mean 7.1 dB on 2 threads, 3.0 dB on 1). So the test pins the
    2 threads its figures were measured with; another CPU's kernels could still move it.
    """
    from lasskit.models.baseline import DCASE2024Baseline

    ws = setup["ws"]
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # what the figures were measured with (a seeded run's sums depend on it)
    try:
        cfg = config(setup, "learn", steps=120, batch_size=16, segment=0.125, val="heldout", val_count=24,
                     val_every=60, log_every=20)
        result = train(cfg, Workspace.open(ws))
        trained = heldout_sdri(result["trained_model"], ws)
        torch.manual_seed(0)
        untrained = heldout_sdri(DCASE2024Baseline.for_training(
            None, tokenizer=str(setup["tokenizer"]), clap_checkpoint=str(setup["clap"]), channels=4), ws)
    finally:
        torch.set_num_threads(threads)
    assert len(trained) == 2 * len(CLASSES)
    assert max(untrained.values()) < 1.0, untrained
    assert np.mean(list(trained.values())) >= 5.0, trained
    for name in CLASSES:  # every class's queries gain on average >= 2 dB over the untrained network
        queries = soundgen.CLASSES[name].captions
        gain = np.mean([trained[q] - untrained[q] for q in queries])
        assert gain >= 2.0, (name, trained, untrained)
    assert min(trained.values()) > max(untrained.values()), (trained, untrained)
    assert result["best_val_sdri"] is not None and result["best_val_sdri"] > 5.0


def test_checkpoint_runs_in_separate_like_the_model_in_memory(setup, run_cli):
    """2 steps, then `lasskit separate --checkpoint last.ckpt` writes the in-memory model's outputs."""
    from lasskit import audio
    from lasskit.splits import read_split

    ws = setup["ws"]
    result = train(config(setup, "roundtrip", steps=2, val="heldout", val_count=4, val_every=1), Workspace.open(ws))
    model = result["trained_model"]
    run = ws / "exp" / "train" / "roundtrip"
    for name in ("config.json", "data.json", "train.json", "metrics.csv", "last.ckpt", "best.ckpt"):
        assert (run / name).is_file(), name
    saved = json.loads((run / "config.json").read_text())
    assert saved["versions"]["lasskit"] and saved["options"]["steps"] == 2
    digests = json.loads((run / "data.json").read_text())["manifest_sha256"]
    assert list(digests.values()) == [hashlib.sha256((ws / "data" / "gen" / "manifest.csv").read_bytes()).hexdigest()]
    state = load_state(run / "last.ckpt")["state_dict"]
    assert {k.split(".")[0] for k in state} == {"ss_model", "query_encoder"}
    assert any(k.startswith("query_encoder.model.text_branch.") for k in state)
    assert any(k.startswith("query_encoder.model.text_projection.") for k in state)

    code, out, err = run_cli("separate", "--split", "heldout", "--model", "dcase2024-baseline", "--checkpoint",
                             run / "last.ckpt", "--tokenizer", setup["tokenizer"], "--device", "cpu",
                             "--name", "roundtrip", cwd=ws)
    assert code == 0, err
    split = read_split(ws / "data" / "splits" / "heldout")
    model.network.eval()
    for _, row in split.frame.iterrows():
        mixture = audio.load(split.mixture_path(row["mixture"]))
        expected = model.separate(torch.from_numpy(mixture)[None], [row["query"]])[0].numpy()
        written = audio.load(ws / "exp" / "roundtrip" / "heldout" / row["mixture"])
        np.testing.assert_allclose(written, expected, atol=2e-6, rtol=0)


# --- resume and DDP ---------------------------------------------------------------------------------

def test_resume_continues_bit_identically(setup):
    """3 steps, stop, resume to 6 == 6 straight: same weights, optimizer state and logged losses."""
    ws = Workspace.open(setup["ws"])
    straight = train(config(setup, "straight", steps=6, val="heldout", val_count=4, val_every=2), ws)
    train(config(setup, "resumed", steps=3, val="heldout", val_count=4, val_every=2), ws)
    resumed = train(config(setup, "resumed", steps=6, val="heldout", val_count=4, val_every=2, resume=True,
                           workers=2), ws)
    assert straight["global_step"] == resumed["global_step"] == 6
    a = load_state(setup["ws"] / "exp" / "train" / "straight" / "last.ckpt")
    b = load_state(setup["ws"] / "exp" / "train" / "resumed" / "last.ckpt")
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    for sa, sb in zip(a["optimizer_states"][0]["state"].values(), b["optimizer_states"][0]["state"].values()):
        for name in sa:
            assert torch.equal(sa[name], sb[name]), name

    def losses(name):
        text = (setup["ws"] / "exp" / "train" / name / "metrics.csv").read_text().splitlines()[1:]
        return [line for line in text if ",loss," in line]

    assert losses("straight") == losses("resumed") and len(losses("straight")) == 6


@pytest.mark.slow
def test_ddp_two_cpu_processes_train_in_step(setup):
    """`lasskit train --devices 2 --accelerator cpu`: two gloo processes, identical parameters at the end."""
    args = [sys.executable, "-m", "lasskit", "train", "--model", "dcase2024-baseline", "--name", "ddp",
            "-o", f"tokenizer={setup['tokenizer']}", "-o", f"clap_checkpoint={setup['clap']}", "-o", "channels=4",
            "--steps", "3", "--batch-size", "2", "--segment", "0.25", "--warmup-steps", "0", "--devices", "2",
            "--accelerator", "cpu", "--workers", "0", "--val", "heldout", "--val-count", "4", "--val-every", "2"]
    env = {**os.environ, "LASSKIT_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(args, cwd=setup["ws"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((setup["ws"] / "exp" / "train" / "ddp" / "train.json").read_text())
    assert record["processes"] == 2 and record["mixtures_per_step"] == 4 and record["global_step"] == 3
    assert len(record["replica_parameter_digests"]) == 2 and record["replicas_in_step"] is True
    assert record["best_val_sdri"] is not None


# --- data, plan, errors -------------------------------------------------------------------------

def test_samples_depend_only_on_their_number(setup):
    from lasskit.training.data import SampleDataset, StepBatchSampler, load_training_data

    data = load_training_data([], [], workspace=Workspace.open(setup["ws"]), segment=0.25, seed=3)
    assert data.summary()["usable_targets"] == 12 * len(CLASSES)  # the val clips are never drawn from
    assert all(c.split == "train" for c in data.planner.usable)
    a, b = SampleDataset(data.planner, 3), SampleDataset(data.planner, 3)
    for n in (0, 5, 23, 24, 61):
        xa, ya, qa = a[n]
        xb, yb, qb = b[n]
        assert torch.equal(xa, xb) and torch.equal(ya, yb) and qa == qb
    assert sorted(a.locate(n)[1] for n in range(48)) == list(range(48))  # one epoch visits every item once
    sampler = StepBatchSampler(batch_size=2, total=4, rank=1, world=2, start=lambda: 2)
    assert list(sampler) == [[10, 11], [14, 15]]


def test_warmup_is_the_organizers_steps():
    from lasskit.training.module import warmup_factor

    assert [warmup_factor(s, 30000) for s in (0, 9999, 10000, 19999, 20000, 29999, 30000)] == \
        [0.001, 0.001, 0.01, 0.01, 0.1, 0.1, 1.0]
    assert warmup_factor(0, 0) == 1.0


def test_dry_run_prints_the_plan_and_writes_nothing(setup, run_cli):
    code, out, err = run_cli("train", "--name", "plan", "-o", f"tokenizer={setup['tokenizer']}",
                             "-o", f"clap_checkpoint={setup['clap']}", "-o", "channels=4", "--steps", "1000",
                             "--batch-size", "16", "--segment", "0.25", "--val", "heldout", "--dry-run", cwd=setup["ws"])
    assert code == 0, err
    assert "48 target clips of 48" in out and "1000 x 16 mixtures" in out and "memory estimate" in out
    assert "validation: 24 of 24 rows of heldout" in out
    assert not (setup["ws"] / "exp" / "train" / "plan").exists()


def test_one_line_errors(setup, run_cli, tmp_path):
    ws = Workspace.open(setup["ws"])
    with pytest.raises(UsageError, match="passthrough cannot be trained"):
        train(config(setup, "x", model="passthrough", options={}), ws)
    with pytest.raises(UsageError, match="no prepared corpus"):
        train(config(setup, "x"), Workspace.open(tmp_path))
    with pytest.raises(UsageError, match="--init nothing.ckpt: no such checkpoint"):
        train(config(setup, "x", init="nothing.ckpt"), ws)
    with pytest.raises(UsageError, match="--resume: .*last.ckpt not found"):
        train(config(setup, "never", resume=True), ws)
    with pytest.raises(UsageError, match="--val nosuch: no such split"):
        train(config(setup, "x", val="nosuch"), ws)
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="--accelerator gpu: torch sees no CUDA GPU"):
            train(config(setup, "x", accelerator="gpu"), ws)
    code, out, err = run_cli("train", "--name", "x", "--model", "passthrough", cwd=setup["ws"])
    assert code == 2 and err.count("\n") == 1 and "cannot be trained" in err


def test_existing_run_needs_resume_or_overwrite(setup):
    ws = Workspace.open(setup["ws"])
    train(config(setup, "twice", steps=1), ws)
    with pytest.raises(UsageError, match="exists; pass --resume"):
        train(config(setup, "twice", steps=1), ws)
    with pytest.raises(UsageError, match=r"options differ from the saved run \(batch_size\)"):
        train(config(setup, "twice", steps=2, batch_size=2, resume=True), ws)
    assert train(config(setup, "twice", steps=1, overwrite=True), ws)["global_step"] == 1


def test_out_of_memory_answer_names_a_batch_size_that_fits():
    from lasskit.training.memory import is_out_of_memory, largest_fitting_batch

    tried = []

    def step(b):
        tried.append(b)
        if b > 3:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    assert largest_fitting_batch(step, 16) == 2 and tried == [8, 4, 2]
    assert is_out_of_memory(RuntimeError("CUDA error: out of memory"))
    assert not is_out_of_memory(ValueError("bad"))
