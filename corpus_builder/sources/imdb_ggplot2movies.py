"""The 58,788-title IMDb extract shipped in R's ggplot2movies (title, year, length, rating,
votes, mpaa, genre flags); no ids and no plots, so it widens coverage and adds ratings/votes."""

from __future__ import annotations

from pathlib import Path

from corpus_builder.fields import genres, integer, number, text, title_and_year, year
from corpus_builder.records import MovieRecord, SkipLog
from corpus_builder.sources.base import SourceResult, csv_rows, require_columns

NAME = "imdb_ggplot2movies"
DEFAULT_PATHS = ["metadata/imdb_titles_ggplot2movies.csv"]
GENRE_FLAGS = ["Action", "Animation", "Comedy", "Drama", "Documentary", "Romance", "Short"]


def read(paths: list[Path], skips: SkipLog) -> SourceResult:
    result = SourceResult(files=list(paths))
    for path in paths:
        checked = False
        for line, row in csv_rows(path):
            if not checked:
                require_columns(path, list(row), ["title", "year"])
                checked = True
            raw_title = text(row.get("title"))
            release = year(row.get("year"))
            if not raw_title or release is None:
                skips.skip(
                    NAME,
                    path,
                    line,
                    f"bad row: expected a title and a year, got {raw_title!r}, {row.get('year')!r}",
                )
                continue
            title, _ = title_and_year(raw_title)
            record = MovieRecord(
                NAME,
                f"{row.get('rownames') or line}",
                title,
                release,
                genres=genres([g for g in GENRE_FLAGS if (row.get(g) or "").strip() == "1"]),
                runtime=number(row.get("length")),
                rating=number(row.get("rating")),
                votes=integer(row.get("votes")),
            )
            result.add(record)
    return result
