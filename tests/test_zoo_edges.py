"""Edge inputs of the model zoo found by an outside check: ensemble weights at the limits of a
float, member options spelled twice, checkpoints of another model (or a CLAP file) given to each
model, and files that are missing. In-process, no network built at full size."""

from __future__ import annotations

import pytest
import torch

from lasskit.errors import UsageError
from lasskit.models.ensemble import Ensemble, parse_weights


def test_ensemble_weights_at_the_limits_of_a_float():
    for bad in ("inf,1", "nan,1", "0,0", "1e309,1"):  # inf: every output NaN, blamed on the model
        with pytest.raises(UsageError, match="finite number >= 0, and one > 0"):
            parse_weights(bad, 2)
    x = torch.full((1, 8), 0.25)
    for extreme in ("1e308,1e308", "1e-320,0"):  # the sum overflowed (all zeros) / w * x underflowed
        got = Ensemble(members="passthrough,passthrough", weights=extreme).separate(x, ["q"])
        assert torch.equal(got, x), extreme


def test_ensemble_member_option_spelled_twice_is_refused():
    with pytest.raises(UsageError, match="unknown option m01_checkpoint"):  # it replaced m1_checkpoint
        Ensemble(members="passthrough,passthrough", m1_checkpoint="a", m01_checkpoint="b")


def _state_file(tmp_path, name, state):
    path = tmp_path / name
    torch.save({"state_dict": state}, path)
    return str(path)


def test_each_model_names_a_checkpoint_of_another_model_or_a_clap_file(tmp_path):
    """Every ResUNet30-family model given CLAPSep's checkpoint, a CLAP file, or (the baseline) a DP
    checkpoint says what the file is (it said 'use the DCASE 2024 baseline checkpoint' to all)."""
    from lasskit.errors import WorkError
    from lasskit.models.registry import build, resolve

    clapsep = _state_file(tmp_path, "best_model.ckpt", {"decoder_model.x": torch.zeros(1)})
    clap = _state_file(tmp_path, "clap.pt", {"module.text_branch.x": torch.zeros(1), "module.audio_branch.y": torch.zeros(1)})
    dp = _state_file(tmp_path, "dp.ckpt", {"module.ss_model.base.bn0.weight": torch.ones(513),  # DDP-saved
                                           "module.ss_model.base.DPRNN.x": torch.ones(1)})
    for name in ("dcase2024-baseline", "audiosep", "audiosep-dp-16k", "audiosep-dp-32k"):
        cls, _ = resolve(name)
        with pytest.raises(WorkError, match=f"this is a clapsep checkpoint, not {name}; use --model clapsep"):
            build(cls, name, clapsep, "cpu", {"text_encoder": object()})
        with pytest.raises(WorkError, match=f"this is a CLAP file .* not a {name} checkpoint; give {name}'s own "
                                            "checkpoint, and this file as --option clap_checkpoint=PATH"):
            build(cls, name, clap, "cpu", {"text_encoder": object()})
    cls, _ = resolve("dcase2024-baseline")
    with pytest.raises(WorkError, match="this is a audiosep-dp-16k checkpoint, not dcase2024-baseline"):
        build(cls, "dcase2024-baseline", dp, "cpu", {"text_encoder": object()})


def test_a_missing_weight_file_does_not_point_at_the_baselines_download(tmp_path):
    from lasskit.models.baseline import load_checkpoint_state

    with pytest.raises(UsageError) as err:  # e.g. clapsep's -o clap_checkpoint=, which the CLI does not check
        load_checkpoint_state(tmp_path / "music_audioset_epoch_15_esc_90.14.pt")
    assert "checkpoint not found" in str(err.value) and "dcase2024-baseline" not in str(err.value)


def test_a_members_error_names_the_members_options(tmp_path, monkeypatch):
    """It named the model's own options (--checkpoint PATH, -o clap_checkpoint=), which the ensemble refuses."""
    from lasskit.errors import WorkError

    monkeypatch.setenv("LASSKIT_CACHE", str(tmp_path))
    with pytest.raises(UsageError) as err:
        Ensemble(members="passthrough,clapsep")
    assert str(err.value).startswith("ensemble member 2 (clapsep): no best_model.ckpt; run `lasskit models download "
                                     "clapsep` or pass -o m2_checkpoint=PATH (best_model.ckpt from")
    with pytest.raises(UsageError, match=r"^ensemble member 1 \(audiosep\): -o m1_checkpoint=.*absent: no such file$"):
        Ensemble(members="audiosep,passthrough", m1_checkpoint=str(tmp_path / "absent"))
    with pytest.raises(UsageError, match="model oracle has no weights: drop -o m2_checkpoint$"):
        Ensemble(members="passthrough,oracle", m2_checkpoint=__file__)
    clapsep = _state_file(tmp_path, "best_model.ckpt", {"decoder_model.x": torch.zeros(1)})
    with pytest.raises(WorkError, match=r"^ensemble member 1 \(audiosep-dp-16k\): .*this is a clapsep checkpoint"):
        Ensemble(members="audiosep-dp-16k,passthrough", m1_checkpoint=clapsep)


