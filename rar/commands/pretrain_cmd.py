"""`rar pretrain`: pretrain a retriever on MovieLens sessions over the corpus."""

from __future__ import annotations

from pathlib import Path

import typer

from rar.commands.common import console, flag_overrides, user_errors


def pretrain(
    config: str = typer.Option(
        "pretrain_movielens",
        "--config",
        "-c",
        help="Pretraining YAML file, or the name of a packaged config (rar/configs/).",
    ),
    overrides: list[str] = typer.Option(
        [], "--set", help="Override a config key, e.g. --set retriever.name=sasrec (repeatable)."
    ),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Data directory (else $RAR_DATA_DIR, ./data)."
    ),
    corpus: Path | None = typer.Option(
        None, "--corpus", help="Corpus directory (overrides `corpus`)."
    ),
    name: str | None = typer.Option(None, "--name", help="Run name (overrides `name`)."),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue the run from checkpoints/last.pt (refused when there is none).",
    ),
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        help="Start the run again, replacing its directory (only ever a run directory: anything else is refused).",
    ),
) -> None:
    """Train LRURec / SASRec / GRU4Rec / BERT4Rec / FMLP-Rec; writes runs/<name>/ with metrics.json."""
    with user_errors():
        from rar.config import load_config
        from rar.paths import resolve_data_dir
        from rar.retrievers.pretrain import pretrain as run_pretrain
        from rar.retrievers.pretrain_config import PretrainConfig
        from rar.run_guard import check_run_name

        if name is not None:
            check_run_name(name)  # one line before the config is read
        extra = flag_overrides(overrides, {"corpus": corpus, "name": name})
        cfg = load_config(PretrainConfig, config, extra)
        metrics = run_pretrain(cfg, resolve_data_dir(data_dir), resume=resume, overwrite=overwrite)
        keys = ("ndcg@10", "recall@10", "ndcg@20", "recall@20")
        console.print(
            f"[bold]{cfg.retriever.name}[/] best epoch {metrics['best_epoch']} -> {metrics['run_dir']}"
        )
        for split in ("val", "test"):
            console.print(
                f"  {split}: " + "  ".join(f"{k} {metrics[f'{split}/{k}']:.4f}" for k in keys)
            )
