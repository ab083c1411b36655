"""evaluation.md: the paper's columns first, then every metric with its CI, then ranker costs."""

from __future__ import annotations

from typing import Any

from rar.evaluation.failed_calls import failed_share

HEADLINE = ("ndcg@5", "recall@5", "ndcg@10", "recall@10")
SHORT = {"ndcg": "N", "recall": "R", "mrr": "MRR", "hit": "Hit"}


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def metric_label(key: str) -> str:
    """'N@10' for 'ndcg@10'."""
    family, _, cut = key.partition("@")
    return f"{SHORT.get(family, family)}@{cut}" if cut else key


def samples_summary(s: dict[str, Any]) -> str:
    """'150 samples evaluated (of 484 linked; 485 loaded, 1 dropped with no target in the
    corpus)' from evaluation.json's "samples" dict.

    The first figure is what the metrics average over (after `max_samples`), not the split."""
    kept = s.get("samples_kept", "?")
    evaluated = s.get("samples_evaluated", kept)  # files written before the field existed
    return (
        f"{evaluated} samples evaluated (of {kept} linked; {s.get('samples_in', '?')} loaded, "
        f"{s.get('dropped_no_linked_target', 0)} dropped with no target in the corpus)"
    )


def protocol_caption(data: dict[str, Any]) -> str:
    """'per-turn protocol, 246 rows' or 'per-item protocol (He et al. 2023), 310 rows from 246
    turns' from an evaluation.json dict: what one row of the metrics is, and how many there are
    (files written before the protocol existed are per-turn)."""
    from rar.data.linking import PROTOCOL_LABELS

    protocol = data.get("protocol") or "per_turn"
    s = data.get("samples", {})
    turns = s.get("samples_evaluated", s.get("samples_kept"))
    counts = {v.get("num_samples") for v in data.get("systems", {}).values()}
    rows = data.get("rows") or s.get("rows") or (counts.pop() if len(counts) == 1 else turns)
    if protocol == "per_turn":
        return f"per-turn protocol, {rows} rows"
    label = PROTOCOL_LABELS.get(protocol, protocol).split(" (", 1)[0]
    cite = " (He et al. 2023)" if protocol == "per_item" else ""
    return f"{label} protocol{cite}, {rows} rows from {turns} turns"


def _failed_cell(system: dict[str, Any]) -> str:
    """'3 (30.0%)' for a system with a ranker, '–' for a retriever alone."""
    failed = system.get("failed_samples")
    if failed is None:
        return "–"
    return f"{failed} ({failed_share(failed, system.get('num_samples') or 0):.1%})"


_PROTOCOL_NOTE = {
    "per_turn": "One row per recommender turn; recall is the share of its new movies found.",
    "per_item": "One row per ground-truth movie of a turn (same history and context); only "
    "that movie is a hit for the row, the turn's other movies are not masked.",
}


def render_markdown(data: dict[str, Any]) -> str:
    """Markdown tables from an evaluation.json dict (paper columns first, then CIs, then costs)."""
    systems: dict[str, Any] = data["systems"]
    lines = _header(data) + _headline_table(systems) + _ci_table(systems)
    if any(v.get("ranker") for v in systems.values()):
        lines += _ranker_table(systems)
    return "\n".join(lines) + "\n"


def _header(data: dict[str, Any]) -> list[str]:
    """Title, where the samples came from and how many were linked, and what one row is."""
    s = data.get("samples", {})
    return [
        f"# Evaluation: {data.get('dataset', '')} ({data.get('split', '')})",
        "",
        f"Data: `{data.get('data_source', '')}`; {samples_summary(s)}; "
        f"{s.get('targets_unlinked', 0)} of {s.get('targets', 0)} target mentions "
        f"and {s.get('history_unlinked', 0)} of {s.get('history_mentions', 0)} history mentions unlinked. "
        f"Retrieved candidates k = {data.get('k')}.",
        "",
        f"Protocol: {protocol_caption(data)}. "
        + _PROTOCOL_NOTE.get(data.get("protocol") or "per_turn", ""),
        "",
    ]


def _headline_table(systems: dict[str, Any]) -> list[str]:
    """The paper's columns (those computed), rows and failed calls; a note when any failed."""
    head = [k for k in HEADLINE if any(k in v["metrics"] for v in systems.values())]
    lines = [
        "| system | " + " | ".join(metric_label(k) for k in head) + " | rows | failed calls |",
        "|---|" + "---:|" * (len(head) + 2),
    ]
    for name, v in systems.items():
        vals = " | ".join(f"{v['metrics'].get(k, float('nan')):.4f}" for k in head)
        lines.append(f"| {name} | {vals} | {v['num_samples']} | {_failed_cell(v)} |")
    if any(v.get("failed_samples") for v in systems.values()):
        lines += [
            "",
            "**Failed ranker calls:** a sample whose ranker call failed is scored as a miss "
            "(0 on every metric), not as the retriever's order.",
        ]
    return lines


def _ci_table(systems: dict[str, Any]) -> list[str]:
    """Every metric of every system with its standard error and 95% CI."""
    all_keys: list[str] = []
    for v in systems.values():
        all_keys += [k for k in v["metrics"] if k not in all_keys]
    lines = ["", "## All metrics (mean ± standard error, [95% CI])", ""]
    lines += ["| system | metric | mean | se | 95% CI |", "|---|---|---:|---:|---|"]
    for name, v in systems.items():
        for key in all_keys:
            if key not in v["metrics"]:
                continue
            ci = v["metrics_ci"][key]
            lines.append(
                f"| {name} | {metric_label(key)} | {v['metrics'][key]:.4f} | {_fmt(ci['se'])} | "
                f"[{_fmt(ci['ci_low'])}, {_fmt(ci['ci_high'])}] |"
            )
    return lines


def _ranker_table(systems: dict[str, Any]) -> list[str]:
    """Per system with a ranker: calls, cache hits, failures, tokens, cost, parse outcomes."""
    lines = [
        "",
        "## Ranker usage",
        "",
        "Hallucination rate: listed titles matching no candidate, per title attempt; "
        "non-title lines (chatter, headers) are counted apart. Appended: share of candidates "
        "an LLM left out; they score as misses unless `parser.score_appended` is set.",
        "",
        "| system | backend | calls | cache hits | failures | prompt tokens | completion tokens "
        "| cost (USD) | hallucination rate | non-title lines | appended | seconds |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, v in systems.items():
        r = v.get("ranker")
        if not r:
            continue
        backend = r.get("backend", "")
        if r.get("model") and backend != "semantic":
            backend += f" ({r['model']})"
        lines.append(
            f"| {name} | {backend} | {r.get('calls', 0)} | {r.get('cache_hits', 0)} | "
            f"{r.get('failures', 0)} | {r.get('prompt_tokens', 0)} | {r.get('completion_tokens', 0)} | "
            f"{r.get('cost_usd', 0.0):.4f} | {r.get('hallucination_rate', 0.0):.2%} | "
            f"{r.get('non_title_lines', 0)} | {r.get('appended_share', 0.0):.1%} | "
            f"{v.get('seconds', 0):.1f} |"
        )
    return lines
