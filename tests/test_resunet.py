"""ResUNet30 against the organizers' golden vectors, and the baseline's checkpoint loader.

The golden files are copied in tests/data (numbers only; README there); ``test_copies_match_shared``
checks them against ../shared when it is present.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from lasskit.errors import UsageError, WorkError
from lasskit.miniature import recipe_tensor
from lasskit.models.baseline import DCASE2024Baseline, chunk_spans, load_checkpoint_state, separator_state
from lasskit.models.resunet import (
    STFT_KERNEL_KEYS,
    ResUNet30,
    conv_stft_kernels,
    drop_stft_kernels,
    load_network_state,
)

DATA = Path(__file__).parent / "data"
TSV = DATA / "resunet30_state_dict.tsv"
NPZ = DATA / "resunet30_golden.npz"
LENGTHS = (16000, 21937)
TOLERANCE = 1e-4


def read_tsv(path: Path = TSV) -> dict[str, tuple[tuple[int, ...], str]]:
    rows = [line.rstrip("\n").split("\t") for line in path.read_text().splitlines()[1:]]
    return {k: (() if s == "scalar" else tuple(int(x) for x in s.split("x")), d) for k, s, d in rows}


@pytest.fixture(scope="module")
def recipe_state() -> dict[str, torch.Tensor]:
    return {k: recipe_tensor(k, shape) for k, (shape, _) in read_tsv().items() if k not in STFT_KERNEL_KEYS}


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    with np.load(NPZ) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def network(recipe_state) -> ResUNet30:
    net = ResUNet30()
    load_network_state(net, recipe_state)
    return net.eval()


class FixedEncoder:
    """A text encoder returning one given embedding for every query."""

    def __init__(self, condition: torch.Tensor) -> None:
        self.condition = condition
        self.calls: list[list[str]] = []

    def embed(self, queries):
        self.calls.append(list(queries))
        return self.condition.expand(len(queries), -1)


def test_state_dict_keys_and_shapes_match_the_organizers():
    organizers = read_tsv()
    ours = {k: (tuple(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in ResUNet30().state_dict().items()}
    learned = {k: v for k, v in organizers.items() if k not in STFT_KERNEL_KEYS}
    assert ours == learned
    assert len(ours) == 332 - 5
    assert sum(int(np.prod(s)) for s, d in learned.values() if d == "float32") == 26_467_655
    kernels = conv_stft_kernels()
    assert {k: tuple(v.shape) for k, v in kernels.items()} == {k: organizers[k][0] for k in STFT_KERNEL_KEYS}


def test_copies_match_shared(golden_dir):
    assert (golden_dir / "resunet30_state_dict.tsv").read_bytes() == TSV.read_bytes()
    with np.load(golden_dir / "resunet30_golden.npz") as shared, np.load(NPZ) as ours:
        assert sorted(shared.files) == sorted(ours.files)
        for key in shared.files:
            np.testing.assert_array_equal(shared[key], ours[key])


@pytest.mark.slow
@pytest.mark.parametrize("length", LENGTHS)
def test_network_reproduces_golden_waveform(network, golden, length):
    mixture = torch.from_numpy(golden[f"mixture_{length}"])
    condition = torch.from_numpy(golden[f"condition_{length}"])
    with torch.inference_mode():
        out = network(mixture, condition)
        flipped = network(mixture, -condition)
    expected = golden[f"waveform_{length}"]
    assert out.shape == (1, 1, length)
    assert float(np.abs(out.numpy() - expected).max()) < TOLERANCE
    # the condition matters far beyond the tolerance (FiLM path)
    assert float(np.abs(flipped.numpy() - expected).max()) > 100 * TOLERANCE


def test_batch_rows_are_independent(network, golden):
    """Two rows with different conditions give each row's single-clip output."""
    length = LENGTHS[0]
    mixture = torch.from_numpy(golden[f"mixture_{length}"])[:, 0]
    other = torch.flip(mixture, dims=[-1])
    conditions = torch.cat([torch.from_numpy(golden[f"condition_{length}"]), torch.from_numpy(golden["condition_21937"])])
    with torch.inference_mode():
        both = network(torch.stack([mixture, other]), conditions)
    assert float(np.abs(both[0].numpy() - golden[f"waveform_{length}"][0]).max()) < TOLERANCE


