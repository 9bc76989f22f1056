"""Classes of edge faults, one test per class and place: file and folder names that are not UTF-8
(every module that hands a path to soundfile), CSVs read through lasskit.csvfile (quoted commas,
embedded newlines, byte-order mark, CRLF, missing columns, duplicates), option bounds refused at
parse time, and the Python API's input types."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lasskit import soundgen
from lasskit.errors import UsageError, WorkError

RATE = 16000


def latin1_dir(tmp_path: Path, name: bytes = b"caf\xe9") -> Path:
    """A folder whose name is not UTF-8 (as a Latin-1 system writes it): a str with surrogate escapes."""
    folder = Path(os.fsdecode(os.fsencode(tmp_path) + b"/" + name))
    os.makedirs(os.fsencode(folder))
    return folder


# --- 1. names that are not UTF-8 ----------------------------------------------------------------


def test_every_soundfile_reader_opens_a_name_that_is_not_utf8(tmp_path: Path, monkeypatch):
    from lasskit import audio
    from lasskit.mixing import segments
    from lasskit.scoring.reading import _open
    from lasskit.training.data import ValidationRow, row_lengths

    folder = latin1_dir(tmp_path)
    mixture, source = folder / "m\udcfcx.wav", folder / "s.wav"
    x = soundgen.write_clip(mixture, "tone", 0.5, RATE, seed=1)  # soundgen writes there too
    soundgen.write_clip(source, "rain", 0.25, RATE, seed=2)
    assert audio.info(mixture).num_samples == 8000

    assert row_lengths([ValidationRow("m", "rain", mixture, source)]) == [4000]

    def no_fallback(path):  # the partial read must open the file itself, not decode it whole
        raise AssertionError(f"read_segment fell back to audio.load for {path!r}")

    monkeypatch.setattr(segments.audio, "load", no_fallback)
    seg = segments.read_segment(mixture, 100, 50)
    assert seg.dtype == np.float32 and np.allclose(seg, np.asarray(x, dtype=np.float32)[100:150], atol=1e-4)

    with _open(str(mixture)) as f:
        assert f.frames == 8000 and f.samplerate == RATE


@pytest.fixture
def latin1_workspace(tmp_path: Path) -> Path:
    """test_package's workspace, moved under a folder whose name is not UTF-8."""
    from test_package import make_workspace

    built = make_workspace(tmp_path / "ws")
    root = latin1_dir(tmp_path) / "ws"
    os.rename(os.fsencode(built), os.fsencode(root))
    return root


def test_package_in_a_folder_not_in_utf8_still_checks_every_length(latin1_workspace: Path):
    """The mixtures' lengths were read with str paths: unreadable there, so an output of the wrong length
    went into the zip unchecked (the length check skipped without a word)."""
    from test_package import MODEL, SYNTH, output_signal, package, record_run

    out = latin1_workspace / "exp" / MODEL / "eval_synth"
    with open(os.fsencode(out / SYNTH[1]), "wb") as fh:
        sf.write(fh, output_signal(SYNTH[1])[:12000], RATE, subtype="FLOAT", format="WAV")
    record_run(out, "eval_synth", SYNTH)
    with pytest.raises(WorkError, match=r"1 of 4 eval_synth output\(s\) unusable"):
        package(latin1_workspace)
    failures = open(os.fsencode(out / "package_failures.csv"), encoding="utf-8").read()
    assert "synth_01.wav" in failures and "12000" in failures and "16000" in failures


def test_check_in_a_folder_not_in_utf8_knows_every_mixture_length(latin1_workspace: Path):
    from lasskit.submission.audiocheck import expected_audio
    from lasskit.workspace import Workspace
    from test_package import LENGTHS, SYNTH

    expected = expected_audio("eval_synth", Workspace.open(latin1_workspace))
    assert expected.lengths == {name: LENGTHS[name] for name in SYNTH}


