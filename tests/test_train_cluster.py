"""lasskit train on a cluster and as a fine-tune (issues 29, 23, 32): signals save and say how to
continue, refusals change nothing, broken files are one line, --continue-from / --ema /
--keep-checkpoints + average, the organizers' key set, plain progress lines, the dry run's plan.

Same generated corpus and tiny model as tests/test_train.py (1 s clips, ResUNet channels=4, a
1-layer random CLAP text tower); runs of 2-4 steps of 4 x 0.25 s.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
from pathlib import Path

import pytest
import torch

from conftest import needs  # noqa: E402

# Training tests are slow (Lightning runs, subprocesses): `make test` runs them, `make test-fast` does not.
pytestmark = [pytest.mark.slow, needs("transformers", "lightning")]

from lasskit.errors import UsageError  # noqa: E402
from lasskit.workspace import Workspace  # noqa: E402
from test_train import CLASSES, config, load_state, setup  # noqa: E402,F401 - setup is the shared fixture


def run(setup, name, **kw):
    return _train(config(setup, name, **kw), Workspace.open(setup["ws"]))


def _train(cfg, ws, echo=None):
    from lasskit.training import train

    return train(cfg, ws, echo=echo or (lambda *a: None))


def folder(setup, name) -> Path:
    return setup["ws"] / "exp" / "train" / name


def digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def same_weights(a: Path, b: Path) -> None:
    sa, sb = load_state(a)["state_dict"], load_state(b)["state_dict"]
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def loss_rows(name_folder: Path) -> list[str]:
    lines = (name_folder / "metrics.csv").read_text().splitlines()[1:]
    return [line for line in lines if ",loss," in line]


@pytest.fixture(scope="module")
def straight4(setup):
    """4 uninterrupted steps: the reference for the stopped, resumed and continued runs."""
    run(setup, "straight4", steps=4)
    return folder(setup, "straight4")


def _signal_at(monkeypatch, step: int, signum: int) -> None:
    """Deliver ``signum`` to this process when the trainer reaches ``step`` (as a scheduler would)."""
    from lasskit.training.control import StopOnSignal

    original = StopOnSignal.on_train_batch_end
    sent = []

    def patched(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == step and not sent:
            sent.append(step)
            os.kill(os.getpid(), signum)
        return original(self, trainer, pl_module, outputs, batch, batch_idx)

    monkeypatch.setattr(StopOnSignal, "on_train_batch_end", patched)


# --- signals ------------------------------------------------------------------------------------

@pytest.mark.parametrize("signum,code,word", [(signal.SIGTERM, 143, "SIGTERM"), pytest.param(
    signal.SIGINT, 130, "Ctrl-C", marks=pytest.mark.slow)])
def test_a_signal_saves_last_ckpt_exits_non_zero_and_resume_continues(setup, straight4, monkeypatch, signum, code,
                                                                       word):
    """SIGTERM (a scheduler's time limit) and Ctrl-C: last.ckpt at the step reached, exit 143 / 130 with the
    command that continues; --resume then ends where an uninterrupted run ends, metrics.csv without a gap."""
    from lasskit.training.control import Stopped

    name = f"sig{code}"
    _signal_at(monkeypatch, 2, signum)
    with pytest.raises(Stopped) as caught:
        run(setup, name, steps=4)
    assert caught.value.exit_code == code
    text = str(caught.value)
    assert f"interrupted ({word}) at step 2" in text and "holds step 2" in text and "--resume" in text
    assert load_state(folder(setup, name) / "last.ckpt")["global_step"] == 2
    monkeypatch.undo()
    result = run(setup, name, steps=4, resume=True)
    assert result["global_step"] == 4 and result["steps_this_run"] == 2
    same_weights(straight4 / "last.ckpt", folder(setup, name) / "last.ckpt")
    assert loss_rows(folder(setup, name)) == loss_rows(straight4)
    assert [int(r.split(",")[0]) for r in loss_rows(straight4)] == [1, 2, 3, 4]


def test_rows_before_the_last_checkpoint_survive_a_kill(setup, straight4):
    """kill -9 after the checkpoint at step 2 (simulated: the rows a dead run wrote after it are cut off and
    a stale row of step 3 left): --resume keeps rows 1-2, drops the stale one, and logs 3-4 once."""
    name = "killed"
    run(setup, name, steps=2)
    path = folder(setup, name) / "metrics.csv"
    path.write_text(path.read_text() + "3,loss,99.0\n")
    run(setup, name, steps=4, resume=True)
    assert loss_rows(folder(setup, name)) == loss_rows(straight4)


# --- refusals and broken files ------------------------------------------------------------------

def test_overwrite_refused_for_a_bad_option_deletes_nothing(setup):
    ws = Workspace.open(setup["ws"])
    run(setup, "keepme", steps=1)
    before = digests(folder(setup, "keepme"))
    for bad in (dict(val="nosuch"), dict(targets=["nosuch"]), dict(init=str(setup["tokenizer"] / "vocab.json")),
                dict(model="passthrough", options={})):
        with pytest.raises(UsageError):
            _train(config(setup, "keepme", steps=1, overwrite=True, **bad), ws)
        assert digests(folder(setup, "keepme")) == before, bad


def test_broken_resume_files_and_init_files_are_one_line(setup, tmp_path):
    ws = Workspace.open(setup["ws"])
    run(setup, "broken", steps=1)
    run_folder = folder(setup, "broken")
    ckpt = run_folder / "last.ckpt"
    whole = ckpt.read_bytes()
    ckpt.write_bytes(whole[: len(whole) // 3])
    with pytest.raises(UsageError, match=r"--resume .*last.ckpt: not a readable checkpoint.*--overwrite"):
        _train(config(setup, "broken", steps=2, resume=True), ws)
    ckpt.write_bytes(whole)
    (run_folder / "config.json").write_text("{not json")
    with pytest.raises(UsageError, match=r"config.json: not valid JSON"):
        _train(config(setup, "broken", steps=2, resume=True), ws)
    text = tmp_path / "notes.ckpt"
    text.write_text("hello, not a checkpoint\n")
    with pytest.raises(UsageError, match=r"^--init .*notes.ckpt: .*give a checkpoint written by lasskit train"):
        _train(config(setup, "x", init=str(text)), ws)


# --- fine-tuning semantics ------------------------------------------------------------------------

def test_init_is_weights_only_without_warmup_and_continue_from_goes_on(setup, straight4):
    """--init: warm-up default 0 (the plan's first step uses the full lr); --continue-from a 2-step
    checkpoint ends bit-identical to 4 uninterrupted steps (weights, AdamW moments)."""
    from lasskit.training import TrainConfig

    assert TrainConfig(name="a", init="x.ckpt").validate().warmup_steps == 0
    assert TrainConfig(name="a").validate().warmup_steps == 30_000
    lines = []
    plan = _train(config(setup, "ft", init=str(straight4 / "last.ckpt"), warmup_steps=None, dry_run=True),
                  Workspace.open(setup["ws"]), echo=lines.append)
    assert plan["first_step_lr"] == pytest.approx(3e-3)
    assert any("step 1 uses 0.003" in line for line in lines), lines

    run(setup, "half", steps=2)
    result = run(setup, "cont", steps=4, continue_from=str(folder(setup, "half") / "last.ckpt"))
    assert result["global_step"] == 4 and result["start_step"] == 2
    same_weights(straight4 / "last.ckpt", folder(setup, "cont") / "last.ckpt")
    a, b = load_state(straight4 / "last.ckpt"), load_state(folder(setup, "cont") / "last.ckpt")
    for sa, sb in zip(a["optimizer_states"][0]["state"].values(), b["optimizer_states"][0]["state"].values()):
        for key in sa:
            assert torch.equal(sa[key], sb[key]), key
    assert not (folder(setup, "cont") / ".continue-from.ckpt").exists()


@pytest.mark.slow
def test_continue_from_the_organizers_optimizer_layout(setup, straight4, tmp_path):
    """Their optimizer holds every ss_model parameter (conv-STFT kernels and the never-used bn2/beta2
    included), in state_dict order: matched by name, it continues as lasskit's own state does."""
    half = load_state(folder(setup, "half") / "last.ckpt") if (folder(setup, "half") / "last.ckpt").is_file() \
        else (run(setup, "half", steps=2), load_state(folder(setup, "half") / "last.ckpt"))[1]
    from lasskit.training.layout import organizers_parameter_names

    state = half["state_dict"]
    network = [n for n, _ in _all_names(setup)]
    theirs = organizers_parameter_names(network)
    ours_trainable = [n for n, p in _trainable_names(setup)]
    saved = half["optimizer_states"][0]  # lasskit writes their layout: states at their indices
    assert saved["param_groups"][0]["params"] == list(range(len(theirs)))
    moved = {}
    for i, name in enumerate(theirs):
        if name in ours_trainable:
            moved[i] = saved["state"][i]
        else:  # their kernels and unused parameters: states lasskit must not take for another tensor
            moved[i] = {k: (torch.full_like(state["ss_model." + name], 7.0, dtype=torch.float32)
                            if torch.is_tensor(v) and v.ndim else v) for k, v in saved["state"][4].items()}
    half["optimizer_states"][0] = {"state": moved, "param_groups": saved["param_groups"]}
    organizers = tmp_path / "organizers.ckpt"
    torch.save(half, organizers)
    run(setup, "cont_org", steps=4, continue_from=str(organizers))
    same_weights(straight4 / "last.ckpt", folder(setup, "cont_org") / "last.ckpt")


def _all_names(setup):
    from lasskit.models.baseline import DCASE2024Baseline

    torch.manual_seed(0)
    model = DCASE2024Baseline.for_training(None, tokenizer=str(setup["tokenizer"]),
                                           clap_checkpoint=str(setup["clap"]), channels=4)
    return list(model.trainable_network().named_parameters())


def _trainable_names(setup):
    from lasskit.models.baseline import DCASE2024Baseline
    from lasskit.training import memory

    torch.manual_seed(0)
    model = DCASE2024Baseline.for_training(None, tokenizer=str(setup["tokenizer"]),
                                           clap_checkpoint=str(setup["clap"]), channels=4)
    unused = set(memory.unused_parameters(model, 512))
    return [(n, p) for n, p in model.trainable_network().named_parameters() if n not in unused]


# --- researcher features ----------------------------------------------------------------------------

@pytest.mark.slow
def test_ema_is_saved_and_resumes_bit_identically(setup):
    straight = run(setup, "ema4", steps=4, ema=0.5, val="heldout", val_count=4, val_every=2)
    run(setup, "ema2", steps=2, ema=0.5, val="heldout", val_count=4, val_every=2)
    run(setup, "ema2", steps=4, ema=0.5, val="heldout", val_count=4, val_every=2, resume=True)
    same_weights(folder(setup, "ema4") / "last.ckpt", folder(setup, "ema2") / "last.ckpt")
    saved = load_state(folder(setup, "ema4") / "last.ckpt")
    raw = dict(straight["trained_model"].trainable_network().named_parameters())
    differ = [n for n, p in raw.items() if p.requires_grad and not torch.equal(saved["state_dict"]["ss_model." + n], p)]
    assert differ  # the checkpoint holds the average, not the raw weights
    callback = next(v for k, v in saved["callbacks"].items() if k == "EMA")
    assert torch.equal(callback["raw"][differ[0]], raw[differ[0]].detach())


def test_keep_checkpoints_and_average(setup, run_cli, tmp_path):
    run(setup, "kept", steps=3, checkpoint_every=1, keep_checkpoints=2, clip_grad=0.5)
    kept = sorted(p.name for p in folder(setup, "kept").glob("step-*.ckpt"))
    assert kept == ["step-00000002.ckpt", "step-00000003.ckpt"]
    out = tmp_path / "avg.ckpt"
    paths = [folder(setup, "kept") / k for k in kept]
    code, text, err = run_cli("average", *paths, "-o", out)
    assert code == 0, err
    assert "averaged 2 checkpoints (steps 2, 3)" in text
    avg, a, b = (load_state(p)["state_dict"] for p in (out, *paths))
    key = "ss_model.base.bn0.weight"
    assert torch.equal(avg[key], ((a[key].double() + b[key].double()) / 2).float())
    assert load_state(out)["lasskit"]["averaged_from"][0]["sha256"] == hashlib.sha256(paths[0].read_bytes()).hexdigest()
    code, _, err = run_cli("average", paths[0], "-o", out)
    assert code == 2 and err.count("\n") == 1 and "at least two" in err
    code, _, err = run_cli("average", *paths, "-o", out)
    assert code == 2 and "--overwrite" in err


# --- the organizers' key set, progress lines, the plan ------------------------------------------------

def test_checkpoint_holds_every_key_of_the_organizers_module(setup, golden_dir, tmp_path):
    """A CLAP file with the whole CLAP model (12 text layers, the audio tower's names) -> every key of
    baseline_checkpoint_keys.tsv in last.ckpt, nothing else."""
    import transformers

    from lasskit.models.text_encoder import EMBEDDING_SIZE, build_projection

    rows = (golden_dir / "baseline_checkpoint_keys.tsv").read_text().splitlines()[1:]
    golden = {line.split("\t")[0] for line in rows}
    cfg = transformers.RobertaConfig(vocab_size=261, hidden_size=32, num_hidden_layers=12, num_attention_heads=1,
                                     intermediate_size=37, max_position_embeddings=514, type_vocab_size=1,
                                     layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0, eos_token_id=2)
    torch.manual_seed(0)
    roberta = transformers.RobertaModel(cfg, add_pooling_layer=True)
    clap = {f"module.text_branch.{k}": v for k, v in roberta.state_dict().items()
            if k != "embeddings.position_ids"}
    clap.update({f"module.text_projection.{k}": v for k, v in build_projection(32, EMBEDDING_SIZE).state_dict().items()})
    prefix = "query_encoder.model."
    for key in golden:  # the audio tower, transforms and logit scales: names only matter here
        if key.startswith(prefix) and not key.startswith((prefix + "text_branch.", prefix + "text_projection.")):
            clap["module." + key[len(prefix):]] = torch.zeros(1)
    torch.save({"state_dict": clap}, tmp_path / "clap_full.pt")
    options = {"tokenizer": str(setup["tokenizer"]), "clap_checkpoint": str(tmp_path / "clap_full.pt"), "channels": 4}
    run(setup, "keys", steps=1, options=options)
    state = load_state(folder(setup, "keys") / "last.ckpt")["state_dict"]
    assert set(state) == golden, (sorted(golden - set(state))[:5], sorted(set(state) - golden)[:5])
    from lasskit.models.resunet import conv_stft_kernels

    assert torch.equal(state["ss_model.base.istft.ola_window"], conv_stft_kernels()["base.istft.ola_window"])
    assert torch.equal(state[prefix + "text_branch.embeddings.position_ids"], torch.arange(514)[None])


def test_optimizer_state_is_written_in_the_organizers_param_group_layout(setup):
    """Their AdamW holds every ss_model parameter in named_parameters order (the 4 conv-STFT kernels
    first, the never-used decoder bn2/beta2 included): last.ckpt's param group has those 214 indices
    and each AdamW state sits at its parameter's index there (tests/data/baseline_optimizer_group.tsv)."""
    rows = [line.split("\t") for line in (Path(__file__).parent / "data" / "baseline_optimizer_group.tsv")
            .read_text().splitlines()[1:]]
    names = [name for _, name, _ in rows]
    with_state = [int(i) for i, _, flag in rows if flag == "1"]
    assert [int(i) for i, _, _ in rows] == list(range(214)) and len(with_state) == 186
    run(setup, "optgroup", steps=2)
    ckpt = load_state(folder(setup, "optgroup") / "last.ckpt")
    saved = ckpt["optimizer_states"][0]
    assert len(saved["param_groups"]) == 1 and saved["param_groups"][0]["params"] == list(range(214))
    assert sorted(saved["state"]) == with_state
    for index in with_state:
        weight = ckpt["state_dict"]["ss_model." + names[index]]
        assert {k: tuple(v.shape) for k, v in saved["state"][index].items() if k != "step"} == {
            k: tuple(weight.shape) for k in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")}, names[index]
        assert float(saved["state"][index]["step"]) == 2.0
    from lasskit.training.layout import from_organizers_optimizer, to_organizers_optimizer

    network = [n for n in names if not n.startswith(("base.stft.", "base.istft."))]
    optimized = [names[i] for i in with_state]
    back = from_organizers_optimizer(saved, optimized, network)
    assert back["param_groups"][0]["params"] == list(range(186)) and sorted(back["state"]) == list(range(186))
    again = to_organizers_optimizer(back, optimized, network)
    assert again["param_groups"] == saved["param_groups"] and list(again["state"]) == list(saved["state"])
    assert all(again["state"][i] is saved["state"][i] for i in with_state)


def test_plain_progress_lines_and_validation_rows_at_their_step(setup):
    lines: list[str] = []
    _train(config(setup, "lines", steps=4, log_every=2, val="heldout", val_count=4, val_every=2),
           Workspace.open(setup["ws"]), echo=lines.append)
    progress = [line for line in lines if line.startswith("step ")]
    assert [p.split(":")[0] for p in progress] == ["step 2/4", "step 4/4"]
    assert all("loss " in p and "lr 0.003" in p and "steps/s" in p and "left" in p for p in progress)
    rows = (folder(setup, "lines") / "metrics.csv").read_text().splitlines()
    assert [int(r.split(",")[0]) for r in rows if ",val_sdri," in r] == [2, 4]
    record = json.loads((folder(setup, "lines") / "train.json").read_text())
    assert record["best_step"] in (2, 4) and record["validation"]["batches"] >= 1


def test_dry_run_plans_without_weights_and_warns_about_memory(setup, monkeypatch, tmp_path):
    from lasskit.training import memory

    monkeypatch.setenv("LASSKIT_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr(memory, "available_bytes", lambda accelerator: 200 * 2**20)
    lines: list[str] = []
    plan = _train(config(setup, "plan2", options={"tokenizer": str(setup["tokenizer"]), "channels": 4},
                         batch_size=64, devices=2, accelerator="cpu", dry_run=True, min_active=0.05,
                         integer_snr=True), Workspace.open(setup["ws"]), echo=lines.append)
    text = "\n".join(lines)
    assert "dcase2024-baseline is not in the cache; a real run downloads it first" in text
    assert "--devices 2 runs 2 CPU processes" in text
    fits = memory.batch_that_fits(plan["memory_estimate"], 100 * 2**20)  # two processes share the machine
    assert f"--batch-size {fits} fits" in text and 0 < fits < 64
    assert not (tmp_path / "empty" / "weights").exists()
    with pytest.raises(UsageError, match="--min-active 0.3: give 0 to 0.25 seconds"):
        _train(config(setup, "x", min_active=0.3), Workspace.open(setup["ws"]))


def test_validation_batches_rows_of_one_length():
    from lasskit.training.data import equal_length_batches

    assert equal_length_batches([5, 7, 5, 5, 7, 9], 2) == [[0, 2], [3], [1, 4], [5]]


def test_cpu_out_of_memory_is_recognised_and_the_estimate_names_a_batch_that_fits():
    from lasskit.training.memory import batch_that_fits, is_out_of_memory

    assert is_out_of_memory(RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't "
                                         "allocate memory: you tried to allocate 101606400000 bytes."))
    assert is_out_of_memory(MemoryError())
    parts = {"batch_size": 16, "total_bytes": 10 * 2**30 + 16 * 2**30, "activation_bytes": 16 * 2**30}
    assert batch_that_fits(parts, 12 * 2**30) == 2  # 10 GiB fixed + 1 GiB a row


def test_a_full_disk_names_the_command_that_continues(setup, monkeypatch):
    """ENOSPC while writing a checkpoint after step 2: one line, the step, and `--resume` (the run
    exists, so the same command would be refused)."""
    import errno

    from lasskit import atomic
    from lasskit.errors import WorkError

    real = atomic.write_bytes
    calls = []

    def full_after_one(path, data):
        if str(path).endswith("last.ckpt"):
            calls.append(path)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, data)

    monkeypatch.setattr(atomic, "write_bytes", full_after_one)
    with pytest.raises(WorkError, match=r"last.ckpt: no space left on the device at step 2; free some space and "
                                        r"continue with `lasskit .*--resume` \(last.ckpt holds step 1\)"):
        run(setup, "full", steps=3, checkpoint_every=1)


def test_config_file_sets_options_and_the_command_line_wins(setup, run_cli, tmp_path):
    run_yaml = tmp_path / "run.yaml"
    run_yaml.write_text(f"steps: 7\nval: [heldout]\nval-count: 4\nsegment: 0.5\noption:\n  channels: 4\n"
                        f"  tokenizer: {setup['tokenizer']}\n  clap_checkpoint: {setup['clap']}\n")
    code, out, err = run_cli("train", "--name", "cfg", "--config", run_yaml, "--segment", "0.25", "--dry-run",
                             cwd=setup["ws"])
    assert code == 0, err
    assert "steps: 7 x 16 mixtures" in out and "of 0.25 s" in out and "4 of 24 rows of heldout" in out
    run_yaml.write_text("stepz: 3\n")
    code, _, err = run_cli("train", "--name", "cfg", "--config", run_yaml, "--dry-run", cwd=setup["ws"])
    assert code == 2 and err.count("\n") == 1 and "run.yaml: unknown key 'stepz'" in err


def test_augmentation_is_seeded_per_sample_and_keeps_the_reference_consistent(setup):
    """Gain and tilt act on mixture and reference alike (the residual noise scales with them); extra
    noises add energy to the mixture only; the same (seed, n) gives the same bytes."""
    import numpy as np

    from lasskit.training.data import Augmentation, SampleDataset, load_training_data

    data = load_training_data([], [], workspace=Workspace.open(setup["ws"]), segment=0.25, seed=3)
    plain = SampleDataset(data.planner, 3)
    noisy = SampleDataset(data.planner, 3, Augmentation(extra_noises=2, snr=(0.0, 0.0)))
    gained = SampleDataset(data.planner, 3, Augmentation(gain_db=6.0))
    louder = 0
    for n in range(8):
        m0, s0, q0 = plain[n]
        m1, s1, q1 = noisy[n]
        m2, s2, q2 = gained[n]
        assert q0 == q1 == q2
        scale = float(s1.abs().max() / s0.abs().max())  # 1, or less when the added noise peaks above 1
        assert scale <= 1.0 + 1e-6 and torch.allclose(s1, s0 * scale, atol=1e-6)
        def snr(m, s):
            s = s.double()
            return 10 * np.log10((s ** 2).sum().item() / ((m.double() - s) ** 2).sum().item())

        louder += snr(m1, s1) < snr(m0, s0) - 0.1  # 0 to 2 more noises at 0 dB each
        ratio = float((s2 ** 2).sum() / (s0 ** 2).sum())
        assert 10 ** (-12 / 10) / 2 < ratio < 10 ** (12 / 10) * 2
        residual0, residual2 = (m0 - s0).double().numpy(), (m2 - s2).double().numpy()
        snr0 = 10 * np.log10((s0.double() ** 2).sum().item() / (residual0 ** 2).sum())
        snr2 = 10 * np.log10((s2.double() ** 2).sum().item() / (residual2 ** 2).sum())
        assert abs(snr0 - snr2) < 1e-3  # a gain keeps the SNR
        tilted = SampleDataset(data.planner, 3, Augmentation(eq_db=6.0))
        a, b = tilted[n], SampleDataset(data.planner, 3, Augmentation(eq_db=6.0))[n]
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and not torch.equal(a[1], s0)
    assert louder >= 3  # measured: 4 of these 8 samples drew at least one more noise
