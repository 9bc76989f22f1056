"""The range of every number option and the emptiness of every text and path option, checked
when the command line (or lasskit.yaml) is parsed, before a command does any work: one line,
exit 2, naming the option and the range, or the lasskit.yaml key the value came from.

:data:`BOUNDS` holds the rule of each number option by its name (the same name means the same
thing in every command), :data:`COMMAND_BOUNDS` the few that differ by command.
:func:`bound_param` is applied to every option of every command by
:func:`lasskit.cli.common.polish_command`; a new option with a known name gets its rule without
touching its command. A command may still check more (e.g. one option against another).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lasskit.errors import UsageError

SEED_MAX = 2**32 - 1
"""numpy's seeds are non-negative; every lasskit seed goes through ``numpy.random.default_rng``."""


@dataclass(frozen=True)
class Bound:
    """``low <= value <= high`` (``low < value`` with ``low_open``, ``value < high`` with ``high_open``);
    ``why`` says what the range protects (shown after it)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    why: str = ""
    text: str = ""
    """The whole rule in words, when the range alone would not say it (``must be a level below 0 dBFS``)."""

    def broken(self, value) -> bool:
        if isinstance(value, float) and not math.isfinite(value):
            return False  # the nan/inf check (lasskit.cli.common) says it
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return True
        return self.high is not None and (value >= self.high if self.high_open else value > self.high)

    def rule(self) -> str:
        if self.text:
            return self.text
        low, high = _num(self.low), _num(self.high)
        if self.low is not None and self.high is not None:
            if not self.low_open and not self.high_open:
                text = f"must be from {low} to {high}"
            else:
                text = f"must be in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"
        elif self.low is not None:
            text = f"must be more than {low}" if self.low_open else f"must be at least {low}"
        else:
            text = f"must be below {high}" if self.high_open else f"must be at most {high}"
        return text + (f" ({self.why})" if self.why else "")


def _num(x) -> str:
    return "" if x is None else f"{x:g}" if isinstance(x, float) else str(x)


POSITIVE = Bound(1)
COUNT = Bound(0)
SHARE = Bound(0.0, 1.0)

BOUNDS: dict[str, Bound] = {
    "seed": Bound(0, SEED_MAX, why="a seed is a non-negative 32-bit number"),
    "batch_size": POSITIVE,
    "clap_batch": POSITIVE,
    "devices": Bound(1, 1024, why="processes on one machine"),
    "num_nodes": POSITIVE,
    "parallel": POSITIVE,
    "top_k": POSITIVE,
    "resamples": Bound(1, 1_000_000, why="bootstrap resamples; 1000 is plenty for a 95 % interval"),
    "num": Bound(1, 10_000_000, why="10 million 10 s mixtures are 3 years of audio"),
    "steps": POSITIVE,
    "accumulate": POSITIVE,
    "val_every": POSITIVE,
    "checkpoint_every": POSITIVE,
    "log_every": POSITIVE,
    "items": POSITIVE,
    "raters_per_item": POSITIVE,
    "raters": POSITIVE,
    "index": POSITIVE,
    "jobs": Bound(0, 1024, why="0: all cores"),
    "workers": Bound(0, 1024),
    "repeats": COUNT,
    "gold": COUNT,
    "add": COUNT,
    "val_count": COUNT,
    "warmup_steps": COUNT,
    "extra_noises": COUNT,
    "keep_checkpoints": COUNT,
    "min_duration": Bound(0.0),
    "context_seconds": Bound(0.0),
    "crossfade_seconds": Bound(0.0),
    "aug_gain": Bound(0.0, 40.0, why="dB of random gain"),
    "aug_eq": Bound(0.0, 40.0, why="dB of random EQ"),
    "min_active": SHARE,
    "noise_min_active": SHARE,
    "max_fast_share": SHARE,
    "min_agreement": Bound(-1.0, 1.0, why="a correlation"),
    "min_score": Bound(-1.0, 1.0, why="a cosine similarity"),
    "max_repeat_diff": Bound(0.0),
    "chunk_overlap": Bound(0.0, 0.9, why="more makes over 10 windows per second of audio"),
    "lr": Bound(0.0, 10.0, low_open=True),
    "clip_grad": Bound(0.0, low_open=True),
    "ema": Bound(0.0, 1.0, low_open=True, high_open=True, why="the decay of the average, e.g. 0.999"),
    "bn_momentum": Bound(0.0, 1.0, low_open=True),
    "port": Bound(1, 65535),
    "target_lufs": Bound(-70.0, 0.0, why="loudness in LUFS, e.g. -23"),
    "silence_db": Bound(high=0.0, high_open=True, text="must be a level below 0 dBFS (a 0.1 s frame is active when "
                                                       "its RMS reaches it; the default is -60)"),
}
"""The range of a number option, by its name in every command."""

COMMAND_BOUNDS: dict[tuple[str, str], Bound] = {
    ("mix", "duration"): Bound(0.0, 600.0, low_open=True, why="seconds per mixture; the challenge's are 10"),
    ("train", "segment"): Bound(0.064, 600.0, low_open=True, text="must be longer than 0.064 s (one STFT window) and "
                                                                  "at most 600 s (the baseline trains on 10 s)"),
}
"""The range of a number option whose meaning differs by command, by ``(command, name)``."""

FREE_TEXT = {"token", "compare", "exclude"}
"""Text options where an empty value has a meaning of its own (left to the command)."""


def bound_param(param, command: str, sections) -> None:
    """Make ``param`` refuse, at parse time, a number outside its :data:`BOUNDS` and an empty text or
    path (``--out ""`` would be the current folder, ``--name ""`` a nameless folder). ``sections(ctx)``: the
    command's lasskit.yaml sections (:func:`lasskit.cli.common.command_path`), to name a key there."""
    rule = COMMAND_BOUNDS.get((command, param.name)) or BOUNDS.get(param.name)
    text = _takes_text(param) and param.name not in FREE_TEXT
    if rule is None and not text:
        return
    convert = param.process_value

    def process_value(ctx, value):
        if text and value is not None:
            items = value if isinstance(value, (list, tuple)) else (value,)
            if any(isinstance(v, str) and not v.strip() for v in items):
                raise _error(ctx, param, "''", "must not be empty" + _empty_hint(param), sections)
        value = convert(ctx, value)
        if rule is not None and value is not None:
            items = value if isinstance(value, (list, tuple)) else (value,)
            for v in items:
                if isinstance(v, (int, float)) and not isinstance(v, bool) and rule.broken(v):
                    raise _error(ctx, param, f"{v:g}" if isinstance(v, float) else v, rule.rule(), sections)
        return value

    param.process_value = process_value