def test_a_file_whose_name_fills_the_name_limit_is_written_atomically(tmp_path: Path):
    from lasskit.atomic import NAME_MAX, is_leftover, temporary_name, write_bytes

    name = "é" * 125 + "x.wav"  # 255 bytes: its own name fits, ".<name>.<token>.lasskit.tmp" would not
    assert len(os.fsencode(name)) == NAME_MAX
    write_bytes(tmp_path / name, b"abc")
    assert [p.name for p in tmp_path.iterdir()] == [name] and (tmp_path / name).read_bytes() == b"abc"
    tmp = temporary_name(name, "abcdefgh")
    assert len(os.fsencode(tmp)) == NAME_MAX and is_leftover(tmp) and tmp.startswith(".éé")
    assert temporary_name("a.wav", "abcdefgh") == ".a.wav.abcdefgh.lasskit.tmp"  # short names as before


def test_separate_files_with_odd_names_work_and_an_output_name_too_long_is_one_input_failure(tmp_path: Path):
    from lasskit.separation.files import separate_files

    src = tmp_path / "in put"
    src.mkdir()
    names = ["-lead x.wav", "cafe\u0301.wav", "a" * 244 + ".wav", "b" * 250 + ".wav"]  # NFD, leading '-', spaces
    for i, name in enumerate(names):
        sf.write(src / name, np.full(800, 0.01 * (i + 1), dtype=np.float32), RATE, subtype="FLOAT")
    out = tmp_path / "out"
    report = separate_files([src], ["rain"], out, model="passthrough", device="cpu")
    # a* gives a 254-byte output name (its temporary is shortened); b* would give 260 bytes
    assert report.written == 3 and len(report.failures) == 1
    label, reason = report.failures[0]
    assert label.endswith("b" * 250 + ".wav") and "260 bytes, the file system allows 255" in reason
    made = sorted(p.name for p in out.glob("*.wav"))
    assert made == sorted(["-lead x__rain.wav", "cafe\u0301__rain.wav", "a" * 244 + "__rain.wav"])
    for i, name in ((0, "-lead x__rain.wav"), (2, "a" * 244 + "__rain.wav")):
        y, _ = sf.read(out / name, dtype="float32")
        assert np.array_equal(y, np.full(800, 0.01 * (i + 1), dtype=np.float32))
    assert "b" * 250 in (out / "failures.csv").read_text(encoding="utf-8")


# --- 2. CSVs read through lasskit.csvfile ----------------------------------------------------------


def test_a_queries_csv_is_read_as_a_csv_not_as_lines(tmp_path: Path):
    from lasskit.separation.inputs import read_queries_csv

    for name in ("a.wav", "b c.wav"):
        sf.write(tmp_path / name, np.zeros(100, dtype=np.float32), RATE, subtype="FLOAT")
    table = tmp_path / "q.csv"
    table.write_bytes(b'\xef\xbb\xbfFile , Query\r\n'          # byte-order mark, CRLF, spaced and capitalised header
                      b'a.wav,"rain, heavy"\r\n'                # a quoted comma
                      b'"b c.wav","a dog\r\nbarking"\r\n'       # a caption with a line break inside
                      b'\r\n'                                   # a blank line
                      b'a.wav,"rain, heavy"\r\n'                # line 6 repeats line 2
                      b'b c.wav,rain,heavy\r\n'                 # an unquoted comma: one cell too many
                      b'a.wav\r\n'                              # a missing cell: an empty query
                      b',wind\r\n')
    notes: list[str] = []
    rows, failures = read_queries_csv(table, notes)
    assert [(p.name, q) for p, _, q in rows] == [("a.wav", "rain, heavy"), ("b c.wav", "a dog\r\nbarking")]
    assert [reason.split(": ", 1)[1] for _, reason in failures] == [
        '3 cells, the header has 2; put a query holding a comma in double quotes (walk.wav,"rain, heavy")',
        "empty query for a.wav; write what to separate (e.g. a dog barking)",
        "empty file cell; name the recording or remove the row"]
    assert [reason.split(": ", 1)[0] for _, reason in failures] == [f"{table}:{n}" for n in (7, 8, 9)]
    assert notes == [f"--queries {table}: 1 row(s) repeat an earlier row's file and query, done once (line 6 (= 2))"]


