"""CLAP's audio tower (HTSAT-base) against the organizers' golden vectors, its loader and CLAPScore path.

The golden numbers are copied in tests/data (clap_audio_golden.npz, clap_audio_golden_state_dict.tsv;
numbers and key names only, from ../shared/golden/clap_audio); ``test_copies_match_shared`` checks
them when ../shared is present. Mechanics tests use a tiny HTSAT with random weights.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("torchaudio")

from lasskit.errors import WorkError
from lasskit.miniature import recipe_tensor
from lasskit.models import clap_audio as ca

DATA = Path(__file__).parent / "data"
TSV = DATA / "clap_audio_golden_state_dict.tsv"
NPZ = DATA / "clap_audio_golden.npz"
SHARED_CLAP = Path(__file__).resolve().parents[2] / "shared" / "golden" / "clap_audio"
TOLERANCE = 1e-4


def read_tsv(path: Path = TSV) -> dict[str, tuple[tuple[int, ...], str, str]]:
    rows = [line.rstrip("\n").split("\t") for line in path.read_text().splitlines()[1:]]
    return {k: (() if s == "scalar" else tuple(int(x) for x in s.split("x")), d, how) for k, s, d, how in rows}


def tiny_tower(seed: int = 0) -> ca.ClapAudioTower:
    torch.manual_seed(seed)
    return ca.ClapAudioTower(ca.htsat_config(embed_dim=8, depths=(2, 2, 2, 2), heads=(1, 1, 2, 2))).eval()


@pytest.fixture(scope="module")
def recipe_state() -> dict[str, torch.Tensor]:
    """The golden weights in LAION's layout: recipe tensors, as-built ones as lasskit builds them."""
    built = ca.laion_audio_state(ca.ClapAudioTower())
    state = {}
    for key, (shape, _, how) in read_tsv().items():
        state[key] = recipe_tensor(key, shape) if how == "recipe" else built[key]
    return state


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    with np.load(NPZ) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def embedder(recipe_state) -> ca.ClapAudioEmbedder:
    return ca.ClapAudioEmbedder(ca.load_clap_audio_tower(recipe_state, "golden"), batch_size=2)


def test_copies_match_shared():
    if not (SHARED_CLAP / "clap_audio_golden.npz").is_file():
        pytest.skip(f"golden CLAP files not found at {SHARED_CLAP} (../shared is absent in a user's clone)")
    assert (SHARED_CLAP / "clap_audio_state_dict.tsv").read_bytes() == TSV.read_bytes()
    with np.load(SHARED_CLAP / "clap_audio_golden.npz") as shared, np.load(NPZ) as ours:
        assert sorted(shared.files) == sorted(ours.files)
        assert all(np.array_equal(shared[k], ours[k]) for k in shared.files)


