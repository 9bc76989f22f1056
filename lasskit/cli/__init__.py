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

COMMANDS = ("init", "prepare", "mix", "separate", "models", "score", "package", "check", "demo", "train", "listen",
            "label", "download", "corpora")


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
    # lasskit.yaml supplies defaults for every option; the command line beats it. A bad value
    # from the file is blamed on the file and its key (see _config_value_error).
    ctx.default_map = {name: _as_option_values(ctx, name, ws.command_defaults(name)) for name in COMMANDS}
    _warn_unknown_keys(ctx, ws)


def _option_names(cmd) -> set[str]:
    """Option and argument names of a command (of every subcommand, for a group)."""
    names = {p.name for p in getattr(cmd, "params", ()) if p.name}
    for p in getattr(cmd, "params", ()):
        names |= _long_names(p)
    for name, sub in (getattr(cmd, "commands", None) or {}).items():
        names |= {name} | _option_names(sub)
    return names


def _warn_unknown_keys(ctx: typer.Context, ws) -> None:
    """One warning line per lasskit.yaml key no command reads, with the closest known key (in a
    subcommand's section too: ``listen: {serve: {prot: 8080}}``); a command's section that is not
    a mapping (``listen: 8080``) is a usage error naming it."""
    from lasskit.errors import UsageError
    from lasskit.workspace import EXTRA_KEYS, section_errors, unknown_keys

    if not ws.config:
        return
    commands = getattr(ctx.command, "commands", {}) or {}
    known = {name: _option_names(cmd) | EXTRA_KEYS.get(name, set()) for name, cmd in commands.items()}
    known[""] = set(commands) | EXTRA_KEYS.get("", set()) | set().union(*known.values())
    sections = {"": set(commands)}
    for name, cmd in commands.items():
        for sub_name, sub in (getattr(cmd, "commands", None) or {}).items():  # listen.serve
            known[f"{name}.{sub_name}"] = _option_names(sub)
            sections.setdefault(name, set()).add(sub_name)
    options = set().union(*(_option_names(cmd) - set(getattr(cmd, "commands", None) or {})
                            for cmd in commands.values()))
    bad = section_errors(ws.config, sections, options)
    if bad:
        raise UsageError(f"{ws.config_path}: {bad}: a command's section must be a mapping of option names to "
                         "values (e.g. `listen: {serve: {port: 8080}}`); fix the file")
    if isinstance(ws.config.get("paths"), dict):  # paths.<corpus>
        from lasskit.corpora import CORPORA

        known["paths"] = set(CORPORA) - {"folder"}
    for key, closest in unknown_keys(ws.config, known):
        hint = f" (did you mean {closest!r}?)" if closest else ""
        _say(f"warning: {ws.config_path}: unknown key {key!r}{hint}; it is ignored")


def _long_names(param) -> set[str]:
    """``--audio-url`` -> ``audio_url``: the lasskit.yaml keys that name an option besides its own name."""
    return {o.lstrip("-").replace("-", "_") for o in getattr(param, "opts", ()) if o.startswith("--")}


def _as_option_values(ctx: typer.Context, command: str, defaults: dict) -> dict:
    """Key lasskit.yaml values by option name (``all: true`` sets ``--all``), and wrap a single
    value in a list for options that may be repeated."""
    return _keyed_defaults(getattr(ctx.command, "commands", {}).get(command), defaults)


