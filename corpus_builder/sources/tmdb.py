"""TMDB movie exports, two accepted formats:

- the Kaggle "TMDB 5000" pair `tmdb_5000_movies.csv` (id, title, release_date, genres as a JSON
  list of {"id", "name"}, overview, runtime, vote_average, vote_count; optional imdb_id) with
  its sibling `tmdb_5000_credits.csv` (movie_id, cast / crew as JSON lists: cast `name`,
  `order`; crew `name`, `job`);
- JSON Lines of TMDB API movie objects (`/movie/{id}?append_to_response=credits`): id,
  imdb_id, title, release_date, genres, overview, runtime, vote_average, vote_count,
  credits.cast / credits.crew.
TMDB ids become the dataset key `tmdb`, which MovieLens `links.csv` also carries.
"""

from __future__ import annotations

import json
from pathlib import Path

from corpus_builder.fields import genres, imdb_id, integer, number, split_names, text, year
from corpus_builder.records import MovieRecord, SkipLog
from corpus_builder.sources.base import SourceResult, csv_rows, read_text, require_columns

NAME = "tmdb"
DEFAULT_PATHS = ["tmdb/*movies*.csv", "tmdb/*.jsonl"]
CAST_PER_MOVIE = 5


def _names(items: object, key: str = "name") -> list[str]:
    if not isinstance(items, list):
        return []
    return [str(i[key]) for i in items if isinstance(i, dict) and i.get(key)]


def _people(cast: object, crew: object) -> tuple[list[str], list[str], list[str]]:
    cast_list = (
        sorted((c for c in cast if isinstance(c, dict)), key=lambda c: c.get("order", 999))
        if isinstance(cast, list)
        else []
    )
    crew_list = [c for c in crew if isinstance(c, dict)] if isinstance(crew, list) else []
    actors = split_names(_names(cast_list)[:CAST_PER_MOVIE])
    directors = split_names([c.get("name") for c in crew_list if c.get("job") == "Director"])
    writers = split_names(
        [
            c.get("name")
            for c in crew_list
            if c.get("department") == "Writing" or c.get("job") in {"Screenplay", "Writer"}
        ]
    )
    return actors, directors, writers


def _record(movie: dict, cast: object, crew: object) -> MovieRecord:
    actors, directors, writers = _people(cast, crew)
    genre_value = movie.get("genres")
    return MovieRecord(
        NAME,
        str(movie["id"]),
        " ".join(str(movie["title"]).split()),
        year(str(movie.get("release_date") or "")[:4]),
        genres=genres(_names(genre_value) if isinstance(genre_value, list) else genre_value),
        directors=directors,
        cast=actors,
        writers=writers,
        plot=text(movie.get("overview")),
        runtime=number(movie.get("runtime")) or None,
        rating=number(movie.get("vote_average")),
        votes=integer(movie.get("vote_count")),
        imdb_id=imdb_id(movie.get("imdb_id")),
    )


def _json_field(value: str | None, path: Path, line: int, skips: SkipLog) -> object:
    if not value:
        return []
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        skips.skip(NAME, path, line, f"bad JSON field: {exc.msg}")
        return []


def _read_csv(path: Path, result: SourceResult, skips: SkipLog) -> None:
    credits: dict[str, tuple[object, object]] = {}
    credits_path = path.with_name(path.name.replace("movies", "credits"))
    if credits_path != path and credits_path.exists():
        result.files.append(credits_path)
        for line, row in csv_rows(credits_path):
            credits[str(row.get("movie_id"))] = (
                _json_field(row.get("cast"), credits_path, line, skips),
                _json_field(row.get("crew"), credits_path, line, skips),
            )
    checked = False
    for line, row in csv_rows(path):
        if not checked:
            require_columns(path, list(row), ["id", "title"])
            checked = True
        if not (row.get("id") or "").strip().isdigit() or not (row.get("title") or "").strip():
            skips.skip(
                NAME,
                path,
                line,
                f"bad row: expected a numeric id and a title, got id={row.get('id')!r}",
            )
            continue
        movie = dict(row)
        movie["genres"] = _json_field(row.get("genres"), path, line, skips)
        cast, crew = credits.get(row["id"].strip(), ([], []))
        record = _record(movie, cast, crew)
        result.add(record, "tmdb", record.source_id)


def _read_jsonl(path: Path, result: SourceResult, skips: SkipLog) -> None:
    for line_no, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            movie = json.loads(line)
        except json.JSONDecodeError as exc:
            skips.skip(NAME, path, line_no, f"bad JSON: {exc.msg}")
            continue
        if not isinstance(movie, dict) or movie.get("id") is None or not movie.get("title"):
            skips.skip(
                NAME, path, line_no, "bad row: expected a TMDB movie object with 'id' and 'title'"
            )
            continue
        credits = movie.get("credits") if isinstance(movie.get("credits"), dict) else {}
        record = _record(movie, credits.get("cast"), credits.get("crew"))
        result.add(record, "tmdb", record.source_id)


def read(paths: list[Path], skips: SkipLog) -> SourceResult:
    result = SourceResult(files=list(paths))
    for path in paths:
        if path.suffix == ".jsonl":
            _read_jsonl(path, result, skips)
        elif "credits" not in path.name:
            _read_csv(path, result, skips)
    return result
