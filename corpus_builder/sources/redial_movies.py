"""ReDial's official movie list `movies_with_mentions.csv` (movieId, movieName, nbMentions)."""

from __future__ import annotations

from pathlib import Path

from corpus_builder.fields import integer, title_and_year
from corpus_builder.records import MovieRecord, SkipLog
from corpus_builder.sources.base import SourceResult, csv_rows, require_columns

NAME = "redial_movies"
DEFAULT_PATHS = ["redial/movies_with_mentions.csv"]


def read(paths: list[Path], skips: SkipLog) -> SourceResult:
    result = SourceResult(files=list(paths))
    for path in paths:
        first = True
        for line, row in csv_rows(path):
            if first:
                require_columns(path, list(row), ["movieId", "movieName"])
                first = False
            movie_id = (row.get("movieId") or "").strip()
            name = (row.get("movieName") or "").strip()
            if not movie_id.isdigit() or not name:
                skips.skip(
                    NAME,
                    path,
                    line,
                    f"bad row: expected numeric movieId and a movieName, got {row}",
                )
                continue
            title, year = title_and_year(name)
            record = MovieRecord(NAME, movie_id, title, year)
            index = result.add(record, "redial", movie_id)
            # nbMentions is popularity within ReDial, not IMDb votes
            result.popularity[index] = integer(row.get("nbMentions")) or 0
    return result
