"""Finding saved evaluations and writing report files (markdown + PNG)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rar.errors import MissingPathError, UnknownKeyError
from rar.evaluation.results import EVALUATION_JSON, load_evaluation, load_records


@dataclass
class SavedEvaluation:
    """One evaluation.json and the directory holding its per-sample files."""

    data: dict[str, Any]
    directory: Path

    @property
    def dataset(self) -> str:
        return str(self.data.get("dataset", ""))

    @property
    def systems(self) -> dict[str, Any]:
        return self.data["systems"]

    def records(self, system: str) -> list[dict[str, Any]]:
        return load_records(self.directory, system, self.data)

    def pick_system(self, name: str | None = None) -> str:
        """`name`, else the only re-ranked system, else the first system."""
        if name is not None:
            if name not in self.systems:
                raise UnknownKeyError(
                    f"no system '{name}' in {self.directory} (have: {', '.join(self.systems)})"
                )
            return name
        ranked = [n for n, v in self.systems.items() if v.get("kind") == "retriever+ranker"]
        return ranked[0] if len(ranked) == 1 else next(iter(self.systems))


def find_evaluations(paths: Sequence[str | Path]) -> list[SavedEvaluation]:
    """Evaluations at each path: an eval directory (or its evaluation.json), or a run directory
    holding `eval/*/evaluation.json`."""
    found: list[SavedEvaluation] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file() or (path / EVALUATION_JSON).is_file():
            data, directory = load_evaluation(path)
            found.append(SavedEvaluation(data, directory))
            continue
        files = sorted((path / "eval").glob(f"*/{EVALUATION_JSON}")) if path.is_dir() else []
        if not files:
            raise MissingPathError(
                f"no evaluation found at {path} (expected {EVALUATION_JSON} or eval/*/{EVALUATION_JSON}); "
                "run `rar evaluate` first"
            )
        for file in files:
            data, directory = load_evaluation(file)
            found.append(SavedEvaluation(data, directory))
    return found


def default_out_dir(path: str | Path) -> Path:
    """Reports go to `<run>/reports` for a run directory, `<eval dir>/reports` for an eval dir."""
    path = Path(path)
    if path.is_file():
        path = path.parent
    return path / "reports"


def plt():
    """matplotlib.pyplot on the non-interactive Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as pyplot

    return pyplot


def write_report(
    out_dir: str | Path, name: str, markdown: str, figures: dict[str, Any]
) -> dict[str, Path]:
    """Save `<name>.md` and each figure as `<name>_<key>.png`; returns the written paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    pyplot = plt()
    for key, fig in figures.items():
        file = out / f"{name}_{key}.png"
        fig.savefig(file, dpi=120, bbox_inches="tight")
        pyplot.close(fig)
        written[key] = file
    md = out / f"{name}.md"
    md.write_text(markdown, encoding="utf-8")
    written["markdown"] = md
    return written


def md_escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
