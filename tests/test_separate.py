"""`lasskit separate`: round trips on generated splits, file names, resume, checks, chunking."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lasskit import audio, mixing, soundgen
from lasskit.errors import UsageError, WorkError
from lasskit.separation import chunk_starts, chunk_weights, separate_split

TOY = Path(__file__).parent / "plugins" / "toy_models.py"
SNRS = (-5.0, 0.0, 5.0, 10.0, 3.0)


def sdr(ref: np.ndarray, est: np.ndarray) -> float:
    """The organizers' SDR (dB), with 1e-10 floors."""
    ref, est = ref.astype(np.float64), est.astype(np.float64)
    return float(10 * np.log10(max(np.mean(ref**2), 1e-10) / max(np.mean((est - ref) ** 2), 1e-10)))


def make_split(ws: Path, name: str = "synth", lengths=(1.0, 1.0, 0.75, 1.25, 1.0)) -> Path:
    """A split with references: mixtures of two generated classes at known SNRs, float32 WAV."""
    import pandas as pd

    from lasskit.splits import write_split_csv

    split_dir = ws / "data" / "splits" / name
    classes = list(soundgen.CLASSES)
    rows = []
    for i, seconds in enumerate(lengths):
        s = soundgen.generate(classes[i % 8], seconds, seed=i)
        n = soundgen.generate(classes[(i + 3) % 8], seconds, seed=100 + i)
        m = mixing.official_mixture(s, n, SNRS[i % len(SNRS)])
        file = f"{name}_{i:04d}.wav"
        for kind, signal in (("mixture", m.mixture), ("source", m.source), ("noise", m.noise)):
            audio.write(split_dir / kind / file, signal, 16000, "float")
        rows.append({"mixture": file, "query": soundgen.CLASSES[classes[i % 8]].captions[0],
                     "source": f"source/{file}", "noise": f"noise/{file}", "snr": str(SNRS[i % len(SNRS)])})
    write_split_csv(split_dir, pd.DataFrame(rows))
    return split_dir