@pytest.mark.parametrize("data, message", [
    (b"", "empty file, no header"),
    (b"file;query\na.wav;rain\n", "needs a header with the columns file and query (missing file, query; "
                                  "found: file;query)"),
    (b"file,query,file\na.wav,rain,b.wav\n", ":1: the header names the column 'file' twice"),
    (b"file,query\na.wav,caf\xe9\n", ":2: not UTF-8 text (invalid continuation byte at byte 20); save it as UTF-8"),
    (b"file,query\n" + b"a.wav,rain\n" * 1000 + b"a.wav,caf\xe9\n", ":1002: not UTF-8 text (invalid continuation byte at byte 11020)"),
    # a quote never closed took every later row into one query, without a word
    (b'file,query\na.wav,rain\na.wav,"dog\nb.wav,cat\nb.wav,bird\n',
     ":3: not a valid CSV row (a double quote opened here is never closed)"),
    (b'file,query\na.wav,"dog" barks\n', ':2: not a valid CSV row (text after a closing double quote'),  # "dog" lost
])
def test_a_malformed_queries_csv_is_one_line_naming_it(tmp_path: Path, data: bytes, message: str):
    from lasskit.separation.inputs import read_queries_csv

    table = tmp_path / "q.csv"
    table.write_bytes(data)
    with pytest.raises(UsageError) as caught:
        read_queries_csv(table)
    text = str(caught.value)
    assert text.startswith(f"--queries {table}") and message in text and "\n" not in text
    with pytest.raises(UsageError, match="no such file; give a CSV with file,query columns"):
        read_queries_csv(tmp_path / "missing.csv")


@pytest.mark.slow  # imports lightning (5 s on a loaded machine; shared with the training tests)
def test_resuming_keeps_the_metrics_of_earlier_steps_past_a_line_a_kill_cut_short(tmp_path: Path):
    pytest.importorskip("lightning")
    from lasskit.training.module import StepCSVLogger

    (tmp_path / "metrics.csv").write_text("step,metric,value\n1,loss,0.5\n2,loss,0.25\n\n3,loss,0.125\n4,lo")
    StepCSVLogger(tmp_path, resume_step=2).save()  # read it with int(line.split(",")[0]): ValueError on the blank
    assert (tmp_path / "metrics.csv").read_text() == "step,metric,value\n1,loss,0.5\n2,loss,0.25\n"


def test_listening_training_examples_are_read_as_a_csv_with_true_line_numbers(tmp_path: Path):
    from lasskit.listening.qc import read_training_csv

    sf.write(tmp_path / "a.wav", np.zeros(100, dtype=np.float32), RATE, subtype="FLOAT")
    table = tmp_path / "t.csv"
    table.write_bytes(b'\xef\xbb\xbfaudio,query,aspect,level,note\r\n'
                      b'a.wav,"rain, heavy",rel,5,"two\r\nlines"\r\n'
                      b'a.wav,rain,ovl,7,\r\n')
    with pytest.raises(UsageError, match=r"t\.csv line 4: level '7' must be 1-5"):  # line 4: row 2 spans 2-3
        read_training_csv(table)
    table.write_bytes(table.read_bytes().replace(b",7,", b",2,"))
    rows = read_training_csv(table)
    assert [(r["query"], r["aspect"], r["level"], r["note"]) for r in rows] == [
        ("rain, heavy", "rel", "5", "two\r\nlines"), ("rain", "ovl", "2", "")]


# --- 3. option bounds, at parse time --------------------------------------------------------------


