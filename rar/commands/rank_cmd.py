"""`rar rank` (rank one conversation) and `rar recommend` (interactive chat in the terminal)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from rar.commands.common import console, ranker_config_from_flags, user_errors
from rar.errors import InputError
from rar.rankers.registry import ranker_choices

if TYPE_CHECKING:
    from rar.corpus import Corpus
    from rar.rankers.types import RankResult


def _one_line(text: Any, width: int = 110) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= width else text[: width - 3].rsplit(" ", 1)[0] + "..."


def print_ranking(corpus: Corpus, ranked_ids: list[str], top: int, plot: bool = True) -> None:
    for rank, cid in enumerate(ranked_ids[:top], 1):
        m = corpus.movie(corpus.index_of(cid))
        year = f" ({m.year})" if m.year is not None else ""
        console.print(f"{rank}. [bold]{m.title}[/]{year}", highlight=False)
        details = []
        if m.genres:
            details.append(", ".join(m.genres[:3]))
        if m.directors:
            details.append("dir. " + ", ".join(m.directors[:2]))
        if m.cast:
            details.append("with " + ", ".join(m.cast[:3]))
        if details:
            console.print(f"   [dim]{' | '.join(details)}[/]", highlight=False)
        if plot and m.plot:
            console.print(f"   [dim]{_one_line(m.plot)}[/]", highlight=False)


def _setup(corpus_dir: Path, run: Path | None, cfg):
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the sentence-encoder's "Loading weights" bar is noise here
    from rar.corpus import Corpus
    from rar.pipeline import ConversationRetrieval
    from rar.rankers import build_ranker

    corpus = Corpus.load(corpus_dir)
    return corpus, ConversationRetrieval(corpus, run), build_ranker(cfg, corpus)


def rank(
    conversation: Path = typer.Option(
        ..., "--conversation", help="JSON list of {role, text} turns."
    ),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Ranker YAML (or an experiment YAML with a `ranker:` section)."
    ),
    overrides: list[str] = typer.Option(
        [], "--set", help="Override a ranker key, e.g. --set prompt.plot_max_chars=0."
    ),
    ranker: str | None = typer.Option(None, "--ranker", help=f"{ranker_choices()}."),
    model: str | None = typer.Option(None, "--model", help="Model name (openai/gemini)."),
    base_url: str | None = typer.Option(
        None, "--base-url", help="OpenAI-compatible or Gemini server URL."
    ),
    corpus_dir: Path = typer.Option(Path("corpus"), "--corpus", help="Corpus directory."),
    run: Path | None = typer.Option(
        None, "--run", help="Pretrained retriever run directory for candidates."
    ),
    k: int = typer.Option(25, "-k", min=1, help="Number of candidates."),
    top: int | None = typer.Option(
        None, "--top", min=1, help="Print only the top N (default: all k)."
    ),
) -> None:
    """Rank candidate movies for one conversation and print `rank. Title (Year)` with metadata."""
    with user_errors():
        from rar.data.conversation import load_conversation
        from rar.rankers.types import RankRequest

        turns = load_conversation(conversation)
        cfg = ranker_config_from_flags(config, overrides, ranker, model, base_url)
        corpus, source, rk = _setup(corpus_dir, run, cfg)
        ids, how = source.candidates(turns, k)
        if not ids:
            raise InputError("no candidates found for this conversation")
        [result] = rk.rank([RankRequest(conversation.stem, turns, ids)])
        _print_notes(result, len(ids), how, cfg.backend, rk.info().get("model", ""))
        print_ranking(corpus, result.ranked_ids, top or len(result.ranked_ids))
        rk.close()


def _print_notes(result: RankResult, n: int, how: str, backend: str, model: str) -> None:
    """What the ranking above the list came from: the candidates' source and the ranker, then
    whether the call failed, titles the reply named that matched nothing, and candidates the
    model left out (appended in retriever order)."""
    console.print(
        f"[dim]{n} candidates from {how}; ranked by {backend}"
        f"{'' if backend == 'semantic' else ' ' + model}"
        f"{' (cached)' if result.cached else ''}[/]",
        highlight=False,
    )
    if result.error:
        console.print(
            f"[yellow]ranker failed ({result.error}); showing retriever order[/]",
            highlight=False,
        )
    if result.hallucinations or result.non_titles:
        console.print(
            f"[dim]{len(result.hallucinations)} listed title(s) matched no candidate; "
            f"{len(result.non_titles)} reply line(s) were not titles[/]",
            highlight=False,
        )
    if result.ok and result.n_appended:
        console.print(
            f"[dim]the model ranked {result.n_model_ranked} of {n}; the other "
            f"{result.n_appended} follow in retriever order[/]",
            highlight=False,
        )


def recommend(
    config: Path | None = typer.Option(None, "--config", "-c", help="Ranker YAML."),
    overrides: list[str] = typer.Option([], "--set", help="Override a ranker key."),
    ranker: str | None = typer.Option(None, "--ranker", help=f"{ranker_choices()}."),
    model: str | None = typer.Option(None, "--model", help="Model name (openai/gemini)."),
    base_url: str | None = typer.Option(None, "--base-url", help="Server URL."),
    corpus_dir: Path = typer.Option(Path("corpus"), "--corpus", help="Corpus directory."),
    run: Path | None = typer.Option(None, "--run", help="Pretrained retriever run directory."),
    k: int = typer.Option(25, "-k", min=1, help="Candidates retrieved per turn."),
    top: int = typer.Option(5, "--top", min=1, help="Recommendations shown per turn."),
) -> None:
    """Chat in the terminal: type what you like (put titles in "quotes"), get recommendations.
    An empty line or `quit` ends the chat."""
    with user_errors():
        from rar.data.types import Turn
        from rar.rankers.types import RankRequest

        cfg = ranker_config_from_flags(config, overrides, ranker, model, base_url)
        corpus, source, rk = _setup(corpus_dir, run, cfg)
        console.print(
            "[bold]RAR[/] movie recommender. Tell me what you like; empty line or 'quit' to stop."
        )
        turns: list[Turn] = []
        step = 0
        while True:
            text = typer.prompt("you", default="", show_default=False).strip()
            if not text or text.lower() in {"quit", "exit", "q"}:
                break
            turns.append(Turn("seeker", text))
            ids, how = source.candidates(turns, k)
            if not ids:
                console.print("[yellow]no candidates found; try describing a movie or genre[/]")
                continue
            step += 1
            [result] = rk.rank([RankRequest(f"chat:{step}", list(turns), ids)])
            if result.error:
                console.print(f"[yellow]ranker failed ({result.error}); showing {how} order[/]")
            print_ranking(corpus, result.ranked_ids, top)
            shown = [corpus.movie(corpus.index_of(c)).title for c in result.ranked_ids[:top]]
            turns.append(Turn("recommender", "You might like: " + "; ".join(shown)))
        rk.close()
        console.print("bye")
