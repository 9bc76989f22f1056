"""`lasskit check`: a correct package passes; each defect, made from it, is caught and named.

Every defect test asserts the exact set of problem kinds found, so a check that reports too much
fails as surely as one that misses the defect.
"""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from lasskit.submission import write_team_zip
from lasskit.submission import check_submission
from lasskit.workspace import Workspace
from test_package import LABEL, REAL, SYNTH, make_workspace, output_signal, package

SYNTH_ZIP = f"{LABEL}_eval_synth.zip"
REAL_ZIP = f"{LABEL}_eval_real.zip"
META = f"{LABEL}.meta.yaml"


@pytest.fixture(scope="module")
def workspace_root(tmp_path_factory) -> Path:
    root = make_workspace(tmp_path_factory.mktemp("check") / "ws")
    package(root)
    return root


@pytest.fixture
def sub(workspace_root, tmp_path) -> Path:
    """A private copy of the correct package folder."""
    dst = tmp_path / "submission"
    shutil.copytree(workspace_root / "submission", dst)
    return dst


@pytest.fixture
def run_check(workspace_root):
    def run(path, jobs=1, with_workspace=True):
        return check_submission(path, Workspace.open(workspace_root) if with_workspace else None, jobs=jobs)
    return run


def kinds(report) -> dict:
    return dict(report.kinds())


def messages(report) -> str:
    return "\n".join(report.lines())


def wav_bytes(x: np.ndarray, rate: int = 16000, subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x.T if x.ndim == 2 else x, rate, subtype=subtype, format="WAV")
    return buf.getvalue()


def at_44k(x: np.ndarray) -> np.ndarray:
    """The same second of audio at 44.1 kHz (linear interpolation is enough here)."""
    return np.interp(np.arange(44100) / 44100, np.arange(len(x)) / 16000, x).astype(np.float32)


def rewrite_zip(path: Path, change) -> None:
    """Rewrite a zip after ``change(entries)`` edits its list of (name, bytes)."""
    with zipfile.ZipFile(path) as zf:
        entries = [(i.filename, zf.read(i)) for i in zf.infolist()]
    entries = change(entries)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(name, data)


def replace_entry(path: Path, name: str, data: bytes) -> None:
    rewrite_zip(path, lambda entries: [(n, data if n == name else d) for n, d in entries])


def edit_meta(sub: Path, change) -> None:
    """Edit the meta YAML and rebuild the team zip, so the edit is the only defect."""
    meta = yaml.safe_load((sub / META).read_text())
    change(meta)
    (sub / META).write_text(yaml.safe_dump(meta, sort_keys=False))
    write_team_zip(sub, "Lovelace", "UOS")


# --- the correct package ------------------------------------------------------------------------
def test_correct_package_passes(sub, run_check):
    report = run_check(sub)
    assert report.problems == []
    assert report.systems == [LABEL]
    assert report.audio_files == len(SYNTH) + len(REAL)


def test_each_zip_alone_passes(sub, run_check):
    for name in (SYNTH_ZIP, REAL_ZIP, "Lovelace_UOS_task9.zip"):
        report = run_check(sub / name)
        assert report.problems == [], name
        assert report.systems == [LABEL]


def test_cli_exit_codes_and_one_line_per_problem(sub, run_cli, workspace_root):
    code, out, _ = run_cli("--workspace", workspace_root, "check", sub, "--jobs", "1")
    assert code == 0 and "0 problem(s)" in out
    replace_entry(sub / REAL_ZIP, REAL[1], wav_bytes(at_44k(output_signal(REAL[1])), 44100))
    edit_meta(sub, lambda m: m["submission"].update(abbreviation="ToneSeparator"))
    code, out, err = run_cli("--workspace", workspace_root, "check", sub, "--jobs", "1")
    assert code == 1
    lines = out.splitlines()
    assert f"{REAL_ZIP}:{REAL[1]}: 44100 Hz, must be 16000 Hz; resample to 16000 Hz " \
           "(lasskit separate writes 16000 Hz)" in lines
    assert any(line.startswith(f"{META}: submission.abbreviation: 'ToneSeparator' is 13 characters")
               for line in lines)
    assert "2 problem(s) (abbreviation 1, sample_rate 1)" in err
    assert "Traceback" not in err