def _keyed_defaults(cmd, defaults: dict) -> dict:
    """:func:`_as_option_values` for one command; for a group (``listen``, ``models``), every
    subcommand gets the scalar keys above it (top level, the group's section) overridden by its
    own section (``listen: {serve: {port: 8080}}``), so ``listen: {port: 8080}`` reaches
    ``listen serve`` instead of being silently ignored."""
    defaults = dict(defaults)
    for param in getattr(cmd, "params", ()):
        for alias in _long_names(param) - {param.name}:
            if alias in defaults and param.name not in defaults:
                defaults[param.name] = defaults.pop(alias)
        value = defaults.get(param.name)
        if getattr(param, "multiple", False) and value is not None and not isinstance(value, (list, tuple)):
            defaults[param.name] = [value]
    subcommands = getattr(cmd, "commands", None) or {}
    if subcommands:
        inherited = {k: v for k, v in defaults.items() if not isinstance(v, dict) and k not in subcommands}
        for name, sub in subcommands.items():
            own = defaults.get(name)
            merged = {**inherited, **({k.replace("-", "_"): v for k, v in own.items()} if isinstance(own, dict)
                                      else {})}
            defaults[name] = _keyed_defaults(sub, merged)
    return defaults


def _register() -> None:
    from lasskit.cli import (
        average,
        check,
        corpora,
        demo,
        download,
        init,
        label,
        listen,
        mix,
        models,
        package,
        prepare,
        score,
        separate,
        train,
    )

    app.command("init")(init.init)
    app.command("download")(download.download)
    app.command("prepare")(prepare.prepare)
    app.command("corpora")(corpora.corpora)
    app.command("label")(label.label)
    app.command("mix")(mix.mix)
    app.command("separate")(separate.separate)
    app.add_typer(models.app, name="models")
    app.command("score")(score.score)
    app.command("package")(package.package)
    app.command("check")(check.check)
    app.command("demo")(demo.demo)
    app.command("train")(train.train)
    app.command("average")(average.average)
    app.add_typer(listen.app, name="listen")


_register()


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI; every failure leaves as one line on stderr and an exit code.

    Exit codes: 0 done, 1 work failed (:class:`WorkError`, a full disk, a bug), 2 a usage error
    (a bad option, argument, lasskit.yaml value or input file), 130 interrupted (Ctrl-C).
    Anything the user or the machine can cause names the file, option or key and the fix;
    only a bug in lasskit reads "internal error" (``--debug`` shows its traceback).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("LASSKIT_DEBUG") == "1"
    command = _click_command()
    try:
        # make_context/invoke rather than app(): the framework's own main turns Ctrl-C into a
        # silent exit code, and this must print the line below
        with command.make_context("lasskit", args) as ctx:
            command.invoke(ctx)
    except typer.Exit as exc:  # --help, --version, typer.Exit(code) from a command
        _flush()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _interrupted()
    except typer.Abort:
        _say("error: aborted (no input); run the same command again")
        sys.exit(1)
    except LasskitError as exc:
        if debug:
            raise
        _say(f"error: {exc}")
        sys.exit(exc.exit_code)
    except BrokenPipeError:  # `lasskit ... | head`: the reader left; nothing to say
        _quiet_stdout()
        sys.exit(1)
    except Exception as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `lasskit`, `lasskit listen`: the help, then one line
            shown = exc.format_message().strip()
            if shown:
                print(shown)
            _say(f"error: missing a command (see `{_help_hint(exc, args)}`)")
            sys.exit(2)
        if _is_usage_error(exc):  # the parser's errors: bad option, missing argument, bad value
            from_file = _config_value_error(exc)
            _say(f"error: {from_file}" if from_file else f"error: {_usage_message(exc)} (see `{_help_hint(exc, args)}`)")
            sys.exit(2)
        if debug:
            raise
        known = _known_error(exc)
        if known is not None:  # the machine's doing (a full disk, a permission): one line naming the file
            _say(f"error: {known}")
            sys.exit(known.exit_code)
        # a bug, not a user mistake: still one line unless --debug
        _say(f"error: internal error {type(exc).__name__}: {_one_line(exc)} (re-run with --debug for the "
             "traceback, and report it)")
        sys.exit(1)
    _flush()
    sys.exit(0)


INTERRUPTED = "error: interrupted; run the same command again to finish (completed outputs are kept)"


def _interrupted() -> None:
    """Ctrl-C: one line, exit 130. A second Ctrl-C while saying it is ignored."""
    import signal

    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread
        previous = None
    _say(INTERRUPTED)
    if previous is not None:
        signal.signal(signal.SIGINT, previous)
    sys.exit(130)


