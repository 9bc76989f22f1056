"""The model registry: entry points in group ``lasskit.models``, or ``module:Class`` / ``file.py:Class``.

A package registers a model in its ``pyproject.toml``::

    [project.entry-points."lasskit.models"]
    my-model = "my_package.models:MyModel"

and ``lasskit separate --model my-model`` finds it once the package is installed. A class that is
not registered is named directly: ``--model my_package.models:MyModel`` (an importable module)
or ``--model path/to/file.py:MyModel`` (a local file; its folder goes on ``sys.path`` so it can
import its neighbours).

Listing never fails because one model cannot be imported (a missing dependency such as
transformers): that entry is shown as unavailable, with the reason.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lasskit.errors import UsageError, WorkError

ENTRY_POINT_GROUP = "lasskit.models"


@dataclass
class ModelEntry:
    """A registered model: its name, ``module:Class`` target and who registered it.

    ``cls`` is the loaded class, or None with ``error`` saying why it cannot be loaded.
    """

    name: str
    target: str
    package: str
    cls: type | None = None
    error: str | None = None

    @property
    def available(self) -> bool:
        return self.cls is not None and self.error is None

    @property
    def description(self) -> str:
        return str(getattr(self.cls, "description", "") or "") if self.cls is not None else ""


def _short(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[-1] if lines else ''}".rstrip(": ")


def check_model_class(cls: Any, spec: str) -> type:
    """``cls`` if it looks like a model (a class with a callable ``separate``), else a UsageError."""
    if not isinstance(cls, type):
        raise UsageError(f"model {spec}: {cls!r} is not a class; point at a class with a separate() method")
    if not callable(getattr(cls, "separate", None)):
        raise UsageError(f"model {spec}: class {cls.__name__} has no separate(mixtures, queries) method")
    return cls


def _entry_points() -> list:
    from importlib.metadata import entry_points

    return list(entry_points(group=ENTRY_POINT_GROUP))


def _package_of(ep) -> str:
    dist = getattr(ep, "dist", None)
    return getattr(dist, "name", None) or "?"


def _load_entry(ep) -> ModelEntry:
    entry = ModelEntry(ep.name, ep.value, _package_of(ep))
    try:
        entry.cls = check_model_class(ep.load(), ep.name)
    except Exception as exc:  # a broken plugin must not break the listing
        entry.error = str(exc) if isinstance(exc, UsageError) else _short(exc)
    return entry


def _unique(eps: list) -> list:
    """Entry points without exact duplicates (one package seen twice on sys.path)."""
    seen, out = set(), []
    for ep in eps:
        if (ep.name, ep.value) not in seen:
            seen.add((ep.name, ep.value))
            out.append(ep)
    return out


def list_models() -> list[ModelEntry]:
    """Every registered model, sorted by name, loaded (or with the reason it cannot be)."""
    entries = [_load_entry(ep) for ep in _unique(_entry_points())]
    counts: dict[str, int] = {}
    for e in entries:
        counts[e.name] = counts.get(e.name, 0) + 1
    for e in entries:
        if counts[e.name] > 1 and e.error is None:
            e.error = f"the name {e.name!r} is registered {counts[e.name]} times; uninstall one or use --model {e.target}"
    return sorted(entries, key=lambda e: (e.name, e.target))


def registered_names() -> list[str]:
    """Names in the ``lasskit.models`` group (without importing anything), sorted."""
    return sorted({ep.name for ep in _entry_points()})


def is_class_spec(spec: str) -> bool:
    """True for ``module:Class`` or ``path/to/file.py:Class``; False for a registered name."""
    left, sep, right = spec.rpartition(":")
    return bool(sep and left and right)


def _load_from_file(path_text: str, attr: str, spec: str):
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise UsageError(f"--model {spec}: no such file {path}; give path/to/file.py:Class")
    path = path.resolve()
    module_name = file_module_name(path)
    module = sys.modules.get(module_name)
    if module is None:
        folder = str(path.parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)  # so the file can import its neighbours
        import_spec = importlib.util.spec_from_file_location(module_name, path)
        if import_spec is None or import_spec.loader is None:
            raise UsageError(f"--model {spec}: {path} is not a Python file")
        module = importlib.util.module_from_spec(import_spec)
        sys.modules[module_name] = module
        try:
            import_spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[module_name]
            raise WorkError(f"--model {spec}: importing {path} failed ({_short(exc)}); fix the file or install what it imports")
    return module


def file_module_name(path: Path) -> str:
    """The module name a model file is imported under: its stem and the SHA-256 of its bytes.

    A model class's identity (``module:Class``, kept in every output's provenance) is therefore
    the same in every process while the file is unchanged, so ``separate`` reuses its outputs and
    resumes; an edited file gets a new identity and its outputs are made again."""
    import hashlib

    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except OSError as exc:
        from lasskit.errors import os_error

        raise os_error(exc, path) from None
    return "lasskit_user_model_" + re.sub(r"\W", "_", path.stem) + f"_{digest}"


def load_class(spec: str) -> type:
    """The class named by ``module:Class`` or ``path/to/file.py:Class`` (``Class`` may be dotted)."""
    left, _, attr = spec.rpartition(":")
    if left.endswith(".py") or "/" in left or "\\" in left:
        module = _load_from_file(left, attr, spec)
    else:
        try:
            module = importlib.import_module(left)
        except ModuleNotFoundError as exc:
            if exc.name and (left == exc.name or left.startswith(exc.name + ".")):
                raise UsageError(f"--model {spec}: no module named {left!r}; install its package, "
                                 "or give path/to/file.py:Class")
            raise WorkError(f"--model {spec}: importing {left} failed ({_short(exc)}); install what it imports")
        except Exception as exc:
            raise WorkError(f"--model {spec}: importing {left} failed ({_short(exc)})")
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UsageError(f"--model {spec}: {left} has no {attr!r}; check the class name")
        obj = getattr(obj, part)
    return check_model_class(obj, spec)


def resolve(spec: str) -> tuple[type, str]:
    """The model class for ``spec`` and its output-folder name.

    ``spec`` is a registered name (the folder is that name) or a ``module:Class`` /
    ``file.py:Class`` reference (the folder is the class's ``name``, else its sanitized class name).
    """
    spec = spec.strip()
    if not spec:
        raise UsageError("--model is empty; give a registered name (see `lasskit models`) or module:Class")
    if is_class_spec(spec):
        cls = load_class(spec)
        return cls, default_name(cls)
    matches = _unique([ep for ep in _entry_points() if ep.name == spec])
    if not matches:
        names = registered_names()
        listing = ", ".join(names) if names else "none"
        raise UsageError(f"unknown model {spec!r} (registered: {listing}); see `lasskit models`, "
                         "or pass --model module:Class or path/to/file.py:Class")
    if len(matches) > 1:
        targets = ", ".join(f"{ep.value} from {_package_of(ep)}" for ep in matches)
        raise UsageError(f"model {spec!r} is registered {len(matches)} times ({targets}); "
                         "uninstall one or pass --model module:Class")
    entry = _load_entry(matches[0])
    if entry.cls is None:
        raise WorkError(f"model {spec!r} ({entry.target}, package {entry.package}) cannot be loaded: {entry.error}")
    return entry.cls, spec


def sanitize_name(text: str) -> str:
    """A folder-safe model name: lower case, runs of other characters than ``[a-z0-9._-]`` -> ``-``."""
    name = re.sub(r"[^a-z0-9._-]+", "-", text.strip().lower()).strip("-.")
    return name or "model"


def default_name(cls: type) -> str:
    """The output-folder name of a model class: its ``name`` attribute, else its class name."""
    return sanitize_name(str(getattr(cls, "name", "") or cls.__name__))


def parse_option(text: str) -> tuple[str, Any]:
    """``key=value`` -> (key, value); the value is an int, float, bool, None or else the string."""
    key, sep, value = text.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not key.isidentifier():
        raise UsageError(f"--option {text!r}: expected key=value with a Python identifier as key")
    value = value.strip()
    lowered = value.lower()
    if lowered in ("true", "false"):
        return key, lowered == "true"
    if lowered in ("none", "null"):
        return key, None
    for convert in (int, float):
        try:
            return key, convert(value)
        except ValueError:
            pass
    return key, value


def parse_options(texts: list[str] | None) -> dict[str, Any]:
    """Repeated ``--option key=value`` -> a dict (a later key wins)."""
    return dict(parse_option(t) for t in (texts or []))


def build(cls: type, spec: str, checkpoint: str | None = None, device: str = "cpu",
          options: dict[str, Any] | None = None):
    """Instantiate ``cls(checkpoint=..., device=..., **options)`` with one-line errors."""
    import inspect

    options = dict(options or {})
    if checkpoint is not None and not Path(checkpoint).expanduser().exists():
        raise UsageError(f"--checkpoint {checkpoint}: no such file")
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        signature = None
    if signature is not None:
        params = signature.parameters
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        if not takes_any:
            unknown = [k for k in options if k not in params]
            if unknown:
                accepted = [k for k in params if k not in ("checkpoint", "device")]
                raise UsageError(f"model {spec} takes no option {', '.join(unknown)} "
                                 f"(its options: {', '.join(accepted) or 'none'})")
    try:
        return cls(checkpoint=checkpoint, device=device, **options)
    except (UsageError, WorkError):
        raise
    except TypeError as exc:
        raise UsageError(f"model {spec}: bad options ({_short(exc)}); see its documentation")
    except Exception as exc:
        raise WorkError(f"model {spec} failed to load ({_short(exc)}); check --checkpoint and --option values")