# --- names and labels --------------------------------------------------------------------------
def test_meta_label_differing_from_file_names(sub, run_check):
    edit_meta(sub, lambda m: m["submission"].update(label="Lovelace_UOS_task9_2"))
    report = run_check(sub)
    assert kinds(report) == {"label": 1}
    assert "submission.label: 'Lovelace_UOS_task9_2' differs from the file name's label" in messages(report)


def test_label_with_lowercase_last_name(sub, run_check):
    bad = sub / "lovelace_UOS_task9_1_eval_real.zip"
    (sub / REAL_ZIP).rename(bad)
    report = run_check(bad)
    assert kinds(report) == {"label": 1}
    assert "last name 'lovelace' must be ASCII letters starting with a capital" in messages(report)


def test_label_index_out_of_range(sub, run_check):
    bad = sub / "Lovelace_UOS_task9_5_eval_real.zip"
    (sub / REAL_ZIP).rename(bad)
    report = run_check(bad)
    assert kinds(report) == {"index": 1}
    assert "index 5 is outside 1..4" in messages(report)


def test_missing_file_and_unexpected_file(sub, run_check):
    (sub / f"{LABEL}.audio_url.txt").unlink()
    (sub / "notes.txt").write_text("hello")
    report = run_check(sub)
    assert kinds(report) == {"missing_file": 1, "unexpected_file": 1}
    text = messages(report)
    assert f"{LABEL}.audio_url.txt: missing; run `lasskit package --index 1`" in text
    assert "notes.txt: not a package file name" in text


def test_stale_team_zip(sub, run_check):
    meta = (sub / META).read_text().replace("Tone separator", "Tone separator v2")
    (sub / META).write_text(meta)
    report = run_check(sub)
    assert kinds(report) == {"stale": 1}
    assert f"Lovelace_UOS_task9.zip:{META}: differs from {META} in the folder" in messages(report)


def test_files_of_two_teams(sub, run_check):
    (sub / REAL_ZIP).rename(sub / "Babbage_UOS_task9_1_eval_real.zip")
    report = run_check(sub)
    assert kinds(report) == {"team": 1, "missing_file": 1 + 4}  # Lovelace lacks 1 file, Babbage 4
    assert "files of 2 different teams: Babbage_UOS" in messages(report)


def test_team_zip_alone_named_for_another_team(sub, run_check):
    renamed = sub / "Babbage_UOS_task9.zip"
    (sub / "Lovelace_UOS_task9.zip").rename(renamed)
    report = run_check(renamed)
    assert kinds(report) == {"team": 1}
    assert report.systems == [LABEL]


def test_second_system_passes(workspace_root, tmp_path, run_check):
    root = tmp_path / "ws"
    shutil.copytree(workspace_root, root)
    package(root, index=2, name="Tone separator 2", abbreviation="ToneSep2")
    report = check_submission(root / "submission", Workspace.open(root), jobs=1)
    assert report.problems == []
    assert report.systems == [LABEL, "Lovelace_UOS_task9_2"]


# --- metadata ------------------------------------------------------------------------------------
def test_abbreviation_too_long(sub, run_check):
    edit_meta(sub, lambda m: m["submission"].update(abbreviation="ToneSeparator"))
    report = run_check(sub)
    assert kinds(report) == {"abbreviation": 1}
    assert "'ToneSeparator' is 13 characters, at most 10 allowed" in messages(report)


def test_two_corresponding_authors(sub, run_check):
    edit_meta(sub, lambda m: m["submission"]["authors"][1].update(corresponding=True))
    report = run_check(sub)
    assert kinds(report) == {"corresponding": 1}
    assert "2 corresponding authors ([0], [1]), exactly one required" in messages(report)


