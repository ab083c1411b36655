"""The terminal result table never cuts a system name: rendered by rich at 80 columns (the
width of a log or a plain terminal) and wider."""

from __future__ import annotations

import io

from rich.console import Console

from rar.evaluation.result_table import summary_table

METRICS = {"ndcg@5": 0.1234, "recall@5": 0.2345, "ndcg@10": 0.1456, "recall@10": 0.3456}
CI = {k: {"se": 0.01, "ci_low": v - 0.02, "ci_high": v + 0.02} for k, v in METRICS.items()}


def evaluation(names: list[str]) -> dict:
    systems = {}
    for i, name in enumerate(names):
        systems[name] = {"metrics": METRICS, "metrics_ci": CI, "num_samples": 150}
        if i:
            systems[name] |= {"ranker": {"calls": 150, "cache_hits": 7}, "failed_samples": 3}
    return {"dataset": "redial", "split": "test", "k": 25, "systems": systems}


def render(data: dict, width: int) -> str:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(summary_table(data))
    return out.getvalue()


def test_long_names_get_stable_labels_and_a_legend_at_80_columns():
    names = ["quickstart-retriever", "quickstart-rar + openai:gpt-5-mini-2025-08-07"]
    text = render(evaluation(names), 80)
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    assert "S1 = quickstart-retriever" in text
    assert "S2 = quickstart-rar + openai:gpt-5-mini-2025-08-07" in text
    assert "3 " in text and "2%" in text and "150/7" in text  # failed calls and share, calls/hits


def test_names_that_fit_when_wrapped_are_wrapped_at_spaces_not_cut():
    names = ["LRURec (retriever only)", "LRURec + ranker (no post-training)", "SFT + ranker"]
    text = render(evaluation(names), 80)
    assert "…" not in text and "S1" not in text
    rows = [line.split("│")[1].strip() for line in text.splitlines() if line.startswith("│")]
    words = " ".join(r for r in rows if r).split()
    assert " ".join(words) == " ".join(" ".join(names).split())  # every word, in order, whole


def test_a_wide_terminal_shows_names_and_intervals_on_one_line():
    names = ["quickstart-retriever", "quickstart-rar + openai:gpt-5-mini-2025-08-07"]
    text = render(evaluation(names), 160)
    assert "│ quickstart-rar + openai:gpt-5-mini-2025-08-07 │ 0.1234 ±0.0200 │" in text
    assert "S1 =" not in text
