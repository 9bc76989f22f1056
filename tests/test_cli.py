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
    # the file's value was used, and the file and its key are blamed, not the command line
    assert code == 2 and f"{ws / 'lasskit.yaml'}: prepare.jobs: -3" in err and "--jobs" in err
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


def test_help_shows_no_type_for_flags_and_no_double_brackets(run_cli):
    for args in (["--help"], ["init", "--help"], ["demo", "--help"], ["check", "--help"], ["prepare", "--help"]):
        code, out, _ = run_cli(*args)
        assert code == 0 and "<bool>" not in out and "[[" not in out, out
    code, out, _ = run_cli("demo", "--help")
    assert "[DIR]" in out


def test_parser_errors_point_to_the_commands_help(run_cli, tmp_path):
    code, _, err = run_cli("--workspace", tmp_path, "mix", "--snr", "-15")
    assert code == 2 and err.count("\n") == 1 and "`lasskit mix --help`" in err and "--snr" in err
    code, _, err = run_cli("-w", tmp_path, "models", "download")
    assert code == 2 and "`lasskit models download --help`" in err


def test_a_bad_value_in_lasskit_yaml_blames_the_file_and_key(run_cli, tmp_path):
    (tmp_path / "lasskit.yaml").write_text("jobs: lots\n")
    code, _, err = run_cli("--workspace", tmp_path, "check")
    assert code == 2 and err.startswith(f"error: {tmp_path / 'lasskit.yaml'}: jobs: 'lots'")
    assert "Invalid value for '--jobs'" not in err and err.count("\n") == 1
    # the option's own name works as a key too (--all is the parameter all_lines)
    (tmp_path / "lasskit.yaml").write_text("check:\n  all: true\n")
    code, _, err = run_cli("--workspace", tmp_path, "check", tmp_path / "nope")
    assert code == 2 and "warning" not in err


@pytest.mark.parametrize("text,words", [
    ("jobz: 3\n", ["'jobz'", "did you mean 'jobs'"]),
    ("separte:\n  model: x\n", ["'separte'", "did you mean 'separate'"]),
    ("mix:\n  sed: 3\n", ["'mix.sed'", "did you mean 'seed'"]),
    ("qwertyuiop: 1\n", ["'qwertyuiop'"]),
])
def test_unknown_yaml_keys_are_warned_with_the_closest_known_one(run_cli, tmp_path, text, words):
    (tmp_path / "lasskit.yaml").write_text(text)
    code, out, err = run_cli("--workspace", tmp_path, "models")
    assert code == 0 and err.count("\n") == 1 and err.startswith("warning: ") and "lasskit.yaml" in err
    for word in words:
        assert word in err


def test_known_yaml_keys_give_no_warning(run_cli, tmp_path):
    from lasskit.workspace import CONFIG_TEMPLATE

    text = "\n".join(line.replace("# ", "", 1) if line.startswith(("# jobs", "#   ", "# prepare", "# mix", "# separate",
                                                                  "# package", "# authors")) else line
                     for line in CONFIG_TEMPLATE.splitlines())
    (tmp_path / "lasskit.yaml").write_text(text)
    code, _, err = run_cli("--workspace", tmp_path, "models")
    assert code == 0 and err == "", err


def test_non_utf8_lasskit_yaml_names_the_file_and_line(run_cli, tmp_path):
    (tmp_path / "lasskit.yaml").write_bytes(b"jobs: 2\nmix:\n  name: caf\xe9\n")
    code, _, err = run_cli("--workspace", tmp_path, "check")
    assert code == 2 and "lasskit.yaml line 3: not UTF-8" in err and err.count("\n") == 1


