"""The layering of issue 12, read from the source: every import (module level, inside a
function, or under TYPE_CHECKING) of every module under rar/ and corpus_builder/.

Layers, bottom up (docs/architecture.md draws them); an import may point down or sideways
within its layer, never up:

0. ground floor: the shared nouns and leaf utilities;
1. retrievers, baselines, rankers;
2. the pipeline (retrieve -> rank -> score);
3. rl, evaluation, demo;
4. commands, cli, quickstart (the only place that may invoke corpus_builder).
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# rar.<name> -> layer; the first component after `rar.` decides.
LAYERS: dict[str, int] = {
    # ground floor: shared nouns ...
    "corpus": 0,
    "data": 0,
    "matching": 0,
    "metrics": 0,
    "config": 0,
    # ... and leaf utilities / run mechanics
    "errors": 0,
    "atomic_files": 0,
    "progress": 0,
    "paths": 0,
    "optim": 0,
    "tracking": 0,
    "run_guard": 0,
    "checkpoints": 0,
    # models and rankers
    "retrievers": 1,
    "baselines": 1,
    "rankers": 1,
    # the one retrieve -> rank -> score path
    "pipeline": 2,
    # its consumers
    "rl": 3,
    "evaluation": 3,
    "demo": 3,
    # the command layer
    "commands": 4,
    "cli": 4,
    "quickstart": 4,
    "__main__": 4,
}

# What corpus_builder may import from rar: the ground floor's nouns (corpus, config, matching,
# data) and three leaf utilities, listed one by one.
CORPUS_BUILDER_MAY_IMPORT = {
    "corpus",
    "config",
    "matching",
    "data",
    "errors",
    "atomic_files",
    "progress",
}

# Every function and method under rar/ and corpus_builder/ is at most MAX_FUNCTION_LINES long
# (from its `def` to its last line): split a long one by concept, one function per stage or idea.
MAX_FUNCTION_LINES = 60
# The known exceptions, "path::qualname": why. The list only shrinks: an entry whose function is
# back under the cap (or gone) fails test_long_functions_list_only_shrinks, so remove it then.
LONG_FUNCTIONS: dict[str, str] = {
    "rar/commands/evaluate_cmd.py::evaluate": (
        "the Typer declarations of its 21 options (82 lines); the body is four calls"
    ),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Absolute names of every module `path` imports (relative imports resolved)."""
    name = _module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                out.add(".".join(base + ([node.module] if node.module else [])))
            else:
                out.add(str(node.module))
    return out


def _sources(top: str) -> list[Path]:
    return sorted((ROOT / top).rglob("*.py"))


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_every_rar_package_has_a_layer():
    tops = {_module_name(p).split(".")[1] for p in _sources("rar") if p.parent != ROOT / "rar"}
    tops |= {p.stem for p in (ROOT / "rar").glob("*.py") if p.name != "__init__.py"}
    assert tops - set(LAYERS) == set(), "add the new module to LAYERS (and docs/architecture.md)"


def test_no_import_points_up():
    upward = []
    for path in _sources("rar"):
        mine = _module_name(path).split(".")
        if len(mine) == 1:  # rar/__init__.py
            continue
        level = LAYERS[mine[1]]
        for target in _imports(path):
            parts = target.split(".")
            if parts[0] != "rar" or len(parts) == 1:
                continue
            if LAYERS[parts[1]] > level:
                upward.append(f"{_rel(path)} (layer {level}) imports {target}")
    assert upward == []


def test_only_the_command_layer_invokes_corpus_builder():
    found = []
    for path in _sources("rar"):
        rel = _rel(path)
        if rel.startswith("rar/commands/") or rel == "rar/quickstart.py":
            continue
        found += [
            f"{rel} imports {t}" for t in _imports(path) if t.split(".")[0] == "corpus_builder"
        ]
    assert found == []


def test_corpus_builder_imports_only_the_ground_floor():
    found = []
    for path in _sources("corpus_builder"):
        for target in _imports(path):
            parts = target.split(".")
            if parts[0] == "rar" and (len(parts) == 1 or parts[1] not in CORPUS_BUILDER_MAY_IMPORT):
                found.append(f"{_rel(path)} imports {target}")
    assert found == []


