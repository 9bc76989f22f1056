"""The model registry: entry-point discovery, module:Class / file.py:Class, unknown names, options."""

from __future__ import annotations

import sys
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from lasskit.errors import UsageError, WorkError
from lasskit.models import registry
from lasskit.models.base import SeparationModel, count_parameters
from lasskit.models.builtin import Oracle, Passthrough

PLUGIN = Path(__file__).parent / "plugins" / "lasskit_testplugin"
TOY = Path(__file__).parent / "plugins" / "toy_models.py"


def install_dist_info(site: Path, dist: str, version: str, entry_points_txt: str) -> None:
    """What pip writes for an installed package, as far as importlib.metadata needs: METADATA and
    entry_points.txt in ``<dist>-<version>.dist-info`` on a sys.path folder."""
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(entry_points_txt)


@pytest.fixture
def plugin_installed(tmp_path: Path, monkeypatch):
    """The test plugin "installed": its package importable and its pyproject's entry points visible."""
    project = tomllib.loads((PLUGIN / "pyproject.toml").read_text())
    group = project["project"]["entry-points"]["lasskit.models"]
    text = "[lasskit.models]\n" + "".join(f"{k} = {v}\n" for k, v in group.items())
    install_dist_info(tmp_path / "site", project["project"]["name"], project["project"]["version"], text)
    monkeypatch.syspath_prepend(str(PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    yield tmp_path / "site"
    sys.modules.pop("lasskit_testplugin", None)


def test_builtins_are_registered_entry_points():
    found = {ep.name: ep.value for ep in entry_points(group="lasskit.models")}
    assert found["passthrough"] == "lasskit.models.builtin:Passthrough"
    assert found["oracle"] == "lasskit.models.builtin:Oracle"
    assert registry.resolve("passthrough") == (Passthrough, "passthrough")
    assert registry.resolve("oracle") == (Oracle, "oracle")
    assert Oracle.needs_reference and not Passthrough.needs_reference


def test_installed_plugin_is_discovered_through_entry_points(plugin_installed, run_cli):
    eps = {ep.name: ep for ep in entry_points(group="lasskit.models")}
    assert eps["testplugin-gain"].value == "lasskit_testplugin:Gain"
    assert eps["testplugin-gain"].dist.name == "lasskit-testplugin"
    cls, name = registry.resolve("testplugin-gain")
    assert (cls.__module__, cls.__name__, name) == ("lasskit_testplugin", "Gain", "testplugin-gain")
    entry = {e.name: e for e in registry.list_models()}["testplugin-gain"]
    assert entry.available and entry.package == "lasskit-testplugin"
    model = registry.build(cls, "testplugin-gain", options={"gain": 0.1})
    assert model.gain == 0.1 and model.options == {"gain": 0.1}
    code, out, err = run_cli("models")
    line = next(ln for ln in out.splitlines() if ln.startswith("testplugin-gain"))
    assert "16 kHz" in line and "constant gain" in line and "[lasskit-testplugin]" in line


def test_broken_entry_point_is_listed_as_unavailable(tmp_path: Path, monkeypatch, run_cli):
    install_dist_info(tmp_path, "broken-plugin", "1.0",
                      "[lasskit.models]\nbroken = broken_plugin_nowhere.models:Net\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    entries = {e.name: e for e in registry.list_models()}
    assert not entries["broken"].available
    assert entries["broken"].error == "ModuleNotFoundError: No module named 'broken_plugin_nowhere'"
    assert entries["passthrough"].available
    code, out, err = run_cli("models")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert [ln.split()[0] for ln in lines] == sorted(ln.split()[0] for ln in lines)
    broken = next(ln for ln in lines if ln.startswith("broken"))
    assert "unavailable: ModuleNotFoundError: No module named 'broken_plugin_nowhere'" in broken
    assert "broken-plugin: broken_plugin_nowhere.models:Net" in broken
    with pytest.raises(WorkError, match=r"model 'broken' \(broken_plugin_nowhere.models:Net, package broken-plugin\) "
                                        r"cannot be loaded: ModuleNotFoundError"):
        registry.resolve("broken")


def test_a_name_registered_twice_is_refused(tmp_path: Path, monkeypatch):
    install_dist_info(tmp_path, "other-plugin", "1.0", "[lasskit.models]\npassthrough = other_plugin:Thing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UsageError, match=r"model 'passthrough' is registered 2 times"):
        registry.resolve("passthrough")
    entry = [e for e in registry.list_models() if e.name == "passthrough" and e.target.startswith("lasskit")][0]
    assert not entry.available and "registered 2 times" in entry.error


def test_module_and_file_class_specs():
    assert registry.resolve("lasskit.models.builtin:Passthrough") == (Passthrough, "passthrough")
    cls, name = registry.resolve(f"{TOY}:QueryGain")
    assert cls.__name__ == "QueryGain" and name == "query-gain"
    cls, name = registry.resolve(f"{TOY}:NoName")  # no name attribute: the sanitized class name
    assert name == "noname"
    assert registry.resolve(f"{TOY}:NoName")[0] is cls  # the file is imported once
    assert registry.sanitize_name("My Model v2!") == "my-model-v2"


@pytest.mark.parametrize("spec, error, message", [
    ("nosuch", UsageError, r"unknown model 'nosuch' \(registered: .*oracle, passthrough.*\); see `lasskit models`"),
    ("no_such_module_x:Net", UsageError, r"no module named 'no_such_module_x'"),
    ("lasskit.models.builtin:Nothing", UsageError, r"has no 'Nothing'"),
    ("lasskit.models.base:count_parameters", UsageError, r"is not a class"),
    ("lasskit.errors:UsageError", UsageError, r"has no separate\(mixtures, queries\) method"),
    ("nowhere/model.py:Net", UsageError, r"no such file nowhere/model.py"),
    ("", UsageError, r"--model is empty"),
])
def test_bad_model_specs(spec, error, message):
    with pytest.raises(error, match=message):
        registry.resolve(spec)


def test_file_that_fails_to_import_is_a_one_line_work_error(tmp_path: Path):
    bad = tmp_path / "bad_model.py"
    bad.write_text("import not_installed_dependency_q\n")
    with pytest.raises(WorkError, match=r"importing .*bad_model.py failed \(ModuleNotFoundError: No module named "
                                        r"'not_installed_dependency_q'\)"):
        registry.resolve(f"{bad}:Net")


def test_options_are_parsed_and_checked(tmp_path: Path):
    assert registry.parse_options(["gain=0.5", "steps=3", "use-amp=true", "name=abc", "x=none", "steps=4"]) == {
        "gain": 0.5, "steps": 4, "use_amp": True, "name": "abc", "x": None}
    with pytest.raises(UsageError, match="expected key=value"):
        registry.parse_option("gain")
    cls, _ = registry.resolve(f"{TOY}:Gain")
    with pytest.raises(UsageError, match=r"takes no option gian \(its options: gain\)"):
        registry.build(cls, "gain", options={"gian": 2})
    with pytest.raises(UsageError, match=r"--checkpoint .*missing.pt: no such file"):
        registry.build(cls, "gain", checkpoint=str(tmp_path / "missing.pt"))
    class Open(SeparationModel):  # a model whose __init__ takes **options checks them itself
        pass

    model = registry.build(Open, "open", device="cpu", options={"anything": 1})
    assert model.options == {"anything": 1} and model.device == "cpu" and model.checkpoint is None
    # passthrough has no options and no weights: they would be ignored yet recorded, so refused
    with pytest.raises(UsageError, match=r"takes no option anything \(its options: none\)"):
        registry.build(Passthrough, "passthrough", device="cpu", options={"anything": 1})


def test_parameter_count():
    import torch

    class Net(SeparationModel):
        def __init__(self, checkpoint=None, device="cpu"):
            super().__init__(checkpoint, device)
            self.conv = torch.nn.Conv1d(1, 4, 3)  # 4*1*3 + 4 = 16
            self.same = self.conv

    assert Net().num_parameters() == 16
    assert Passthrough().num_parameters() == 0  # known: no parameters
    assert count_parameters(torch.nn.Linear(3, 2)) == 8


def test_models_command_lists_one_line_each_and_has_download(run_cli):
    code, out, err = run_cli("models")
    assert code == 0
    lines = {ln.split()[0]: ln for ln in out.splitlines()}
    assert lines["passthrough"].split() == ["passthrough", "16", "kHz", "returns", "the", "mixture", "(the", "SDRi", "=",
                                            "0", "dB", "reference", "point)", "[lasskit]"]
    assert "oracle" in lines and "dcase2024-baseline" in lines
    code, out, err = run_cli("models", "download", "--help")
    assert code == 0 and "lasskit models download" in out


@pytest.mark.parametrize("content,words", [
    (b"", "the file is empty"),
    (b"garbage bytes, not a checkpoint", "neither the zip archive nor the pickle that torch.save writes"),
    ("half", "a damaged or truncated zip archive ("),
])
def test_a_bad_checkpoint_file_is_one_complete_line(tmp_path: Path, monkeypatch, content, words):
    """The user's own file: the whole reason, and no advice to download it again; a file in the
    cache: remove it and download again."""
    import torch

    from lasskit.errors import WorkError
    from lasskit.models.baseline import load_checkpoint_state

    if content == "half":
        torch.save({"state_dict": {"w": torch.zeros(1000)}}, tmp_path / "whole.ckpt")
        data = (tmp_path / "whole.ckpt").read_bytes()
        content = data[: len(data) // 2]
    own = tmp_path / "mine.ckpt"
    own.write_bytes(content)
    with pytest.raises(WorkError) as info:
        load_checkpoint_state(own)
    message = str(info.value)
    assert message.startswith(f"{own}: not a readable PyTorch checkpoint: {words}") and "\n" not in message
    assert "download" not in message and message.endswith("(or the released one)")
    monkeypatch.setenv("LASSKIT_CACHE", str(tmp_path / "cache"))
    cached = tmp_path / "cache" / "weights" / "audiosep_16k,baseline,step=200000.ckpt"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(content)
    with pytest.raises(WorkError, match=r"remove it and run `lasskit models download dcase2024-baseline`"):
        load_checkpoint_state(cached)


def test_padding_declarations_and_memory_helpers():
    from lasskit.models.baseline import DCASE2024Baseline
    from lasskit.models.builtin import Oracle
    from lasskit.models.memory import available_bytes, keep_freed_memory

    assert Passthrough.padding_invariant and Oracle.padding_invariant
    assert not DCASE2024Baseline.padding_invariant and not SeparationModel.padding_invariant
    assert DCASE2024Baseline.bytes_per_sample > 0 and DCASE2024Baseline.max_seconds is None
    assert keep_freed_memory() in ("threshold", "no-mmap", "unsupported", "refused", "disabled")
    assert keep_freed_memory() == keep_freed_memory()  # once per process
    free = available_bytes("cpu")
    assert free is None or free > 0