@pytest.mark.parametrize("args, says", [
    (["separate", "--split", "val", "--chunk-overlap", "0.999"], "--chunk-overlap 0.999: must be from 0 to 0.9"),
    (["mix", "--num", "0"], "--num 0: must be from 1 to 10000000"),
    (["mix", "--jobs", "100000"], "--jobs 100000: must be from 0 to 1024"),
    (["mix", "--duration", "0"], "--duration 0: must be in (0, 600]"),
    (["mix", "--duration", "1e9"], "--duration 1e+09: must be in (0, 600]"),
    (["mix", "--min-active", "2"], "--min-active 2: must be from 0 to 1"),
    (["mix", "--seed", "-1"], "--seed -1: must be from 0 to 4294967295"),
    (["score", "--clap-batch", "0"], "--clap-batch 0: must be at least 1"),
    (["score", "--devices", "100000"], "--devices 100000: must be from 1 to 1024"),  # spawned 100000 processes
    (["score", "--resamples", "1000000000"], "--resamples 1000000000: must be from 1 to 1000000"),
    (["train", "--log-every", "0"], "--log-every 0: must be at least 1"),
    (["train", "--ema", "1"], "--ema 1: must be in (0, 1)"),
    (["train", "--aug-gain", "-3"], "--aug-gain -3: must be from 0 to 40"),
    (["train", "--keep-checkpoints", "-1"], "--keep-checkpoints -1: must be at least 0"),
    (["train", "--silence-db", "3"], "--silence-db 3: must be a level below 0 dBFS"),
    (["train", "--segment", "1e9"], "--segment 1e+09: must be longer than 0.064 s (one STFT window) and at most 600 s"),
    (["listen", "create", "--items", "0"], "--items 0: must be at least 1"),
    (["listen", "create", "--target-lufs", "6"], "--target-lufs 6: must be from -70 to 0"),
    (["listen", "results", "t", "--max-fast-share", "1.5"], "--max-fast-share 1.5: must be from 0 to 1"),
    (["label", "clotho", "--clap", "--min-score", "2"], "--min-score 2: must be from -1 to 1"),
    (["separate", "--split", ""], "--split '': must not be empty"),
    (["separate", "a.wav", "--query", "rain", "--out", " "], "--out '': must not be empty"),
    (["separate", "", "--query", "rain", "--out", "o"], "FILE_OR_DIR '': must not be empty"),
    (["train", "--name", ""], "--name '': must not be empty"),
    (["package", "--team", ""], "--team '': must not be empty"),
])
def test_absurd_option_values_are_one_line_at_parse_time(tmp_path: Path, run_cli, args, says):
    code, out, err = run_cli("-w", tmp_path, *args)
    assert code == 2 and err.count("\n") == 1 and says in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written


def test_a_bound_broken_in_lasskit_yaml_names_the_file_and_key(tmp_path: Path, run_cli):
    (tmp_path / "lasskit.yaml").write_text("separate:\n  chunk_overlap: 0.95\n")
    code, _, err = run_cli("-w", tmp_path, "separate", "--split", "val")
    assert code == 2 and err.count("\n") == 1
    assert f"{tmp_path / 'lasskit.yaml'}: separate.chunk_overlap: 0.95: must be from 0 to 0.9" in err


def test_the_library_refuses_the_overlap_the_command_line_refuses():
    from lasskit.cli.bounds import BOUNDS
    from lasskit.separation.model import MAX_CHUNK_OVERLAP, check_run_options

    assert BOUNDS["chunk_overlap"].high == MAX_CHUNK_OVERLAP
    check_run_options(1, 10.0, MAX_CHUNK_OVERLAP, None)
    with pytest.raises(UsageError, match=r"--chunk-overlap 0.999: must be from 0 to 0.9"):
        check_run_options(1, 10.0, 0.999, None)


# --- 4. the Python API's input types --------------------------------------------------------------


@pytest.fixture(scope="module")
def passthrough():
    import lasskit

    return lasskit.load_model("passthrough", device="cpu")


