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
    # only rows of equal length share a batch: the first call holds the shortest row alone
    assert "model returns-nan" in err and "synth_0002.wav" in err


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


def test_mixtures_not_16k_mono_are_said_and_non_wav_names_refused(tmp_path: Path, run_cli):
    import pandas as pd

    from lasskit.splits import write_split_csv

    split_dir = tmp_path / "data" / "splits" / "odd"
    x = soundgen.generate("rain", 1.0, seed=0)
    (split_dir / "mixture").mkdir(parents=True)
    sf.write(str(split_dir / "mixture" / "stereo.wav"), np.stack([x, 0.5 * x], axis=1), 16000, subtype="FLOAT")
    sf.write(str(split_dir / "mixture" / "fast.wav"), soundgen.generate("rain", 1.0, 44100, seed=1), 44100)
    sf.write(str(split_dir / "mixture" / "plain.wav"), x, 16000, subtype="FLOAT")
    sf.write(str(split_dir / "mixture" / "other.flac"), x, 16000)
    write_split_csv(split_dir, pd.DataFrame([{"mixture": n, "query": "rain"} for n in
                                             ("stereo.wav", "fast.wav", "plain.wav", "other.flac")]))
    code, out, err = run_cli("-w", tmp_path, "separate", "--split", "odd")
    assert code == 1 and "1 of 4 mixture(s) failed" in err
    text = " ".join(out.split())
    assert "2 mixture(s) were not 16 kHz mono: stereo.wav (16000 Hz, 2 channel(s)), fast.wav (44100 Hz, 1 channel(s))" \
        in text
    assert "other.flac: outputs are WAV files named like their mixture, so a mixture must be a .wav file" in text
    out_dir = tmp_path / "exp" / "passthrough" / "odd"
    assert sorted(p.name for p in out_dir.glob("*.*") if p.suffix in (".wav", ".flac")) == \
        ["fast.wav", "plain.wav", "stereo.wav"]
    assert np.allclose(read_wav(out_dir / "stereo.wav"), 0.75 * x, atol=1e-6)  # the channels' mean
    assert len(read_wav(out_dir / "fast.wav")) == 16000  # 1 s at 16 kHz


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
    # only rows of equal length share a call: 0.75 s, 3 x 1 s, 1.25 s, at 8 kHz
    assert model.seen == [(1, 6000), (3, 8000), (1, 10000)]
    for i in range(5):
        name = f"synth_{i:04d}.wav"
        mixture = read_wav(ws / "data/splits/synth/mixture" / name)
        est = read_wav(ws / "exp/passthrough-8k/synth" / name)
        assert len(est) == len(mixture)
        # exactly the torchaudio round trip 16 kHz -> 8 kHz -> 16 kHz of the row itself (no padding)
        import torch
        import torchaudio.functional as taf

        row = torch.from_numpy(mixture)
        expected = taf.resample(taf.resample(row, 16000, 8000), 8000, 16000)[: len(mixture)].numpy()
        np.testing.assert_allclose(est, expected, atol=1e-6, rtol=0)


def test_split_folder_path_and_missing_reference_row(ws: Path):
    split_dir = ws / "data/splits/synth"
    (split_dir / "source/synth_0001.wav").unlink()
    report = separate_split(split_dir, "oracle", workspace=ws / "elsewhere", device="cpu")
    assert report.out_dir == ws / "elsewhere/exp/oracle/synth"
    assert report.written == 4 and [m for m, _ in report.failures] == ["synth_0001.wav"]
    assert "no such reference file" in report.failures[0][1]
    assert report.record["failed"] == 1 and report.record["count"] == 4


# ---------------------------------------------------------------------------------------------
# issue 11 §1: an output is reused only if it was made from the same mixture with the same settings
# ---------------------------------------------------------------------------------------------
def _wav_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.wav"))}