def test_machine_errors_name_the_file_and_bugs_say_internal_error(run_cli, tmp_path, monkeypatch):
    import errno

    import lasskit.workspace

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "lasskit.yaml"))

    monkeypatch.setattr(lasskit.workspace, "write_config_template", full)
    code, _, err = run_cli("--workspace", tmp_path, "init")
    assert code == 1 and err.startswith(f"error: {tmp_path / 'lasskit.yaml'}: no space left on the device; free")

    def denied(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", "/etc/x")

    monkeypatch.setattr(lasskit.workspace, "write_config_template", denied)
    code, _, err = run_cli("--workspace", tmp_path, "init")
    assert code == 2 and err.startswith("error: /etc/x: permission denied")

    def bug(*a, **k):
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(lasskit.workspace, "write_config_template", bug)
    code, _, err = run_cli("--workspace", tmp_path, "init")
    assert code == 1 and "internal error ZeroDivisionError" in err and err.count("\n") == 1


def test_error_lines_with_undecodable_file_names_do_not_crash(monkeypatch):
    import io
    import sys

    from lasskit.cli import _say

    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="utf-8", errors="strict")
    monkeypatch.setattr(sys, "stderr", stream)
    _say("error: /data/caf\udce9.wav: unreadable")
    stream.flush()
    assert raw.getvalue() == b"error: /data/caf\\xe9.wav: unreadable\n"


def test_undecodable_and_malformed_text_files_are_named(run_cli, tmp_path, monkeypatch):
    import csv

    import lasskit.workspace

    bad = tmp_path / "captions.csv"
    bad.write_bytes(b"file,caption\nx.wav,caf\xe9\n")

    def read_it(*a, **k):
        bad.read_text(encoding="utf-8")

    monkeypatch.setattr(lasskit.workspace, "write_config_template", read_it)
    code, _, err = run_cli("--workspace", tmp_path, "init")
    assert code == 2 and err.startswith(f"error: {bad}: not UTF-8 text") and err.count("\n") == 1

    def parse_it(*a, **k):
        with open(bad, encoding="latin-1") as fh:
            csv.field_size_limit(10)
            try:
                list(csv.reader(fh))
            finally:
                csv.field_size_limit(131072)

    bad.write_text("file,caption\nx.wav," + "y" * 50 + "\n", encoding="latin-1")
    monkeypatch.setattr(lasskit.workspace, "write_config_template", parse_it)
    code, _, err = run_cli("--workspace", tmp_path, "init")
    assert code == 2 and err.startswith(f"error: {bad}: not a valid CSV") and err.count("\n") == 1


@pytest.mark.parametrize("text,port", [
    ("listen:\n  port: 9001\n", 9001),                       # the group's section reaches its subcommands
    ("listen:\n  port: 9001\n  serve:\n    port: 9002\n", 9002),  # the subcommand's own section wins
    ("port: 9003\n", 9003),                                   # a top-level key too
])
def test_lasskit_yaml_reaches_subcommands_of_groups(run_cli, tmp_path, monkeypatch, text, port):
    import lasskit.cli.listen as cli_listen
    import lasskit.listening.app as app
    import lasskit.listening.layout as layout

    seen = {}
    monkeypatch.setattr(cli_listen, "_test", lambda ctx, name: tmp_path)
    monkeypatch.setattr(layout, "load_test", lambda root: None)
    monkeypatch.setattr(layout, "rater_links", lambda root: [])
    monkeypatch.setattr(app, "serve", lambda spec, host, p, on_ready=None: seen.update(host=host, port=p))
    (tmp_path / "lasskit.yaml").write_text(text)
    code, _, err = run_cli("--workspace", tmp_path, "listen", "serve", "t1")
    assert code == 0 and err == "" and seen == {"host": "127.0.0.1", "port": port}
    code, _, err = run_cli("--workspace", tmp_path, "listen", "serve", "t1", "--port", "9100")
    assert code == 0 and seen["port"] == 9100  # the command line still wins
    # a bad value there is blamed on its key, with its section path
    (tmp_path / "lasskit.yaml").write_text("listen:\n  serve:\n    port: abc\n")
    code, _, err = run_cli("--workspace", tmp_path, "listen", "serve", "t1")
    assert code == 2 and err.startswith(f"error: {tmp_path / 'lasskit.yaml'}: listen.serve.port: 'abc'")
