"""The ``lasskit`` command line: thin Typer commands over the library.

Each subcommand lives in its own module of this package, parses options and calls one library
function. Nothing heavy (torch, pandas) is imported until a command runs.
"""

from __future__ import annotations

import os
import sys

import typer

from lasskit import __version__
from lasskit.errors import LasskitError

app = typer.Typer(
    name="lasskit",
    help="Language-queried audio source separation toolkit (DCASE 2024 Task 9).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

COMMANDS = ("init", "prepare", "mix", "separate", "models", "score", "package", "check", "demo")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lasskit {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    workspace: str = typer.Option(
        None, "--workspace", "-w", envvar="LASSKIT_WORKSPACE", metavar="DIR",
        help="Workspace folder (default: the current directory).",
    ),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Language-queried audio source separation toolkit (DCASE 2024 Task 9).

    Typical run: lasskit prepare dcase2024 /data/dcase2024 && lasskit separate --split val_synth
    && lasskit score
    """
    from lasskit.workspace import Workspace

    ws = Workspace.open(workspace)
    ctx.obj = ws
    # lasskit.yaml supplies defaults for every option; the command line beats it
    ctx.default_map = {name: _as_option_values(ctx, name, ws.command_defaults(name)) for name in COMMANDS}


def _as_option_values(ctx: typer.Context, command: str, defaults: dict) -> dict:
    """Wrap a single lasskit.yaml value in a list for options that may be repeated."""
    cmd = getattr(ctx.command, "commands", {}).get(command)
    for param in getattr(cmd, "params", ()):
        value = defaults.get(param.name)
        if getattr(param, "multiple", False) and value is not None and not isinstance(value, (list, tuple)):
            defaults[param.name] = [value]
    return defaults


def _register() -> None:
    from lasskit.cli import (
        check,
        demo,
        init,
        mix,
        models,
        package,
        prepare,
        score,
        separate,
    )

    app.command("init")(init.init)
    app.command("prepare")(prepare.prepare)
    app.command("mix")(mix.mix)
    app.command("separate")(separate.separate)
    app.add_typer(models.app, name="models")
    app.command("score")(score.score)
    app.command("package")(package.package)
    app.command("check")(check.check)
    app.command("demo")(demo.demo)


_register()


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning user mistakes into one line on stderr and an exit code."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args or os.environ.get("LASSKIT_DEBUG") == "1"
    try:
        code = app(args=args, prog_name="lasskit", standalone_mode=False)
    except typer.Abort:
        print("error: aborted", file=sys.stderr)
        sys.exit(130)
    except LasskitError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("error: interrupted; run the same command again to finish (completed outputs are kept)", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:
        if _is_usage_error(exc):  # the parser's errors: bad option, missing argument, bad value
            print(f"error: {exc.format_message()} (see `{_help_hint(exc)}`)", file=sys.stderr)
            sys.exit(2)
        # a bug, not a user mistake: still one line unless --debug
        if debug:
            raise
        print(f"error: internal error {type(exc).__name__}: {exc} (re-run with --debug for the traceback)",
              file=sys.stderr)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


def _is_usage_error(exc: BaseException) -> bool:
    """The command-line parser's usage errors (typer vendors click, so match by shape)."""
    return getattr(exc, "exit_code", None) == 2 and hasattr(exc, "format_message")


def _help_hint(exc: BaseException) -> str:
    names = []
    ctx = getattr(exc, "ctx", None)
    while ctx is not None:
        names.append(ctx.info_name)
        ctx = ctx.parent
    names = [n for n in reversed(names) if n]
    return " ".join(["lasskit", *names[1:], "--help"])