@pytest.mark.slow  # full-size HTSAT built on CPU
def test_laion_layout_matches_the_organizers_keys_and_shapes():
    organizers = read_tsv()
    ours = {k: (tuple(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in
            ca.laion_audio_state(ca.ClapAudioTower()).items()}
    assert ours == {k: (shape, dtype) for k, (shape, dtype, _) in organizers.items()}
    assert len(ours) == 291


def test_baseline_checkpoint_layout_loads(golden_dir):
    """Every audio key of the real baseline checkpoint (names, shapes) is placed, none is missing."""
    rows = [line.split("\t") for line in (golden_dir / "baseline_checkpoint_keys.tsv").read_text().splitlines()[1:]]
    prefix = "query_encoder.model."
    layout = {k: s for k, s, _ in rows if k.startswith((prefix + "audio_branch.", prefix + "audio_projection."))}
    assert len(layout) == 291
    built = ca.laion_audio_state(ca.ClapAudioTower())
    assert {prefix + k: "x".join(map(str, v.shape)) or "scalar" for k, v in built.items()} == layout
    other = {k: torch.zeros(1) for k, _, _ in rows if not k.startswith(prefix + "audio_")}
    tower = ca.load_clap_audio_tower({**other, **{prefix + k: v for k, v in built.items()}}, "baseline")
    assert tower.projection[0].weight.shape == (512, 1024)


def test_tower_reproduces_golden_48k_embedding(embedder, golden):
    clip = torch.from_numpy(golden["waveform48k_0"])
    got = embedder.embed_clips(clip).numpy()
    assert np.abs(got - golden["embedding48k_0"]).max() < TOLERANCE
    assert abs(float(np.linalg.norm(got)) - 1.0) < 1e-5


@pytest.mark.slow
def test_clapscore_paper_path_reproduces_golden(embedder, golden):
    clips = [golden["waveform16k_0"][0], golden["waveform16k_1"][0]]
    got = embedder.embed(clips, 16000, path="paper")  # both in one batch
    for i in (0, 1):
        assert np.abs(got[i] - golden[f"clapscore_path_embedding_{i}"][0]).max() < TOLERANCE
    alone = embedder.embed(clips[1:], 16000)
    assert np.abs(alone[0] - got[1]).max() < 1e-5


@pytest.mark.slow
def test_physical_path_differs_from_the_paper_path(embedder, golden):
    """The true-speed reading is a different input: 0.0197 (max abs) on this clip, 200x the tolerance."""
    physical = embedder.embed([golden["waveform16k_0"][0]], 16000, path="physical")[0]
    assert abs(float(np.abs(physical - golden["clapscore_path_embedding_0"][0]).max()) - 0.0197) < 1e-3


def test_paths_resample_and_pad_as_documented():
    wave = np.sin(np.arange(16000) / 5.0).astype(np.float32)  # 1 s at 16 kHz
    paper = ca.clapscore_windows(wave, 16000, "paper")
    physical = ca.clapscore_windows(wave, 16000, "physical")
    assert paper.shape == physical.shape == (1, ca.CLIP_SAMPLES)
    # paper: 16000 samples read as 32 kHz -> 24000 at 48 kHz, repeated 20 times exactly
    assert torch.equal(paper[0, :24000], paper[0, 24000:48000])
    # physical: 48000 samples, repeated 10 times
    assert torch.equal(physical[0, :48000], physical[0, 48000:96000])
    odd = ca.repeat_pad(torch.arange(1.0, 4.0), 10)
    assert odd.tolist() == [1, 2, 3, 1, 2, 3, 1, 2, 3, 0]
    # at 32 kHz the paper path first goes to 16 kHz (what the published code's loader does)
    at32 = ca.clapscore_windows(np.repeat(wave, 2), 32000, "paper")
    assert at32.shape == (1, ca.CLIP_SAMPLES)
    with pytest.raises(Exception, match="CLAP path"):
        ca.clapscore_windows(wave, 16000, "fast")
    with pytest.raises(WorkError, match="empty"):
        ca.clapscore_windows(np.zeros(0, np.float32), 16000)


def test_long_clips_are_windowed_deterministically():
    assert ca.window_starts(480000) == [0]
    assert ca.window_starts(480001) == [0, 1]
    assert ca.window_starts(1200000) == [0, 480000, 720000]
    tower = tiny_tower()
    embedder = ca.ClapAudioEmbedder(tower, batch_size=2)
    rng = np.random.default_rng(0)
    long = (0.1 * rng.standard_normal(400000)).astype(np.float32)  # 25 s at 16 kHz, physical path
    windows = ca.clapscore_windows(long, 16000, "physical")
    assert windows.shape == (3, ca.CLIP_SAMPLES)
    each = embedder.embed_clips(windows)
    expected = torch.nn.functional.normalize(each.mean(0), dim=-1).numpy()
    short = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    got = embedder.embed([short, long, short], 16000, path="physical")
    assert np.abs(got[1] - expected).max() < 1e-5
    assert np.abs(got[0] - got[2]).max() < 1e-6
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert embedder.embed([], 16000).shape == (0, 512)


def test_front_end_matches_conv_stft_and_librosa_filters():
    """torch.stft + our filters == torchlibrosa's conv kernels (np.power DFT) + librosa's filters."""
    n = 1024
    x, y = np.meshgrid(np.arange(n), np.arange(n))
    dft = np.power(np.exp(-2j * np.pi / n), x * y)[:, :n // 2 + 1] * ca.hann_window(n)[:, None]
    real, imag = ca.stft_kernels()
    assert np.abs(real[:, 0, :] - np.real(dft).T).max() < 1e-6
    assert np.abs(imag[:, 0, :] - np.imag(dft).T).max() < 1e-6
    librosa = pytest.importorskip("librosa")
    reference = librosa.filters.mel(sr=48000, n_fft=1024, n_mels=64, fmin=50, fmax=14000).T
    assert np.abs(ca.mel_filters() - reference).max() < 1e-8
    wave = torch.from_numpy((0.1 * np.random.default_rng(1).standard_normal((1, 48000))).astype(np.float32))
    padded = torch.nn.functional.pad(wave[:, None], (512, 512), mode="reflect")
    power = (torch.nn.functional.conv1d(padded, torch.from_numpy(real), stride=480) ** 2
             + torch.nn.functional.conv1d(padded, torch.from_numpy(imag), stride=480) ** 2).transpose(1, 2)
    expected = 10 * torch.log10(torch.clamp(power @ torch.from_numpy(reference), min=1e-10))
    got = ca.LogMel()(wave)[:, 0]
    assert got.shape == (1, 101, 64)
    assert float((got - expected).abs().max()) < 1e-3


def test_loader_prefixes_and_strictness():
    tower = tiny_tower()
    state = ca.laion_audio_state(tower)
    for prefix in ca.AUDIO_PREFIXES:
        loaded = ca.load_clap_audio_tower({prefix + k: v for k, v in state.items()}, "x")
        assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), tower.state_dict().values()))
    assert ca.load_clap_audio_tower({k: v for k, v in state.items() if not k.endswith("attn_mask")}, "x")

    def error(bad: dict) -> str:
        with pytest.raises(WorkError) as info:
            ca.load_clap_audio_tower(bad, "ckpt.pt")
        message = str(info.value)
        assert "\n" not in message and message.startswith("ckpt.pt: ")
        return message

    key = "audio_branch.layers.1.blocks.0.mlp.fc1.weight"
    assert f"missing {key}" in error({k: v for k, v in state.items() if k != key})
    assert "missing audio_branch.layers.0.blocks.1.attn.qkv.weight" in error(
        {k: v for k, v in state.items() if k != "audio_branch.layers.0.blocks.1.attn.qkv.weight"})
    assert "unexpected audio_branch.extra.weight" in error({**state, "audio_branch.extra.weight": torch.zeros(2)})
    assert "shape audio_projection.0.weight" in error({**state, "audio_projection.0.weight": torch.zeros(512, 7)})
    assert "shape audio_branch.layers.0.blocks.0.attn.qkv.weight" in error(
        {**state, "audio_branch.layers.0.blocks.0.attn.qkv.weight": torch.zeros(10, 8)})
    assert "logmel_extractor.melW differs" in error(
        {**state, "audio_branch.logmel_extractor.melW": state["audio_branch.logmel_extractor.melW"] * 1.01})
    assert "no CLAP audio tower" in error({"text_branch.x": torch.zeros(1), "text_projection.0.weight": torch.zeros(1)})


def test_swin_attention_masks_match_transformers():
    """Our attn_mask buffers (checkpoint layout) equal the masks transformers builds on the fly."""
    tower = tiny_tower()
    state = ca.laion_audio_state(tower)
    block = tower.encoder.layers[0].blocks[1]
    theirs = block.get_attn_mask(64, 64, dtype=torch.float32, device="cpu")
    assert torch.equal(state["audio_branch.layers.0.blocks.1.attn_mask"], theirs)