def test_new_mixtures_after_a_remix_are_separated_again(ws: Path, run_cli):
    """mix, separate, mix again (--overwrite: same names, new audio), separate: the changed outputs
    are made again and the ledger ties each output to its mixture's digest (score's contract)."""
    from lasskit.provenance import Ledger, file_digest

    split_dir = ws / "data/splits/synth"
    out_dir = ws / "exp/passthrough/synth"
    code, out, err = run_cli("-w", ws, "separate", "--split", "synth")
    assert code == 0, err
    for i in (1, 3):  # the "new" mixtures: same names and lengths, other audio
        path = split_dir / "mixture" / f"synth_{i:04d}.wav"
        audio.write(path, 0.5 * read_wav(path), 16000, "float")
    before = {p.name: p.stat().st_mtime_ns for p in out_dir.glob("*.wav")}
    code, out, err = run_cli("-w", ws, "separate", "--split", "synth")
    assert code == 0, err
    assert "separated 2 of 5" in out and "(3 already done" in out
    assert "remade 2 of 5: input changed 2" in out
    for i in range(5):
        name = f"synth_{i:04d}.wav"
        np.testing.assert_array_equal(read_wav(out_dir / name), read_wav(split_dir / "mixture" / name))
        assert Ledger(out_dir).get(name).input == file_digest(split_dir / "mixture" / name)
        changed = (out_dir / name).stat().st_mtime_ns != before[name]
        assert changed == (i in (1, 3))
    record = json.loads((out_dir / "separate.json").read_text())
    assert record["made"] == {"input changed": 2} and record["count"] == 5 and record["consistent"]


def test_an_unchanged_rerun_reads_no_audio(ws: Path, monkeypatch):
    separate_split("synth", "passthrough", workspace=ws, device="cpu")

    def forbidden(*args, **kwargs):
        raise AssertionError("an unchanged re-run must not read audio")

    from lasskit import provenance

    monkeypatch.setattr(audio, "info", forbidden)
    monkeypatch.setattr(audio, "load", forbidden)
    monkeypatch.setattr(provenance, "file_digest", forbidden)  # digests come from the cache (a stat)
    report = separate_split("synth", "passthrough", workspace=ws, device="cpu")
    assert (report.written, report.skipped, report.failures) == (0, 5, [])
    assert report.redone == ""


def _gain_checkpoint(path: Path, gain: float) -> Path:
    path.write_text(json.dumps({"gain": gain}))
    return path


class CheckpointGain:
    """A model whose gain comes from its checkpoint file; fails on ``fail_on`` (a mixture length)."""

    name = "ckpt-gain"
    sample_rate = 16000
    padding_invariant = True

    def __init__(self, checkpoint, fail_on: int | None = None):
        self.checkpoint = str(checkpoint)
        self.gain = json.loads(Path(checkpoint).read_text())["gain"]
        self.fail_on = fail_on
        self.options = {}

    def separate(self, mixtures, queries):
        if self.fail_on is not None and mixtures.shape[-1] == self.fail_on:
            raise RuntimeError("stopped half way")
        return mixtures * self.gain


def test_checkpoint_b_over_a_remakes_every_output_and_never_claims_b_for_a(ws: Path):
    from lasskit.provenance import Ledger

    a = _gain_checkpoint(ws / "a.ckpt", 0.5)
    b = _gain_checkpoint(ws / "b.ckpt", 0.25)
    out_dir = ws / "exp/ckpt-gain/synth"
    separate_split("synth", CheckpointGain(a), workspace=ws, device="cpu")
    sha = {k: hashlib.sha256(p.read_bytes()).hexdigest() for k, p in (("a", a), ("b", b))}
    assert json.loads((out_dir / "separate.json").read_text())["checkpoint_sha256"] == sha["a"]
    # B stops half way: the one output B did not get to keeps A's bytes and A's record (issue 23:
    # nothing is removed before the model runs), and separate.json says the folder mixes A and B
    with pytest.raises(WorkError, match="stopped half way"):
        separate_split("synth", CheckpointGain(b, fail_on=20000), workspace=ws, device="cpu", batch_size=1)
    record = json.loads((out_dir / "separate.json").read_text())
    ledger = Ledger(out_dir)
    on_disk = sorted(p.name for p in out_dir.glob("*.wav"))
    assert len(on_disk) == record["count"] == 5 and record["kept"] == 1  # 1.25 s (20000 samples): A's
    assert not record["consistent"] and record["checkpoint_sha256"] is None
    assert sorted((g["checkpoint_sha256"], g["outputs"]) for g in record["made_with"]) == sorted(
        [(sha["b"], 4), (sha["a"], 1)])
    for name in on_disk:
        gain = 0.5 if name == "synth_0003.wav" else 0.25
        assert ledger.settings_of(name)["checkpoint_sha256"] == sha["a" if gain == 0.5 else "b"]
        mixture = read_wav(ws / "data/splits/synth/mixture" / name)
        np.testing.assert_allclose(read_wav(out_dir / name), gain * mixture, atol=1e-7)
    # B again, complete: only A's kept output is made
    report = separate_split("synth", CheckpointGain(b), workspace=ws, device="cpu")
    assert (report.written, report.skipped) == (1, 4)
    assert json.loads((out_dir / "separate.json").read_text())["checkpoint_sha256"] == sha["b"]
    # and A over B: everything again, with the reason
    report = separate_split("synth", CheckpointGain(a), workspace=ws, device="cpu")
    assert report.written == 5 and report.reasons == {"settings changed: checkpoint_sha256": 5}
    assert json.loads((out_dir / "separate.json").read_text())["checkpoint_sha256"] == sha["a"]