def test_the_api_returns_numpy_for_a_list_and_the_input_type_otherwise(passthrough):
    import torch

    x = (np.random.default_rng(0).standard_normal(RATE) * 0.1).astype(np.float64)
    y = passthrough.separate(list(x), RATE, "rain")  # a list: a float32 numpy array
    assert type(y) is np.ndarray and y.dtype == np.float32 and np.array_equal(y, x.astype(np.float32))
    y = passthrough.separate(tuple(x), RATE, ["rain", "wind"])
    assert type(y) is np.ndarray and y.dtype == np.float32 and y.shape == (2, RATE)
    y = passthrough.separate(x, RATE, "rain")  # numpy in its own float dtype
    assert type(y) is np.ndarray and y.dtype == np.float64 and np.allclose(y, x, atol=1e-7)
    y = passthrough.separate(torch.from_numpy(x), RATE, "rain")
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float64
    y = passthrough.separate(x.astype(np.float32), 44100.0, "rain")  # an integral float rate is the integer
    assert y.shape == (RATE,)


@pytest.mark.parametrize("wave, rate, match", [
    (np.zeros(RATE, np.float32), True, r"sample_rate True: give the signal's rate in Hz, a whole number from 1000"),
    (np.zeros(RATE, np.float32), 44100.5, r"sample_rate 44100.5"),
    (np.zeros(RATE, np.float32), "16000", r"sample_rate '16000'"),
    (np.zeros(RATE, np.float32), 10**9, r"sample_rate 1000000000"),
    (np.zeros(RATE, np.float32), 0, r"sample_rate 0"),
    (np.zeros(0, np.float32), RATE, r"wave of shape \(0,\)"),
    (np.zeros((0, RATE), np.float32), RATE, r"wave of shape \(0, 16000\)"),
    (np.zeros((1, 2, RATE), np.float32), RATE, r"wave of shape \(1, 2, 16000\)"),
    (np.float32(0.5), RATE, r"wave: a numpy array, a torch tensor or a list of floats, not float32"),
    (np.full(RATE, np.nan, np.float32), RATE, "NaN or infinite"),
    (np.full(RATE, np.inf, np.float32), RATE, "NaN or infinite"),
    (np.arange(RATE, dtype=np.int16), RATE, r"int16.*x / 32768"),
    (np.arange(RATE).astype(np.int16).astype(np.float32), RATE, r"wave peaks at 15999: .*divide by 32768"),
    (np.zeros(RATE, np.complex64), RATE, r"complex64: give real floating samples"),
    (np.array(["a", "b"]), RATE, r"dtype <U1"),
    ([[0.0, 0.1], [0.2]], RATE, r"rows differ in length"),
    ("0.1 0.2", RATE, r"a list of floats, not str"),
])
def test_the_api_refuses_what_it_cannot_separate_rightly(passthrough, wave, rate, match):
    with pytest.raises(UsageError, match=match):
        passthrough.separate(wave, rate, "rain")


def test_the_api_refuses_a_complex_tensor(passthrough):
    import torch

    with pytest.raises(UsageError, match="complex64"):
        passthrough.separate(torch.zeros(RATE, dtype=torch.complex64), RATE, "rain")


def test_an_error_line_shows_bytes_that_are_not_utf8_as_xnn_on_the_real_stderr(monkeypatch):
    import io
    import sys

    from lasskit.cli import _say

    raw = io.BytesIO()  # Python's own stderr: UTF-8 with backslashreplace, which writes \udce9
    monkeypatch.setattr(sys, "stderr", io.TextIOWrapper(raw, encoding="utf-8", errors="backslashreplace"))
    _say("error: /data/caf\udce9/r\u00e9.wav: unreadable")
    sys.stderr.flush()
    assert raw.getvalue() == "error: /data/caf\\xe9/r\u00e9.wav: unreadable\n".encode()