def write_lightning_checkpoint(path: Path, separator: dict, extra: dict | None = None, with_kernels: bool = True) -> Path:
    state = {f"ss_model.{k}": v for k, v in separator.items()}
    if with_kernels:
        state.update({f"ss_model.{k}": v for k, v in conv_stft_kernels().items()})
    state.update(extra or {})
    torch.save({"epoch": 11, "global_step": 200000, "pytorch-lightning_version": "2.0.0", "state_dict": state,
                "optimizer_states": [], "lr_schedulers": [{"base_lrs": [1e-3], "last_epoch": 5}]}, path)
    return path


def test_checkpoint_loader_reproduces_golden(tmp_path, recipe_state, golden):
    """A Lightning-style file (ss_model. prefix, conv-STFT kernels) loads strictly and reproduces waveform_T."""
    ckpt = write_lightning_checkpoint(tmp_path / "audiosep_16k,baseline,step=200000.ckpt", recipe_state)
    encoder = FixedEncoder(torch.from_numpy(golden[f"condition_{LENGTHS[0]}"]))
    model = DCASE2024Baseline(checkpoint=str(ckpt), text_encoder=encoder)
    assert model.checkpoint == str(ckpt)
    assert model.checkpoint_sha256 == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert model.sample_rate == 16000 and model.name == "dcase2024-baseline"
    loaded = model.network.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in recipe_state.items())
    for length in LENGTHS:
        encoder.condition = torch.from_numpy(golden[f"condition_{length}"])
        mixtures = torch.from_numpy(golden[f"mixture_{length}"])[:, 0]  # (batch=1, time)
        estimate = model.separate(mixtures, ["a dog barks"])
        assert estimate.shape == (1, length) and estimate.dtype == torch.float32
        assert float(np.abs(estimate.numpy() - golden[f"waveform_{length}"][:, 0]).max()) < TOLERANCE
    assert encoder.calls == [["a dog barks"], ["a dog barks"]]


def test_loader_rejects_missing_unexpected_and_reshaped_keys(recipe_state):
    net = ResUNet30()
    missing = dict(recipe_state)
    del missing["base.after_conv.bias"]
    with pytest.raises(WorkError, match=r"1 missing key\(s\) \(base\.after_conv\.bias\)"):
        load_network_state(net, missing, source="x.ckpt")
    extra = {**recipe_state, "base.extra.weight": torch.zeros(1)}
    with pytest.raises(WorkError, match=r"x\.ckpt: .*1 unexpected key\(s\) \(base\.extra\.weight\)"):
        load_network_state(net, extra, source="x.ckpt")
    reshaped = {**recipe_state, "base.after_conv.bias": torch.zeros(4)}
    with pytest.raises(WorkError, match=r"base\.after_conv\.bias has shape \(4,\), expected \(3,\)"):
        load_network_state(net, reshaped, source="x.ckpt")


def test_stft_kernels_are_checked_then_dropped():
    kernels = conv_stft_kernels()
    assert drop_stft_kernels({"a": 1, **kernels}) == {"a": 1}
    bad = dict(kernels)
    bad["base.stft.conv_imag.weight"] = -bad["base.stft.conv_imag.weight"]  # wrong sign convention
    with pytest.raises(WorkError, match="not a window-1024 Hann DFT kernel"):
        drop_stft_kernels(bad, "x.ckpt")
    partial = {k: v for k, v in kernels.items() if k != "base.istft.ola_window"}
    with pytest.raises(WorkError, match="incomplete STFT kernels.*ola_window"):
        drop_stft_kernels(partial, "x.ckpt")
    # the kernels are the DFT: conv-STFT of a frame equals torch.fft.rfft of the windowed frame
    frame = torch.randn(1024, dtype=torch.float64)
    window = torch.hann_window(1024, periodic=True, dtype=torch.float64)
    spectrum = torch.fft.rfft(frame * window)
    real = kernels["base.stft.conv_real.weight"][:, 0].double() @ frame
    imag = kernels["base.stft.conv_imag.weight"][:, 0].double() @ frame
    assert torch.allclose(real, spectrum.real, atol=1e-3) and torch.allclose(imag, spectrum.imag, atol=1e-3)