def test_options_and_chunking_are_settings(ws: Path):
    first = separate_split("synth", f"{TOY}:Gain", workspace=ws, device="cpu", options={"gain": 0.5})
    assert first.written == 5
    again = separate_split("synth", f"{TOY}:Gain", workspace=ws, device="cpu", options={"gain": 0.5})
    assert again.written == 0
    other = separate_split("synth", f"{TOY}:Gain", workspace=ws, device="cpu", options={"gain": 0.25})
    assert other.reasons == {"settings changed: options": 5}
    chunked = separate_split("synth", f"{TOY}:Gain", workspace=ws, device="cpu", options={"gain": 0.25},
                             chunk_seconds=0.5)
    assert chunked.reasons == {"settings changed: chunk_overlap, chunk_seconds": 5}


def test_output_replaced_by_hand_or_a_reference_changed_is_remade(ws: Path):
    separate_split("synth", "oracle", workspace=ws, device="cpu")
    out_dir = ws / "exp/oracle/synth"
    audio.write(out_dir / "synth_0000.wav", np.zeros(16000, np.float32), 16000, "float")
    source = ws / "data/splits/synth/source/synth_0004.wav"
    audio.write(source, 0.5 * read_wav(source), 16000, "float")
    report = separate_split("synth", "oracle", workspace=ws, device="cpu")
    assert report.reasons == {"output changed on disk": 1, "reference changed": 1}
    np.testing.assert_array_equal(read_wav(out_dir / "synth_0004.wav"), read_wav(source))


# ---------------------------------------------------------------------------------------------
# issue 11 §3: the organizers' single pass; a row's estimate does not depend on its batch-mates
# ---------------------------------------------------------------------------------------------
class HashEncoder:
    """A deterministic stand-in for the CLAP text encoder: a unit vector per query."""

    def embed(self, queries):
        import torch

        rows = []
        for q in queries:
            g = torch.Generator().manual_seed(int(hashlib.sha256(q.encode()).hexdigest()[:8], 16))
            rows.append(torch.nn.functional.normalize(torch.randn(512, generator=g), dim=0))
        return torch.stack(rows)


def random_baseline(**options):
    import torch

    from lasskit.models.baseline import DCASE2024Baseline

    torch.manual_seed(0)
    model = DCASE2024Baseline(random_init=True, channels=4, text_encoder=HashEncoder(), **options)
    for module in model.network.modules():  # non-trivial batch-norm statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 2.0)
    return model


@pytest.mark.slow
def test_baseline_row_alone_equals_the_row_in_a_mixed_batch(tmp_path: Path):
    import torch

    make_split(tmp_path, lengths=(0.5, 0.75, 0.5, 1.0, 0.75))
    model = random_baseline()
    assert model.padding_invariant is False
    alone = separate_split("synth", model, workspace=tmp_path, device="cpu", batch_size=1, name="alone")
    mixed = separate_split("synth", model, workspace=tmp_path, device="cpu", batch_size=5, name="mixed")
    assert alone.written == mixed.written == 5
    for name in _wav_bytes(tmp_path / "exp/alone/synth"):
        together = read_wav(tmp_path / "exp/mixed/synth" / name)
        np.testing.assert_allclose(together, read_wav(tmp_path / "exp/alone/synth" / name), rtol=0, atol=1e-6)
    # what zero-padding would have done (the old pipeline): a visibly different estimate
    x = torch.from_numpy(read_wav(tmp_path / "data/splits/synth/mixture/synth_0001.wav"))
    q = ["a query"]
    with torch.inference_mode():
        own = model.separate(x[None], q)[0]
        padded = model.separate(torch.nn.functional.pad(x, (0, 4000))[None], q)[0, : len(x)]
    assert float((padded - own).norm() / own.norm()) > 1e-3


