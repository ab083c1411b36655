"""Turn an LLM reply into a ranking of candidates, counting what could not be matched.

Accepts numbered lists, bullets, markdown (bold, headings), "1) Title (Year) - reason",
JSON arrays (of strings or of objects with a title) and chatter before/after the list.
Every item is fuzzy-matched (year-aware, threshold 0.85) against the candidate titles only;
items matching no candidate are hallucinations.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache

from rar.matching import TitleMatcher, normalize_title

_MARKER = re.compile(
    r"^\s*(?:#{1,6}\s*)?(?:\*\*|__)?\s*(?:\d{1,3}\s*[.):\]]|\d{1,3}\s+-|[-*•+▪◦])\s+"
)
_HEADING = re.compile(r"^\s*#{1,6}\s+")
_YEAR = re.compile(r"\((\d{4})\)")
_SEPARATORS = (" - ", " – ", " — ", ": ", " -- ", " | ", " because ")
_TITLE_KEYS = ("title", "name", "movie", "movie_name", "movie_title")


@dataclass
class ParsedRanking:
    """Candidate positions in ranked order plus bookkeeping about the reply."""

    indices: list[int]
    hallucinations: list[str] = field(default_factory=list)
    n_items: int = 0  # list items found in the reply
    n_matched: int = 0
    n_duplicates: int = 0
    n_appended: int = 0


def _clean(text: str) -> str:
    text = _HEADING.sub("", text)
    text = text.replace("**", "").replace("__", "").replace("`", "")
    text = text.strip().strip("*_\"'“”‘’").strip()
    return text


def _json_items(reply: str) -> list[str] | None:
    """Items of the first JSON array in the reply (strings or objects with a title), else None."""
    start, end = reply.find("["), reply.rfind("]")
    if start < 0 or end <= start:
        return None
    try:
        data = json.loads(reply[start : end + 1])
    except (json.JSONDecodeError, ValueError):
        return None
    if not isinstance(data, list):
        return None
    items: list[str] = []
    for entry in data:
        if isinstance(entry, str):
            items.append(entry)
        elif isinstance(entry, dict):
            key = next((k for k in _TITLE_KEYS if isinstance(entry.get(k), str)), None)
            if key is None:
                continue
            title = entry[key]
            year = entry.get("year")
            items.append(
                f"{title} ({year})"
                if isinstance(year, (int, str)) and str(year).isdigit()
                else title
            )
    return items if items else None


def _line_items(reply: str) -> list[str]:
    """List items from text: marked lines (numbers/bullets) if any, else every non-empty line."""
    lines = [line for line in reply.splitlines() if line.strip()]
    marked = [_MARKER.sub("", line) for line in lines if _MARKER.match(line)]
    chosen = marked if marked else [line for line in lines if not line.rstrip().endswith(":")]
    return [c for c in (_clean(x) for x in chosen) if c]


def extract_items(reply: str) -> list[str]:
    """The reply's list items, in order, before matching."""
    items = _json_items(reply)
    if items is not None:
        return [c for c in (_clean(x) for x in items) if c]
    return _line_items(reply)


def _variants(item: str) -> list[tuple[str, int | None]]:
    """Title guesses for an item: the whole line, text before the year, text before separators."""
    out: list[tuple[str, int | None]] = []
    m = _YEAR.search(item)
    if m:
        out.append((item[: m.start()].strip(), int(m.group(1))))
    out.append((item, None))
    for sep in _SEPARATORS:
        pos = item.find(sep)
        while pos > 0:
            head = item[:pos].strip()
            ym = _YEAR.search(head)
            out.append(
                (head[: ym.start()].strip() if ym else head, int(ym.group(1)) if ym else None)
            )
            pos = item.find(sep, pos + 1)
    seen: set[tuple[str, int | None]] = set()
    return [v for v in out if v[0] and not (v in seen or seen.add(v))]


_normalized = lru_cache(maxsize=262_144)(normalize_title)  # titles repeat across requests


class CandidateMatcher:
    """Exact normalised-title hits first (cheap, the common case for LLM replies), else the
    fuzzy, year-aware :class:`TitleMatcher`, built only when some item needs it."""

    def __init__(self, titles: list[str], years: list[int | None] | None, threshold: float):
        self.titles = titles
        self.years = years if years is not None else [None] * len(titles)
        self.threshold = threshold
        self._by_key: dict[str, list[int]] = {}
        for i, title in enumerate(titles):
            self._by_key.setdefault(_normalized(title), []).append(i)
        self._fuzzy: TitleMatcher | None = None

    def exact(self, text: str, year: int | None) -> int | None:
        hits = self._by_key.get(_normalized(text))
        if not hits:
            return None
        if len(hits) == 1 or year is None:
            return hits[0]
        return min(hits, key=lambda i: abs((self.years[i] or 10_000) - year))

    @property
    def fuzzy(self) -> TitleMatcher:
        if self._fuzzy is None:
            self._fuzzy = TitleMatcher(self.titles, years=self.years, threshold=self.threshold)
        return self._fuzzy


def match_item(matcher: CandidateMatcher, item: str) -> int | None:
    """Best candidate index for one item (highest score over its title guesses), else None."""
    variants = _variants(item)
    for text, year in variants:
        idx = matcher.exact(text, year)
        if idx is not None:
            return idx
    best = None
    for text, year in variants:
        m = matcher.fuzzy.match(text, year=year)
        if m is not None and (best is None or m.score > best.score):
            best = m
            if m.score >= 1.0:
                break
    return None if best is None else best.index


def parse_ranking(
    reply: str,
    titles: list[str],
    years: list[int | None] | None = None,
    threshold: float = 0.85,
    append_missing: bool = True,
    retriever_order: list[int] | None = None,
) -> ParsedRanking:
    """Rank candidate positions (0..len(titles)-1) as the reply orders them.

    `retriever_order` is the order used to append omitted candidates (default 0..n-1).
    """
    matcher = CandidateMatcher(titles, years, threshold)
    items = extract_items(reply)
    ranked: list[int] = []
    seen: set[int] = set()
    result = ParsedRanking(indices=ranked, n_items=len(items))
    for item in items:
        idx = match_item(matcher, item)
        if idx is None:
            result.hallucinations.append(item)
        elif idx in seen:
            result.n_duplicates += 1
        else:
            seen.add(idx)
            ranked.append(idx)
    result.n_matched = len(ranked)
    if append_missing:
        for idx in retriever_order if retriever_order is not None else range(len(titles)):
            if idx not in seen:
                ranked.append(idx)
                seen.add(idx)
                result.n_appended += 1
    return result
