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
