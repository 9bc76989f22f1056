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


def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


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
    """``--checkpoint``, ``--tokenizer`` and ``--device`` for the commands that load CLAP
    (``score``, ``label --clap``), declared once; ``lead`` starts each help text."""
    return (
        typer.Option(None, "--checkpoint", help=f"{lead}CLAP weights: the baseline checkpoint or "
                     "music_speech_audioset_epoch_15_esc_89.98.pt (default: the lasskit cache)."),
        typer.Option(None, "--tokenizer", metavar="DIR", help=f"{lead}roberta-base tokenizer folder for CLAP "
                     "(default: lasskit's cache, then the Hugging Face cache)."),
        typer.Option("auto", "--device", help=f"{lead}CLAP device: auto (cuda if available), cpu, cuda or cuda:N."),
    )