def make_real_split(ws: Path, name: str = "eval_real") -> Path:
    """eval_real style: two recordings, each with two queries, one file name per (recording, query)."""
    import pandas as pd

    from lasskit.splits import write_split_csv

    split_dir = ws / "data" / "splits" / name
    recordings = [soundgen.generate("tone", 1.0, seed=1) + soundgen.generate("rain", 1.0, seed=2),
                  soundgen.generate("bird", 0.5, seed=3) + soundgen.generate("hum", 0.5, seed=4)]
    queries = [" a steady tone", "rain falling hard ", "a bird sings", "an engine hums in the distance"]
    rows = []
    for case, query in enumerate(queries):
        file = f"test-real-case-{case}.wav"
        audio.write(split_dir / "mixture" / file, recordings[case // 2], 16000, "pcm16")
        rows.append({"mixture": file, "query": query})
    write_split_csv(split_dir, pd.DataFrame(rows))
    return split_dir


def read_wav(path: Path) -> np.ndarray:
    data, rate = sf.read(str(path), dtype="float32")
    assert rate == 16000 and data.ndim == 1
    return data


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    make_split(tmp_path)
    return tmp_path


def test_passthrough_gives_sdri_zero_and_one_float_output_per_mixture(ws: Path):
    report = separate_split("synth", "passthrough", workspace=ws, device="cpu", batch_size=2)
    split_dir = ws / "data/splits/synth"
    out_dir = ws / "exp/passthrough/synth"
    assert report.out_dir == out_dir and report.written == 5 and report.skipped == 0 and not report.failures
    names = sorted(p.name for p in (split_dir / "mixture").iterdir())
    assert sorted(p.name for p in out_dir.glob("*.wav")) == names
    for name in names:
        info = sf.info(str(out_dir / name))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "FLOAT")
        mixture, est, ref = (read_wav(d / name) for d in (split_dir / "mixture", out_dir, split_dir / "source"))
        assert len(est) == len(mixture)
        np.testing.assert_array_equal(est, mixture)
        assert sdr(ref, est) - sdr(ref, mixture) == 0.0
    record = json.loads((out_dir / "separate.json").read_text())
    assert {k: record[k] for k in ("model", "split", "options", "checkpoint", "checkpoint_sha256", "device",
                                   "count", "parameters", "sample_rate")} == {
        "model": "passthrough", "split": "synth", "options": {}, "checkpoint": None, "checkpoint_sha256": None,
        "device": "cpu", "count": 5, "parameters": 0, "sample_rate": 16000}
    assert record["lasskit_version"] and record["seconds"] >= 0
    assert not (out_dir / "failures.csv").exists()


def test_oracle_reaches_the_ceiling(ws: Path):
    separate_split("synth", "oracle", workspace=ws, device="cpu", batch_size=3)
    split_dir = ws / "data/splits/synth"
    for i, snr in enumerate(SNRS):
        name = f"synth_{i:04d}.wav"
        ref, est, mix = (read_wav(d / name) for d in (split_dir / "source", ws / "exp/oracle/synth", split_dir / "mixture"))
        np.testing.assert_array_equal(est, ref)
        ceiling = 10 * np.log10(np.mean(ref.astype(np.float64) ** 2) / 1e-10)
        assert sdr(ref, est) == pytest.approx(ceiling, abs=1e-9)
        # SDR of the mixture is the SNR (the noise is the error), so SDRi = ceiling - snr
        assert sdr(ref, est) - sdr(ref, mix) == pytest.approx(ceiling - snr, abs=0.01)


def test_oracle_without_references_is_a_usage_error(tmp_path: Path, run_cli):
    make_real_split(tmp_path)
    code, out, err = run_cli("-w", tmp_path, "separate", "--split", "eval_real", "--model", "oracle")
    assert code == 2
    assert err.count("\n") == 1 and "needs references" in err and "eval_real" in err


@pytest.mark.parametrize("jobs", [0, 2])  # decoding in this thread, or in 2 background threads
def test_eval_real_each_query_gets_its_own_output(tmp_path: Path, jobs: int):
    split_dir = make_real_split(tmp_path)
    report = separate_split("eval_real", f"{TOY}:QueryGain", workspace=tmp_path, device="cpu", batch_size=1,
                            jobs=jobs)
    assert report.written == 4
    out_dir = tmp_path / "exp/query-gain/eval_real"
    import pandas as pd

    frame = pd.read_csv(split_dir / "mixtures.csv", dtype=str, keep_default_na=False)
    assert sorted(p.name for p in out_dir.glob("*.wav")) == sorted(frame["mixture"])
    for file, query in zip(frame["mixture"], frame["query"]):
        mixture = read_wav(split_dir / "mixture" / file)
        # the query reaches the model as written (spaces kept), paired with its own row
        np.testing.assert_allclose(read_wav(out_dir / file), mixture * (len(query) / 100), atol=1e-7)


def test_resume_redoes_only_missing_or_incomplete_outputs(ws: Path):
    out_dir = ws / "exp/passthrough/synth"
    separate_split("synth", "passthrough", workspace=ws, device="cpu")
    (out_dir / "synth_0001.wav").unlink()
    (out_dir / "synth_0003.wav").unlink()
    audio.write(out_dir / "synth_0004.wav", np.zeros(100, np.float32), 16000, "float")  # wrong length
    kept = {p.name: p.stat().st_mtime_ns for p in out_dir.glob("*.wav") if p.name != "synth_0004.wav"}
    report = separate_split("synth", "passthrough", workspace=ws, device="cpu")
    assert (report.written, report.skipped) == (3, 2)
    assert {n: (out_dir / n).stat().st_mtime_ns for n in kept} == kept
    mixture = read_wav(ws / "data/splits/synth/mixture/synth_0004.wav")
    np.testing.assert_array_equal(read_wav(out_dir / "synth_0004.wav"), mixture)
    report = separate_split("synth", "passthrough", workspace=ws, device="cpu", overwrite=True)
    assert (report.written, report.skipped) == (5, 0)
    assert json.loads((out_dir / "separate.json").read_text())["count"] == 5
    assert not list(out_dir.glob(".*.tmp"))


def test_model_returning_nan_names_model_and_input(ws: Path, run_cli):
    for jobs in (0, 2):
        with pytest.raises(WorkError, match=r"returns-nan.*NaN or infinite samples for synth_0002\.wav"):
            separate_split("synth", f"{TOY}:ReturnsNaN", workspace=ws, device="cpu", batch_size=1, jobs=jobs)
        assert not list((ws / "exp/returns-nan/synth").glob("*.wav"))
    code, out, err = run_cli("-w", ws, "separate", "--split", "synth", "--model", f"{TOY}:ReturnsNaN",
                             "--batch-size", "5", "--overwrite")
    assert code == 1 and err.count("\n") == 1
    assert "model returns-nan" in err and "synth_0003.wav" in err  # the longest row: last in its batch


def test_model_returning_wrong_length_names_model_and_input(ws: Path):
    with pytest.raises(WorkError, match=r"model wrong-length .*returned shape \(1, 11999\) for synth_0002\.wav "
                                        r"\(expected \(1, 12000\)"):
        separate_split("synth", f"{TOY}:WrongLength", workspace=ws, device="cpu", batch_size=1)
    with pytest.raises(WorkError, match=r"model crashes .*failed on synth_0002\.wav \(RuntimeError: boom\)"):
        separate_split("synth", f"{TOY}:Crashes", workspace=ws, device="cpu", batch_size=1)


def test_silent_outputs_are_written_with_a_warning(ws: Path, run_cli):
    code, out, err = run_cli("-w", ws, "separate", "--split", "synth", "--model", f"{TOY}:Silent")
    assert code == 0
    assert "5 output(s) are all zeros: synth_0000.wav, synth_0001.wav" in out
    assert json.loads((ws / "exp/silent/synth/separate.json").read_text())["silent"][0] == "synth_0000.wav"


def test_missing_mixture_is_listed_and_the_rest_still_processed(ws: Path, run_cli):
    (ws / "data/splits/synth/mixture/synth_0002.wav").unlink()
    code, out, err = run_cli("-w", ws, "separate", "--split", "synth")
    assert code == 1 and err.count("\n") == 1 and "1 of 5 mixture(s) failed" in err
    out_dir = ws / "exp/passthrough/synth"
    assert sorted(p.name for p in out_dir.glob("*.wav")) == [f"synth_{i:04d}.wav" for i in (0, 1, 3, 4)]
    failures = (out_dir / "failures.csv").read_text().splitlines()
    assert failures[0] == "mixture,reason" and failures[1].startswith("synth_0002.wav,")
    assert "no such mixture file" in failures[1] and "synth_0002.wav" in out
    code, _, _ = run_cli("-w", ws, "separate", "--split", "synth", "--keep-going")
    assert code == 0


def test_one_line_errors(ws: Path, run_cli):
    code, _, err = run_cli("-w", ws, "separate", "--split", "synth", "--model", "nosuchmodel")
    assert code == 2 and err.count("\n") == 1 and "unknown model 'nosuchmodel'" in err and "passthrough" in err
    code, _, err = run_cli("-w", ws, "separate", "--split", "nosplit")
    assert code == 2 and err.count("\n") == 1 and "no such split" in err and "synth" in err
    code, _, err = run_cli("-w", ws, "separate")
    assert code == 2 and "--split is required (known splits: synth)" in err
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="no CUDA GPU"):
            separate_split("synth", "passthrough", workspace=ws, device="cuda")
    with pytest.raises(UsageError, match="--device tpu"):
        separate_split("synth", "passthrough", workspace=ws, device="tpu")
    csv_path = ws / "data/splits/synth/mixtures.csv"
    csv_path.write_text(csv_path.read_text().replace("A steady tone hums at one pitch.", " "))
    code, _, err = run_cli("-w", ws, "separate", "--split", "synth")
    assert code == 2 and err.count("\n") == 1 and "empty query for synth_0000.wav" in err


