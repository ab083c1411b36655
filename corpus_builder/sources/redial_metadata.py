"""ReDial metadata tables: `redial_id2info.json` (keyed by ReDial movieId, with IMDb ids) and
`redial_movie_db.jsonl` (lower-cased titles, no year, own ids: attached to movies by title)."""

from __future__ import annotations

import json
from pathlib import Path

from corpus_builder.fields import genres, imdb_id, split_names, text, title_and_year
from corpus_builder.records import BadInputError, MovieRecord, SkipLog
from corpus_builder.sources.base import SourceResult, read_text

NAME = "redial_metadata"
DEFAULT_PATHS = ["metadata/redial_id2info.json", "metadata/redial_movie_db.jsonl"]


def _read_id2info(path: Path, result: SourceResult, skips: SkipLog) -> None:
    try:
        table = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise BadInputError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(table, dict):
        raise BadInputError(f"{path}:1: expected an object keyed by ReDial movieId")
    for movie_id, info in table.items():
        if not isinstance(info, dict) or not info.get("name"):
            skips.skip(NAME, path, None, f"bad entry: movieId {movie_id} has no 'name'")
            continue
        title, year = title_and_year(info["name"])
        record = MovieRecord(
            NAME,
            str(movie_id),
            title,
            year,
            genres=genres(info.get("genre")),
            directors=split_names(info.get("director")),
            cast=split_names(info.get("star")),
            writers=split_names(info.get("writer")),
            plot=text(info.get("plot")),
            imdb_id=imdb_id(info.get("imdb_id")),
        )
        result.add(record, "redial", str(movie_id))


def _read_movie_db(path: Path, result: SourceResult, skips: SkipLog) -> None:
    for line_no, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            skips.skip(NAME, path, line_no, f"bad JSON: {exc.msg}")
            continue
        if not isinstance(row, dict) or not row.get("title"):
            skips.skip(NAME, path, line_no, "bad row: expected an object with a 'title'")
            continue
        title, year = title_and_year(row["title"])
        record = MovieRecord(
            NAME,
            f"db:{row.get('pecrs_id', line_no)}",
            title,
            year,
            genres=genres(row.get("genres")),
            directors=split_names(row.get("director")),
            cast=split_names(row.get("actors")),
            plot=text(row.get("plot")),
            catalogue="redial_movie_db",
            weak=True,  # lower-cased title without year: only enriches a movie found elsewhere
        )
        result.add(record)


def read(paths: list[Path], skips: SkipLog) -> SourceResult:
    result = SourceResult(files=list(paths))
    for path in paths:
        if path.suffix == ".jsonl":
            _read_movie_db(path, result, skips)
        else:
            _read_id2info(path, result, skips)
    return result