def _click_command():
    """The click command tree of ``app``, with flags shown without a ``<bool>`` type in help."""
    from lasskit.cli.common import polish_command

    command = typer.main.get_command(app)
    _hide_flag_types(command, typer.Context(command, info_name="lasskit", help_option_names=["-h", "--help"]))
    polish_command(command)  # metavars users type, finite numbers, lasskit.yaml values blamed on the file
    return command


def _hide_flag_types(cmd, ctx) -> None:
    """Flags (``--force``, ``--help``) take no value: show no type for them."""
    help_option = cmd.get_help_option(ctx) if hasattr(cmd, "get_help_option") else None
    for param in [*getattr(cmd, "params", ()), *([help_option] if help_option is not None else [])]:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    for name, sub in (getattr(cmd, "commands", None) or {}).items():
        _hide_flag_types(sub, typer.Context(sub, parent=ctx, info_name=name))


def _say(line: str) -> None:
    """One line on stderr; file names that are not valid UTF-8 show as \\xNN, never crash."""
    _flush()
    text = line.replace("\n", " ").replace("\r", " ")
    # bytes of a name that are not UTF-8 as \xNN (stderr's own backslashreplace would write \udcNN)
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    try:
        print(text, file=sys.stderr, flush=True)
    except UnicodeEncodeError:
        safe = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        print(safe.encode("ascii", "backslashreplace").decode("ascii"), file=sys.stderr, flush=True)
    except (BrokenPipeError, ValueError):  # stderr closed
        pass


def _flush() -> None:
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        _quiet_stdout()


def _quiet_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] + (" ..." if len(text) > 300 else "")


def _known_error(exc: BaseException) -> LasskitError | None:
    """An exception the machine or the user's files caused, as a one-line error (or None: a bug).

    Looks through ``raise ... from`` chains: an ``OSError`` anywhere in the chain names its file
    (or, without one, the file a local variable of the failing frame held).
    """
    from lasskit.errors import UsageError, WorkError, os_error

    seen = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.errno is not None:
            return os_error(cur, None if cur.filename else _file_in_traceback(cur))
        if type(cur).__name__ in ("LibsndfileError", "SoundFileRuntimeError", "SoundFileError"):
            return _sound_file_error(cur)
        if isinstance(cur, UnicodeDecodeError):  # a user's text file (CSV, JSON) that is not UTF-8
            file = _file_in_traceback(cur)
            where = f"{file}: " if file else ""
            if file:  # the offset in the file (the decoder's counts from the block it was decoding)
                from lasskit.csvfile import not_utf8_at

                found = not_utf8_at(file)
                if found is not None:
                    return UsageError(f"{where}not UTF-8 text ({found[0]} at byte {found[1]}, line {found[2]}); "
                                      "save the file as UTF-8")
            return UsageError(f"{where}not UTF-8 text ({cur.reason} at byte {cur.start}); save the file as UTF-8"
                              + ("" if file else " (re-run with --debug to see which file)"))
        if isinstance(cur, UnicodeEncodeError) and "surrogates" in str(cur.reason):  # a file name not in UTF-8
            name = cur.object.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            return UsageError(f"{name}: this name is not valid UTF-8; rename the file (e.g. with `convmv`)")
        if type(cur).__name__ == "Error" and type(cur).__module__ == "_csv":  # csv.Error: a malformed CSV
            file = _file_in_traceback(cur)
            return UsageError(f"{file or 'a CSV file'}: not a valid CSV ({_one_line(cur)}); fix the file")
        if isinstance(cur, MemoryError):
            return WorkError("out of memory; use fewer --jobs (or a smaller --batch-size) and run the same "
                             "command again")
        cur = cur.__cause__ or cur.__context__
    return None