def test_long_audio_windows_are_the_cards_trained_length():
    """README: separate FILE's windows are the model's trained length; AudioSep's (5 s) was not exposed: 10 s."""
    from lasskit.models.zoo import AudioSep, AudioSepDP16k
    from lasskit.separation.longaudio import Windows

    audiosep, dp = object.__new__(AudioSep), object.__new__(AudioSepDP16k)  # no network: only the attributes
    assert Windows.for_model(audiosep, 16000).window == 80000
    assert Windows.for_model(dp, 16000).window == 160000


class Rate32:
    """A model taking 32 kHz tensors (a plugin's)."""

    name = "rate32"
    sample_rate = 32000

    def __init__(self, checkpoint=None, device="cpu"):
        pass

    def separate(self, mixtures, queries):
        return mixtures


def test_an_ensemble_member_at_another_rate_is_refused():
    """The ensemble hands every member 16 kHz samples: a 32 kHz member got them as if they were 32 kHz."""
    with pytest.raises(UsageError, match=r"ensemble member 2 \(.*:Rate32\) takes 32000 Hz audio"):
        Ensemble(members=f"passthrough,{__file__}:Rate32")


def test_random_init_is_a_bool_and_never_hides_the_checkpoint(tmp_path):
    """-o random_init=yes (a string, so true) separated with a fresh random separator while the outputs
    were recorded as made by --checkpoint's digest."""
    from lasskit.models.zoo import AudioSepDP16k

    path = _state_file(tmp_path, "dp.ckpt", {"ss_model.base.bn0.weight": torch.ones(513)})
    with pytest.raises(UsageError, match="random_init='yes': give true or false"):
        AudioSepDP16k(checkpoint=path, random_init="yes", text_encoder=object())
    with pytest.raises(UsageError, match="random_init=true builds a fresh separator, so .*dp.ckpt's would not be used"):
        AudioSepDP16k(checkpoint=path, random_init=True, text_encoder=object())


@pytest.mark.parametrize("option, value, message", [
    ("text_batch_size", 0, "text_batch_size=0: give a whole number >= 1"),  # was taken as 1
    ("text_batch_size", 1.5, "text_batch_size=1.5: give a whole number >= 1"),
    ("chunk_seconds", float("inf"), "chunk_seconds=inf: give a finite number"),  # failed every file
    ("chunk_seconds", float("nan"), "chunk_seconds=nan: give a finite number"),
    ("context_seconds", -1, "context_seconds=-1: give a finite number of seconds >= 0"),
    ("channels", 4.5, "channels=4.5: give a whole number >= 1"),  # was taken as 4
    ("dual_path_hidden", -1, "dual_path_hidden=-1: give a whole number >= 1"),  # torch's ValueError, exit 1
])
def test_number_options_of_the_models_are_checked(tmp_path, option, value, message):
    from lasskit.models.zoo import AudioSepDP16k

    path = _state_file(tmp_path, "dp.ckpt", {"ss_model.base.bn0.weight": torch.ones(513)})
    with pytest.raises(UsageError, match=f"^audiosep-dp-16k: {message}"):
        AudioSepDP16k(checkpoint=path, text_encoder=object(), **{option: value})


def test_the_split_summary_never_prints_a_slow_model_as_0x_real_time():
    from lasskit.cli.separate import _times

    assert [_times(f) for f in (0.26, 0.0371, 1.14, 9.5, 12.4, 3074.2)] == ["0.26", "0.037", "1.1", "9.5", "12", "3074"]


def test_clapsep_from_a_folder_promises_no_online_check(tmp_path, monkeypatch):
    """Its publisher gives no checksum or size: the note said `lasskit download clapsep` once online
    'checks them (and replaces a bad one)', which it cannot."""
    from lasskit.download.run import download_model
    from lasskit.models.downloads import model_files

    monkeypatch.setenv("LASSKIT_CACHE", str(tmp_path / "cache"))
    src = tmp_path / "usb"
    src.mkdir()
    for name in ("best_model.ckpt", "music_audioset_epoch_15_esc_90.14.pt", "vocab.json", "merges.txt"):
        (src / name).write_bytes(b"x")
    item = download_model("clapsep", from_dir=src, say=lambda line: None, progress=False, model_files=model_files)
    assert item.notes == ["best_model.ckpt, music_audioset_epoch_15_esc_90.14.pt, vocab.json, merges.txt: copied "
                          "unchecked (its publisher gives no checksum or size)"]
    assert (tmp_path / "cache" / "weights" / "best_model.ckpt").read_bytes() == b"x"


def test_an_unknown_download_name_lists_the_zoo(run_cli, tmp_path):
    """Both commands listed only lasskit.weights' names: audiosep, audiosep-dp-*, clapsep were missing."""
    for command in (("models", "download"), ("download",)):
        code, _, err = run_cli("-w", tmp_path, *command, "nonexist")
        assert code == 2 and "audiosep, audiosep-dp-16k, audiosep-dp-32k, clapsep" in err, err
