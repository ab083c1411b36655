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
from pathlib import Path

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
    "rar/evaluation/evaluator.py::Evaluator.evaluate": "shrunk on branch h-trainer/h-types",
    "rar/evaluation/evaluator.py::Evaluator.score": "shrunk on branch h-trainer/h-types",
    "rar/rankers/prompt_ranker.py::PromptRanker._rank_one": "shrunk on branch h-trainer/h-types",
    "rar/retrievers/pretrain.py::_pretrain": "shrunk on branch h-trainer/h-types",
    "rar/retrievers/pretrain.py::train_retriever": "shrunk on branch h-trainer/h-types",
    "rar/rl/policy.py::_bound_path": "shrunk on branch h-trainer/h-types",
    "rar/rl/policy.py::top_down_sample": "shrunk on branch h-trainer/h-types",
    "rar/rl/trainer.py::RLTrainer.__init__": "shrunk on branch h-trainer/h-types",
    "rar/rl/trainer.py::RLTrainer.train": "shrunk on branch h-trainer/h-types",
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