def test_checkpoint_errors_are_one_line(tmp_path, recipe_state):
    with pytest.raises(UsageError, match="checkpoint not found"):
        DCASE2024Baseline(checkpoint=str(tmp_path / "absent.ckpt"), text_encoder=FixedEncoder(torch.zeros(1, 512)))
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(WorkError, match="garbage.ckpt: not a readable PyTorch checkpoint"):
        load_checkpoint_state(garbage)
    with pytest.raises(WorkError, match="no separator weights"):
        separator_state({"query_encoder.model.x": torch.zeros(1)}, "y.ckpt")
    # a bare network state dict (no prefix) is accepted
    assert separator_state({"base.bn0.weight": torch.zeros(1)}) == {"base.bn0.weight": torch.zeros(1)}


class TrainingState:  # an object a Lightning checkpoint may pickle next to the tensors
    def __init__(self):
        self.lr = 1e-3


def test_loader_reads_checkpoints_that_pickle_other_objects(tmp_path):
    path = tmp_path / "lightning.ckpt"
    torch.save({"state_dict": {"ss_model.base.bn0.weight": torch.ones(3)}, "hyper_parameters": TrainingState()}, path)
    state = load_checkpoint_state(path)
    assert list(state) == ["ss_model.base.bn0.weight"] and torch.equal(state["ss_model.base.bn0.weight"], torch.ones(3))


def test_chunk_spans_tile_the_signal():
    assert chunk_spans(100, 160, 16) == [(0, 100, 0, 100)]
    samples, window, context = 1000, 160, 16
    spans = chunk_spans(samples, window, context)
    kept = [i for start, end, _, _ in spans for i in range(start, end)]
    assert kept == list(range(samples))
    for start, end, lo, hi in spans:
        assert hi - lo == window and lo <= start and end <= hi and 0 <= lo and hi <= samples
        assert start - lo >= min(context, start) and hi - end >= min(context, samples - end)


class Pointwise(torch.nn.Module):
    """A stand-in network, ``y = 2 x + c0``, recording the input lengths it sees."""

    def __init__(self):
        super().__init__()
        self.lengths = []

    def forward(self, mixture, condition):
        self.lengths.append(mixture.shape[-1])
        return 2 * mixture + condition[:, :1, None]


def test_long_inputs_are_separated_in_windows(tmp_path):
    model = DCASE2024Baseline.__new__(DCASE2024Baseline)
    model.network, model.chunk_seconds, model.context_seconds, model.device = Pointwise(), 1.0, 0.125, "cpu"
    mixtures = torch.randn(2, 16000 * 3 + 123)
    conditions = torch.tensor([[0.5] * 512, [-1.0] * 512])
    out = model.separate_embedded(mixtures, conditions)
    assert torch.allclose(out, 2 * mixtures + conditions[:, :1])
    assert set(model.network.lengths) == {16000} and len(model.network.lengths) == 5  # ceil(48123 / 12000)
    model.network.lengths.clear()
    short = model.separate_embedded(mixtures[:, :300], conditions)  # shorter than one STFT window
    assert short.shape == (2, 300) and model.network.lengths == [1024]
    assert torch.allclose(short, 2 * mixtures[:, :300] + conditions[:, :1])


def test_short_input_through_the_network(network, golden):
    model = DCASE2024Baseline.__new__(DCASE2024Baseline)
    model.network, model.chunk_seconds, model.context_seconds, model.device = network, 10.0, 1.0, "cpu"
    mixture = torch.from_numpy(golden["mixture_16000"])[:, 0, :700]
    out = model.separate_embedded(mixture, torch.from_numpy(golden["condition_16000"]))
    assert out.shape == (1, 700) and bool(torch.isfinite(out).all())
