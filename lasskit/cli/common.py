"""Helpers shared by the CLI commands: the workspace, the console and summary tables."""

from __future__ import annotations

import typer

from lasskit.errors import UsageError


def command_path(ctx) -> tuple[str, ...]:
    """``("listen", "serve")`` for ``lasskit listen serve``: the lasskit.yaml sections of a command."""
    path, up = [], ctx
    while up is not None and up.parent is not None:
        path.insert(0, up.info_name)
        up = up.parent
    return tuple(path)


def workspace(ctx: typer.Context):
    """The :class:`~lasskit.workspace.Workspace` the root callback opened."""
    from lasskit.workspace import Workspace

    obj = ctx.find_root().obj
    return obj if isinstance(obj, Workspace) else Workspace.open()


WIDE = 4000
"""Console width when the output is not a terminal (a log, a pipe, CI): tables are never cut."""


def console(stderr: bool = False):
    """The rich console for a command's output. On a terminal it wraps at the terminal's width;
    anywhere else (a file, a pipe, CI logs) it is :data:`WIDE` columns wide unless ``COLUMNS`` is
    set, so a summary table is printed whole instead of cut at 80 columns ("outp…")."""
    import os
    import sys

    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    try:
        terminal = stream.isatty()
    except (AttributeError, ValueError):
        terminal = False
    width = None if terminal or os.environ.get("COLUMNS", "").strip().isdigit() else WIDE
    return Console(stderr=stderr, highlight=False, width=width)


def option_error(option: str, value, why: str, fix: str | None = None) -> UsageError:
    """A bad option value as one line: ``--jobs -3: must be ...``, or, when the value came from
    lasskit.yaml, ``<workspace>/lasskit.yaml: prepare.jobs: -3: must be ...`` (the file and key to fix)."""
    from typer.main import get_current_context

    ctx = get_current_context(silent=True)
    name = option.lstrip("-").replace("-", "_")
    tail = f"; {fix}" if fix else ""
    if ctx is not None:
        param = next((p for p in ctx.command.params if option in getattr(p, "opts", ()) or p.name == name), None)
        pname = param.name if param is not None else name
        try:
            source = ctx.get_parameter_source(pname)
        except Exception:
            source = None
        ws = ctx.find_root().obj
        if getattr(source, "name", None) == "DEFAULT_MAP" and hasattr(ws, "config_key"):
            key = ws.config_key(command_path(ctx), pname) or ws.config_key(command_path(ctx), name) or name
            return UsageError(f"{ws.config_path}: {key}: {value!r}: {why}; fix the value in the file "
                              f"(or pass {option} on the command line)")
    hint = f" (see `{ctx.command_path} --help`)" if ctx is not None and ctx.command_path else ""
    return UsageError(f"{option} {value}: {why}{tail}{hint}")


def check_jobs(jobs: int | None) -> int | None:
    """``--jobs``: 0 or None is all cores; a negative number is a usage error."""
    if jobs is not None and jobs < 0:
        raise option_error("--jobs", jobs, "must be 0 (all cores) or a positive number")
    return jobs or None


def check_range(option: str, value, low=None, high=None, *, low_open: bool = False, what: str = "") -> None:
    """Raise :func:`option_error` unless ``low <= value <= high`` (``low < value`` with ``low_open``)."""
    import math

    if value is None:
        return
    bad = isinstance(value, float) and not math.isfinite(value)
    if low is not None:
        bad = bad or (value <= low if low_open else value < low)
    if high is not None:
        bad = bad or value > high
    if bad:
        if low is not None and high is not None:
            rule = f"must be from {low} to {high}"
        elif low is not None:
            rule = f"must be more than {low}" if low_open else f"must be {low} or more"
        else:
            rule = f"must be at most {high}"
        raise option_error(option, value, rule + (f" {what}" if what else ""))


JOBS_HELP = "Worker processes (default: all cores)."


def print_failures(con, failures: list[tuple[str, str]], listed_in, shown: int = 10) -> None:
    """The first ``shown`` failures, one line each (name once), then where the rest are listed."""
    from rich.markup import escape

    for name, reason in failures[:shown]:
        line = reason if name in reason else f"{name}: {reason}"
        con.print(f"  [red]failed[/red] {escape(line)}", soft_wrap=True)
    if len(failures) > shown:
        con.print(f"  ... and {len(failures) - shown} more in {listed_in}")