def test_missing_yaml_field(sub, run_check):
    edit_meta(sub, lambda m: m["system"]["description"].pop("text_encoder"))
    report = run_check(sub)
    assert kinds(report) == {"field": 1}
    assert "system.description.text_encoder: missing; add system.description.text_encoder" in messages(report)


def test_mistyped_yaml_fields(sub, run_check):
    def change(m):
        m["system"]["description"]["ensemble_size"] = "one"
        m["results"]["validation_synth"]["SDR"] = "5.7 dB"
    edit_meta(sub, change)
    report = run_check(sub)
    assert kinds(report) == {"type": 2}
    text = messages(report)
    assert "system.description.ensemble_size: must be an integer, not str 'one'" in text
    assert "results.validation_synth.SDR: must be a number, not str '5.7 dB'" in text


def test_placeholder_left(sub, run_check):
    edit_meta(sub, lambda m: m["submission"].update(name="TODO system name"))
    report = run_check(sub)
    assert kinds(report) == {"placeholder": 1}
    assert "submission.name: 'TODO system name' holds the placeholder 'TODO'" in messages(report)


def test_template_email_and_bad_email(sub, run_check):
    def change(m):
        m["submission"]["authors"][0]["email"] = "ada@example.org"
        m["submission"]["authors"][1]["email"] = "charles at uni"
    edit_meta(sub, change)
    report = run_check(sub)
    assert kinds(report) == {"email": 2}
    text = messages(report)
    assert "'ada@example.org' uses a reserved example domain" in text
    assert "'charles at uni' is not of the form name@domain.tld" in text


def test_implausible_results(sub, run_check):
    edit_meta(sub, lambda m: m["results"]["validation_synth"].update({"SDR": 120.0, "SI-SDR": float("nan")}))
    report = run_check(sub)
    assert kinds(report) == {"results": 2}
    assert "results.validation_synth.SDR: 120.0 dB is implausible" in messages(report)


def test_yaml_syntax_error(sub, run_check):
    (sub / META).write_text("submission:\n  label: [unclosed\n")
    write_team_zip(sub, "Lovelace", "UOS")
    report = run_check(sub)
    assert kinds(report) == {"yaml": 1}
    assert "invalid YAML" in messages(report)


# --- report and link --------------------------------------------------------------------------------
def test_non_pdf_report(sub, run_check):
    (sub / f"{LABEL}.technical_report.pdf").write_bytes(b"PK\x03\x04 a docx, really")
    write_team_zip(sub, "Lovelace", "UOS")
    report = run_check(sub)
    assert kinds(report) == {"report": 1}
    assert f"{LABEL}.technical_report.pdf: not a PDF" in messages(report)


def test_truncated_pdf(sub, run_check):
    (sub / f"{LABEL}.technical_report.pdf").write_bytes(b"%PDF-1.5\n" + b"x" * 5000)
    write_team_zip(sub, "Lovelace", "UOS")
    assert "truncated PDF" in messages(run_check(sub))


def test_link_file_without_link(sub, run_check):
    (sub / f"{LABEL}.audio_url.txt").write_text("Google Drive: will add later\n")
    write_team_zip(sub, "Lovelace", "UOS")
    report = run_check(sub)
    assert kinds(report) == {"link": 1}
    assert "no http(s) link" in messages(report)


# --- audio zips ---------------------------------------------------------------------------------------
def test_missing_and_extra_wavs(sub, run_check):
    def change(entries):
        entries = [(n, d) for n, d in entries if n != SYNTH[1]]
        return entries + [("synth_99.wav", entries[0][1])]
    rewrite_zip(sub / SYNTH_ZIP, change)
    report = run_check(sub)
    assert kinds(report) == {"missing_audio": 1, "extra_audio": 1}
    text = messages(report)
    assert f"{SYNTH_ZIP}:{SYNTH[1]}: missing" in text
    assert f"{SYNTH_ZIP}:synth_99.wav: extra" in text


