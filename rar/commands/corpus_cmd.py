"""`rar build-corpus` and `rar corpus stats|show|search`: build and inspect a movie corpus."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from rar.commands.common import console, user_errors
from rar.errors import UnknownKeyError


def build_corpus(
    out: Path = typer.Option(
        ..., "--out", help="Corpus directory to create (replaced atomically)."
    ),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Data directory (default $RAR_DATA_DIR, ./data)."
    ),
    config: Path | None = typer.Option(
        None,
        "--config",
        help="Corpus YAML file, or a packaged config's name (corpus, corpus_quickstart, corpus_paper).",
    ),
    set_: list[str] = typer.Option(
        [], "--set", help="Override a config key, e.g. --set filter.max_movies=5000."
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:
    """Merge every movie source in the data directory into one deduplicated, linked corpus."""
    with user_errors():
        import logging

        from corpus_builder.build import build_corpus as run_build
        from corpus_builder.corpus_config import CorpusConfig
        from rar.config import load_config
        from rar.paths import resolve_data_dir

        logging.basicConfig(level=logging.WARNING)
        cfg = load_config(CorpusConfig, config, list(set_))
        root = resolve_data_dir(data_dir)
        result = run_build(root, out, cfg, progress=not quiet)
        manifest = result.manifest
        console.print(
            f"[bold]corpus[/] {out}: {manifest['counts']['movies']:,} movies "
            f"from {manifest['merge']['records']:,} records"
        )
        _print_links(manifest)
        timings = result.build_log.get("timings", {})
        console.print("time: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))


corpus_app = typer.Typer(name="corpus", help="Inspect a built corpus.", no_args_is_help=True)


def _print_links(manifest: dict) -> None:
    from rich.table import Table

    table = Table("dataset", "keys", "key link rate", "mentions", "mention link rate", "unlinked")
    for dataset, stats in sorted(manifest.get("links", {}).items()):
        rate = stats.get("mention_link_rate")
        table.add_row(
            dataset,
            f"{stats['keys']:,}",
            f"{stats['key_link_rate']:.2%}" if stats.get("key_link_rate") is not None else "-",
            f"{stats['mentions']:,}",
            f"{rate:.2%}" if rate is not None else "-",
            f"{stats['unlinked_total']:,}",
        )
    console.print(table)


@corpus_app.command("stats")
def stats(corpus: Path = typer.Argument(..., help="Corpus directory.")) -> None:
    """Counts, field coverage, merge statistics, skips and link rates."""
    with user_errors():
        from rar.corpus import Corpus

        loaded = Corpus.load(corpus)
        manifest = loaded.manifest
        counts = manifest.get("counts", {})
        console.print(
            f"[bold]{corpus}[/]: {len(loaded):,} movies (corpus version {manifest.get('corpus_version')})"
        )
        for name, count in counts.get("with_field", {}).items():
            console.print(f"  with {name}: {count:,} ({count / max(len(loaded), 1):.1%})")
        console.print("movies per source: " + json.dumps(counts.get("movies_per_source", {})))
        merge = {k: v for k, v in manifest.get("merge", {}).items() if not k.endswith("examples")}
        console.print("merge: " + json.dumps(merge))
        filt = {k: v for k, v in manifest.get("filter", {}).items() if not k.endswith("examples")}
        console.print("filter: " + json.dumps(filt))
        console.print(
            f"skipped rows: {manifest.get('skips', {}).get('total', 0)} "
            + json.dumps(manifest.get("skips", {}).get("counts", {}))
        )
        collisions = manifest.get("checks", {}).get("title_year_collisions")
        if collisions is not None:
            console.print(
                f"(title, year) pairs held by two or more IMDb ids: {collisions['count']:,}"
                + "".join(
                    f"\n  {e['title']} ({e['year']}): {', '.join(e['imdb_ids'])}"
                    for e in collisions["examples"][:5]
                ),
                highlight=False,
            )
        _print_links(manifest)
        if "embeddings" in manifest:
            console.print(
                f"embeddings: {manifest['embeddings']['model_id']} dim {manifest['embeddings']['dim']}"
            )


@corpus_app.command("show")
def show(
    corpus: Path = typer.Argument(..., help="Corpus directory."),
    id_or_title: str = typer.Argument(
        ..., help="Corpus id, IMDb id or title (e.g. 'The Matrix (1999)')."
    ),
    limit: int = typer.Option(1, "--limit", "-n", help="How many title matches to show."),
) -> None:
    """One movie's fields, provenance and source ids."""
    with user_errors():
        from rar.corpus import Corpus
        from rar.corpus.movie import METADATA_FIELDS

        loaded = Corpus.load(corpus)
        rows = loaded.find(id_or_title, limit=limit)
        if not rows:
            raise UnknownKeyError(f"no movie matches {id_or_title!r} in {corpus}")
        for row in rows[:limit]:
            movie = loaded.movie(row)
            console.print(
                f"[bold]{movie.title}[/] ({movie.year})  [dim]{movie.corpus_id} row {row}[/]"
            )
            for name in METADATA_FIELDS[2:]:  # title and year are on the first line
                value = getattr(movie, name)
                if value is not None and value != ():
                    console.print(
                        f"  {name}: {', '.join(value) if isinstance(value, tuple) else value}",
                        highlight=False,
                    )
            console.print(f"  provenance: {movie.provenance}", highlight=False)
            console.print(f"  source ids: {movie.source_ids}", highlight=False)


@corpus_app.command("search")
def search(
    corpus: Path = typer.Argument(..., help="Corpus directory."),
    query: str = typer.Argument(..., help="Free text, e.g. 'a quiet sci-fi about time travel'."),
    k: int = typer.Option(10, "-k", "--k", help="Number of results."),
) -> None:
    """Nearest movies to a free-text query (sentence embedding + FAISS)."""
    with user_errors():
        from rich.table import Table

        from rar.corpus import Corpus

        loaded = Corpus.load(corpus)
        table = Table("#", "score", "title", "year", "genres", "corpus id")
        for rank, (row, score) in enumerate(loaded.search(query, k), start=1):
            movie = loaded.movie(row)
            table.add_row(
                str(rank),
                f"{score:.3f}",
                movie.title,
                str(movie.year or ""),
                ", ".join(movie.genres[:3]),
                movie.corpus_id,
            )
        console.print(table)