def _sound_file_error(exc: BaseException) -> LasskitError:
    """libsndfile's errors carry no errno: name the file, and call a full disk a full disk."""
    import errno
    import shutil

    from lasskit.errors import WorkError, os_error

    file = _file_in_traceback(exc)
    text = _one_line(exc)
    if file:
        folder = os.path.dirname(os.path.abspath(file))
        try:
            if shutil.disk_usage(folder).free < 64 * 1024:
                return os_error(OSError(errno.ENOSPC, "No space left on device", file))
        except OSError:
            pass
        return WorkError(f"{file}: {text}; check the file (and the disk) and run the same command again")
    return WorkError(f"sound file error: {text}; run the same command again with --debug to see the file")


_PATH_LOCALS = ("path", "tmp", "target", "dst", "dest", "out", "out_path", "output", "file", "filename", "src",
                "fh", "f", "handle")


def _file_in_traceback(exc: BaseException) -> str | None:
    """A file the innermost lasskit frame was working on (a local called path, tmp, fh ...)."""
    from pathlib import PurePath

    tb, frames = exc.__traceback__, []
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames):
        if isinstance(frame.f_locals.get("self"), PurePath):  # Path.read_text, Path.open ...
            return str(frame.f_locals["self"])
        for name in _PATH_LOCALS:
            value = frame.f_locals.get(name)
            if isinstance(value, PurePath):
                return str(value)
            if isinstance(value, str) and os.sep in value:
                return value
            inner = getattr(value, "name", None)
            if isinstance(inner, str) and inner and not isinstance(value, (str, bytes)) and hasattr(value, "write"):
                return inner
    return None


def _is_usage_error(exc: BaseException) -> bool:
    """The command-line parser's usage errors (typer vendors click, so match by shape)."""
    return getattr(exc, "exit_code", None) == 2 and hasattr(exc, "format_message")


def _usage_message(exc: BaseException) -> str:
    return " ".join(exc.format_message().split())


def _config_value_error(exc: BaseException) -> str | None:
    """A bad option value that came from lasskit.yaml: blame the file and its key, not the command line."""
    ctx, param = getattr(exc, "ctx", None), getattr(exc, "param", None)
    if ctx is None or param is None or not param.name:
        return None
    try:
        source = ctx.get_parameter_source(param.name)
    except Exception:
        return None
    if getattr(source, "name", None) != "DEFAULT_MAP":
        return None
    ws = ctx.find_root().obj
    if ws is None or not hasattr(ws, "config_key"):
        return None
    from lasskit.cli.common import command_path

    key = next(filter(None, (ws.config_key(command_path(ctx), n) for n in [param.name, *sorted(_long_names(param))])),
               param.name)
    value = (ctx.default_map or {}).get(param.name)
    why = " ".join(str(getattr(exc, "message", "") or exc.format_message()).split()).rstrip(".")
    flag = next((o for o in getattr(param, "opts", ()) if o.startswith("--")), None)
    also = f" (or pass {flag} on the command line)" if flag else ""
    return f"{ws.config_path}: {key}: {value!r}: {why}; fix the value in the file{also}"


def _help_hint(exc: BaseException, args: list[str] | None = None) -> str:
    """``lasskit <command> --help`` for the command the error is about."""
    names = []
    ctx = getattr(exc, "ctx", None)
    while ctx is not None:
        names.append(ctx.info_name)
        ctx = ctx.parent
    names = [n for n in reversed(names) if n][1:]
    if not names and args:
        names = _command_words(args)
    return " ".join(["lasskit", *names, "--help"])


def _command_words(args: list[str]) -> list[str]:
    """The (sub)command names in ``args``, skipping the root options (``-w DIR``, ``--debug``)."""
    command = typer.main.get_command(app)
    words, i = [], 0
    while i < len(args):
        arg = args[i]
        commands = getattr(command, "commands", None) or {}
        if arg in ("-w", "--workspace"):
            i += 2
            continue
        if arg.startswith("-"):
            i += 1
            continue
        if arg in commands:
            words.append(arg)
            command = commands[arg]
            i += 1
            continue
        break
    return words