@pytest.mark.slow
def test_baseline_runs_one_pass_over_long_clips_unless_asked(tmp_path: Path):
    import torch

    model = random_baseline()
    assert model.chunk_seconds is None and model.max_seconds is None
    calls = []
    forward = model.network.forward
    model.network.forward = lambda x, c: calls.append(x.shape[-1]) or forward(x, c)
    x = torch.randn(1, 16000 * 3) * 0.1
    with torch.inference_mode():
        whole = model.separate(x, ["rain"])
    assert calls == [16000 * 3]  # the organizers' single pass over the whole clip
    calls.clear()
    chunked = random_baseline(chunk_seconds=2.0, context_seconds=0.5)
    chunked.network.forward = lambda x, c: calls.append(x.shape[-1]) or forward(x, c)
    with torch.inference_mode():
        windows = chunked.separate(x, ["rain"])
    assert calls == [32000] * 3  # only when asked: 2 s windows keeping 1 s each, 0.5 s of context
    assert float((windows - whole).norm() / whole.norm()) > 1e-4  # chunking changes the estimate


def test_plan_batches_groups_equal_lengths_only():
    from lasskit.separation import plan_batches
    from lasskit.separation.outputs import Item

    items = [Item(i, f"m{i}", "q", Path("x"), None, n) for i, n in enumerate((5, 3, 5, 5, 3, 7, 5))]

    def names(batches):
        return [[it.name for it in b] for b in batches]

    assert names(plan_batches(items, 2, False)) == [["m1", "m4"], ["m0", "m2"], ["m3", "m6"], ["m5"]]
    assert names(plan_batches(items, 3, True)) == [["m1", "m4", "m0"], ["m2", "m3", "m6"], ["m5"]]


class MemoryHungry:
    """Passthrough that declares 500 bytes of memory per sample and records each call's shape."""

    name = "memory-hungry"
    sample_rate = 16000
    bytes_per_sample = 500.0

    def __init__(self):
        self.calls = []
        self.options = {}

    def separate(self, mixtures, queries):
        self.calls.append(tuple(mixtures.shape))
        return mixtures.clone()


def test_a_clip_too_long_for_the_free_memory_is_chunked_with_a_warning(ws: Path, monkeypatch, run_cli):
    from lasskit.models import memory

    # 10 MB free -> 8 MB per call: 1 s (8 MB) fits, 1.25 s (10 MB) is chunked in 1 s windows
    monkeypatch.setattr(memory, "available_bytes", lambda device="cpu": 10_000_000)
    model = MemoryHungry()
    report = separate_split("synth", model, workspace=ws, device="cpu", batch_size=5)
    assert [name for name, _ in report.chunked] == ["synth_0003.wav"]
    assert "20000" not in str(model.calls) and (1, 16000) in model.calls
    assert model.calls.count((1, 16000)) >= 3 + 2  # three 1 s rows one by one, and 1 s windows
    assert "windows of 1 s" in report.chunked[0][1]
    mixture = read_wav(ws / "data/splits/synth/mixture/synth_0003.wav")
    np.testing.assert_allclose(read_wav(ws / "exp/memory-hungry/synth/synth_0003.wav"), mixture, atol=1e-6)
    record = json.loads((ws / "exp/memory-hungry/synth/separate.json").read_text())
    assert [c["mixture"] for c in record["chunked_for_memory"]] == ["synth_0003.wav"]


