"""`lasskit package`: the files, their exact names and contents, determinism, and refusals.

The workspace is generated here: the split CSVs and mixtures, float32 outputs of `separate`
with their separate.json, and val_synth/summary.json of `score`, written directly.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import wave
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from lasskit import soundgen
from lasskit.errors import UsageError, WorkError
from lasskit.provenance import Ledger, files_digest, settings_id
from lasskit.submission import Naming, build_package, write_team_zip
from lasskit.workspace import Workspace

MODEL = "tonesep"
LABEL = "Lovelace_UOS_task9_1"
SYNTH = [f"synth_{i:02d}.wav" for i in range(4)]
REAL = [f"test-real-case-{i}.wav" for i in range(3)]
LENGTHS = {name: 16000 for name in SYNTH + REAL} | {"synth_03.wav": 24000}
SUMMARY = {"sdr": 6.12345, "sdri": 5.98765, "si_sdr": 4.4444}
PARAMETERS = 29_123_456
PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"

CONFIG = {
    "package": {
        "team": "Lovelace",
        "institute": "UOS",
        "name": "Tone separator",
        "abbreviation": "ToneSep",
        "report": "report.pdf",
        "system": {
            "text_encoder": "CLAP",
            "training_data": ["Clotho v2", "FSD50K"],
            "external_data": [],
            "pretrained_models": ["CLAP (laion/clap-htsat-unfused)"],
        },
    },
    "authors": [
        {"firstname": "Ada", "lastname": "Lovelace", "email": "ada@uni-analytical.ac.uk",
         "affiliation": "University of Somewhere", "corresponding": True},
        {"firstname": "Charles", "lastname": "Babbage", "email": "cb@uni-analytical.ac.uk",
         "affiliation": "University of Somewhere"},
    ],
}


def output_signal(name: str) -> np.ndarray:
    """The 'separated' output of a mixture: a generated tone at 0.4 peak, float32."""
    seed = sum(map(ord, name))
    return (soundgen.generate("tone", LENGTHS[name] / 16000, 16000, seed=seed) * 0.8).astype(np.float32)


def make_workspace(root: Path, config: dict | None = None) -> Path:
    """A workspace with eval_synth/eval_real splits, float outputs of MODEL, and val_synth scores."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "lasskit.yaml").write_text(yaml.safe_dump(config or CONFIG, sort_keys=False))
    (root / "report.pdf").write_bytes(PDF)
    for split, names in (("eval_synth", SYNTH), ("eval_real", REAL)):
        split_dir = root / "data" / "splits" / split
        rows = ["mixture,query"]
        for i, name in enumerate(names):
            soundgen.write_clip(split_dir / "mixture" / name, "rain", LENGTHS[name] / 16000, seed=i)
            rows.append(f"{name},a steady tone {i}")
        (split_dir / "mixtures.csv").write_text("\n".join(rows) + "\n")
        out = root / "exp" / MODEL / split
        out.mkdir(parents=True)
        for name in names:
            sf.write(str(out / name), output_signal(name), 16000, subtype="FLOAT")
        record_run(out, split, names)
    val = root / "exp" / MODEL / "val_synth"
    val.mkdir(parents=True)
    for name in SYNTH:  # the outputs the scores were computed on, by the same system
        sf.write(str(val / name), output_signal(name), 16000, subtype="FLOAT")
    record_run(val, "val_synth", SYNTH)
    write_summary(val)
    return root


SETTINGS = {"model": MODEL, "options": {}, "checkpoint_sha256": None}


