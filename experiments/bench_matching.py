"""Scale check for rar.matching.TitleMatcher: build over ~337k titles, match 10k queries.

Titles: the 58,788 real IMDb titles (ggplot2movies) repeated with distinct real-word suffixes
to reach the target size. Queries: real titles with typos (fuzzy path) and exact copies.
Prints build time, queries/s for the exact and fuzzy paths, and the fuzzy recall on typos.

    .venv/bin/python experiments/bench_matching.py --data-dir ../shared/data [--size 337000]
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import pandas as pd

from rar.matching import TitleMatcher


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--size", type=int, default=337_000)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--fuzzy-queries", type=int, default=2_000)
    args = parser.parse_args()
    imdb = pd.read_csv(Path(args.data_dir) / "metadata" / "imdb_titles_ggplot2movies.csv")
    base = imdb["title"].astype(str).tolist()
    base_years = imdb["year"].tolist()
    words = sorted({w for t in base for w in t.split() if w.isalpha() and len(w) > 3})
    rng = random.Random(0)
    titles, years = list(base), list(base_years)
    while len(titles) < args.size:
        i = rng.randrange(len(base))
        titles.append(f"{base[i]} {rng.choice(words)} {rng.choice(words)}")
        years.append(base_years[i])
    titles, years = titles[: args.size], years[: args.size]

    start = time.perf_counter()
    matcher = TitleMatcher(titles, years=years)
    build_s = time.perf_counter() - start
    print(f"build: {len(titles):,} titles in {build_s:.1f} s")

    picks = [rng.randrange(len(base)) for _ in range(args.queries)]
    exact_q = [base[i] for i in picks]
    start = time.perf_counter()
    exact = matcher.match_many(exact_q, years=[base_years[i] for i in picks])
    exact_s = time.perf_counter() - start
    hit = sum(
        m is not None and matcher.titles[m.index] == base[i]
        for m, i in zip(exact, picks, strict=True)
    )
    print(
        f"exact: {len(exact_q):,} queries in {exact_s:.2f} s ({len(exact_q) / exact_s:,.0f}/s), same title {hit / len(picks):.3f}"
    )

    def typo(text: str) -> str:
        pos = rng.randrange(len(text))
        return text[:pos] + text[pos + 1 :]

    long_titles = [i for i in picks if len(base[i]) > 12][: args.fuzzy_queries]
    fuzzy_q = [typo(base[i]) for i in long_titles]
    for label, years_q in [
        ("with years", [base_years[i] for i in long_titles]),
        ("no years", None),
    ]:
        start = time.perf_counter()
        fuzzy = matcher.match_many(fuzzy_q, years=years_q)
        fuzzy_s = time.perf_counter() - start
        hit = sum(
            m is not None and matcher.titles[m.index] == base[i]
            for m, i in zip(fuzzy, long_titles, strict=True)
        )
        print(
            f"fuzzy ({label}): {len(fuzzy_q):,} one-deleted-character queries in {fuzzy_s:.2f} s "
            f"({len(fuzzy_q) / fuzzy_s:,.0f}/s), matched the source title "
            f"{hit / len(fuzzy_q):.3f}, matched anything "
            f"{sum(m is not None for m in fuzzy) / len(fuzzy_q):.3f}"
        )
    print(f"CPU time of the whole script: {time.process_time():.1f} s")


if __name__ == "__main__":
    main()
