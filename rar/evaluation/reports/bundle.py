"""All saved-evaluation reports in one call (what `rar report all` and the quickstart run)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from rar.evaluation.reports.common import default_out_dir, find_evaluations
from rar.evaluation.reports.compare import compare_report
from rar.evaluation.reports.hallucination import hallucination_report
from rar.evaluation.reports.popularity import popularity_report
from rar.evaluation.results import slug


def standard_reports(
    path: str | Path,
    counts: Mapping[str, int] | None = None,
    pairs: Sequence[tuple[str, str]] | None = None,
    out_dir: str | Path | None = None,
    n_resamples: int = 10_000,
    train_data: str | Path | None = None,
) -> dict[str, dict[str, Path]]:
    """Hallucination, popularity and paired comparisons for the evaluations at `path`.

    `pairs` are (system A, system B) names of one evaluation; by default the first system is
    compared with every other one (e.g. the retriever alone vs SFT and RAR). Comparisons go to
    `compare_<A>_vs_<B>/` under the output directory."""
    out = Path(out_dir) if out_dir is not None else default_out_dir(path)
    written = {
        "hallucination": hallucination_report([path], out),
        "popularity": popularity_report([path], counts, train_data, out_dir=out),
    }
    evaluations = find_evaluations([path])
    for ev in evaluations:
        names = list(ev.systems)
        todo = pairs if pairs is not None else [(names[0], other) for other in names[1:]]
        for a, b in todo:
            if a not in ev.systems or b not in ev.systems:
                continue
            key = f"compare_{slug(a)}_vs_{slug(b)}"
            if len(evaluations) > 1:
                key = f"{ev.dataset}_{key}"
            written[key] = compare_report(
                ev.directory, ev.directory, a, b, n_resamples=n_resamples, out_dir=out / key
            )
    return written