def record_run(out: Path, split: str, names: list[str], settings: dict = SETTINGS, total: int | None = None) -> None:
    """What separate leaves beside its outputs: provenance.json records and separate.json."""
    import csv

    from lasskit.provenance import file_digest, text_digest

    split_dir = out.parents[2] / "data" / "splits" / split  # exp/<model>/<split> -> the split's inputs
    queries = {}
    if (split_dir / "mixtures.csv").is_file():
        with open(split_dir / "mixtures.csv", newline="", encoding="utf-8") as fh:
            queries = {r["mixture"]: r["query"] for r in csv.DictReader(fh)}
    ledger = Ledger(out)
    for name in names:  # as separate records it: the mixture's digest and the query's
        mixture = split_dir / "mixture" / name
        digest = file_digest(mixture) if mixture.is_file() else "mixture-digest-" + name
        extra = {"query": text_digest(queries[name])} if name in queries else None
        ledger.record(name, out / name, digest, settings, extra)
    ledger.save()
    total = len(names) if total is None else total
    (out / "separate.json").write_text(json.dumps({
        "model": MODEL, "split": split, "options": {}, "checkpoint": None, "checkpoint_sha256": None,
        "device": "cpu", "lasskit_version": "0.1.0", "seconds": 1.0, "count": len(names), "total": total,
        "complete": len(names) == total, "consistent": True, "failed": total - len(names),
        "made_with": [{"outputs": len(names), "settings_id": settings_id(settings), **settings}],
        "parameters": PARAMETERS, "sample_rate": 16000}))


def write_summary(val: Path) -> None:
    """val_synth/summary.json as score writes it, tied to the outputs in ``val``."""
    metrics = {k: {"mean": v, "median": v, "std": 1.0, "ci95": [v - 1, v + 1], "count": 3000}
               for k, v in SUMMARY.items()}
    names = sorted(p.name for p in val.glob("*.wav"))
    (val / "summary.json").write_text(json.dumps({
        "model": MODEL, "split": "val_synth", "count": 3000, "metrics": metrics, "missing": 0, "trimmed": 0,
        "estimates": {"count": len(names), "digest": files_digest(val, names)}}))


