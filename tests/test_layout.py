"""The package layout holds: no import circles, layers respected, torch and typer where they belong.

Walks every module of ``lasskit`` with ``ast`` (imports inside functions count too) and checks the
rules written in CONTRIBUTING.md.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "lasskit"

# layer of each top-level name under lasskit (anything not listed is a core module)
MODELS = {"models"}
SHARED = {"labels"}  # used by several stages (corpora, mixing); may use models lazily
STAGES = {"corpora", "mixing", "separation", "scoring", "submission", "training", "listening"}
ORCHESTRATION = {"demo", "api"}
CLI = {"cli", "__main__"}
RANK = {**{n: 2 for n in MODELS}, **{n: 3 for n in SHARED}, **{n: 4 for n in STAGES},
        **{n: 5 for n in ORCHESTRATION}, **{n: 6 for n in CLI}}
# a stage may use another stage only along these documented edges
STAGE_EDGES = {
    "training": {"mixing", "separation", "scoring"},
    "listening": {"scoring", "separation"},
    "scoring": {"separation"},
    "submission": {"scoring", "separation"},
}
TORCH_AT_TOP = ("models", "training", "mixing.torch_dataset")  # may import torch at module level


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in ROOT.rglob("*.py") if "__pycache__" not in p.parts}


MODULES = _modules()


def _resolve(name: str) -> str:
    """The module an imported dotted name refers to (``lasskit.a.b.Name`` -> ``lasskit.a.b``)."""
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _imports(mod: str, path: Path) -> list[tuple[str, bool, int]]:
    """(imported lasskit module, at module level?, line) for every import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(n) for n in tree.body}
    for n in tree.body:  # module-level try/if blocks count as top level
        if isinstance(n, (ast.Try, ast.If)):
            top.update(id(x) for x in ast.walk(n))
    out = []
    package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = package.split(".")
                base = ".".join(pkg[: len(pkg) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        for name in names:
            out.append((name, id(node) in top, node.lineno))
    return out


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for mod, path in MODULES.items():
        for name, _, _ in _imports(mod, path):
            if name == "lasskit" or name.startswith("lasskit."):
                target = _resolve(name)
                if target != mod and target != "lasskit" or (target == "lasskit" and mod != "lasskit"):
                    if target != mod:
                        graph[mod].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _top(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else ""


def _rank(mod: str) -> int:
    return RANK.get(_top(mod), 1)


def test_no_import_circles():
    cycles = _cycles(_graph())
    assert not cycles, "import circles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_layers_cli_stages_models_core():
    bad = []
    for mod, targets in _graph().items():
        for t in targets:
            a, b = _top(mod), _top(t)
            if a == b or t == "lasskit":
                continue
            if _rank(t) > _rank(mod):
                bad.append(f"{mod} -> {t} (a lower layer imports a higher one)")
            elif _rank(t) == _rank(mod) == RANK["corpora"] and b not in STAGE_EDGES.get(a, set()):
                bad.append(f"{mod} -> {t} (one stage reaches into another; allowed: {STAGE_EDGES.get(a, set())})")
    assert not bad, "\n".join(sorted(bad))


def test_torch_only_lazily_outside_models_and_training():
    bad = []
    for mod, path in MODULES.items():
        for name, at_top, line in _imports(mod, path):
            root = name.split(".")[0]
            if root in ("torch", "torchaudio", "transformers", "lightning") and at_top:
                if not any(mod == f"lasskit.{p}" or mod.startswith(f"lasskit.{p}.") for p in TORCH_AT_TOP):
                    bad.append(f"{path.relative_to(ROOT.parent)}:{line} imports {name} at module level")
    assert not bad, "\n".join(bad)


def test_typer_only_in_cli():
    bad = [f"{path.relative_to(ROOT.parent)}:{line}"
           for mod, path in MODULES.items() if _top(mod) != "cli"
           for name, _, line in _imports(mod, path) if name.split(".")[0] in ("typer", "click")]
    assert not bad, "typer imported below the CLI: " + ", ".join(bad)


@pytest.mark.parametrize("package", sorted({_top(m) for m in MODULES if _top(m)} - {"__main__"}))
def test_every_module_says_what_it_owns(package):
    missing = [str(p.relative_to(ROOT.parent)) for m, p in MODULES.items()
               if _top(m) == package and not ast.get_docstring(ast.parse(p.read_text(encoding="utf-8")))]
    assert not missing, f"modules without a docstring: {missing}"


MAX_MODULE_LINES = 600
"""A room one reader keeps in mind (CONTRIBUTING.md, "The size of a room")."""


def test_no_module_over_600_lines():
    sizes = {str(p.relative_to(ROOT.parent)): len(p.read_text(encoding="utf-8").splitlines())
             for p in MODULES.values()}
    big = sorted(f"{path}: {n} lines" for path, n in sizes.items() if n > MAX_MODULE_LINES)
    assert not big, (f"modules over {MAX_MODULE_LINES} lines (cut them by what changes together, see "
                     "CONTRIBUTING.md): " + ", ".join(big))


def test_the_checker_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
