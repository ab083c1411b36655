"""Parquet writers with the corpus format's fixed schemas and options, so equal inputs give equal bytes."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from corpus_builder.link import LinkTable
from rar.corpus.movie import Movie
from rar.corpus.schema import LINKS_SCHEMA, MOVIES_SCHEMA


def _write(table: pa.Table, path: Path) -> None:
    pq.write_table(
        table,
        path,
        compression="zstd",
        compression_level=3,
        use_dictionary=True,
        write_statistics=False,
        row_group_size=1 << 20,
        version="2.6",
        store_schema=False,
    )


def write_movies(movies: list[Movie], path: Path) -> None:
    columns = {name: [getattr(m, name) for m in movies] for name in MOVIES_SCHEMA.names}
    _write(pa.Table.from_pydict(columns, schema=MOVIES_SCHEMA), path)


def write_links(table: LinkTable, movies: list[Movie], path: Path) -> None:
    """Rows sorted by key; corpus_id null when unlinked (or filtered away)."""
    order = sorted(range(len(table.keys)), key=lambda i: table.keys[i])
    columns = {
        "key": [table.keys[i] for i in order],
        "title": [table.titles[i] for i in order],
        "corpus_id": [
            movies[table.rows[i]].corpus_id if table.rows[i] >= 0 else None for i in order
        ],
        "score": [float(table.scores[i]) if table.rows[i] >= 0 else None for i in order],
        "method": [table.methods[i] for i in order],
        "mentions": [int(table.counts[i]) for i in order],
    }
    _write(pa.Table.from_pydict(columns, schema=LINKS_SCHEMA), path)