def _takes_text(param) -> bool:
    """A str or path option or argument holding one value, or a path list (FILE_OR_DIR...): a list of
    words (``--query``) is checked by its command, which says why an empty one is wrong."""
    import pathlib
    import typing

    desc = getattr(param, "type_descriptor", None)
    if desc is None or desc.is_choice or getattr(param, "is_flag", False):
        return False
    annotation = desc.annotation
    many = typing.get_origin(annotation) in (list, tuple)
    if many:
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        annotation = args[0] if args else str
    is_path = isinstance(annotation, type) and issubclass(annotation, pathlib.PurePath)
    return is_path or (annotation is str and not many)


def _empty_hint(param) -> str:
    opts = getattr(param, "opts", ()) or ()
    if any(o.startswith("-") for o in opts):
        return "; give a value or leave the option out"
    return "; give a value"


def _error(ctx, param, value, why: str, sections) -> UsageError:
    """``--opt VALUE: why``, or, for a value from lasskit.yaml, the file and key to fix."""
    opts = [o for o in (getattr(param, "opts", ()) or ()) if o.startswith("--")]
    option = opts[0] if opts else (getattr(param, "metavar", None) or param.name.upper())
    try:
        source = getattr(ctx.get_parameter_source(param.name), "name", None)
    except Exception:
        source = None
    ws = ctx.find_root().obj
    if source == "DEFAULT_MAP" and hasattr(ws, "config_key"):
        key = ws.config_key(sections(ctx), param.name) or param.name
        raw = (ctx.default_map or {}).get(param.name, value)
        return UsageError(f"{ws.config_path}: {key}: {raw!r}: {why}; fix the value in the file "
                          f"(or pass {option} on the command line)")
    hint = f" (see `{ctx.command_path} --help`)" if ctx.command_path else ""
    return UsageError(f"{option} {value}: {why}{hint}")
