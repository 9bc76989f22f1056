"""The workspace: a folder with a fixed layout, and its optional ``lasskit.yaml``.

Layout (all paths relative to the workspace root)::

    lasskit.yaml                      optional defaults for any option
    data/<corpus>/manifest.csv        prepared corpus (see lasskit.manifest)
    data/<corpus>/audio/...           its 16 kHz mono WAV files
    data/<corpus>/failures.csv        files that could not be prepared (file, reason)
    data/splits/<split>/mixtures.csv  mixture set (see lasskit.splits)
    data/splits/<split>/mixture/      ... with source/ and noise/ where references are known
    exp/<model>/<split>/              separated outputs, provenance.json, and that split's scores
    exp/train/<name>/                 a training run (lasskit.training)
    listen/<name>/                    a listening test (lasskit.listening)
    submission/                       submission packages

The root is ``--workspace DIR``, else ``$LASSKIT_WORKSPACE``, else the current directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from lasskit.errors import UsageError

CONFIG_NAME = "lasskit.yaml"
MAX_CONFIG_BYTES = 1024 * 1024
EXTRA_KEYS: dict[str, set[str]] = {"": {"paths", "authors"}, "package": {"system", "naming"}}
"""Keys that are not command options but are read: ``paths:``, ``authors:``, ``package.system`` ...

The CLI adds every command's option names (see :func:`unknown_keys`)."""
ENV_VAR = "LASSKIT_WORKSPACE"

CONFIG_TEMPLATE = """\
# lasskit.yaml: defaults for lasskit commands run in this workspace.
# A command-line option always beats a value here. Top-level keys apply to every command
# that has such an option; a section named after a command applies to that command only.

# jobs: 4                      # worker processes (default: all cores)

# Raw downloads, so that `lasskit prepare CORPUS` needs no path.
paths:
  # clotho: /data/clotho_v2         # development/, validation/, evaluation/, clotho_captions_*.csv
  # fsd50k: /data/FSD50K            # FSD50K.dev_audio/, FSD50K.eval_audio/, FSD50K.ground_truth/
  # dcase2024: /data/dcase2024_task9 # lass_validation/, lass_validation.json, lass_*_evaluation*

# prepare:
#   resampler: soxr              # or torchaudio

# mix:
#   snr: [-15, 15]
#   seed: 0

# separate:
#   model: passthrough
#   device: auto

# Team details for `lasskit package` (every value below is a placeholder that `check` rejects).
# package:
#   team: Lastname
#   institute: INST              # letters and digits
#   index: 1                     # system 1 to 4
#   name: My system
#   abbreviation: MySys          # at most 10 characters
#   report: report.pdf           # technical report (PDF)
#   audio_url: https://drive.google.com/...   # public link to the uploaded audio zips
#   system:
#     text_encoder: CLAP
#     training_data: [Clotho v2, FSD50K]
#     external_data: []          # list every external data set ([] if none)
#     pretrained_models: []      # list every pretrained model ([] if none)
# authors:
#   - firstname: Ada
#     lastname: Lovelace
#     email: ada@example.org
#     affiliation: Example University
#     corresponding: true
"""


