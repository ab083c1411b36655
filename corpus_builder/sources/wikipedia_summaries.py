"""Wikipedia plot summaries keyed by article title ('Vertigo (film)', 'Heat (1995 film)',
'Citizen Kane'). They add plots to movies found elsewhere and never create movies."""

from __future__ import annotations

import json
import re
from pathlib import Path

from corpus_builder.fields import display_title, text
from corpus_builder.records import BadInputError, MovieRecord, SkipLog
from corpus_builder.sources.base import SourceResult, read_text

NAME = "wikipedia_summaries"
DEFAULT_PATHS = ["metadata/wikipedia_movie_summaries.json"]
_DISAMBIGUATION = re.compile(r"^(?P<title>.*?)\s*\((?:(?P<year>\d{4}) )?(?:[A-Za-z ]+ )?film\)$")


def read(paths: list[Path], skips: SkipLog) -> SourceResult:
    result = SourceResult(files=list(paths))
    for path in paths:
        try:
            table = json.loads(read_text(path))
        except json.JSONDecodeError as exc:
            raise BadInputError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(table, dict):
            raise BadInputError(f"{path}:1: expected an object mapping article titles to summaries")
        for article, summary in table.items():
            plot = text(summary) if isinstance(summary, str) else None
            if not plot:
                skips.skip(NAME, path, None, f"bad entry: {article!r} has no summary text")
                continue
            match = _DISAMBIGUATION.match(article)
            title = match.group("title") if match else article
            release = int(match.group("year")) if match and match.group("year") else None
            result.add(
                MovieRecord(NAME, article, display_title(title), release, plot=plot, weak=True)
            )
    return result