# ---------------------------------------------------------------------------------------------
# issue 12: full disk, leftovers, kill -9 and Ctrl-C mid-run
# ---------------------------------------------------------------------------------------------
def test_full_disk_stops_with_one_line_naming_the_file_and_resumes(ws: Path, monkeypatch, run_cli):
    import errno

    from lasskit import atomic

    real = atomic.write_bytes
    written = []

    def disk_full_after_two(path, data):
        if Path(path).suffix == ".wav" and len(written) >= 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(path)
        return real(path, data)

    monkeypatch.setattr(audio, "write_bytes", disk_full_after_two)
    code, out, err = run_cli("-w", ws, "separate", "--split", "synth", "--batch-size", "1")
    out_dir = ws / "exp/passthrough/synth"
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert str(out_dir) in err and ".wav: no space left on the device" in err and "internal error" not in err
    failures = (out_dir / "failures.csv").read_text()
    assert "no space left" in failures
    assert len(list(out_dir.glob("*.wav"))) == 2
    monkeypatch.setattr(audio, "write_bytes", real)
    code, out, err = run_cli("-w", ws, "separate", "--split", "synth")
    assert code == 0, err
    assert "separated 3 of 5" in out and not (out_dir / "failures.csv").exists()


def test_leftovers_of_a_killed_run_are_removed(ws: Path):
    out_dir = ws / "exp/passthrough/synth"
    out_dir.mkdir(parents=True)
    (out_dir / ".synth_0000.wav.k3j4h5g6.lasskit.tmp").write_bytes(b"half")
    (out_dir / ".synth_0001.wav.abcdefgh.tmp").write_bytes(b"half")  # an older lasskit's name
    report = separate_split("synth", "passthrough", workspace=ws, device="cpu")
    assert report.removed_leftovers == 2
    assert sorted(p.name for p in out_dir.iterdir() if p.name.startswith(".")) == []


SLOW_MODEL = '''
import time

from lasskit.models.base import SeparationModel


class Slow(SeparationModel):
    """Passthrough with a query-dependent gain, 0.05 s per call."""

    name = "slow"

    def separate(self, mixtures, queries):
        time.sleep(0.05)
        gains = mixtures.new_tensor([1.0 - len(q) / 200 for q in queries])
        return mixtures * gains[:, None]
'''


@pytest.mark.slow
@pytest.mark.parametrize("how", ["kill-9", "ctrl-c"])
def test_interrupted_run_then_rerun_equals_a_clean_run_byte_for_byte(tmp_path: Path, how: str):
    import os
    import shutil
    import signal
    import subprocess
    import sys
    import time

    from lasskit.atomic import is_leftover

    make_split(tmp_path / "a", lengths=[0.6 + 0.2 * (i % 3) for i in range(40)])
    shutil.copytree(tmp_path / "a" / "data", tmp_path / "b" / "data")
    (tmp_path / "slow.py").write_text(SLOW_MODEL)
    args = [sys.executable, "-m", "lasskit", "separate", "--split", "synth", "--model",
            f"{tmp_path / 'slow.py'}:Slow", "--batch-size", "1", "--device", "cpu"]
    env = {**os.environ, "LASSKIT_PROGRESS": "0"}
    out_a = tmp_path / "a/exp/slow/synth"
    proc = subprocess.Popen(args, cwd=tmp_path / "a", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while len(list(out_a.glob("*.wav"))) < 8 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, proc.communicate()
    os.killpg(proc.pid, signal.SIGKILL if how == "kill-9" else signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    done = len(list(out_a.glob("*.wav")))
    assert 8 <= done < 40
    if how == "ctrl-c":
        assert proc.returncode == 130 and err.startswith("error: interrupted") and err.count("\n") == 1, err
        assert not [p for p in out_a.iterdir() if is_leftover(p.name)]
        record = json.loads((out_a / "separate.json").read_text())
        assert record["count"] == done and not record["complete"]
    else:
        assert proc.returncode == -signal.SIGKILL
        (out_a / ".synth_0039.wav.zzzzzzzz.lasskit.tmp").write_bytes(b"what a kill -9 can leave")
    rerun = subprocess.run(args, cwd=tmp_path / "a", env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    clean = subprocess.run(args, cwd=tmp_path / "b", env=env, capture_output=True, text=True, timeout=120)
    assert clean.returncode == 0, clean.stderr
    out_b = tmp_path / "b/exp/slow/synth"
    assert _wav_bytes(out_a) == _wav_bytes(out_b) and len(_wav_bytes(out_b)) == 40
    assert sorted(p.name for p in out_a.iterdir()) == sorted(p.name for p in out_b.iterdir())
    record = json.loads((out_a / "separate.json").read_text())
    assert record["count"] == 40 and record["complete"] and record["written"] == 40 - record["skipped"]
