"""Kaggle's IMDb top-1000 CSV (Series_Title, Released_Year, Runtime, Genre, IMDB_Rating,
Overview, Director, Star1..Star4, No_of_Votes); it has no IMDb ids, so it merges by title+year."""

from __future__ import annotations

from pathlib import Path

from corpus_builder.fields import genres, integer, number, split_names, text, title_and_year, year
from corpus_builder.records import BadInputError, MovieRecord, SkipLog
from corpus_builder.sources.base import SourceResult, csv_rows

NAME = "imdb_top1000"
DEFAULT_PATHS = ["metadata/imdb_top_1000.csv"]


# the columns this source is read for: a file without them would add movies with no director,
# plot or genres, which the corpus filter then drops without a word
REQUIRED = ["Series_Title", "Released_Year", "Director", "Overview"]
GENRE_COLUMNS = ("Genre", "Genres", "Genre1")  # any one of them carries the genres


def _check_header(path: Path, header: list[str]) -> None:
    """Refuse a file missing a column we read, naming each one and the way out."""
    missing = [c for c in REQUIRED if c not in header]
    if not any(c in header for c in GENRE_COLUMNS):
        missing.append(" or ".join(GENRE_COLUMNS))
    if missing:
        raise BadInputError(
            f"{path}:1: missing column(s) {', '.join(missing)} (header: {', '.join(header)}); "
            f"use the Kaggle IMDb top-1000 file as released, or leave {NAME} out of the "
            "corpus config's sources"
        )


def read(paths: list[Path], skips: SkipLog) -> SourceResult:
    result = SourceResult(files=list(paths))
    for path in paths:
        checked = False
        for line, row in csv_rows(path):
            if not checked:
                _check_header(path, list(row))
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