def test_options_name_and_checkpoint_reach_the_model_and_separate_json(ws: Path, run_cli):
    checkpoint = ws / "weights.bin"
    checkpoint.write_bytes(b"weights")
    code, out, err = run_cli("-w", ws, "separate", "--split", "synth", "--model", f"{TOY}:Gain",
                             "--option", "gain=0.25", "--checkpoint", checkpoint, "--name", "gain-quarter")
    assert code == 0, err
    out_dir = ws / "exp/gain-quarter/synth"
    mixture = read_wav(ws / "data/splits/synth/mixture/synth_0000.wav")
    np.testing.assert_allclose(read_wav(out_dir / "synth_0000.wav"), 0.25 * mixture, atol=1e-8)
    record = json.loads((out_dir / "separate.json").read_text())
    assert record["options"] == {"gain": 0.25} and record["checkpoint"] == str(checkpoint)
    assert record["checkpoint_sha256"] == hashlib.sha256(b"weights").hexdigest()
    code, _, err = run_cli("-w", ws, "separate", "--split", "synth", "--model", f"{TOY}:Gain", "--option", "gian=2")
    assert code == 2 and "takes no option gian" in err
    code, _, err = run_cli("-w", ws, "separate", "--split", "synth", "--model", f"{TOY}:NoName")
    assert code == 0 and (ws / "exp/noname/synth/synth_0000.wav").is_file()


