"""HTML for the demo page: mention chips, movie cards, the two-stage comparison, the cost table.

Everything a user typed or a model returned is escaped. Elements carry `data-*` attributes
(corpus id, stage, rank) so the browser test can read what is shown.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from html import escape
from typing import TYPE_CHECKING, Any

from rar.demo.linking import LinkedMention
from rar.demo.session import Session, TurnRecord, dropped_out, movement

if TYPE_CHECKING:
    from rar.corpus import Movie

# a sentence ends at . ! ? before a capital, but not after initials or abbreviations
# ("U.S. President", "J. R. R. Tolkien", "Mr. Smith")
_SENTENCE_END = re.compile(
    r"(?<=[.!?])(?<![A-Z]\.[A-Z]\.)(?<!\b[A-Z]\.)(?<!\bMr\.)(?<!\bMrs\.)(?<!\bMs\.)"
    r"(?<!\bDr\.)(?<!\bSt\.)(?<!\bJr\.)(?<!\bSr\.)(?<!\bvs\.)\s+(?=[A-Z0-9\"'(])"
)
PLOT_CHARS = 180

CSS = """
.rar-chips { display: flex; flex-wrap: wrap; gap: 6px; min-height: 1.6em; }
.rar-chip { display: inline-block; padding: 2px 10px; border-radius: 999px; font-size: 0.9em;
  background: #e8f0fe; color: #174ea6; border: 1px solid #aecbfa; }
.rar-chip.ambiguous { background: #fef7e0; color: #8a5a00; border-color: #fdd663; }
.rar-chip.missing { background: #fce8e6; color: #a50e0e; border-color: #f6aea9; }
.rar-hint { color: #666; font-size: 0.85em; }
.rar-stages { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
.rar-stage h3 { margin: 4px 0 8px 0; font-size: 1.05em; }
.rar-meta { color: #555; font-size: 0.85em; margin-bottom: 6px; }
.rar-card { border: 1px solid #ddd; border-radius: 8px; padding: 6px 10px; margin-bottom: 6px;
  background: #fff; color: #222; }
.rar-card .rar-rank { font-weight: 700; margin-right: 4px; color: #444; }
.rar-card .rar-title { font-weight: 600; }
.rar-card .rar-details { color: #555; font-size: 0.85em; }
.rar-card .rar-plot { color: #333; font-size: 0.85em; margin-top: 2px; }
.rar-move { float: right; font-size: 0.8em; font-weight: 600; padding: 1px 6px;
  border-radius: 6px; }
.rar-move.up { background: #e6f4ea; color: #137333; }
.rar-move.down { background: #fce8e6; color: #a50e0e; }
.rar-move.same { background: #f1f3f4; color: #555; }
.rar-card.appended { opacity: 0.7; border-style: dashed; }
.rar-failed { border: 1px solid #f6aea9; background: #fce8e6; color: #a50e0e; border-radius: 8px;
  padding: 10px; }
.rar-costs table { border-collapse: collapse; font-size: 0.9em; }
.rar-costs td, .rar-costs th { border-bottom: 1px solid #eee; padding: 3px 10px; text-align: right; }
.rar-costs td:first-child, .rar-costs th:first-child,
.rar-costs td:nth-child(2), .rar-costs th:nth-child(2),
.rar-costs td:nth-child(3), .rar-costs th:nth-child(3) { text-align: left; }
@media (prefers-color-scheme: dark) {
  .rar-card { background: #1f1f1f; color: #eee; border-color: #444; }
  .rar-card .rar-details, .rar-meta, .rar-card .rar-plot { color: #bbb; }
}
"""


# markdown punctuation that can make an element (a link or image: [ ] !, HTML: < > via escape)
# or restyle text (` * _ ~ | # + { } \\, and KaTeX's $); ( ) . - : only mean something after one
# of these, so titles keep their plain "Heat (1995)"
_MARKDOWN = re.compile(r"([\\`*_{}\[\]#+!|~$])")


def plain(text: object) -> str:
    """Text shown literally in a markdown-and-HTML view (the Gradio chat): HTML-escaped and
    with markdown punctuation backslash-escaped, so `<img src=x>` or `![x](/x)` in a message
    or a movie title is displayed as typed, never turned into an element."""
    return _MARKDOWN.sub(r"\\\1", escape(str(text or ""), quote=False))


def first_line(plot: Any, limit: int = PLOT_CHARS) -> str:
    """The plot's first sentence (or line), shortened at a word to `limit` characters."""
    text = " ".join(str(plot or "").split())
    if not text:
        return ""
    text = _SENTENCE_END.split(text, maxsplit=1)[0]
    if len(text) > limit:
        text = text[: limit - 1].rsplit(" ", 1)[0] + "…"
    return text


# ---------------------------------------------------------------------- chips
def chips_html(mentions: list[LinkedMention]) -> str:
    """One chip per mention: the linked title and year; ambiguous ones marked, unknown ones red."""
    if not mentions:
        return (
            '<div class="rar-chips" id="rar-chip-list"><span class="rar-hint">Movies you name '
            'are linked here as you type (put a title in "quotes" to be sure).</span></div>'
        )
    chips = []
    for mention in mentions:
        movie = mention.movie
        if movie is None:
            chips.append(
                f'<span class="rar-chip missing" data-typed="{escape(mention.text)}">'
                f"“{escape(mention.text)}”: not in the corpus</span>"
            )
            continue
        kind = "rar-chip ambiguous" if mention.needs_choice else "rar-chip"
        mark = " ?" if mention.needs_choice else ""
        chips.append(
            f'<span class="{kind}" data-corpus-id="{escape(movie.corpus_id)}" '
            f'data-typed="{escape(mention.text)}" title="you typed: {escape(mention.text)}">'
            f"{escape(movie.label)}{mark}</span>"
        )
    return '<div class="rar-chips" id="rar-chip-list">' + "".join(chips) + "</div>"


# ---------------------------------------------------------------------- cards
def _move_badge(delta: int | None, source_rank: int | None) -> str:
    if delta is None:
        return '<span class="rar-move up">new</span>'
    if delta > 0:
        return (
            f'<span class="rar-move up" title="retriever rank {source_rank}">▲ {delta}'
            f"{f' (from #{source_rank})' if source_rank else ''}</span>"
        )
    if delta < 0:
        return f'<span class="rar-move down" title="retriever rank {source_rank}">▼ {-delta}</span>'
    return '<span class="rar-move same">=</span>'


def card_html(
    movie: Movie,
    corpus_id: str,
    rank: int,
    stage: str,
    badge: str = "",
    appended: bool = False,
) -> str:
    details = []
    genres = list(movie.genres)[:3]
    if genres:
        details.append(", ".join(map(str, genres)))
    directors = list(movie.directors)[:2]
    if directors:
        details.append("dir. " + ", ".join(map(str, directors)))
    year = movie.year
    plot = first_line(movie.plot)
    classes = "rar-card appended" if appended else "rar-card"
    title_attr = ' title="not ranked by the model: appended in retriever order"' if appended else ""
    return (
        f'<div class="{classes}" data-stage="{stage}" data-rank="{rank}" '
        f'data-corpus-id="{escape(corpus_id)}"{title_attr}>{badge}'
        f'<span class="rar-rank">{rank}.</span>'
        f'<span class="rar-title">{escape(movie.title or corpus_id)}</span>'
        + (f' <span class="rar-year">({escape(str(year))})</span>' if year is not None else "")
        + (f'<div class="rar-details">{escape(" · ".join(details))}</div>' if details else "")
        + (f'<div class="rar-plot">{escape(plot)}</div>' if plot else "")
        + "</div>"
    )


def cost_line(record: TurnRecord) -> str:
    """Latency, and for LLM rankers tokens and cost, of one ranker call."""
    parts = [f"{record.latency_s:.2f} s"]
    if record.prompt_tokens is not None:
        parts.append(f"{record.prompt_tokens:,} + {record.completion_tokens or 0:,} tokens")
        if record.cached:
            parts.append(f"$0 (cached; ${record.cost_usd or 0:.5f} when first called)")
        else:
            parts.append(f"${record.cost_usd or 0:.5f}")
    elif record.cached:
        parts.append("cached")
    return " · ".join(parts)


def stages_html(record: TurnRecord, movie_of: Callable[[str], Movie], turn_number: int) -> str:
    """The ranker's top-k beside the retriever's top-k for one recommender turn."""
    retriever_col = _retriever_stage(record, movie_of)
    if record.backend == "retriever only" and not record.error:
        ranker_col = _skipped_ranker_stage()
    elif record.error or record.ranked_ids is None:
        ranker_col = _failed_ranker_stage(record)
    else:
        ranker_col = _ranker_stage(record, record.ranked_ids, movie_of)
    return (
        f'<div class="rar-turn" data-turn="{turn_number}"><div class="rar-stages">'
        f"{ranker_col}{retriever_col}</div></div>"
    )


def _retriever_stage(record: TurnRecord, movie_of: Callable[[str], Movie]) -> str:
    """The retriever's top-k: how the candidates were found, and how many the ranker got."""
    k, retr = record.k, record.retriever_ids
    cards = "".join(
        card_html(movie_of(cid), cid, i + 1, "retriever") for i, cid in enumerate(retr[:k])
    )
    head = (
        f'<h3>Retriever top-{k}</h3><div class="rar-meta">{escape(record.how)}'
        + (" (named so far, by you or in a recommendation)" if "mentioned" in record.how else "")
        + f"; {len(retr)} candidates passed to the ranker</div>"
    )
    return f'<div class="rar-stage" id="rar-retriever-stage">{head}{cards}</div>'


def _skipped_ranker_stage() -> str:
    """No ranker selected: say so, since the list the user sees is the retriever's."""
    return (
        '<div class="rar-stage" id="rar-ranker-stage" data-status="skipped"><h3>Ranker</h3>'
        '<div class="rar-meta">retriever only: no ranker selected, so the list shown to '
        "the user is the retriever's own</div></div>"
    )


def _failed_ranker_stage(record: TurnRecord) -> str:
    """The ranker call failed: its error and cost, and no ranking (never a stand-in one)."""
    return (
        f'<div class="rar-stage" id="rar-ranker-stage" data-status="failed">'
        f"<h3>Ranker: {escape(record.backend)}</h3>"
        f'<div class="rar-failed"><b>The ranker call failed</b>: {escape(record.error or "")}'
        f"<br>No ranking is shown for this turn; the retriever's candidates are on the right, "
        f"in the retriever's order.</div>"
        f'<div class="rar-meta">{escape(cost_line(record))}</div></div>'
    )


def _ranker_stage(record: TurnRecord, ranked: list[str], movie_of: Callable[[str], Movie]) -> str:
    """The ranker's top-k with how far each movie moved versus the retriever, the candidates
    it appended (dashed), and the retriever's movies it pushed out of the top-k."""
    k, retr = record.k, record.retriever_ids
    position = {cid: i + 1 for i, cid in enumerate(retr)}
    moves = movement(retr, ranked)
    model_ranked = record.n_model_ranked
    cards = []
    for i, cid in enumerate(ranked[:k]):
        appended = model_ranked is not None and i >= model_ranked
        badge = _move_badge(moves.get(cid), position.get(cid))
        cards.append(card_html(movie_of(cid), cid, i + 1, "ranker", badge, appended))
    out = dropped_out(retr, ranked, k)
    out_html = ""
    if out:
        names = ", ".join(escape(movie_of(c).display) for c in out)
        out_html = (
            f'<div class="rar-meta" id="rar-pushed-out">Moved out of the top-{k}: {names}</div>'
        )
    note = ""
    if model_ranked is not None and model_ranked < min(k, len(ranked)):
        note = (
            f'<div class="rar-meta">the model ranked {model_ranked} of {len(retr)}; dashed '
            "cards follow in retriever order</div>"
        )
    return (
        f'<div class="rar-stage" id="rar-ranker-stage" data-status="{record.status}">'
        f"<h3>Ranker top-{k}: {escape(record.backend)}</h3>"
        f'<div class="rar-meta">{escape(cost_line(record))}; ▲/▼ = places moved versus '
        f"the retriever</div>{note}" + "".join(cards) + out_html + "</div>"
    )


def empty_stages_html() -> str:
    return (
        '<div class="rar-turn" data-turn="0"><div class="rar-hint">Recommendations appear '
        "here after your first message: the ranker's top-k on the left, the retriever's on "
        "the right.</div></div>"
    )


def costs_html(session: Session) -> str:
    """A row per recommender turn: ranker, status, latency, tokens, cost; totals at the end."""
    if not session.records:
        return '<div class="rar-costs"></div>'
    rows = []
    total_cost, total_in, total_out = 0.0, 0, 0
    for i, record in enumerate(session.records, 1):
        tokens = (
            f"{record.prompt_tokens:,} / {record.completion_tokens or 0:,}"
            if record.prompt_tokens is not None
            else "–"
        )
        if record.cost_usd is None:
            cost = "–"
        elif record.cached:
            cost = "$0 (cached)"
        else:
            cost = f"${record.cost_usd:.5f}"
            total_cost += record.cost_usd
        if record.prompt_tokens is not None and not record.cached:
            total_in += record.prompt_tokens
            total_out += record.completion_tokens or 0
        status = escape(record.status + (f": {record.error}" if record.error else ""))
        latency = f"{record.latency_s:.2f} s" if record.backend != "retriever only" else "–"
        rows.append(
            f'<tr data-turn="{i}" data-status="{escape(record.status)}"><td>{i}</td>'
            f"<td>{escape(record.backend)}</td><td>{status}</td><td>{latency}</td>"
            f"<td>{tokens}</td><td>{cost}</td></tr>"
        )
    return (
        '<div class="rar-costs"><table id="rar-cost-table"><thead><tr><th>turn</th><th>ranker</th>'
        "<th>status</th><th>latency</th><th>tokens in / out</th><th>cost</th></tr></thead>"
        "<tbody>"
        + "".join(rows)
        + "</tbody>"
        + (
            f"<tfoot><tr><td>total</td><td></td><td></td><td></td>"
            f"<td>{total_in:,} / {total_out:,}</td><td>${total_cost:.5f}</td></tr></tfoot>"
            if any(r.cost_usd is not None for r in session.records)
            else ""
        )
        + "</table></div>"
    )