def package(root: Path, **options):
    options.setdefault("jobs", 1)
    options.setdefault("audio_url", "https://drive.google.com/drive/folders/abc123")
    return build_package(Workspace.open(root), **options)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A workspace with one correct package in submission/ (shared; copy it before changing)."""
    root = make_workspace(tmp_path_factory.mktemp("pkg") / "ws")
    package(root)
    return root


def test_package_writes_every_file_with_the_organizers_names(built):
    sub = built / "submission"
    assert sorted(p.name for p in sub.iterdir()) == sorted([
        f"{LABEL}_eval_synth.zip", f"{LABEL}_eval_real.zip", f"{LABEL}.meta.yaml",
        f"{LABEL}.technical_report.pdf", f"{LABEL}.audio_url.txt", "Lovelace_UOS_task9.zip"])
    assert (sub / f"{LABEL}.technical_report.pdf").read_bytes() == PDF
    assert (sub / f"{LABEL}.audio_url.txt").read_text() == \
        "Google Drive: https://drive.google.com/drive/folders/abc123\n"
    with zipfile.ZipFile(sub / "Lovelace_UOS_task9.zip") as zf:
        assert zf.namelist() == sorted([f"{LABEL}.audio_url.txt", f"{LABEL}.meta.yaml",
                                        f"{LABEL}.technical_report.pdf"])
        assert zf.read(f"{LABEL}.meta.yaml") == (sub / f"{LABEL}.meta.yaml").read_bytes()


def test_audio_zips_hold_one_pcm16_wav_per_mixture_named_as_the_mixture(built):
    sub = built / "submission"
    for split, names in (("eval_synth", SYNTH), ("eval_real", REAL)):
        with zipfile.ZipFile(sub / f"{LABEL}_{split}.zip") as zf:
            assert zf.testzip() is None
            assert zf.namelist() == sorted(names)
            for info in zf.infolist():
                assert info.compress_type == zipfile.ZIP_DEFLATED
                assert info.date_time == (1980, 1, 1, 0, 0, 0)
                data = zf.read(info)
                with wave.open(io.BytesIO(data)) as w:
                    assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
                    assert w.getnframes() == LENGTHS[info.filename]
                samples, rate = sf.read(io.BytesIO(data), dtype="float64")
                expected = np.round(output_signal(info.filename).astype(np.float64) * 32768) / 32768
                np.testing.assert_array_equal(samples, expected)


def test_meta_yaml_is_filled_from_the_workspace(built):
    meta = yaml.safe_load((built / "submission" / f"{LABEL}.meta.yaml").read_text())
    assert meta["submission"] == {
        "label": LABEL, "name": "Tone separator", "abbreviation": "ToneSep",
        "authors": [dict(CONFIG["authors"][0]), dict(CONFIG["authors"][1], corresponding=False)]}
    assert meta["system"] == {
        "description": {"input_sampling_rate": 16000, "separation_model": MODEL, "text_encoder": "CLAP",
                        "training_data": ["Clotho v2", "FSD50K"], "external_data": [],
                        "pretrained_models": ["CLAP (laion/clap-htsat-unfused)"], "ensemble_size": 1},
        "complexity": {"total_parameters": PARAMETERS}}
    assert meta["results"] == {"validation_synth": {"SDR": 6.123, "SDRi": 5.988, "SI-SDR": 4.444}}


def test_the_built_package_passes_check(built):
    from lasskit.submission import check_submission

    report = check_submission(built / "submission", Workspace.open(built))
    assert report.problems == []
    # the miniature splits are smaller than the official sets: said, but not a problem
    assert [w.kind for w in report.warnings] == ["official_count", "official_count"]
    assert report.systems == [LABEL]
    assert report.audio_files == len(SYNTH) + len(REAL)


def test_same_inputs_give_byte_identical_zips_whatever_jobs(built, tmp_path):
    root = tmp_path / "ws"
    shutil.copytree(built, root)
    sub = root / "submission"
    before = {p.name: p.read_bytes() for p in sub.iterdir()}
    package(root, overwrite=True, jobs=2)
    after = {p.name: p.read_bytes() for p in sub.iterdir()}
    assert after == before


def test_unzip_accepts_the_zips(built):
    if shutil.which("unzip") is None:
        pytest.skip("unzip is not installed")
    for path in (built / "submission").glob("*.zip"):
        result = subprocess.run(["unzip", "-t", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "No errors detected" in result.stdout


def test_float_format_stores_the_outputs_unchanged(tmp_path):
    root = make_workspace(tmp_path / "ws")
    package(root, audio_format="float")
    with zipfile.ZipFile(root / "submission" / f"{LABEL}_eval_real.zip") as zf:
        for name in REAL:
            assert zf.read(name) == (root / "exp" / MODEL / "eval_real" / name).read_bytes()


def test_clipping_to_16_bit_is_counted_and_warned(tmp_path):
    root = make_workspace(tmp_path / "ws")
    loud = output_signal(REAL[0]) * 4
    sf.write(str(root / "exp" / MODEL / "eval_real" / REAL[0]), loud, 16000, subtype="FLOAT")
    record_run(root / "exp" / MODEL / "eval_real", "eval_real", REAL)
    result = package(root)
    assert result.clipped == {"eval_synth": 0, "eval_real": 1}
    assert any("--audio-format float" in w for w in result.warnings)


def test_refuses_to_overwrite_without_the_option(built, run_cli):
    code, _, err = run_cli("--workspace", built, "package", "--audio-url", "https://x.org/a")
    assert code == 2
    assert "already exist" in err and "--overwrite" in err


def test_missing_team_details_name_the_keys_to_set(tmp_path, run_cli):
    config = json.loads(json.dumps(CONFIG))
    for key in ("team", "institute", "name"):
        del config["package"][key]
    config["authors"][0]["corresponding"] = False  # no default team from the corresponding author
    root = make_workspace(tmp_path / "ws", config)
    code, _, err = run_cli("--workspace", root, "package")
    assert code == 2
    for hint in ("--team or package.team", "--institute or package.institute", "--name or package.name"):
        assert hint in err
    assert "Traceback" not in err


def test_team_defaults_to_the_corresponding_authors_last_name(tmp_path):
    config = json.loads(json.dumps(CONFIG))
    del config["package"]["team"]
    root = make_workspace(tmp_path / "ws", config)
    assert package(root).label == LABEL


def test_system_description_is_asked_for_not_invented(tmp_path):
    config = json.loads(json.dumps(CONFIG))
    del config["package"]["system"]["external_data"]
    del config["package"]["system"]["text_encoder"]
    root = make_workspace(tmp_path / "ws", config)
    with pytest.raises(UsageError, match=r"package\.system\.text_encoder.*package\.system\.external_data"):
        package(root)


@pytest.mark.parametrize("option, value, match", [
    ("index", 5, r"--index 5: must be from 1 to 4"),
    ("abbreviation", "ToneSeparator", r"at most 10"),
    ("institute", "U OS", r"--institute 'U OS'"),
    ("name", "TODO", r"placeholder"),
])
def test_bad_team_details_are_refused_before_writing(tmp_path, option, value, match):
    root = make_workspace(tmp_path / "ws")
    with pytest.raises(UsageError, match=match):
        package(root, **{option: value})
    assert not (root / "submission").exists()


def test_non_pdf_report_is_refused(tmp_path):
    root = make_workspace(tmp_path / "ws")
    (root / "report.pdf").write_bytes(b"<html>not a pdf</html>")
    with pytest.raises(UsageError, match="not a PDF"):
        package(root)


def test_missing_scores_point_to_lasskit_score(tmp_path):
    root = make_workspace(tmp_path / "ws")
    (root / "exp" / MODEL / "val_synth" / "summary.json").unlink()
    with pytest.raises(UsageError, match=r"lasskit score --model tonesep --split val_synth"):
        package(root)


def test_bad_outputs_are_all_listed_and_no_zip_is_written(tmp_path):
    root = make_workspace(tmp_path / "ws")
    out = root / "exp" / MODEL / "eval_synth"
    bad = output_signal(SYNTH[1]).copy()
    bad[10] = np.nan
    sf.write(str(out / SYNTH[1]), bad, 16000, subtype="FLOAT")
    sf.write(str(out / SYNTH[2]), output_signal(SYNTH[2]), 44100, subtype="FLOAT")
    record_run(out, "eval_synth", SYNTH)  # as if separate had written them so
    with pytest.raises(WorkError, match=r"2 of 4 eval_synth output\(s\) unusable"):
        package(root)
    failures = (out / "package_failures.csv").read_text()
    assert "synth_01.wav" in failures and "NaN" in failures
    assert "synth_02.wav" in failures and "44100 Hz" in failures
    assert not (root / "submission" / f"{LABEL}_eval_synth.zip").exists()
    assert [p for p in (root / "submission").glob(".*")] == []  # no temporary left behind


def test_without_audio_url_a_placeholder_is_written_and_check_flags_it(tmp_path):
    from lasskit.submission import check_submission

    root = make_workspace(tmp_path / "ws")
    result = package(root, audio_url=None)
    text = (root / "submission" / f"{LABEL}.audio_url.txt").read_text()
    assert text.startswith("Google Drive: <PASTE")
    assert any("--audio-url" in w for w in result.warnings)
    report = check_submission(root / "submission", Workspace.open(root))
    assert [p.kind for p in report.problems] == ["link"]


def test_naming_patterns_come_from_lasskit_yaml(tmp_path):
    from lasskit.submission import check_submission

    config = json.loads(json.dumps(CONFIG))
    config["package"]["naming"] = {"label": "{lastname}_{institute}_task9s_{index}",
                                   "eval_real_zip": "{label}_real.zip"}
    root = make_workspace(tmp_path / "ws", config)
    result = package(root, index=2)
    assert result.label == "Lovelace_UOS_task9s_2"
    assert (root / "submission" / "Lovelace_UOS_task9s_2_real.zip").is_file()
    assert check_submission(root / "submission", Workspace.open(root)).problems == []


def test_bad_naming_pattern_is_a_usage_error():
    with pytest.raises(UsageError, match=r"package\.naming\.meta.*\{label\}"):
        Naming(meta="{lastname}.meta.yaml")


def test_team_zip_collects_every_system_of_the_team(built, tmp_path):
    root = tmp_path / "ws"
    shutil.copytree(built, root)
    package(root, index=2, name="Tone separator 2", abbreviation="ToneSep2")
    with zipfile.ZipFile(root / "submission" / "Lovelace_UOS_task9.zip") as zf:
        names = zf.namelist()
    assert len(names) == 6
    assert {n.split(".")[0] for n in names} == {LABEL, "Lovelace_UOS_task9_2"}
    # another team's files in the folder are not swept in
    (root / "submission" / "Babbage_UOS_task9_1.meta.yaml").write_text("x: 1\n")
    write_team_zip(root / "submission", "Lovelace", "UOS")
    with zipfile.ZipFile(root / "submission" / "Lovelace_UOS_task9.zip") as zf:
        assert sorted(zf.namelist()) == sorted(names)


def test_cli_package_prints_the_files(tmp_path, run_cli):
    root = make_workspace(tmp_path / "ws")
    code, out, err = run_cli("--workspace", root, "package", "--audio-url", "https://drive.google.com/x",
                             "--jobs", "1")
    assert code == 0, err
    assert LABEL in out and f"{LABEL}_eval_real.zip" in out and "SDR 6.123 dB" in out
    code, out, err = run_cli("--workspace", root, "check", "--jobs", "1")
    assert code == 0, out + err
    assert "0 problem(s)" in out


def test_outputs_made_with_several_settings_are_refused(tmp_path):
    # the metadata would name one checkpoint while the audio came from two
    root = make_workspace(tmp_path / "ws")
    path = root / "exp" / MODEL / "eval_real" / "separate.json"
    record = json.loads(path.read_text())
    record.update(consistent=False, made_with=[{"outputs": 100, "checkpoint_sha256": "a"},
                                               {"outputs": 100, "checkpoint_sha256": "b"}])
    path.write_text(json.dumps(record))
    with pytest.raises(UsageError, match=r"separate.json: the outputs were made with 2 different settings.*--overwrite"):
        package(root)
    assert not (root / "submission").exists() or not list((root / "submission").glob("*.zip"))


# -- issue 22: the package holds exactly the outputs its records and scores describe ---------------
def test_an_incomplete_run_is_refused_even_when_older_outputs_fill_the_gap(tmp_path, run_cli):
    """Model B separated into model A's folder, one row failed: 3 outputs of B, one stale of A."""
    root = make_workspace(tmp_path / "ws")
    out = root / "exp" / MODEL / "eval_synth"
    other = {"model": "other-model", "options": {}, "checkpoint_sha256": "b" * 64}
    for name in SYNTH[:3]:
        sf.write(str(out / name), output_signal(name) * 0.5, 16000, subtype="FLOAT")
    record_run(out, "eval_synth", SYNTH[:3], settings=other, total=4)
    before = sorted(p.name for p in root.rglob("*"))
    code, _, err = run_cli("-w", root, "package", "--audio-url", "https://drive.google.com/x")
    assert code == 2 and err.count("\n") == 1
    assert "separate.json: the last run left 3 of 4 outputs current (1 failed)" in err
    assert "run `lasskit separate --model tonesep --split eval_synth`" in err
    assert sorted(p.name for p in root.rglob("*")) == before  # a refused command changes nothing


