"""The prompt token budget: trim candidate metadata until a prompt fits, and never send one past
the model's context window.

Trimming goes through `trim_levels`: the configured prompt, then the plot shortened by halves,
then each field of `trim_order` dropped in turn (plot, cast, writers, directors, genres), down to
titles and years. The first level that fits the budget is sent. When even the last level does
not fit the context window, the request fails with a message naming the window and the size;
when it fits the window but not the (softer) budget, it is sent and counted as over budget.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rar.rankers.ranker_config import PromptConfig

MIN_PLOT_CHARS = 50  # shorter plots say nothing; the next level drops the plot


class PromptTooLongError(ValueError):
    """Even the most trimmed prompt does not fit the model's context window."""


def trim_levels(config: PromptConfig) -> list[PromptConfig]:
    """Prompt configs from the configured one to titles only, each with less metadata."""
    levels = [config]
    fields = list(config.fields)
    plot_chars = config.plot_max_chars
    for name in config.trim_order:
        if name not in fields:
            continue
        if name == "plot":
            while plot_chars // 2 >= MIN_PLOT_CHARS:
                plot_chars //= 2
                levels.append(
                    config.model_copy(update={"fields": list(fields), "plot_max_chars": plot_chars})
                )
        fields.remove(name)
        levels.append(
            config.model_copy(update={"fields": list(fields), "plot_max_chars": plot_chars})
        )
    return levels


@dataclass
class FittedPrompt:
    text: str
    tokens: int  # counted prompt tokens
    level: int  # 0 = untrimmed; index into trim_levels
    over_budget: bool  # fits the window but not max_prompt_tokens


def window_limit(context_window: int | None, max_tokens: int | None) -> int | None:
    """Most prompt tokens the window allows: the window minus the reply's max_tokens."""
    if context_window is None:
        return None
    return context_window - (max_tokens or 0)


def fit_prompt(
    render: Callable[[int, PromptConfig], str],
    count: Callable[[str], int],
    config: PromptConfig,
    context_window: int | None,
    max_tokens: int | None,
) -> FittedPrompt:
    """The least-trimmed prompt that fits; `render(level, config)` builds the prompt text.

    Without a budget or a window the prompt is sent as configured (and still counted)."""
    limit = window_limit(context_window, max_tokens)
    budget = config.max_prompt_tokens
    target = min(x for x in (budget, limit) if x is not None) if (budget or limit) else None
    levels = trim_levels(config) if target is not None else [config]
    text, tokens = "", 0
    for level, cfg in enumerate(levels):
        text = render(level, cfg)
        tokens = count(text)
        if target is None or tokens <= target:
            return FittedPrompt(text, tokens, level, False)
    if limit is not None and tokens > limit:
        reply = f" + max_tokens {max_tokens}" if max_tokens else ""
        raise PromptTooLongError(
            f"prompt of {tokens} tokens{reply} exceeds the model's context window of "
            f"{context_window} tokens even with titles only; raise ranker.context_window, lower "
            "ranker.max_tokens, or shorten the conversation (ranker.prompt.max_context_turns)"
        )
    return FittedPrompt(text, tokens, len(levels) - 1, True)
