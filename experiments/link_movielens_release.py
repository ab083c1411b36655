"""Link another MovieLens release to an existing corpus (no rebuild, no new movies).

Writes `links/movielens-<release>.parquet` into CORPUS so `rar pretrain` can pretrain on that
release over the same corpus rows the conversation runs use: MovieLens movieId -> corpus id by
IMDb id (the release's links.csv), then by normalised title + year. Movies the corpus does not
hold stay unlinked (their ratings are dropped and counted by `rar pretrain`).

    python experiments/link_movielens_release.py --corpus CORPUS \
        --movielens ../shared/data/movielens/ml-latest-small
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from rar.matching import normalize_title, parse_title


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", required=True, type=Path)
    ap.add_argument(
        "--movielens", required=True, type=Path, help="release dir (movies.csv, links.csv)"
    )
    args = ap.parse_args()
    movies = pd.read_parquet(args.corpus / "movies.parquet")
    by_imdb = {}
    for cid, imdb in zip(movies["corpus_id"], movies["imdb_id"], strict=True):
        for key in (cid, imdb):
            if isinstance(key, str) and key.startswith("tt"):
                by_imdb.setdefault(key, cid)
    by_title = {}
    for cid, title, year in zip(movies["corpus_id"], movies["title"], movies["year"], strict=True):
        if pd.notna(year):
            by_title.setdefault((normalize_title(str(title)), int(year)), cid)
    ml = pd.read_csv(args.movielens / "movies.csv")
    links = pd.read_csv(args.movielens / "links.csv")
    imdb_of = {
        int(m): f"tt{int(i):07d}" for m, i in zip(links["movieId"], links["imdbId"], strict=True)
    }
    rows = []
    for mid, title in zip(ml["movieId"], ml["title"], strict=True):
        cid, method = by_imdb.get(imdb_of.get(int(mid), "")), "imdb_id"
        if cid is None:
            parsed = parse_title(str(title))
            if parsed.year:
                key = (normalize_title(parsed.title), int(parsed.year))
                cid, method = by_title.get(key), "title_year"
        rows.append(
            {
                "key": str(mid),
                "title": str(title),
                "corpus_id": cid,
                "score": 1.0 if cid else 0.0,
                "method": method if cid else "unlinked",
                "mentions": 0,
            }
        )
    frame = pd.DataFrame(rows)
    out = args.corpus / "links" / f"movielens-{args.movielens.name}.parquet"
    frame.to_parquet(out, index=False)
    print(
        f"{out}: {frame['corpus_id'].notna().sum()} of {len(frame)} movies linked",
        frame["method"].value_counts().to_dict(),
    )


if __name__ == "__main__":
    main()