@pytest.mark.parametrize("defect, kind, words", [
    ("44.1 kHz", "sample_rate", "44100 Hz, must be 16000 Hz"),
    ("stereo", "channels", "2 channels, must be mono"),
    ("short", "length", "too short: 12000 samples (0.750 s), the mixture has 16000 (1.000 s)"),
    ("NaN", "non_finite", "4 NaN or infinite sample(s)"),
    ("silent", "silent", "silent (peak 0.0e+00 < 1e-05)"),
    ("flac", "not_wav", "a FLAC file, not WAV"),
])
def test_bad_wav_in_zip(sub, run_check, defect, kind, words):
    name = REAL[1]
    x = output_signal(name)
    data = {
        "44.1 kHz": lambda: wav_bytes(at_44k(x), 44100),
        "stereo": lambda: wav_bytes(np.stack([x, x]), 16000),
        "short": lambda: wav_bytes(x[:12000], 16000),
        "NaN": lambda: wav_bytes(np.where(np.arange(len(x)) % 5000 == 7, np.nan, x), 16000, "FLOAT"),
        "silent": lambda: wav_bytes(np.zeros_like(x), 16000),
        "flac": lambda: _flac_bytes(x),
    }[defect]()
    replace_entry(sub / REAL_ZIP, name, data)
    report = run_check(sub)
    assert kinds(report) == {kind: 1}
    assert f"{REAL_ZIP}:{name}: {words}" in messages(report)


def _flac_bytes(x):
    buf = io.BytesIO()
    sf.write(buf, x, 16000, format="FLAC")
    return buf.getvalue()


def test_nested_folders_in_zip(sub, run_check):
    rewrite_zip(sub / REAL_ZIP, lambda entries: [(f"outputs/eval_real/{n}", d) for n, d in entries])
    report = run_check(sub)
    assert kinds(report) == {"nested": len(REAL)}  # the files themselves are fine and not "missing"
    assert f"{REAL_ZIP}:outputs/eval_real/{REAL[0]}: inside a folder; the zip must be flat" in messages(report)


def test_duplicate_entries(sub, run_check):
    with pytest.warns(UserWarning, match="Duplicate name"):  # zipfile warns but writes it
        rewrite_zip(sub / REAL_ZIP, lambda entries: entries + [entries[0]])
    report = run_check(sub)
    assert kinds(report) == {"duplicate": 1}
    assert f"{REAL_ZIP}:{REAL[0]}: 2 entries with this name" in messages(report)


def test_corrupt_entry_data(sub, run_check):
    path = sub / REAL_ZIP
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(REAL[1])
    raw = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for i in range(start + 100, start + 110):  # inside the compressed data
        raw[i] ^= 0xFF
    path.write_bytes(bytes(raw))
    report = run_check(sub)
    assert kinds(report) == {"corrupt": 1}
    assert f"{REAL_ZIP}:{REAL[1]}: damaged entry" in messages(report)


def test_truncated_zip(sub, run_check):
    path = sub / SYNTH_ZIP
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    report = run_check(sub)
    assert kinds(report) == {"corrupt": 1}
    assert f"{SYNTH_ZIP}: not a readable zip" in messages(report)


def test_entry_escaping_the_archive_is_caught_and_never_written(sub, run_check, tmp_path, monkeypatch):
    rewrite_zip(sub / REAL_ZIP, lambda entries: entries + [("../x.wav", entries[0][1])])
    monkeypatch.chdir(sub)
    report = run_check(sub)
    assert kinds(report) == {"unsafe_path": 1}
    assert f"{REAL_ZIP}:../x.wav: entry name points outside the archive" in messages(report)
    assert not (tmp_path / "x.wav").exists() and not (sub / "x.wav").exists()


def test_absurd_uncompressed_size_is_refused(sub, run_check, monkeypatch):
    import lasskit.submission.checker as sc

    monkeypatch.setattr(sc, "MAX_TOTAL_BYTES", 10_000)
    report = run_check(sub / REAL_ZIP)
    assert kinds(report) == {"size": 1}
    assert report.audio_files == 0  # nothing was read
    assert "GiB uncompressed (limit" in messages(report)