def test_an_output_no_record_describes_is_refused(tmp_path):
    root = make_workspace(tmp_path / "ws")
    out = root / "exp" / MODEL / "eval_real"
    # separate.json says complete, but one output is from another run (other settings) ...
    ledger = Ledger(out)
    ledger.record(REAL[1], out / REAL[1], "x", {"model": "other-model"})
    ledger.save()
    with pytest.raises(UsageError, match=r"eval_real/test-real-case-1.wav: not the output the run in separate.json made"):
        package(root)
    # ... or was changed after separate wrote it
    root = make_workspace(tmp_path / "ws2")
    out = root / "exp" / MODEL / "eval_real"
    sf.write(str(out / REAL[2]), output_signal(REAL[2]) * 0.5, 16000, subtype="FLOAT")
    with pytest.raises(UsageError, match=r"test-real-case-2.wav: not the output the run .* changed since"):
        package(root)
    # ... or has no record at all
    root = make_workspace(tmp_path / "ws3")
    (root / "exp" / MODEL / "eval_real" / "provenance.json").unlink()
    with pytest.raises(UsageError, match=r"provenance.json: not found, so nothing says what made the outputs"):
        package(root)


def test_scores_of_other_outputs_are_refused(tmp_path):
    root = make_workspace(tmp_path / "ws")
    val = root / "exp" / MODEL / "val_synth"
    sf.write(str(val / SYNTH[0]), output_signal(SYNTH[0]) * 0.5, 16000, subtype="FLOAT")  # re-separated
    record_run(val, "val_synth", SYNTH)
    with pytest.raises(UsageError, match=r"summary.json: the scores were computed on other outputs than the 4 now in"):
        package(root)
    (val / SYNTH[3]).unlink()
    record_run(val, "val_synth", SYNTH[:3])
    write_summary(val)  # scored again
    assert package(root).results["SDRi"] == 5.988
    summary = json.loads((val / "summary.json").read_text())
    del summary["estimates"]
    (val / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(UsageError, match=r"summary.json: does not say which outputs were scored"):
        package(root)


def test_score_writes_the_digest_package_compares(tmp_path):
    """The real score -> package path: score's summary.json ties the scores to the files it read."""
    import pandas as pd

    from lasskit.mixing import official_mixture
    from lasskit.scoring import score_estimates
    from lasskit.splits import write_split_csv

    root = make_workspace(tmp_path / "ws")
    val = root / "exp" / MODEL / "val_synth"
    shutil.rmtree(val)
    split = root / "data" / "splits" / "val_synth"
    rows = []
    for i, name in enumerate(SYNTH[:3]):
        m = official_mixture(soundgen.generate("bird", 1.0, 16000, seed=i),
                             soundgen.generate("rain", 1.0, 16000, seed=10 + i), 0)
        for kind, x in (("mixture", m.mixture), ("source", m.source), ("noise", m.noise)):
            (split / kind).mkdir(parents=True, exist_ok=True)
            sf.write(str(split / kind / name), x, 16000, subtype="FLOAT")
        rows.append({"mixture": name, "query": "a bird", "source": f"source/{name}", "noise": f"noise/{name}",
                     "snr": "0"})
        val.mkdir(parents=True, exist_ok=True)
        sf.write(str(val / name), m.source + np.float32(0.1) * m.noise, 16000, subtype="FLOAT")
    write_split_csv(split, pd.DataFrame(rows))
    score_estimates(split, val, options=__import__("lasskit.scoring", fromlist=["ScoreOptions"]).ScoreOptions(jobs=1))
    record_run(val, "val_synth", SYNTH[:3])  # what separate records (afterwards here: no real mixture digests)
    scored = json.loads((val / "summary.json").read_text())["estimates"]
    assert scored == {"count": 3, "digest": files_digest(val, SYNTH[:3])}
    package(root)  # accepted
    sf.write(str(val / SYNTH[1]), np.zeros(16000, np.float32) + np.float32(0.01), 16000, subtype="FLOAT")
    with pytest.raises(UsageError, match="the scores were computed on other outputs"):
        package(root, overwrite=True)


def test_check_verifies_the_audio_zips_against_the_metadata_digest(tmp_path):
    from lasskit.submission import check_submission
    from lasskit.submission.rules import audio_digests, zip_audio_digest

    root = make_workspace(tmp_path / "ws")
    package(root)
    sub = root / "submission"
    meta = (sub / f"{LABEL}.meta.yaml").read_text()
    said = audio_digests(meta)
    assert said == {split: zip_audio_digest(sub / f"{LABEL}_{split}.zip") for split in ("eval_synth", "eval_real")}
    assert said["eval_synth"][0] == 4 and said["eval_real"][0] == 3
    assert check_submission(sub, Workspace.open(root), jobs=1).ok
    # the eval_real zip of another package run (re-separated outputs) beside this metadata
    kept = (sub / f"{LABEL}.meta.yaml").read_bytes()
    out = root / "exp" / MODEL / "eval_real"
    sf.write(str(out / REAL[0]), output_signal(REAL[0]) * 0.5, 16000, subtype="FLOAT")
    record_run(out, "eval_real", REAL)
    package(root, overwrite=True)
    (sub / f"{LABEL}.meta.yaml").write_bytes(kept)
    report = check_submission(sub, Workspace.open(root), jobs=1)
    digest_problems = [p for p in report.problems if p.kind == "digest"]
    assert [p.file for p in digest_problems] == [f"{LABEL}_eval_real.zip"]
    assert "holds other audio than Lovelace_UOS_task9_1.meta.yaml describes (3 entries" in digest_problems[0].message


# -- outside check (Q2): one system in the package, and its scores are that system's ----------------
def test_evaluation_splits_separated_with_different_settings_are_refused(tmp_path, run_cli):
    """eval_synth with gain 0.5, eval_real with gain 0.9: each run complete and consistent, but the
    package would hold two systems under one metadata file."""
    root = make_workspace(tmp_path / "ws")
    out = root / "exp" / MODEL / "eval_real"
    other = {"model": MODEL, "options": {"gain": 0.9}, "checkpoint_sha256": None}
    record_run(out, "eval_real", REAL, settings=other)
    before = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}
    code, _, err = run_cli("-w", root, "package", "--audio-url", "https://drive.google.com/x")
    assert code == 2 and err.count("\n") == 1, err
    assert "eval_real/separate.json: made with other settings than eval_synth's (options {'gain': 0.9} " \
           "against {})" in err
    assert "--split eval_real --overwrite" in err
    assert {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()} == before