def test_a_row_error_names_the_file_line_past_blank_lines_and_multi_line_cells(tmp_path: Path):
    from lasskit.corpora.folder import read_metadata
    from lasskit.csvfile import data_line
    from lasskit.splits import read_split

    split = tmp_path / "s"
    split.mkdir()
    (split / "mixtures.csv").write_text('mixture,query\n\na.wav,"a dog\nbarking"\n\nb.wav,  \n', encoding="utf-8")
    with pytest.raises(UsageError, match=r"mixtures\.csv line 6: empty query for b\.wav"):  # row 2 + 2 said line 4
        read_split(split)
    meta = tmp_path / "meta.csv"
    meta.write_text('file,caption\na.wav,"one\ntwo"\n\na.wav,x\n', encoding="utf-8")
    with pytest.raises(UsageError, match=r"meta\.csv line 5: 'a\.wav' is listed twice"):
        read_metadata(meta)
    assert [data_line(meta, k) for k in range(3)] == [2, 5, 4]  # past the last row: index + 2
    assert data_line(meta, 0, header=False) == 1


@pytest.mark.parametrize("batch_size", [0, True, 0.5, "4"])
def test_load_model_refuses_a_batch_size_that_is_not_a_whole_number(batch_size):
    import lasskit

    with pytest.raises(UsageError, match=r"batch_size .*: must be a whole number, at least 1"):
        lasskit.load_model("passthrough", device="cpu", batch_size=batch_size)


def test_an_unreadable_mixture_is_said_not_skipped_by_check_and_package(tmp_path: Path):
    """Its output's length cannot be checked: a warning naming it, where the check went without a word."""
    from lasskit.submission import check_submission
    from lasskit.workspace import Workspace
    from test_package import MODEL, SYNTH, make_workspace, package, record_run

    root = make_workspace(tmp_path / "ws")
    (root / "data" / "splits" / "eval_synth" / "mixture" / SYNTH[2]).write_bytes(b"RIFF....WAVEnot audio")
    record_run(root / "exp" / MODEL / "eval_synth", "eval_synth", SYNTH)  # as if separated after the damage
    result = package(root)
    assert [w for w in result.warnings if "unreadable" in w] == [
        "eval_synth: 1 mixture(s) unreadable (synth_02.wav): the lengths of their outputs were not checked; "
        "re-prepare the split"]
    report = check_submission(root / "submission", Workspace.open(root))
    found = [w for w in report.warnings if w.kind == "mixture_unreadable"]
    assert len(found) == 1 and found[0].file.endswith("eval_synth/mixture/synth_02.wav")
    assert "1 mixture(s) of eval_synth unreadable (synth_02.wav)" in found[0].message


@pytest.mark.slow  # imports torch and lightning
def test_train_in_a_workspace_without_corpora_says_so_before_fetching_weights(tmp_path: Path, run_cli):
    # before: the baseline's weights were fetched first (a minute of retries offline), then "no prepared corpus"
    code, _, err = run_cli("-w", tmp_path, "train")
    assert code == 2 and err.count("\n") == 1 and "no prepared corpus in" in err and "lasskit prepare" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_queries_row_finds_its_file_whatever_the_unicode_normal_form(tmp_path: Path):
    from lasskit.separation.inputs import read_queries_csv

    sf.write(tmp_path / "cafe\u0301.wav", np.zeros(100, dtype=np.float32), RATE, subtype="FLOAT")  # NFD on disk
    table = tmp_path / "q.csv"
    table.write_text("file,query\ncaf\u00e9.wav,rain\n", encoding="utf-8")  # NFC in the spreadsheet
    rows, failures = read_queries_csv(table)
    assert failures == [] and [(p.name, q) for p, _, q in rows] == [("cafe\u0301.wav", "rain")]


