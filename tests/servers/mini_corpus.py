"""A tiny corpus look-alike built from the real ReDial metadata file (`redial_id2info.json`),
for HTTP-protocol tests that need candidate metadata but not embeddings."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

_YEAR = re.compile(r"\s*\((\d{4})\)\s*$")


class MiniCorpus:
    """The part of `corpus_builder.corpus.Corpus` the prompt needs: ids, index_of, movie."""

    def __init__(self, rows: list[dict[str, Any]]):
        self.rows = rows
        self.ids = [r["corpus_id"] for r in rows]
        self._index = {cid: i for i, cid in enumerate(self.ids)}

    @classmethod
    def from_redial_metadata(cls, data_dir: Path, n: int = 60) -> MiniCorpus:
        info = json.loads(
            (Path(data_dir) / "metadata" / "redial_id2info.json").read_text(encoding="utf-8")
        )
        rows = []
        for key in sorted(info)[:n]:
            entry = info[key]
            m = _YEAR.search(entry["name"])
            rows.append(
                {
                    "corpus_id": f"m{key}",
                    "title": _YEAR.sub("", entry["name"]).strip(),
                    "year": int(m.group(1)) if m else None,
                    "genres": entry.get("genre") or [],
                    "directors": entry.get("director") or [],
                    "cast": entry.get("star") or [],
                    "plot": entry.get("plot") or "",
                }
            )
        return cls(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def index_of(self, corpus_id: str) -> int:
        return self._index[corpus_id]

    def movie(self, i: int) -> dict[str, Any]:
        return dict(self.rows[i])
