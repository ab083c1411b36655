"""`rar train`: RL post-training of a pretrained retriever against a frozen ranker."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from rar.commands.common import console, flag_overrides, user_errors

if TYPE_CHECKING:
    from rar.rl.train_config import TrainConfig


def train(
    config: str = typer.Option(
        "redial_dpo_semantic",
        "--config",
        "-c",
        help="Training YAML file, or the name of a packaged config (rar/configs/).",
    ),
    overrides: list[str] = typer.Option(
        [], "--set", help="Override a config key, e.g. --set rl.method=grpo (repeatable)."
    ),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Data directory (else $RAR_DATA_DIR, ./data)."
    ),
    corpus: Path | None = typer.Option(
        None, "--corpus", help="Corpus directory (overrides `corpus`)."
    ),
    pretrained: Path | None = typer.Option(
        None, "--pretrained", help="`rar pretrain` run directory (overrides `pretrained_run`)."
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
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Post-train the retriever from ranker feedback (rl.method: an objective of the table in
    rar/rl/objectives.py, + NLL); writes runs/<name>/ (config.yaml, metrics.jsonl, checkpoints/best.pt,
    metrics.json, and fusion.json after SFT of a fused policy)."""
    with user_errors():
        from rar.config import load_config
        from rar.rl.train_config import TrainConfig
        from rar.rl.trainer import train as run_train
        from rar.run_guard import check_run_name

        if name is not None:
            check_run_name(name)  # one line before the config is read
        extra = flag_overrides(
            overrides,
            {
                "data.data_dir": data_dir,
                "corpus": corpus,
                "pretrained_run": pretrained,
                "name": name,
            },
        )
        cfg = load_config(TrainConfig, config, extra)
        final = run_train(cfg, resume=resume, overwrite=overwrite, progress=not quiet)
        _print_summary(cfg, final)


def _print_summary(cfg: TrainConfig, final: dict[str, Any]) -> None:
    """Steps run, the best step and where the run is; then val and test N@k and R@k beside the
    retriever alone's (the starting point), for the splits the run scored."""
    console.print(
        f"[bold]{cfg.rl.method}[/] on {cfg.data.dataset}: {final['steps']} of "
        f"{final['budget_steps']} steps"
        f"{' (stopped early)' if final['stopped_early'] else ''}, best step "
        f"{final['best_step']} (restored) -> {final['run_dir']}"
    )
    for split in ("val", "test"):
        keys = [f"{split}/{m}@{k}" for k in cfg.eval_ks for m in ("ndcg", "recall")]
        if all(key in final for key in keys):
            console.print(
                f"  {split}: "
                + "  ".join(f"{key.split('/')[1]} {final[key]:.4f}" for key in keys)
                + "   (retriever alone: "
                + "  ".join(
                    f"{key.split('/')[1]} {final[f'{split}/retriever/' + key.split('/')[1]]:.4f}"
                    for key in keys
                )
                + ")"
            )
