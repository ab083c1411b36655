"""`rar demo`: a Gradio page to chat with a trained recommender and see both stages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from rar.commands.common import console, err_console, user_errors
from rar.errors import InputError, MissingPathError
from rar.rankers.registry import ranker_choices

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# backends offered without being asked for, when their key is in the environment
AUTO_LLM = {"openai": "OPENAI_API_KEY", "gemini": "GEMINI_API_KEY"}


def resolve_run(run: Path) -> Path:
    """A retriever run directory; a quickstart directory means its RAR run (else the fused
    SFT run, else the runs of earlier quickstarts)."""
    if (run / "checkpoints" / "best.pt").is_file():
        return run
    for name in ("quickstart-rar", "quickstart-sft-fused", "quickstart-dpo", "quickstart-sft"):
        if (run / "runs" / name / "checkpoints" / "best.pt").is_file():
            return run / "runs" / name
    raise MissingPathError(
        f"{run} has no checkpoints/best.pt: give a finished run directory "
        "(e.g. runs/quickstart/runs/quickstart-rar) or the quickstart directory"
    )


def resolve_corpus(run: Path, corpus: Path | None) -> Path:
    """--corpus, else the corpus the run was trained with (relative to the working directory
    or to one of the run's parent directories), else a `corpus/` next to the run."""
    if corpus is not None:
        return corpus
    from rar.evaluation.runner import corpus_from_run

    named = corpus_from_run(run)
    places = []
    if named:
        path = Path(named)
        places = (
            [path] if path.is_absolute() else [path, *(p / path for p in run.resolve().parents)]
        )
    places += [p / "corpus" for p in run.resolve().parents[:3]]
    for place in places:
        if (place / "movies.parquet").is_file():
            return place
    raise MissingPathError(
        f"cannot find the corpus of {run} (config says {named!r}); pass --corpus DIR"
    )


def bind_warning(host: str) -> str | None:
    """What to tell the user before serving on a non-loopback address."""
    if host in LOOPBACK:
        return None
    return (
        f"binding to {host}: anyone who can reach this machine can use the demo (and any "
        "API-backed ranker, at your cost). The default is 127.0.0.1."
    )


def quickstart_ranker(run: Path) -> Path | None:
    """The trained ranker a quickstart directory fitted (stage 4), if `run` is one."""
    path = run / "runs" / "ranker-redial"
    return path if (path / "config.json").is_file() else None


def ranker_configs(names: list[str], trained: Path | None, timeout_s: float) -> dict[str, Any]:
    """Label -> RankerConfig for every ranker offered in the page."""
    import os

    from rar.commands.common import ranker_config_from_flags
    from rar.config import packaged_configs
    from rar.rankers.registry import RANKER_NAMES

    names = list(names) or ["semantic", *(b for b, env in AUTO_LLM.items() if os.environ.get(env))]
    if trained is not None and "trained" not in names:
        names.insert(1, "trained")
    out: dict[str, Any] = {}
    for name in names:
        path = Path(name)
        overrides = [f"limits.timeout_s={timeout_s:g}"]
        if name in RANKER_NAMES:
            config_file = packaged_configs().get(f"ranker_{name}")
            if name == "trained":
                if trained is None:
                    raise InputError(
                        "the trained ranker needs --trained-ranker DIR (`rar fit-ranker`)"
                    )
                overrides.append(f"trained.path={trained}")
            cfg = ranker_config_from_flags(config_file, overrides, name)
        elif path.suffix in (".yaml", ".yml") and path.is_file():
            cfg = ranker_config_from_flags(path, overrides)
        else:
            raise InputError(
                f"--ranker {name!r}: expected one of {', '.join(RANKER_NAMES)} or a ranker YAML file"
            )
        label = cfg.backend
        if cfg.backend in ("openai", "gemini"):
            label = f"{cfg.backend} ({cfg.model})"
        while label in out:
            label += "'"
        out[label] = cfg
    return out


def demo(
    run: Path = typer.Option(
        ..., "--run", "-r", help="Retriever run directory, or the quickstart directory."
    ),
    ranker: list[str] = typer.Option(
        [],
        "--ranker",
        help=f"Ranker offered in the page (repeatable): {ranker_choices()}, or a ranker YAML. "
        "Default: semantic, plus openai/gemini when "
        "OPENAI_API_KEY / GEMINI_API_KEY is set. 'retriever only' is always offered.",
    ),
    trained_ranker: Path | None = typer.Option(
        None,
        "--trained-ranker",
        help="Directory written by `rar fit-ranker` (adds 'trained'; default for a quickstart "
        "directory: the ranker it fitted, runs/ranker-redial).",
    ),
    corpus: Path | None = typer.Option(
        None, "--corpus", help="Corpus directory (default: the run's)."
    ),
    k: int = typer.Option(10, "--k", "-k", min=1, max=25, help="Recommendations shown per turn."),
    candidates: int = typer.Option(
        20, "--candidates", min=1, help="Candidates the retriever passes to the ranker."
    ),
    timeout: float = typer.Option(
        60.0, "--timeout", min=1.0, help="Seconds before a ranker call is shown as failed."
    ),
    port: int = typer.Option(7860, "--port", help="Port to serve on."),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to bind (default loopback only)."
    ),
) -> None:
    """Chat with the recommender in the browser: linked mentions, the ranker's and the
    retriever's top-k side by side, per-turn latency, tokens and cost, a custom-format download."""
    with user_errors():
        from rar.demo.app import quiet_gradio

        quiet_gradio()
        run_dir = resolve_run(run)
        corpus_dir = resolve_corpus(run_dir, corpus)
        if trained_ranker is None:  # a quickstart directory offers the ranker it fitted
            trained_ranker = quickstart_ranker(run)
        configs = ranker_configs(ranker, trained_ranker, timeout)
        warning = bind_warning(host)
        if warning:
            err_console.print(f"[bold yellow]warning:[/] {warning}", highlight=False)
        from rar.demo.launch import (
            check_port,
            private_temp_dir,
            remove_stale_dirs,
            sigterm_as_interrupt,
        )

        remove_stale_dirs()  # what a SIGKILLed demo left
        check_port(host, port)  # before minutes of loading, not after
        with sigterm_as_interrupt(), private_temp_dir() as temp:
            _load_and_serve(run_dir, corpus_dir, configs, k, candidates, timeout, host, port, temp)