def clap_weight_options(lead: str = "") -> tuple:
    """``--checkpoint``, ``--tokenizer``, ``--device``, ``--clap-batch``, ``--devices`` and
    ``--num-nodes`` for the commands that load CLAP (``score``, ``label --clap``), declared once;
    ``lead`` starts each help text."""
    return (
        typer.Option(None, "--checkpoint", help=f"{lead}CLAP weights: the baseline checkpoint or "
                     "music_speech_audioset_epoch_15_esc_89.98.pt (default: the lasskit cache)."),
        typer.Option(None, "--tokenizer", metavar="DIR", help=f"{lead}roberta-base tokenizer folder for CLAP "
                     "(default: lasskit's cache, then the Hugging Face cache)."),
        typer.Option("auto", "--device", help=f"{lead}CLAP device: auto (cuda if available), cpu, cuda or cuda:N."),
        typer.Option(4, "--clap-batch", help=f"{lead}10 s clips per CLAP audio-tower call."),
        typer.Option(1, "--devices", help=f"{lead}Processes sharing the CLAP audio embeddings on this machine (one "
                     "per GPU with --device cuda, or CPU processes); the same bytes as 1. Under torchrun/srun the "
                     "launcher's ranks are used."),
        typer.Option(1, "--num-nodes", help=f"{lead}Machines for --devices (start the command on each with "
                     "srun/torchrun)."),
    )


# --- one pass over the command tree (lasskit.cli._click_command calls it once per run) -------------
METAVARS = {
    "targets": "CORPUS", "noises": "CORPUS", "corpus": "CORPUS", "by": "BREAKDOWN", "model": "MODEL",
    "models": "MODEL", "split": "SPLIT", "dataset": "DATASET", "name": "NAME", "test": "TEST", "device": "DEVICE",
    "duration": "SECONDS", "min_duration": "SECONDS", "segment": "SECONDS", "chunk_seconds": "SECONDS",
    "chunk_overlap": "FRACTION", "silence_db": "DB", "target_lufs": "LUFS", "lr": "RATE", "port": "PORT",
    "host": "HOST", "url": "URL", "audio_url": "URL", "min_score": "COSINE", "bn_momentum": "MOMENTUM",
    "path": "PATH", "captions": "FILE",
}
"""Words a user types, by option name, shown in ``--help`` instead of Typer's ``<list[str]>``/``<int>``."""
DIR_OPTIONS = {"out", "src", "clips", "estimates", "tokenizer"}
"""Path options that name a folder (``DIR``); every other path option is a ``FILE``."""


def metavar_for(param) -> str | None:
    """The word shown for ``param`` in ``--help`` (``CORPUS``, ``N``, ``DIR``, ``FILE``), or None to
    keep Typer's own (choices)."""
    import pathlib
    import typing

    desc = getattr(param, "type_descriptor", None)
    if desc is None or desc.is_choice:
        return None
    if param.name in METAVARS:
        return METAVARS[param.name]
    annotation = desc.annotation
    if typing.get_origin(annotation) in (list, tuple):
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        annotation = args[0] if args else str
    if isinstance(annotation, type) and issubclass(annotation, pathlib.PurePath):
        return "DIR" if param.name in DIR_OPTIONS else "FILE"
    if annotation is int:
        return "N"
    if annotation is float:
        return "NUMBER"
    return param.name.upper().replace("_", "-")


def _is_float(param) -> bool:
    import typing

    desc = getattr(param, "type_descriptor", None)
    if desc is None:
        return False
    annotation = desc.annotation
    return annotation is float or float in typing.get_args(annotation)


def _finite(param) -> None:
    """Make a number option refuse ``nan``/``inf`` (a usage error naming the option, or the
    lasskit.yaml key the value came from), whatever the command does with it afterwards."""
    import math

    convert = param.process_value

    def process_value(ctx, value):
        value = convert(ctx, value)
        items = value if isinstance(value, (list, tuple)) else (value,)
        if any(isinstance(v, float) and not math.isfinite(v) for v in items):
            from typer._click.exceptions import BadParameter

            try:  # a value from lasskit.yaml is shown once, by the line that names the file
                from_file = getattr(ctx.get_parameter_source(param.name), "name", None) == "DEFAULT_MAP"
            except Exception:
                from_file = False
            shown = "" if from_file else " ".join(str(v) for v in items) + ": "
            raise BadParameter(f"{shown}must be a finite number (not nan or inf)", ctx=ctx, param=param)
        return value

    param.process_value = process_value


