"""The command line as a whole: help, start-up cost, errors, workspace and lasskit.yaml defaults."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lasskit.cli import COMMANDS


def test_help_lists_every_subcommand(run_cli):
    code, out, _ = run_cli("--help")
    assert code == 0
    for name in COMMANDS:
        assert name in out


@pytest.mark.parametrize("name", [c for c in COMMANDS if c != "models"] + ["models download"])
def test_every_subcommand_help_has_an_example(run_cli, name):
    code, out, _ = run_cli(*name.split(), "--help")
    assert code == 0 and "Example" in out and "lasskit" in out


def test_startup_imports_neither_torch_nor_pandas():
    code = ("import sys, lasskit.cli; "
            "print(','.join(m for m in ('torch', 'pandas', 'matplotlib', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


def test_usage_errors_are_one_line_with_exit_2(run_cli, tmp_path):
    for args in (["prepare"], ["prepare", "--bogus"], ["prepare", "nope", str(tmp_path)]):
        code, _, err = run_cli("--workspace", tmp_path, *args)
        assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("error:")


def test_init_writes_template_and_refuses_to_replace_it(run_cli, tmp_path):
    code, out, _ = run_cli("--workspace", tmp_path, "init")
    assert code == 0 and (tmp_path / "lasskit.yaml").is_file()
    import yaml

    assert isinstance(yaml.safe_load((tmp_path / "lasskit.yaml").read_text()), dict)
    code, _, err = run_cli("--workspace", tmp_path, "init")
    assert code == 2 and "--force" in err
    assert run_cli("--workspace", tmp_path, "init", "--force")[0] == 0


def test_yaml_supplies_defaults_and_the_command_line_beats_it(run_cli, tmp_path):
    from lasskit import miniature

    miniature.write_clotho(tmp_path / "raw", per_split=1, duration=0.2)
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "lasskit.yaml").write_text("prepare:\n  jobs: -3\n")
    code, _, err = run_cli("--workspace", ws, "prepare", "clotho", tmp_path / "raw")
    assert code == 2 and "--jobs -3" in err  # the file's value was used
    code, _, err = run_cli("--workspace", ws, "prepare", "clotho", tmp_path / "raw", "--jobs", "1")
    assert code == 0, err  # the option beat the file


def test_workspace_from_environment(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("LASSKIT_WORKSPACE", str(tmp_path))
    assert run_cli("init")[0] == 0
    assert (tmp_path / "lasskit.yaml").is_file()


def test_malformed_yaml_is_a_one_line_error(run_cli, tmp_path):
    (tmp_path / "lasskit.yaml").write_text("prepare: [unclosed\n")
    code, _, err = run_cli("--workspace", tmp_path, "prepare", "clotho", tmp_path)
    assert code == 2 and "lasskit.yaml" in err and "invalid YAML" in err


def test_debug_shows_the_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "lasskit", "--workspace", str(tmp_path), "--debug", "prepare",
                           "clotho", str(tmp_path / "missing")], capture_output=True, text=True)
    assert proc.returncode != 0 and "Traceback" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "lasskit", "--workspace", str(tmp_path), "prepare",
                           "clotho", str(tmp_path / "missing")], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_yaml_single_value_fills_a_repeatable_option(run_cli, tmp_path):
    (tmp_path / "lasskit.yaml").write_text("score:\n  split: val_synth\n")
    code, _, err = run_cli("--workspace", tmp_path, "score")
    assert code == 2 and "val_synth" in err and "iterable" not in err


def test_score_does_not_import_torch(tmp_path):
    import shutil

    from lasskit import miniature
    from lasskit.corpora import prepare_corpus

    miniature.write_dcase2024(tmp_path / "raw", clips=4, mixtures=3, real=1, synth_eval=1, duration=0.3)
    prepare_corpus("dcase2024", tmp_path / "raw", tmp_path / "ws" / "data", jobs=1)
    shutil.copytree(tmp_path / "ws/data/splits/val_synth/mixture", tmp_path / "ws/exp/passthrough/val_synth")
    code = ("import sys, atexit; atexit.register(lambda: print('torch' in sys.modules, 'matplotlib' in sys.modules));"
            "from lasskit.cli import main; main(['--workspace', sys.argv[1], 'score'])")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "ws")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "False False"
