"""`rar fit-ranker`: fit the trained offline ranker on a dataset's training split."""

from __future__ import annotations

from pathlib import Path

import typer

from rar.commands.common import console, user_errors


def fit_ranker(
    corpus: Path = typer.Option(..., "--corpus", help="Corpus directory (rar build-corpus)."),
    out: Path = typer.Option(
        ..., "--out", help="Directory for weights.npz, config.json, metrics.json."
    ),
    dataset: str = typer.Option("redial", "--dataset", help="Conversation dataset to fit on."),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Data directory (else $RAR_DATA_DIR, ./data)."
    ),
    run: Path | None = typer.Option(
        None,
        "--run",
        help="Trained retriever run: choose ranker.trained.retriever_weight on its validation "
        "top-k (without it the weight is 0: the order handed over is ignored).",
    ),
    k: int = typer.Option(25, "--k", help="Candidates per sample when choosing the weight."),
    epochs: int = typer.Option(30, "--epochs", help="Maximum epochs (best validation epoch kept)."),
    l2: float = typer.Option(1e-2, "--l2", help="Pull of W towards the identity."),
    seed: int = typer.Option(0, "--seed", help="Seed of batching and initialisation."),
    threads: int = typer.Option(2, "--threads", help="torch threads."),
) -> None:
    """Learn a conversation -> movie map (frozen MiniLM vectors) from the training split only;
    use it with `ranker.backend: trained` and `ranker.trained.path: OUT`."""
    with user_errors():
        import torch

        from rar.paths import resolve_data_dir
        from rar.rankers.fit_ranker import FitSettings, fit_from_data

        torch.set_num_threads(max(1, threads))
        if not (corpus / "manifest.json").is_file():
            raise FileNotFoundError(f"--corpus {corpus} is not a built corpus (no manifest.json)")
        from corpus_builder.corpus import Corpus

        movies = Corpus.load(corpus)
        settings = FitSettings(epochs=epochs, l2=l2, seed=seed)
        model = fit_from_data(
            dataset, resolve_data_dir(data_dir), movies, settings, str(run) if run else None, k
        )
        path = model.save(out)
        m = model.metrics
        console.print(
            f"fitted on {model.meta['train_samples']:,} {dataset} training samples; best epoch "
            f"{m['best_epoch']} (validation NLL {m['val_nll_before']} -> {m['best_val_nll']}); "
            f"retriever_weight {model.retriever_weight}"
        )
        console.print(f"wrote {path}  (ranker.backend: trained, ranker.trained.path: {path})")


fit_ranker.command_name = "fit-ranker"  # type: ignore[attr-defined]