def typed(ctx, name: str) -> bool:
    """True when option ``name`` was given on the command line (or its environment variable), not
    taken from lasskit.yaml or the default: checks that say "this option goes with that mode" must
    not blame a user for a lasskit.yaml value meant for the other mode (a top-level ``device: cuda``
    reaches every command)."""
    try:
        return getattr(ctx.get_parameter_source(name), "name", None) not in ("DEFAULT_MAP", "DEFAULT")
    except Exception:
        return True


def _one_shape(param) -> None:
    """Make an option refuse a lasskit.yaml value of the wrong shape, which conversion would
    otherwise turn into text: a mapping, a list where the option takes one value, ``true``/``false``
    where it takes a number or a text (``name: {a: 1}`` became the system name "{'a': 1}")."""
    convert = param.process_value
    one = not getattr(param, "multiple", False) and getattr(param, "nargs", 1) == 1

    def process_value(ctx, value):
        try:
            from_file = getattr(ctx.get_parameter_source(param.name), "name", None) == "DEFAULT_MAP"
        except Exception:
            from_file = False
        if from_file and value is not None:
            items = list(value) if isinstance(value, (list, tuple)) and not one else [value]
            why = None
            if any(isinstance(v, dict) for v in items):
                why = "must be one value, not a mapping"
            elif any(isinstance(v, (list, tuple)) for v in items):
                why = "must be one value, not a list"
            elif any(isinstance(v, bool) for v in items):
                why = "true/false is not a value of this option (quote it if you mean the text)"
            if why:
                from typer._click.exceptions import BadParameter

                raise BadParameter(why, ctx=ctx, param=param)
        return convert(ctx, value)

    param.process_value = process_value


def _blame_the_file(cmd) -> None:
    """A library's ``UsageError("--steps -3: ...")`` about a value that came from lasskit.yaml is
    re-worded to name the file and its key (``lasskit.yaml: train.steps: -3: ...``), like
    :func:`option_error` does for the checks made in the CLI."""
    import re

    invoke = cmd.invoke

    def blamed(ctx):
        try:
            return invoke(ctx)
        except UsageError as exc:
            text = str(exc)
            found = re.match(r"(--[a-z0-9][a-z0-9-]*)((?: [^:]*)?): (.+)", text, re.S)
            if not found or "--" in found.group(2):
                raise
            param = next((p for p in ctx.command.params if found.group(1) in getattr(p, "opts", ())), None)
            ws = ctx.find_root().obj
            if param is None or not hasattr(ws, "config_key"):
                raise
            try:
                source = ctx.get_parameter_source(param.name)
            except Exception:
                raise exc from None
            if getattr(source, "name", None) != "DEFAULT_MAP":
                raise
            key = ws.config_key(command_path(ctx), param.name) or param.name
            value = (ctx.default_map or {}).get(param.name)
            raise UsageError(f"{ws.config_path}: {key}: {value!r}: {found.group(3)}; fix the value in the file "
                             f"(or pass {found.group(1)} on the command line)") from None

    cmd.invoke = blamed


def polish_command(cmd) -> None:
    """Once over the command tree: a word a user types as every option's metavar (``CORPUS``,
    ``N``, ``DIR``, ``FILE``), no type shown for flags, ``nan``/``inf`` refused by every number
    option, every number option kept in its range and no text or path option empty
    (:mod:`lasskit.cli.bounds`), and library errors about lasskit.yaml values blamed on the file. One mechanism, so
    a new option or command gets all of it without touching its own module."""
    from lasskit.cli.bounds import bound_param

    for param in getattr(cmd, "params", ()):
        if getattr(param, "is_flag", False):
            if param.metavar is None:
                param.metavar = ""
            continue
        if param.metavar is None:
            word = metavar_for(param)
            if word is not None:
                param.metavar = word
        if param.metavar is not None and type(param).__name__ == "TyperArgument":
            param.display_type_rich = lambda ctx: None  # the name column shows the word already
        if _is_float(param):
            _finite(param)
        _one_shape(param)
        bound_param(param, getattr(cmd, "name", "") or "", command_path)  # ranges and empty values (lasskit.cli.bounds)
    subcommands = getattr(cmd, "commands", None) or {}
    if not subcommands and getattr(cmd, "callback", None) is not None:
        _blame_the_file(cmd)
    for sub in subcommands.values():
        polish_command(sub)
