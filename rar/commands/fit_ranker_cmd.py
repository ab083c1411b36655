"""`rar fit-ranker`: fit the trained offline ranker on a dataset's training split."""

from __future__ import annotations

from pathlib import Path

import typer

from rar.commands.common import console, user_errors
from rar.data.datasets import dataset_choices
from rar.errors import MissingPathError


def fit_ranker(
    corpus: Path = typer.Option(..., "--corpus", help="Corpus directory (rar build-corpus)."),
    out: Path = typer.Option(
        ..., "--out", help="Directory for weights.npz, config.json, metrics.json."
    ),
    dataset: str = typer.Option(
        "redial", "--dataset", help=f"Conversation dataset to fit on: {dataset_choices()}."
    ),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Data directory (else $RAR_DATA_DIR, ./data)."
    ),
    run: Path | None = typer.Option(
        None,
        "--run",
        help="Trained retriever run: choose ranker.trained.retriever_weight and cooc_weight on "
        "its validation top-k (without it both are 0: the order handed over and the "
        "co-occurrence term are ignored).",
    ),
    k: int = typer.Option(25, "--k", help="Candidates per sample when choosing the weight."),
    l2: list[float] = typer.Option(
        [],
        "--l2",
        help="Ridge pull of W towards the identity; repeat to try several (best on "
        "validation kept). Default 1, 3, 10, 30, 100.",
    ),
    threads: int = typer.Option(2, "--threads", help="torch threads."),
) -> None:
    """Learn a conversation -> movie map (frozen MiniLM vectors) from the training split only;
    use it with `ranker.backend: trained` and `ranker.trained.path: OUT`."""
    with user_errors():
        import torch

        from rar.evaluation.ranker_fit import FitSettings, fit_from_data
        from rar.paths import resolve_data_dir

        torch.set_num_threads(max(1, threads))
        if not (corpus / "manifest.json").is_file():
            raise MissingPathError(f"--corpus {corpus} is not a built corpus (no manifest.json)")
        from rar.corpus import Corpus

        movies = Corpus.load(corpus)
        settings = FitSettings(l2=tuple(l2)) if l2 else FitSettings()
        model = fit_from_data(
            dataset, resolve_data_dir(data_dir), movies, settings, str(run) if run else None, k
        )
        path = model.save(out)
        m = model.metrics
        console.print(
            f"fitted on {model.meta['train_samples']:,} {dataset} training samples; l2 "
            f"{m['chosen_l2']} of {[t['l2'] for t in m['trials']]} on validation NLL; "
            f"retriever_weight {model.retriever_weight}, cooc_weight {model.cooc_weight}"
        )
        console.print(f"wrote {path}  (ranker.backend: trained, ranker.trained.path: {path})")