def test_chunk_layout_cross_fades_sum_to_one():
    for length, chunk, overlap in ((100, 30, 0.5), (101, 30, 0.25), (95, 40, 0.0), (64, 16, 0.75)):
        starts = chunk_starts(length, chunk, overlap)
        assert starts[0] == 0 and starts[-1] == length - chunk
        total, cover = np.zeros(length), np.zeros(length)
        for s, w in zip(starts, chunk_weights(starts, chunk)):
            total[s:s + chunk] += w
            cover[s:s + chunk] += 1
        assert total.min() > 0  # the overlap-add divides by it
        # where at most two windows meet, the cross-fades sum to exactly one
        np.testing.assert_allclose(total[cover <= 2], 1.0, atol=1e-12)
    assert chunk_starts(100, 30, 0.5) == [0, 15, 30, 45, 60, 70]
    assert chunk_starts(30, 30, 0.5) == [0]


def test_chunked_passthrough_reproduces_the_input(ws: Path):
    from lasskit.models.registry import load_class

    report = separate_split("synth", "passthrough", workspace=ws, device="cpu", chunk_seconds=0.3,
                            chunk_overlap=0.5, name="chunked")
    assert report.record["chunk_seconds"] == 0.3
    for i in range(5):
        name = f"synth_{i:04d}.wav"
        mixture = read_wav(ws / "data/splits/synth/mixture" / name)
        np.testing.assert_allclose(read_wav(ws / "exp/chunked/synth" / name), mixture, atol=1e-6, rtol=0)
    limited = load_class(f"{TOY}:LimitedPassthrough")
    limited.calls = 0
    separate_split("synth", f"{TOY}:LimitedPassthrough", workspace=ws, device="cpu", batch_size=4)
    # max_seconds 0.25 s = 4000 samples, 50 % overlap: 1 s -> 7 windows; batches of 4 windows per call
    assert limited.calls > 5
    mixture = read_wav(ws / "data/splits/synth/mixture/synth_0003.wav")
    np.testing.assert_allclose(read_wav(ws / "exp/limited/synth/synth_0003.wav"), mixture, atol=1e-6, rtol=0)
    with pytest.raises(UsageError, match="at most 0.25 s"):
        separate_split("synth", f"{TOY}:LimitedPassthrough", workspace=ws, device="cpu", chunk_seconds=1.0)


def test_model_at_another_rate_is_resampled_in_and_out(ws: Path):
    from lasskit.models.registry import load_class

    model = load_class(f"{TOY}:Passthrough8k")
    model.seen.clear()
    separate_split("synth", f"{TOY}:Passthrough8k", workspace=ws, device="cpu", batch_size=5)
    assert model.seen == [(5, 10000)]  # 1.25 s at 8 kHz, the batch padded to its longest row
    for i in range(5):
        name = f"synth_{i:04d}.wav"
        mixture = read_wav(ws / "data/splits/synth/mixture" / name)
        est = read_wav(ws / "exp/passthrough-8k/synth" / name)
        assert len(est) == len(mixture)
        # exactly the torchaudio round trip 16 kHz -> 8 kHz -> 16 kHz of the padded batch, cropped
        import torch
        import torchaudio.functional as taf

        padded = torch.zeros(20000)
        padded[: len(mixture)] = torch.from_numpy(mixture)
        expected = taf.resample(taf.resample(padded, 16000, 8000), 8000, 16000)[: len(mixture)].numpy()
        np.testing.assert_allclose(est, expected, atol=1e-6, rtol=0)


def test_split_folder_path_and_missing_reference_row(ws: Path):
    split_dir = ws / "data/splits/synth"
    (split_dir / "source/synth_0001.wav").unlink()
    report = separate_split(split_dir, "oracle", workspace=ws / "elsewhere", device="cpu")
    assert report.out_dir == ws / "elsewhere/exp/oracle/synth"
    assert report.written == 4 and [m for m, _ in report.failures] == ["synth_0001.wav"]
    assert "no such reference file" in report.failures[0][1]
    assert report.record["failed"] == 1 and report.record["count"] == 4
