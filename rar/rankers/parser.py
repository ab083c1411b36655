"""Turn an LLM reply into a ranking of candidates, telling failure from hallucination.

Accepts numbered lists, bullets, markdown (bold, headings), "1) Title (Year) - reason",
JSON arrays (of strings or of objects with a title) and chatter before/after the list.

Which lines are title attempts is decided by structure, before any matching:

- an entry of a JSON array, or a numbered or bulleted list item ("1.", "2)", "-", "*", "•"),
  is a title attempt, unless it ends with ":" (a header such as "- **Comedies:**");
- in a reply that has list items, every other line (greetings, headers, "I'm glad you
  enjoyed the conversation…", reasons on their own line) is a non-title line;
- in a reply without any list item, a line is a title attempt when it is title-shaped: at
  most 12 words, and not a sentence (4+ words ending in . ! ? or …); a line ending in ":" is
  a header; other lines are prose, which counts as a title attempt only if it matches a
  candidate;
- lines without a letter or digit ("---", "```") are ignored.

Every title attempt is fuzzy-matched (year-aware, threshold 0.85) against the candidate
titles only. An attempt matching no candidate is a hallucination; a non-title line is not
(it is counted separately, so a chatty reply is not mistaken for an invented movie).
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
_HAS_WORD = re.compile(r"\w")
_SENTENCE_END = re.compile(r"[.!?…]\W*$")
MAX_TITLE_WORDS = 12
TITLE, PROSE, OTHER = "title", "prose", "other"  # line tags, see the module docstring
_YEAR = re.compile(r"\((\d{4})\)")
_SEPARATORS = (" - ", " – ", " — ", ": ", " -- ", " | ", " because ")
_TITLE_KEYS = ("title", "name", "movie", "movie_name", "movie_title")


@dataclass
class ParsedRanking:
    """Candidate positions in ranked order plus bookkeeping about the reply."""

    indices: list[int]
    hallucinations: list[str] = field(default_factory=list)  # title attempts matching nothing
    non_titles: list[str] = field(default_factory=list)  # chatter, headers, commentary
    n_items: int = 0  # title attempts in the reply
    n_matched: int = 0  # candidates the reply ranked (the leading `indices`)
    n_duplicates: int = 0
    n_appended: int = 0  # candidates the reply left out, appended in retriever order


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


def _title_shaped(line: str) -> bool:
    """Short enough to be a title and not a sentence (see the module docstring)."""
    words = line.split()
    if len(words) > MAX_TITLE_WORDS:
        return False
    return not (len(words) >= 4 and _SENTENCE_END.search(line))


def _tag_lines(lines: list[str], marked: bool) -> list[tuple[str, str]]:
    """Tag raw lines (see the module docstring); `marked`: the reply has list items."""
    out: list[tuple[str, str]] = []
    for line in lines:
        is_item = _MARKER.match(line) is not None
        text = _clean(_MARKER.sub("", line) if is_item else line)
        if not _HAS_WORD.search(text):
            continue
        if text.endswith(":"):
            tag = OTHER  # a header
        elif marked:
            tag = TITLE if is_item else OTHER
        else:
            tag = TITLE if _title_shaped(text) else PROSE
        out.append((text, tag))
    return out


def reply_lines(reply: str) -> list[tuple[str, str]]:
    """Every meaningful line of the reply, cleaned and in order, tagged TITLE (a title attempt),
    PROSE (a title only if it matches a candidate) or OTHER (never a title)."""
    items = _json_items(reply)
    if items is not None:
        start, end = reply.find("["), reply.rfind("]")
        around = (reply[:start] + "\n" + reply[end + 1 :]).splitlines()
        chatter = [(text, OTHER) for text, _ in _tag_lines(around, marked=True)]
        return [(c, TITLE) for c in (_clean(x) for x in items) if c] + chatter
    lines = [line for line in reply.splitlines() if line.strip()]
    marked = any(_MARKER.match(line) for line in lines)
    return _tag_lines(lines, marked)


def extract_items(reply: str) -> list[str]:
    """The reply's title attempts, in order, before matching."""
    return [text for text, tag in reply_lines(reply) if tag == TITLE]


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
    return list(dict.fromkeys(v for v in out if v[0]))  # each variant once, first place kept


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
    ranked: list[int] = []
    seen: set[int] = set()
    result = ParsedRanking(indices=ranked)
    for text, tag in reply_lines(reply):
        idx = None if tag == OTHER else match_item(matcher, text)
        if idx is None and tag != TITLE:
            result.non_titles.append(text)
            continue
        result.n_items += 1
        if idx is None:
            result.hallucinations.append(text)
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