def _function_lengths(path: Path) -> dict[str, int]:
    """`path::qualname` -> lines from `def` to the function's last line, for every function and
    method in `path` (nested ones too, named like `__qualname__`: `outer.<locals>.inner`)."""
    out: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert child.end_lineno is not None
                out[f"{_rel(path)}::{prefix}{child.name}"] = child.end_lineno - child.lineno + 1
                visit(child, f"{prefix}{child.name}.<locals>.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(path.read_text(encoding="utf-8")), "")
    return out


def _long_functions() -> dict[str, int]:
    lengths: dict[str, int] = {}
    for path in _sources("rar") + _sources("corpus_builder"):
        lengths |= _function_lengths(path)
    return {name: n for name, n in lengths.items() if n > MAX_FUNCTION_LINES}


def test_no_long_functions():
    unexpected = {f: n for f, n in _long_functions().items() if f not in LONG_FUNCTIONS}
    assert unexpected == {}, f"split these by concept (over {MAX_FUNCTION_LINES} lines)"


def test_long_functions_list_only_shrinks():
    stale = sorted(set(LONG_FUNCTIONS) - set(_long_functions()))
    assert stale == [], "back under the cap (or gone): remove them from LONG_FUNCTIONS"


def test_architecture_md_names_every_rar_package():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    tops = [
        p for p in (ROOT / "rar").iterdir() if p.suffix == ".py" or (p / "__init__.py").is_file()
    ]
    named = [_rel(p) for p in tops if p.name != "__init__.py"]
    assert [p for p in named if p not in text] == []


def test_every_path_in_architecture_md_exists():
    """Every file or folder docs/architecture.md names (patterns with * or <name> aside)."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    tokens = re.findall(r"\b(?:rar|corpus_builder|tests|experiments)/[^\s`|,;:()]*", text)
    paths = {t.rstrip("/.") for t in tokens if "*" not in t and "<" not in t}
    assert len(paths) > 50
    assert sorted(p for p in paths if not (ROOT / p).exists()) == []


def _runtime_imports(path: Path) -> set[str]:
    """Absolute names of the modules `path` imports when it runs: module-level imports and
    imports inside functions, not those under `if TYPE_CHECKING:` (type-only, never executed).
    `from package import name` names `package.name` when that is a module, else `package`."""
    name = _module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]

    def type_only(test: ast.expr) -> bool:
        return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        )

    def is_module(dotted: str) -> bool:
        base = ROOT.joinpath(*dotted.split("."))
        return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()

    out: set[str] = set()
    todo: list[ast.AST] = [ast.parse(path.read_text(encoding="utf-8"))]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and type_only(node.test):
            todo.extend(node.orelse)  # the `else:` branch of a TYPE_CHECKING test does run
            continue
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = str(node.module)
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                out.add(sub if is_module(sub) else module)
        todo.extend(ast.iter_child_nodes(node))
    return out


def _import_cycles(package: str) -> list[list[str]]:
    """The import circles among the modules of `package` (strongly connected components of its
    runtime import graph with more than one module, or a module importing itself)."""
    top = ROOT.joinpath(*package.split("."))
    graph = {_module_name(p): set() for p in sorted(top.rglob("*.py"))}
    for path in sorted(top.rglob("*.py")):
        mine = _module_name(path)
        graph[mine] = {t for t in _runtime_imports(path) if t in graph}
    # Tarjan's strongly connected components
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph[v]:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


@pytest.mark.parametrize(
    "package",
    ["rar.rankers", "rar.rl"],
)
def test_no_import_circle_within_a_package(package):
    """Issue 23: a package's modules import each other in one direction (type-only imports
    under `if TYPE_CHECKING:` aside), so each can be read, tested and changed from the bottom."""
    assert _import_cycles(package) == []


def test_the_import_circle_check_sees_circles(tmp_path, monkeypatch):
    """The check above finds a circle made by a function-level import, and ignores one made
    only by a TYPE_CHECKING import."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg import b\n")
    (pkg / "b.py").write_text("def f():\n    from pkg.c import x\n")
    (pkg / "c.py").write_text("from pkg.a import y\n")
    (pkg / "d.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.e\n"
    )
    (pkg / "e.py").write_text("from . import d\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert _import_cycles("pkg") == [["pkg.a", "pkg.b", "pkg.c"]]
