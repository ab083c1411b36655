"""Reddit-Movie item catalogue `entity2id.json`: {"Title (Year)": "tt..."}; keys are the
dataset's mention keys, so the catalogue is also the Reddit link table."""

from __future__ import annotations

import json
from pathlib import Path

from corpus_builder.fields import imdb_id, title_and_year
from corpus_builder.records import BadInputError, MovieRecord, SkipLog
from corpus_builder.sources.base import SourceResult, read_text

NAME = "reddit"
DEFAULT_PATHS = ["reddit_movie/entity2id.json"]


def read(paths: list[Path], skips: SkipLog) -> SourceResult:
    result = SourceResult(files=list(paths))
    for path in paths:
        try:
            table = json.loads(read_text(path))
        except json.JSONDecodeError as exc:
            raise BadInputError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(table, dict):
            raise BadInputError(
                f"{path}:1: expected an object mapping 'Title (Year)' to an IMDb id"
            )
        for key, value in table.items():
            imdb = imdb_id(value)
            if imdb is None:
                skips.skip(NAME, path, None, f"bad id: {key!r} -> {value!r} is not an IMDb id")
                continue
            title, year = title_and_year(key)
            result.add(MovieRecord(NAME, key, title, year, imdb_id=imdb), "reddit", key)
    return result