@dataclass
class Workspace:
    """A workspace root and its configuration (the parsed ``lasskit.yaml``, or ``{}``)."""

    root: Path
    config: dict = field(default_factory=dict)

    @classmethod
    def open(cls, root: str | os.PathLike | None = None) -> "Workspace":
        """Open ``root`` (or ``$LASSKIT_WORKSPACE``, or the current directory) and read its config."""
        if root is None:
            root = os.environ.get(ENV_VAR) or "."
        root = Path(root).expanduser().resolve()
        if root.exists() and not root.is_dir():
            raise UsageError(f"{root}: workspace is not a folder; pass --workspace DIR")
        return cls(root, load_config(root / CONFIG_NAME))

    # --- layout -------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def corpus_dir(self, corpus: str) -> Path:
        return self.data_dir / corpus

    def manifest_path(self, corpus: str) -> Path:
        return self.corpus_dir(corpus) / "manifest.csv"

    @property
    def splits_dir(self) -> Path:
        return self.data_dir / "splits"

    def split_dir(self, split: str) -> Path:
        return self.splits_dir / split

    @property
    def exp_dir(self) -> Path:
        return self.root / "exp"

    def output_dir(self, model: str, split: str) -> Path:
        return self.exp_dir / model / split

    @property
    def submission_dir(self) -> Path:
        return self.root / "submission"

    # --- discovery ------------------------------------------------------------------------
    def corpora(self) -> list[str]:
        """Names of prepared corpora (folders of ``data/`` with a manifest), sorted."""
        if not self.data_dir.is_dir():
            return []
        return sorted(p.parent.name for p in self.data_dir.glob("*/manifest.csv"))

    def splits(self) -> list[str]:
        """Names of mixture sets (folders of ``data/splits/`` with ``mixtures.csv``), sorted."""
        if not self.splits_dir.is_dir():
            return []
        return sorted(p.parent.name for p in self.splits_dir.glob("*/mixtures.csv"))

    def models(self) -> list[str]:
        """Names of models with outputs under ``exp/``, sorted."""
        if not self.exp_dir.is_dir():
            return []
        return sorted(p.name for p in self.exp_dir.iterdir() if p.is_dir())

    # --- configuration --------------------------------------------------------------------
    def raw_path(self, corpus: str) -> Path | None:
        """The raw download folder of ``corpus`` from ``paths:`` in lasskit.yaml, if set."""
        paths = self.config.get("paths") or {}
        value = paths.get(corpus) if isinstance(paths, dict) else None
        return Path(value).expanduser() if value else None

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_NAME

    def config_key(self, command: str | tuple[str, ...], option: str) -> str | None:
        """Where ``command``'s default for ``option`` comes from in lasskit.yaml: ``<command>.<key>``
        (``listen.serve.port`` for a subcommand, given as ``("listen", "serve")``), a key of an
        enclosing section, a top-level ``<key>``, or None."""
        path = (command,) if isinstance(command, str) else tuple(command)
        sections = [((), self.config)]
        for depth in range(1, len(path) + 1):
            where = sections[-1][1].get(path[depth - 1]) if isinstance(sections[-1][1], dict) else None
            if not isinstance(where, dict):
                break
            sections.append((path[:depth], where))
        for prefix, where in reversed(sections):
            for key, value in where.items():
                # a mapping is a section, except as a value in the command's own section
                if key.replace("-", "_") == option and (not isinstance(value, dict) or prefix == path):
                    return ".".join([*prefix, key])
        return None

    def command_defaults(self, command: str) -> dict:
        """Option defaults for ``command``: top-level scalar keys, overridden by its own section."""
        defaults = {
            k: v for k, v in self.config.items() if not isinstance(v, dict) and k not in ("authors",)
        }
        section = self.config.get(command)
        if isinstance(section, dict):
            defaults.update(section)
        return {k.replace("-", "_"): v for k, v in defaults.items()}


