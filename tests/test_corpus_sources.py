"""Source readers on the real files (or small files in the exact official formats)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from corpus_builder.records import BadInputError, SkipLog
from corpus_builder.sources import (
    imdb_ggplot2movies,
    imdb_top1000,
    imdb_tsv,
    inspired,
    movielens,
    reddit,
    redial_metadata,
    redial_movies,
    tmdb,
    wikipedia_summaries,
)
from corpus_builder.sources.base import find_inputs


def _by_id(result):
    return {r.source_id: r for r in result.records}


@pytest.mark.needs_data
def test_redial_movie_list(data_dir):
    result = redial_movies.read([data_dir / "redial/movies_with_mentions.csv"], SkipLog())
    assert len(result.records) == 6924
    headhunter = _by_id(result)["75796"]
    assert (headhunter.title, headhunter.year) == ("Headhunter", 2009)
    assert result.dataset_keys["redial"]["75796"] == 0
    assert result.popularity[1] == 6  # nbMentions of Angels in the Outfield


@pytest.mark.needs_data
def test_redial_metadata_tables(data_dir):
    result = redial_metadata.read(
        [data_dir / "metadata/redial_id2info.json", data_dir / "metadata/redial_movie_db.jsonl"],
        SkipLog(),
    )
    pari = _by_id(result)["100026"]
    assert pari.imdb_id == "tt0114092" and pari.year == 1995
    assert pari.directors == ["Dariush Mehrjui"] and "drama" in pari.genres and pari.plot
    weak = [r for r in result.records if r.weak]
    assert len(weak) == 6176 and weak[0].title.islower() and weak[0].cast


@pytest.mark.needs_data
def test_movielens_all_formats(data_dir):
    paths = [
        data_dir / "movielens/ml-100k",
        data_dir / "movielens/ml-latest-small",
        data_dir / "movielens/ml-1m-movies.dat",
    ]
    skips = SkipLog()
    result = movielens.read(paths, skips)
    keys = result.dataset_keys
    assert len(keys["movielens-ml-100k"]) == 1681  # 1682 minus the 'unknown' placeholder (counted)
    assert skips.counts["movielens"]["placeholder movie"] == 1
    assert len(keys["movielens-ml-latest-small"]) == 9125 and len(keys["movielens-ml-1m"]) == 3883
    toy = result.records[keys["movielens-ml-latest-small"]["1"]]
    assert (toy.title, toy.year, toy.imdb_id) == ("Toy Story", 1995, "tt0114709")
    assert "tmdb" in keys and keys["tmdb"]["862"] == keys["movielens-ml-latest-small"]["1"]
    assert result.records[keys["movielens-ml-100k"]["1"]].genres == [
        "animation",
        "children",
        "comedy",
    ]


@pytest.mark.needs_data
def test_inspired_titles_and_malformed_literal(data_dir):
    paths = find_inputs(data_dir, inspired.DEFAULT_PATHS, explicit=False)
    skips = SkipLog()
    result = inspired.read(paths, skips)
    keys = result.dataset_keys["inspired"]
    assert "Full Metal Jacket (1987)" in keys and "Knives Out" in keys
    fmj = result.records[keys["Full Metal Jacket (1987)"]]
    assert (fmj.title, fmj.year, fmj.exclusive) == ("Full Metal Jacket", 1987, False)
    # the real dev.tsv has a broken movie_dict literal: counted, with file and line
    assert skips.counts["inspired"]["bad value"] > 0
    assert "dev.tsv:" in skips.examples["inspired"][0]
    with pytest.raises(BadInputError, match=r"dev\.tsv:\d+: bad value"):
        inspired.read([data_dir / "inspired/dialog_data/dev.tsv"], SkipLog(strict=True))


def test_inspired_movie_database_tsv(tmp_path):
    path = tmp_path / "movie_database.tsv"
    path.write_text(
        "title\tyear\tgenre\tdirector\tactors\tplot\timdbID\timdbRating\timdbVotes\n"
        "Knives Out\t2019\tComedy, Crime\tRian Johnson\tDaniel Craig, Chris Evans\tA detective.\ttt8946378\t7.9\t600,000\n",
        encoding="utf-8",
    )
    record = inspired.read([path], SkipLog()).records[0]
    assert (record.title, record.year, record.imdb_id, record.votes) == (
        "Knives Out",
        2019,
        "tt8946378",
        600000,
    )
    assert record.cast == ["Daniel Craig", "Chris Evans"] and record.genres == ["comedy", "crime"]


@pytest.mark.needs_data
def test_reddit_catalogue(data_dir):
    result = reddit.read([data_dir / "reddit_movie/entity2id.json"], SkipLog())
    assert len(result.records) == 7506
    record = result.records[result.dataset_keys["reddit"]["The Way of the Gun (2000)"]]
    assert (record.title, record.year, record.imdb_id) == ("The Way of the Gun", 2000, "tt0202677")


@pytest.mark.needs_data
def test_imdb_top1000(data_dir):
    records = _by_id(imdb_top1000.read([data_dir / "metadata/imdb_top_1000.csv"], SkipLog()))
    shawshank = records["The Shawshank Redemption|1994"]
    assert shawshank.runtime == 142 and shawshank.rating == 9.3 and shawshank.votes == 2343110
    assert shawshank.directors == ["Frank Darabont"] and len(shawshank.cast) == 4


@pytest.mark.needs_data
def test_ggplot2movies_subset(data_dir, tmp_path):
    lines = (
        (data_dir / "metadata/imdb_titles_ggplot2movies.csv")
        .read_text(encoding="utf-8")
        .splitlines()
    )
    path = tmp_path / "movies.csv"
    path.write_text(
        "\n".join(lines[:51] + ['99999,"Broken row",notayear']) + "\n", encoding="utf-8"
    )
    skips = SkipLog()
    result = imdb_ggplot2movies.read([path], skips)
    assert len(result.records) == 50 and skips.counts["imdb_ggplot2movies"]["bad row"] == 1
    first = result.records[0]
    assert (first.title, first.year, first.votes, first.genres) == (
        "$",
        1971,
        348,
        ["comedy", "drama"],
    )
    assert "movies.csv:52" in skips.examples["imdb_ggplot2movies"][0]


@pytest.mark.needs_data
def test_wikipedia_summaries(data_dir):
    records = _by_id(
        wikipedia_summaries.read([data_dir / "metadata/wikipedia_movie_summaries.json"], SkipLog())
    )
    vertigo = records["Vertigo (film)"]
    assert vertigo.title == "Vertigo" and vertigo.weak and "Hitchcock" in vertigo.plot


def _write_gz_tsv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("\t".join(header) + "\n")
        for row in rows:
            handle.write("\t".join(row) + "\n")
    return path


def test_imdb_tsv_official_dumps(tmp_path):
    d = tmp_path
    _write_gz_tsv(d / "title.basics.tsv.gz",
                  ["tconst", "titleType", "primaryTitle", "originalTitle", "isAdult", "startYear", "endYear", "runtimeMinutes", "genres"],
                  [["tt0133093", "movie", "The Matrix", "The Matrix", "0", "1999", "\\N", "136", "Action,Sci-Fi"],
                   ["tt0903747", "tvSeries", "Breaking Bad", "Breaking Bad", "0", "2008", "2013", "49", "Crime,Drama"],
                   ["tt9999999", "movie", "Adult Film", "Adult Film", "1", "2001", "\\N", "\\N", "\\N"],
                   ["tt0110413", "tvMovie", "Léon", "Léon", "0", "\\N", "\\N", "\\N", "\\N"]])  # fmt: skip
    _write_gz_tsv(
        d / "title.ratings.tsv.gz",
        ["tconst", "averageRating", "numVotes"],
        [["tt0133093", "8.7", "2000000"], ["tt0903747", "9.5", "2000000"]],
    )
    _write_gz_tsv(
        d / "title.crew.tsv.gz",
        ["tconst", "directors", "writers"],
        [["tt0133093", "nm0905154,nm0905152", "nm0905152,nm0905154"], ["tt0110413", "\\N", "\\N"]],
    )
    _write_gz_tsv(d / "title.principals.tsv.gz", ["tconst", "ordering", "nconst", "category", "job", "characters"],
                  [["tt0133093", "2", "nm0000401", "actor", "\\N", '["Morpheus"]'],
                   ["tt0133093", "1", "nm0000206", "actor", "\\N", '["Neo"]'],
                   ["tt0133093", "5", "nm0905154", "director", "\\N", "\\N"]])  # fmt: skip
    _write_gz_tsv(d / "name.basics.tsv.gz", ["nconst", "primaryName", "birthYear", "deathYear", "primaryProfession", "knownForTitles"],
                  [["nm0000206", "Keanu Reeves", "1964", "\\N", "actor", "tt0133093"],
                   ["nm0000401", "Laurence Fishburne", "1961", "\\N", "actor", "tt0133093"],
                   ["nm0905154", "Lana Wachowski", "1965", "\\N", "writer,director", "tt0133093"],
                   ["nm0905152", "Lilly Wachowski", "1967", "\\N", "writer,director", "tt0133093"]])  # fmt: skip
    skips = SkipLog()
    result = imdb_tsv.read(sorted(d.glob("*.tsv.gz")), skips)
    records = _by_id(result)
    assert set(records) == {"tt0133093", "tt0110413"}  # series and adult titles left out (counted)
    assert skips.counts["imdb_tsv"]["filtered adult titles"] == 1
    matrix = records["tt0133093"]
    assert (matrix.title, matrix.year, matrix.runtime, matrix.rating, matrix.votes) == (
        "The Matrix",
        1999,
        136.0,
        8.7,
        2000000,
    )
    assert matrix.genres == ["action", "science fiction"]
    assert matrix.directors == ["Lana Wachowski", "Lilly Wachowski"]
    assert matrix.cast == ["Keanu Reeves", "Laurence Fishburne"]  # by ordering; directors excluded
    assert records["tt0110413"].year is None and records["tt0110413"].imdb_id == "tt0110413"


def test_imdb_tsv_bad_header_names_file(tmp_path):
    path = _write_gz_tsv(
        tmp_path / "title.basics.tsv.gz", ["tconst", "primaryTitle"], [["tt1", "x"]]
    )
    with pytest.raises(BadInputError, match=r"title\.basics\.tsv\.gz:1: missing column"):
        imdb_tsv.read([path], SkipLog())


def test_tmdb_csv_pair_and_jsonl(tmp_path):
    import csv

    movies = tmp_path / "tmdb_5000_movies.csv"
    with open(movies, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "budget",
                "genres",
                "id",
                "overview",
                "release_date",
                "runtime",
                "title",
                "vote_average",
                "vote_count",
            ]
        )
        writer.writerow(
            [
                237000000,
                json.dumps([{"id": 28, "name": "Action"}, {"id": 878, "name": "Science Fiction"}]),
                19995,
                "A paraplegic Marine.",
                "2009-12-10",
                162,
                "Avatar",
                7.2,
                11800,
            ]
        )
        writer.writerow([0, "[]", "not-an-id", "", "", "", "Broken", "", ""])
    with open(tmp_path / "tmdb_5000_credits.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["movie_id", "title", "cast", "crew"])
        writer.writerow([19995, "Avatar",
                         json.dumps([{"name": "Zoe Saldana", "order": 1}, {"name": "Sam Worthington", "order": 0}]),
                         json.dumps([{"name": "James Cameron", "job": "Director", "department": "Directing"},
                                     {"name": "James Cameron", "job": "Screenplay", "department": "Writing"}])])  # fmt: skip
    skips = SkipLog()
    result = tmdb.read([movies], skips)
    avatar = result.records[0]
    assert (avatar.title, avatar.year, avatar.runtime, avatar.votes) == (
        "Avatar",
        2009,
        162.0,
        11800,
    )
    assert avatar.cast == ["Sam Worthington", "Zoe Saldana"] and avatar.directors == [
        "James Cameron"
    ]
    assert (
        avatar.genres == ["action", "science fiction"] and result.dataset_keys["tmdb"]["19995"] == 0
    )
    assert skips.counts["tmdb"]["bad row"] == 1
    jsonl = tmp_path / "tmdb.jsonl"
    jsonl.write_text(
        json.dumps({"id": 603, "imdb_id": "tt0133093", "title": "The Matrix", "release_date": "1999-03-30",
                    "genres": [{"name": "Action"}], "overview": "Neo.", "credits": {"cast": [{"name": "Keanu Reeves", "order": 0}],
                                                                                  "crew": [{"name": "Lana Wachowski", "job": "Director"}]}})
        + "\n{broken\n",
        encoding="utf-8",
    )  # fmt: skip
    skips = SkipLog()
    record = tmdb.read([jsonl], skips).records[0]
    assert (record.imdb_id, record.year, record.cast, record.directors) == (
        "tt0133093",
        1999,
        ["Keanu Reeves"],
        ["Lana Wachowski"],
    )
    assert "tmdb.jsonl:2" in skips.examples["tmdb"][0]


def test_bad_inputs_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="input not found"):
        find_inputs(tmp_path, ["nowhere/movies.csv"], explicit=True)
    assert find_inputs(tmp_path, ["nowhere/movies.csv"], explicit=False) == []
    bad = tmp_path / "movies_with_mentions.csv"
    bad.write_text("movieId,movieName,nbMentions\n123,Fine (2000),1\nabc,,2\n", encoding="utf-8")
    skips = SkipLog()
    assert len(redial_movies.read([bad], skips).records) == 1
    assert skips.examples["redial_movies"][0].startswith(f"{bad}:3: bad row")
    with pytest.raises(BadInputError, match=r"movies_with_mentions\.csv:3"):
        redial_movies.read([bad], SkipLog(strict=True))
    wrong = tmp_path / "other.csv"
    wrong.write_text("id,name\n1,x\n", encoding="utf-8")
    with pytest.raises(BadInputError, match="missing column"):
        redial_movies.read([wrong], SkipLog())
    undecodable = tmp_path / "entity2id.json"
    undecodable.write_bytes(b'{"A (2000)": "tt1",\n "Caf\xe9 (2001)": "tt2"}')  # latin-1, not UTF-8
    with pytest.raises(BadInputError, match=r"entity2id\.json:2: cannot decode as utf-8"):
        reddit.read([undecodable], SkipLog())


def _drop_columns(src: Path, out: Path, drop: set[str]) -> Path:
    import csv

    with src.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8", newline="") as fh:
        kept = [c for c in rows[0] if c not in drop]
        writer = csv.DictWriter(fh, kept, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows[:20])
    return out


@pytest.mark.parametrize(
    ("drop", "named"),
    [
        ({"Director"}, "Director"),
        ({"Overview", "Director"}, "Director, Overview"),
        ({"Genre", "Genres", "Genre1", "Genre2", "Genre3"}, "Genre or Genres or Genre1"),
    ],
)
def test_imdb_top1000_without_the_columns_it_is_read_for_is_refused(
    data_dir, tmp_path, drop, named
):
    """Issue 24, item 14: such a file was accepted and its movies silently lost their
    director, plot or genres (and then the corpus filter dropped them)."""
    import os
    import subprocess
    import sys

    data = tmp_path / "data"
    path = _drop_columns(
        data_dir / "metadata/imdb_top_1000.csv", data / "metadata/imdb_top_1000.csv", drop
    )
    with pytest.raises(BadInputError) as info:
        imdb_top1000.read([path], SkipLog())
    message = str(info.value)
    assert message.startswith(f"{path}:1: missing column(s) {named} (header: ")
    assert "leave imdb_top1000 out of the corpus config's sources" in message
    # `rar build-corpus` on it: that one line, exit 2
    config = tmp_path / "corpus.yaml"
    config.write_text(
        "sources: [imdb_top1000]\nlink: {datasets: [], use_data_loaders: false}\n"
        "embedding: {enabled: false}\n",
        encoding="utf-8",
    )
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-m", "rar", "build-corpus", "--data-dir", str(data), "--out",
         str(tmp_path / "corpus"), "--config", str(config), "--quiet"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(root), "COLUMNS": "400"},
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip() == f"error: {message}"
    assert not (tmp_path / "corpus").exists()
