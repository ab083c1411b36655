"""Link every dataset's movie keys (and mentions in its dialogues) to merged movies.

Id-keyed datasets (ReDial movieId, MovieLens movieId, Reddit "Title (Year)") link exactly through
the catalogue record that carries the key. Mentions the catalogue does not cover (INSPIRED
titles, ReDial ids missing from the movie list) are matched by title with `TitleMatcher`.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rar.corpus.movie import Movie
from rar.matching import TitleMatcher

log = logging.getLogger(__name__)


@dataclass
class LinkTable:
    """One dataset's links: rows (key, title, movie row or -1, score, method) and mention counts."""

    dataset: str
    keys: list[str] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)  # mention occurrences (0 = catalogue only)
    mention_source: str = "catalogue"

    def stats(self) -> dict:
        rows = np.asarray(self.rows, dtype=np.int64)
        counts = np.asarray(self.counts, dtype=np.int64)
        linked = rows >= 0
        mentioned = counts > 0
        out = {
            "keys": int(len(rows)),
            "keys_linked": int(linked.sum()),
            "key_link_rate": round(float(linked.mean()), 6) if len(rows) else None,
            "mention_source": self.mention_source,
            "mentioned_keys": int(mentioned.sum()),
            "mentioned_keys_linked": int((linked & mentioned).sum()),
            "mentions": int(counts.sum()),
            "mentions_linked": int(counts[linked].sum()),
            "mention_link_rate": round(float(counts[linked].sum() / counts.sum()), 6)
            if counts.sum()
            else None,
            "methods": dict(sorted(Counter(self.methods).items())),
        }
        return out

    def unlinked(self) -> list[dict]:
        """Unlinked keys, most-mentioned first."""
        items = [
            {"key": k, "title": t, "mentions": c, "reason": m}
            for k, t, r, c, m in zip(
                self.keys, self.titles, self.rows, self.counts, self.methods, strict=True
            )
            if r < 0
        ]
        return sorted(items, key=lambda x: (-x["mentions"], x["key"]))


def collect_mentions(dataset: str, data_dir: Path) -> tuple[Counter, dict[str, str]] | None:
    """Mention occurrences per key (one per dialogue and key) and a title per key, via rar.data.

    None when the dataset's dialogues are not available (e.g. Reddit-Movie has only its catalogue).
    """
    from rar.data.registry import load_conversation_samples

    try:
        samples = load_conversation_samples(dataset, data_dir, "all")
    except (FileNotFoundError, ValueError) as exc:
        log.info("no dialogues for %s: %s", dataset, exc)
        return None
    seen: set[tuple[str, str]] = set()
    counts: Counter = Counter()
    titles: dict[str, str] = {}
    for sample in samples:
        mentions = [m for turn in sample.context for m in turn.mentions]
        mentions += list(sample.history) + list(sample.targets)
        for mention in mentions:
            pair = (sample.dialogue_id, mention.key)
            titles.setdefault(mention.key, mention.title)
            if pair not in seen:
                seen.add(pair)
                counts[mention.key] += 1
    return counts, titles


class MovieMatcher:
    """TitleMatcher over merged movies, built once and shared by all datasets."""

    def __init__(self, movies: list[Movie], popularity: np.ndarray, threshold: float):
        self.matcher = TitleMatcher(
            [m.title for m in movies],
            [m.year for m in movies],
            threshold=threshold,
            popularity=popularity,
        )

    def match(self, titles: list[str]) -> list[tuple[int, float, str]]:
        out = []
        for match in self.matcher.match_many(titles):
            out.append(
                (-1, 0.0, "no_match") if match is None else (match.index, match.score, match.method)
            )
        return out


def link_dataset(
    dataset: str,
    catalogue: dict[str, list[int]],
    record_movie: np.ndarray,
    record_titles: list[str],
    mentions: tuple[Counter, dict[str, str]] | None,
    matcher: MovieMatcher,
) -> LinkTable:
    """Link table of one dataset: catalogue keys exactly, other mention keys by title."""
    table = LinkTable(dataset, mention_source="dialogues" if mentions else "catalogue")
    counts, mention_titles = mentions if mentions else (Counter(), {})
    keys = sorted(set(catalogue) | set(counts))
    to_match: list[int] = []
    for key in keys:
        row, score, method = -1, 0.0, "no_match"
        title = mention_titles.get(key, "")
        for record in catalogue.get(key, ()):
            title = title or record_titles[record]
            if record_movie[record] >= 0:
                row, score, method = int(record_movie[record]), 1.0, "catalogue"
                break
        table.keys.append(key)
        table.titles.append(title or key)
        table.rows.append(row)
        table.scores.append(score)
        table.methods.append(method)
        table.counts.append(int(counts.get(key, 0)))
        if row < 0:
            to_match.append(len(table.keys) - 1)
    if to_match:
        found = matcher.match([table.titles[i] for i in to_match])
        for i, (row, score, method) in zip(to_match, found, strict=True):
            table.rows[i], table.scores[i], table.methods[i] = row, round(float(score), 6), method
    return table