def test_a_header_naming_a_column_twice_is_refused_where_pandas_would_rename_it(tmp_path: Path):
    from lasskit.corpora.folder import read_metadata
    from lasskit.splits import read_split

    meta = tmp_path / "meta.csv"
    meta.write_text("file,caption,caption\na.wav,a dog,rain\n", encoding="utf-8")  # pandas: caption, caption.1
    with pytest.raises(UsageError, match=r"meta\.csv:1: the header names the column 'caption' twice; keep one"):
        read_metadata(meta)
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "mixtures.csv").write_text("mixture,query,query\na.wav,rain,wind\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"mixtures\.csv:1: the header names the column 'query' twice"):
        read_split(tmp_path / "s")


def test_records_of_a_workspace_not_in_utf8_round_trip_exactly():
    import json

    from lasskit.atomic import utf8

    state = {"manifest": "/w\udce9/data/s/manifest.csv", "caption": "caf\u00e9"}
    data = utf8(json.dumps(state, ensure_ascii=False))
    assert data == b'{"manifest": "/w\\udce9/data/s/manifest.csv", "caption": "caf\xc3\xa9"}'
    assert json.loads(data.decode("utf-8")) == state  # the same name back, where encoding raised


def test_prepare_and_mix_in_a_workspace_not_in_utf8(tmp_path: Path, run_cli):
    ws = latin1_dir(tmp_path, b"w\xe9")
    src = tmp_path / "src"
    for i, name in enumerate(["tone", "rain", "bird", "knock", "hum", "alarm"]):
        soundgen.write_clip(src / f"{name}.wav", name, 2.0, seed=i)
    (tmp_path / "meta.csv").write_text("file,caption,labels\n" + "".join(
        f"{n}.wav,a {n} sound,{n}\n" for n in ["tone", "rain", "bird", "knock", "hum", "alarm"]), encoding="utf-8")
    code, _, err = run_cli("-w", ws, "prepare", "folder", src, "--metadata", tmp_path / "meta.csv", "--jobs", "1",
                           "--name", "s")
    assert code == 0, err
    args = ("-w", ws, "mix", "--snr", "-5", "5", "--num", "4", "--duration", "1", "--name", "m", "--jobs", "1")
    code, out, err = run_cli(*args)  # failed: the activity cache's name and mix.json encoded the path
    assert code == 0, err
    assert len(open(os.fsencode(ws / "data/splits/m/mixtures.csv"), encoding="utf-8").read().splitlines()) == 5
    code, out, err = run_cli(*args)
    assert code == 0 and "already current" in out  # mix.json read back as written: nothing remade

    raw = latin1_dir(tmp_path, b"raw\xe9")  # a source folder not in UTF-8: its files were each "not valid UTF-8"
    os.rename(os.fsencode(src / "tone.wav"), os.fsencode(raw / "tone.wav"))
    with open(os.fsencode(raw / "caf\udce9.wav"), "wb") as fh:  # a clip whose own name is not UTF-8 still fails
        fh.write((src / "rain.wav").read_bytes())
    code, out, err = run_cli("-w", ws, "prepare", "folder", raw, "--name", "t", "--jobs", "1")
    assert code == 1 and "1 file(s) failed" in err
    assert (ws / "data/t/audio/tone.wav").is_file()
    failures = open(os.fsencode(ws / "data/t/failures.csv"), encoding="utf-8").read()
    assert "raw\\xe9/caf\\xe9.wav" in failures and "file name is not valid UTF-8" in failures


@pytest.mark.slow  # the whole workflow: 7 s
def test_the_whole_demo_workflow_runs_in_a_folder_whose_name_is_not_utf8(tmp_path: Path):
    from lasskit.demo import run_demo

    root = latin1_dir(tmp_path, b"d\xe9mo")
    result = run_demo(root, duration=1.0, jobs=1, log=lambda line: None)
    assert not result.check.problems
    again = run_demo(root, duration=1.0, jobs=1, log=lambda line: None)  # records read back: done again cleanly
    assert not again.check.problems


def test_the_cli_names_the_true_byte_and_line_of_text_that_is_not_utf8(run_cli, tmp_path: Path, monkeypatch):
    import lasskit.workspace

    bad = tmp_path / "notes.txt"
    bad.write_bytes(b"x" * 20000 + b"\n" * 3 + b"caf\xe9\n")  # past the decoder's first 8 KiB block

    def read_it(*a, **k):
        with open(bad, encoding="utf-8") as fh:
            for _ in fh:
                pass

    monkeypatch.setattr(lasskit.workspace, "write_config_template", read_it)
    code, _, err = run_cli("--workspace", tmp_path, "init")
    assert code == 2 and err.count("\n") == 1
    assert f"{bad}: not UTF-8 text (invalid continuation byte at byte 20006, line 4)" in err, err


def test_label_clap_refuses_missing_audio_of_a_clip_it_would_tag_again_before_embedding(tmp_path: Path):
    """A clip CLAP tagged before is tagged again: its missing audio is said up front (it was found
    only after every other clip had been embedded), and the manifest is left as it was."""
    from lasskit.labels.clap import clap_label_manifest
    from lasskit.manifest import Clip, write_manifest

    calls = []

    class Model:  # no checkpoint: no disk cache
        checkpoint = ""

        def text_embeddings(self, prompts):
            return np.eye(len(prompts), 4)

        def audio_embeddings(self, waves, rate, path):
            calls.append(len(waves))
            return np.ones((len(waves), 4), np.float32)

    soundgen.write_clip(tmp_path / "audio" / "a.wav", "tone", 0.2, RATE, seed=1)
    clips = [Clip("a", "audio/a.wav", 0.2, RATE, 3200, "gen", "train", ["x"], []),
             Clip("b", "audio/b.wav", 0.2, RATE, 3200, "gen", "train", ["y"], ["Rain"], label_source="clap")]
    write_manifest(tmp_path / "manifest.csv", clips)
    before = (tmp_path / "manifest.csv").read_bytes()
    with pytest.raises(UsageError, match=r"b\.wav: audio of 1 clip\(s\) to label is missing"):
        clap_label_manifest(tmp_path / "manifest.csv", ["Rain", "Bird"], Model())
    assert calls == [] and (tmp_path / "manifest.csv").read_bytes() == before


@pytest.mark.parametrize("call, match", [
    (dict(query={"rain", "wind"}), "a set has no order"),  # the estimates came back in hash order
    (dict(query={"rain": 1}), "a dict has no order"),  # its keys were taken for queries
    (dict(wave=np.ma.masked_array(np.zeros(RATE, np.float32), mask=True)), "a masked array"),  # mask ignored
    (dict(window_seconds="5"), r"window_seconds '5': give a number of seconds"),  # a TypeError traceback
    (dict(crossfade_seconds=True), r"crossfade_seconds True"),  # taken as 1 s
    (dict(mono="no"), r"mono 'no': give True"),  # truthy: the channels were averaged
])
def test_the_api_refuses_options_it_would_read_wrongly(passthrough, call, match):
    args = dict(wave=np.zeros(RATE, np.float32), sample_rate=RATE, query="rain") | call
    with pytest.raises(UsageError, match=match):
        passthrough.separate(**args)


def test_load_model_takes_a_torch_device_and_refuses_a_name_or_device_that_is_not_text():
    import torch

    import lasskit

    assert lasskit.load_model("passthrough", device=torch.device("cpu")).device == "cpu"  # was an AttributeError
    with pytest.raises(UsageError, match="name None: give a registered model name"):
        lasskit.load_model(None, device="cpu")  # was 'class NoneType has no separate(...) method'
    with pytest.raises(UsageError, match="device 0: give 'auto', 'cpu', 'cuda' or 'cuda:N'"):
        lasskit.load_model("passthrough", device=0)  # was the CPU, even with a GPU (0 is false: auto)


def test_a_queries_row_naming_a_folder_says_it_is_a_folder(tmp_path: Path):
    from lasskit.separation.inputs import read_queries_csv

    (tmp_path / "walks").mkdir()
    (tmp_path / "q.csv").write_text("file,query\nwalks,rain\n")
    rows, failures = read_queries_csv(tmp_path / "q.csv")
    assert rows == [] and failures[0][1].endswith("walks: a folder; name one recording a row (its folder goes on "
                                                  "the command line: lasskit separate DIR --query Q)")  # 'no such file'