def test_outside_a_workspace_the_official_sets_are_expected(sub, run_check):
    report = run_check(sub / REAL_ZIP, with_workspace=False)
    assert kinds(report) == {"missing_audio": 200 - len(REAL), "length": len(REAL)}
    assert f"{REAL_ZIP}:test-real-case-199.wav: missing" in messages(report)
    assert "the mixture has 160000 (10.000 s)" in messages(report)
    report = run_check(sub / SYNTH_ZIP, with_workspace=False)
    assert kinds(report) == {"count": 1, "length": len(SYNTH)}
    assert f"{SYNTH_ZIP}: 4 WAV files, expected 3000" in messages(report)


def test_every_problem_is_reported_at_once_and_jobs_do_not_change_them(sub, run_check):
    x = output_signal(REAL[0])
    replace_entry(sub / REAL_ZIP, REAL[0], wav_bytes(np.stack([at_44k(x)] * 2), 44100))
    replace_entry(sub / SYNTH_ZIP, SYNTH[2], wav_bytes(np.zeros(16000), 16000))
    edit_meta(sub, lambda m: m["submission"]["authors"][0].update(corresponding=False))
    one, two = run_check(sub, jobs=1), run_check(sub, jobs=2)
    assert kinds(one) == {"sample_rate": 1, "channels": 1, "silent": 1, "corresponding": 1}
    assert one.lines() == two.lines()


def test_lines_are_capped_per_file_with_a_count():
    from lasskit.submission import CheckReport, Problem

    report = CheckReport(Path("x"), [Problem(f"a.zip:{i}.wav", "bad", "fix", "silent") for i in range(25)])
    lines = report.lines(limit_per_file=20)
    assert len(lines) == 21
    assert lines[-1] == "a.zip: ... and 5 more problem(s); run `lasskit check --all` to list them"
    assert len(report.lines()) == 25


def test_total_parameters_may_be_zero_but_not_negative(sub, run_check):
    edit_meta(sub, lambda m: m["system"]["complexity"].update(total_parameters=0))  # e.g. passthrough
    assert run_check(sub).problems == []
    edit_meta(sub, lambda m: m["system"]["complexity"].update(total_parameters=-5))
    report = run_check(sub)
    assert kinds(report) == {"field": 1}
    assert "system.complexity.total_parameters: -5, must be 0 or more" in messages(report)


# --- hostile metadata and folders without a package (issue 12) --------------------------------------
def _bomb(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("text,word", [(_bomb(), "alias"), ("a: &a [*a]\n", "recursive")])
def test_alias_bomb_and_recursive_meta_are_refused_fast(sub, run_check, text, word):
    import time

    (sub / META).write_text(text)
    write_team_zip(sub, "Lovelace", "UOS")  # the bomb is inside the team zip too
    start = time.perf_counter()
    report = run_check(sub)
    assert time.perf_counter() - start < 10
    lines = [line for line in report.lines() if META in line and "refused" in line]
    assert len(lines) == 1 and word in lines[0]
    report = run_check(sub / "Lovelace_UOS_task9.zip")  # the team zip alone: its copy is parsed
    lines = [line for line in report.lines() if META in line and "refused" in line]
    assert len(lines) == 1 and word in lines[0] and time.perf_counter() - start < 10


def test_a_folder_without_any_package_file_fails(tmp_path, run_check, run_cli):
    (tmp_path / "pkg" / "inner").mkdir(parents=True)
    report = run_check(tmp_path / "pkg")
    assert kinds(report) == {"missing_file": 1} and "no package file" in messages(report)
    code, out, err = run_cli("check", tmp_path / "pkg")
    assert code == 1 and err.count("\n") == 1 and "no system found" in out and "no package file" in out


def test_the_parent_of_a_package_points_to_it(sub, run_check):
    report = run_check(sub.parent)
    assert kinds(report) == {"missing_file": 1} and f"lasskit check {sub}" in messages(report)


def test_an_oversized_meta_file_is_not_read(sub, run_check):
    (sub / META).write_bytes(b"# " + b"x" * (65 * 1024 * 1024))
    report = run_check(sub)
    assert "size" in kinds(report) and "more than" in messages(report)