def load_config(path: Path) -> dict:
    """Parse a ``lasskit.yaml``; a missing file is ``{}``, a malformed one a one-line error.

    The file is read with :func:`lasskit.safeyaml.load` (no alias bombs, no recursive values).
    """
    from lasskit import safeyaml

    fix = "fix the file or replace it with `lasskit init --force`"
    try:
        if not path.is_file():
            if path.exists():
                raise UsageError(f"{path}: is not a file; remove it or run `lasskit init`")
            return {}
        raw = path.read_bytes()
    except OSError as exc:
        from lasskit.errors import os_error

        raise os_error(exc, path) from None
    import yaml

    try:
        data = safeyaml.load(raw, max_bytes=MAX_CONFIG_BYTES)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise UsageError(f"{path} line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); save it as UTF-8 "
                         f"or {fix}") from None
    except safeyaml.YamlLimitError as exc:
        raise UsageError(f"{path}: refused ({exc}); {fix}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise UsageError(f"{path}{where}: invalid YAML ({getattr(exc, 'problem', None) or exc}); {fix}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"{path}: must be a mapping of option names to values (e.g. `jobs: 4`); {fix}")
    bad = [k for k in data if not isinstance(k, str)]
    if bad:
        raise UsageError(f"{path}: key {bad[0]!r} is not a name; {fix}")
    for name, section in data.items():
        if isinstance(section, dict) and any(not isinstance(k, str) for k in section):
            key = next(k for k in section if not isinstance(k, str))
            raise UsageError(f"{path}: {name}.{key!r} is not a name; {fix}")
    _check_paths(path, data.get("paths"), fix)
    return data


def _check_paths(path: Path, paths, fix: str) -> None:
    """``paths:`` maps corpus names to raw download folders (a value left empty is unset)."""
    if paths is None:
        return
    if not isinstance(paths, dict):
        raise UsageError(f"{path}: paths: {paths!r}: must be a mapping of corpus names to folders "
                         f"(e.g. `paths: {{fsd50k: /data/FSD50K}}`); {fix}")
    for corpus, folder in paths.items():
        if folder is not None and not isinstance(folder, str):
            raise UsageError(f"{path}: paths.{corpus}: {folder!r}: must be a folder (the raw {corpus} download); "
                             f"{fix}")


def unknown_keys(config: dict, known: dict[str, set[str]]) -> list[tuple[str, str | None]]:
    """Keys of ``config`` nothing reads: ``(key path, closest known key or None)``, in file order.

    ``known[""]`` holds the valid top-level keys (sections and options for every command),
    ``known[section]`` the keys of that section, ``known["listen.serve"]`` those of a
    subcommand's section inside its group's; a section not in ``known`` is not looked into.
    Keys are compared with ``-`` read as ``_``.
    """
    import difflib

    def closest(word: str, choices: set[str]) -> str | None:
        found = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
        return found[0] if found else None

    out: list[tuple[str, str | None]] = []

    def visit(mapping: dict, where: str, shown: str) -> None:
        valid = known.get(where, set())
        for key, value in mapping.items():
            norm = str(key).replace("-", "_")
            name = f"{shown}.{key}" if shown else str(key)
            if norm not in valid:
                out.append((name, closest(norm, valid)))
                continue
            inner = f"{where}.{norm}" if where else norm
            if isinstance(value, dict) and inner in known:
                visit(value, inner, name)

    visit(config, "", "")
    return out


def section_errors(config: dict, sections: dict[str, set[str]], options: set[str]) -> str | None:
    """The first command section of ``config`` that is not a mapping, as ``listen: 8080`` (or
    ``listen.serve: 8080``), or None. ``sections[""]`` are the top-level command names,
    ``sections["listen"]`` a group's subcommands; a name that is also an option (``init``: train's
    ``--init``) may hold a plain value. An empty section (``listen:``) is fine."""
    def visit(mapping: dict, where: str) -> str | None:
        for key, value in mapping.items():
            norm = str(key).replace("-", "_")
            if norm not in sections.get(where, set()):
                continue
            name = f"{where}.{key}" if where else str(key)
            if isinstance(value, dict):
                found = visit(value, f"{where}.{norm}" if where else norm)
                if found:
                    return found
            elif value is not None and norm not in options:
                return f"{name}: {value!r}"
        return None

    return visit(config, "")


def write_config_template(root: Path, force: bool = False) -> Path:
    """Write the commented ``lasskit.yaml`` template; refuses to replace one unless ``force``."""
    from lasskit.atomic import write_text

    path = root / CONFIG_NAME
    if path.exists() and not force:
        raise UsageError(f"{path}: already exists; pass --force to replace it")
    return write_text(path, CONFIG_TEMPLATE)
