"""Kaggle's IMDb top-1000 CSV (Series_Title, Released_Year, Runtime, Genre, IMDB_Rating,
Overview, Director, Star1..Star4, No_of_Votes); it has no IMDb ids, so it merges by title+year."""

from __future__ import annotations

from pathlib import Path

from corpus_builder.fields import genres, integer, number, split_names, text, title_and_year, year
from corpus_builder.records import MovieRecord, SkipLog
from corpus_builder.sources.base import SourceResult, csv_rows, require_columns

NAME = "imdb_top1000"
DEFAULT_PATHS = ["metadata/imdb_top_1000.csv"]


def read(paths: list[Path], skips: SkipLog) -> SourceResult:
    result = SourceResult(files=list(paths))
    for path in paths:
        checked = False
        for line, row in csv_rows(path):
            if not checked:
                require_columns(path, list(row), ["Series_Title", "Released_Year"])
                checked = True
            raw_title = text(row.get("Series_Title"))
            if not raw_title:
                skips.skip(NAME, path, line, "bad row: empty Series_Title")
                continue
            title, _ = title_and_year(raw_title)
            genre_text = row.get("Genre") or ",".join(
                g for g in (row.get("Genre1"), row.get("Genre2"), row.get("Genre3")) if g
            )
            if not genre_text and row.get("Genres"):
                genre_text = row["Genres"]
            stars = [row.get(f"Star{i}") for i in range(1, 5)]
            record = MovieRecord(
                NAME,
                f"{raw_title}|{row.get('Released_Year')}",
                title,
                year(row.get("Released_Year")),
                genres=genres(genre_text),
                directors=split_names(row.get("Director")),
                cast=split_names([s for s in stars if s]) or split_names(row.get("Stars")),
                plot=text(row.get("Overview")),
                runtime=number(row.get("Runtime")),
                rating=number(row.get("IMDB_Rating")),
                votes=integer(row.get("No_of_Votes")),
            )
            result.add(record)
    return result
