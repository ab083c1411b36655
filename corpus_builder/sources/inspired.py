"""INSPIRED movies: titles mentioned in the dialogues (official `dialog_data/*.tsv` with its
`movies` and `movie_dict` columns, the `*_annotated.jsonl` form, and the context/targets CSV),
plus the official `movie_database.tsv` when a user has it.

`movie_database.tsv` is read by header name, case-insensitively, accepting the OMDb-style
columns it is built from: title, year, genre, director, writer, actors, plot, runtime,
imdbrating, imdbvotes, imdbid (any subset; title is required).
"""

from __future__ import annotations

import ast
import csv
import io
import json
from pathlib import Path

from corpus_builder.fields import (
    genres,
    imdb_id,
    integer,
    number,
    split_names,
    text,
    title_and_year,
)
from corpus_builder.records import BadInputError, MovieRecord, SkipLog
from corpus_builder.sources.base import SourceResult, csv_rows, read_text

NAME = "inspired"
DEFAULT_PATHS = [
    "inspired/movie_database.tsv",
    "inspired/data/movie_database.tsv",
    "inspired/dialog_data/*.tsv",
    "inspired/*.jsonl",
    "inspired/context_targets/*.csv",
]
csv.field_size_limit(1 << 24)


def _add_title(result: SourceResult, raw: str, seen: dict[str, int]) -> None:
    raw = " ".join(str(raw).split())
    if not raw:
        return
    if raw in seen:
        result.popularity[seen[raw]] = result.popularity.get(seen[raw], 0) + 1
        return
    title, year = title_and_year(raw)
    record = MovieRecord(NAME, raw, title, year, exclusive=False)
    index = result.add(record, "inspired", raw)
    seen[raw] = index
    result.popularity[index] = 1


def _parse_literal(value: str, path: Path, line: int, skips: SkipLog) -> object:
    if not value or not value.strip():
        return None
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        skips.skip(NAME, path, line, f"bad value: not a Python literal: {value[:60]!r}")
        return None


def _read_dialog_tsv(
    path: Path, result: SourceResult, skips: SkipLog, seen: dict[str, int]
) -> None:
    for line, row in csv_rows(path, delimiter="\t"):
        for raw in (row.get("movies") or "").split(";"):
            _add_title(result, raw, seen)
        movie_dict = _parse_literal(row.get("movie_dict") or "", path, line, skips)
        if isinstance(movie_dict, dict):
            for raw in movie_dict:
                _add_title(result, raw, seen)


def _read_jsonl(path: Path, result: SourceResult, skips: SkipLog, seen: dict[str, int]) -> None:
    for line_no, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            dialogue = json.loads(line)
        except json.JSONDecodeError as exc:
            skips.skip(NAME, path, line_no, f"bad JSON: {exc.msg}")
            continue
        turns = (
            dialogue
            if isinstance(dialogue, list)
            else dialogue.get("dialog", [])
            if isinstance(dialogue, dict)
            else []
        )
        for turn in turns:
            if isinstance(turn, dict):
                for raw in (turn.get("movie") or []) + (turn.get("movie_name") or []):
                    _add_title(result, raw, seen)


def _read_context_csv(
    path: Path, result: SourceResult, skips: SkipLog, seen: dict[str, int]
) -> None:
    for line, row in csv_rows(path):
        movies = _parse_literal(row.get("movies") or "", path, line, skips)
        if isinstance(movies, (list, tuple)):
            for raw in movies:
                _add_title(result, str(raw), seen)


def _read_movie_database(path: Path, result: SourceResult, skips: SkipLog) -> None:
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""), delimiter="\t")
    header = {name.lower().strip(): name for name in (reader.fieldnames or [])}
    if "title" not in header:
        raise BadInputError(f"{path}:1: expected a 'title' column, header is {reader.fieldnames}")

    def get(row: dict, key: str) -> str | None:
        column = header.get(key)
        return row.get(column) if column else None

    for row in reader:
        title_raw = text(get(row, "title"))
        if not title_raw:
            skips.skip(NAME, path, reader.line_num, "bad row: empty title")
            continue
        title, year = title_and_year(title_raw)
        record = MovieRecord(
            NAME,
            f"db:{get(row, 'imdbid') or title_raw}",
            title,
            integer(get(row, "year")) or year,
            genres=genres(get(row, "genre")),
            directors=split_names(get(row, "director")),
            writers=split_names(get(row, "writer")),
            cast=split_names(get(row, "actors")),
            plot=text(get(row, "plot")),
            runtime=number(get(row, "runtime")),
            rating=number(get(row, "imdbrating")),
            votes=integer(get(row, "imdbvotes")),
            imdb_id=imdb_id(get(row, "imdbid")),
            catalogue="inspired_movie_database",
        )
        result.add(record, "inspired", title_raw)


def read(paths: list[Path], skips: SkipLog) -> SourceResult:
    result = SourceResult(files=list(paths))
    seen: dict[str, int] = {}
    for path in paths:
        if path.name == "movie_database.tsv":
            _read_movie_database(path, result, skips)
        elif path.suffix == ".tsv":
            _read_dialog_tsv(path, result, skips, seen)
        elif path.suffix == ".jsonl":
            _read_jsonl(path, result, skips, seen)
        elif path.suffix == ".csv":
            _read_context_csv(path, result, skips, seen)
    return result