def test_scores_of_another_checkpoint_than_the_evaluation_outputs_are_refused(tmp_path):
    """val_synth scored with checkpoint A, eval splits separated with checkpoint B: the metadata's
    results would not be the packaged system's."""
    root = make_workspace(tmp_path / "ws")
    val = root / "exp" / MODEL / "val_synth"
    record_run(val, "val_synth", SYNTH, settings={**SETTINGS, "checkpoint_sha256": "a" * 64})
    with pytest.raises(UsageError, match=r"val_synth/separate.json: made with other settings than eval_synth's "
                                         r"\(checkpoint_sha256 'aaaa.*' against None\).*--split val_synth --overwrite"
                                         r".*lasskit score --model tonesep --split val_synth"):
        package(root)
    # no record of what made the scored outputs at all
    (val / "separate.json").unlink()
    with pytest.raises(UsageError, match=r"val_synth/separate.json: not found"):
        package(root)
    # a scored output changed after separate wrote it (the summary's digest is updated by hand)
    root = make_workspace(tmp_path / "ws2")
    val = root / "exp" / MODEL / "val_synth"
    sf.write(str(val / SYNTH[2]), output_signal(SYNTH[2]) * 0.5, 16000, subtype="FLOAT")
    write_summary(val)
    with pytest.raises(UsageError, match=r"val_synth/synth_02.wav: not the output the run in separate.json made"):
        package(root)


def test_outputs_of_an_earlier_version_of_the_mixtures_or_queries_are_refused(tmp_path):
    """The evaluation set was re-prepared (a corrected mixture, a fixed caption) after separate ran:
    the run still says complete and every output is unchanged, but they are not the outputs of
    the mixtures and queries the package names."""
    root = make_workspace(tmp_path / "ws")
    mixture = root / "data" / "splits" / "eval_synth" / "mixture" / SYNTH[1]
    soundgen.write_clip(mixture, "rain", LENGTHS[SYNTH[1]] / 16000, seed=99)
    with pytest.raises(UsageError, match=r"eval_synth/synth_01.wav: separated from another version of .*"
                                         r"mixture/synth_01.wav.*--split eval_synth"):
        package(root)
    root = make_workspace(tmp_path / "ws2")
    csv_path = root / "data" / "splits" / "eval_real" / "mixtures.csv"
    csv_path.write_text(csv_path.read_text().replace("a steady tone 2", "a corrected caption"))
    with pytest.raises(UsageError, match=r"eval_real/test-real-case-2.wav: separated with another query than"
                                         r".*mixtures.csv now gives.*--split eval_real"):
        package(root)