def _load_and_serve(
    run_dir: Path,
    corpus_dir: Path,
    configs: dict[str, Any],
    k: int,
    candidates: int,
    timeout: float,
    host: str,
    port: int,
    temp: Path,
) -> None:
    """Load the corpus, retriever and rankers, then serve until Ctrl-C or SIGTERM; the exports
    and Gradio's file cache go to `temp` (private, removed by the caller)."""
    console.print(f"[dim]loading {corpus_dir} and {run_dir}[/]", highlight=False)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    from rar.corpus import Corpus
    from rar.demo.app import DemoApp
    from rar.demo.engine import DemoEngine

    movies = Corpus.load(corpus_dir)
    engine = DemoEngine(movies, run_dir, configs, candidates=candidates, timeout_s=timeout)
    try:
        about = (
            f"Retriever: `{run_dir}` · corpus: {len(movies):,} movies · each message gets the "
            f"retriever's {max(candidates, k)} candidates re-ranked by the ranker you pick."
        )
        engine.warm_up(engine.backends[0])
        app = DemoApp(engine, k=k, about=about, export_dir=temp / "exports")
        _serve(app, host, port)
    finally:
        engine.close()


def _serve(app: Any, host: str, port: int) -> None:
    """Gradio's server, blocking; a port taken since `check_port` is the same one line."""
    from rar.demo.launch import PORT_BUSY, port_in_use_error

    blocks = app.build()
    console.print(f"serving on http://{host}:{port} (Ctrl-C stops)", highlight=False)
    try:
        blocks.launch(
            server_name=host,
            server_port=port,
            share=False,
            inbrowser=False,
            ssr_mode=False,
            quiet=True,
            footer_links=[],
            run_history=False,
            **app.theme_and_css(),
        )
    except OSError as exc:
        if PORT_BUSY in str(exc):
            raise port_in_use_error(host, port) from None
        raise
