"""A small real `Corpus` (in memory) from the ReDial metadata file (`redial_id2info.json`), for
HTTP-protocol tests that need candidate metadata but not embeddings or a corpus build."""

from __future__ import annotations

import json
import re
from pathlib import Path

from rar.corpus import Corpus, Movie

_YEAR = re.compile(r"\s*\((\d{4})\)\s*$")


def redial_metadata_corpus(data_dir: Path, n: int = 60) -> Corpus:
    """The first `n` ReDial movies (by key) with their genres, directors, cast and plot."""
    info = json.loads(
        (Path(data_dir) / "metadata" / "redial_id2info.json").read_text(encoding="utf-8")
    )
    movies = []
    for key in sorted(info)[:n]:
        entry = info[key]
        m = _YEAR.search(entry["name"])
        movies.append(
            Movie(
                corpus_id=f"m{key}",
                title=_YEAR.sub("", entry["name"]).strip(),
                year=int(m.group(1)) if m else None,
                genres=tuple(entry.get("genre") or ()),
                directors=tuple(entry.get("director") or ()),
                cast=tuple(entry.get("star") or ()),
                plot=entry.get("plot") or None,
            )
        )
    return Corpus.from_movies(movies)
