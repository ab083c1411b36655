"""The loaders, source readers and corpus builder on the fixture data directory
(`fixtures.datadir`): official formats, known contents. These run in both data tiers; their
counterparts on the real files (`needs_data`) check the real counts."""

from __future__ import annotations

import json

import pytest
from fixtures.catalogue import ML_ONLY, REDIAL_ONLY, RICH
from fixtures.datadir import N_INSPIRED_DEV, N_REDIAL, ml100k_films, redial_id
from typer.testing import CliRunner

from corpus_builder.build import build_corpus
from corpus_builder.records import BadInputError, SkipLog
from corpus_builder.sources import (
    imdb_ggplot2movies,
    imdb_top1000,
    inspired,
    movielens,
    reddit,
    redial_metadata,
    redial_movies,
    wikipedia_summaries,
)
from corpus_builder.sources.base import find_inputs
from corpus_builder.testing import mini_config
from rar.cli import app
from rar.corpus import Corpus
from rar.data.custom import load_custom
from rar.data.inspired import load_inspired_jsonl, load_inspired_tsv
from rar.data.movielens import load_movielens, load_movielens_movies
from rar.data.movielens_sessions import movielens_splits
from rar.data.redial import load_redial
from rar.data.registry import load_conversation_data, load_conversation_samples
from rar.data.splits import split_of

DUPLICATES = 6  # dialogues 94-99 are in part a (shorter copy) and part b


@pytest.fixture(scope="module")
def fx(fixture_data_dir):
    return fixture_data_dir


# ------------------------------------------------------------------ conversations


def test_redial_parts_deduplicate_keep_the_longer_copy_and_resolve_mentions(fx):
    parts = sorted((fx / "redial").glob("train_part_*.jsonl"))
    load = load_redial(parts)
    assert len(load.dialogues) == N_REDIAL and load.duplicates == DUPLICATES
    assert len({d.dialogue_id for d in load.dialogues}) == N_REDIAL
    part_b = [json.loads(line) for line in (fx / "redial" / "train_part_b.jsonl").open()]
    repeated = {r["conversationId"]: r for r in part_b[:DUPLICATES]}
    for dialogue in load.dialogues:
        if dialogue.dialogue_id in repeated:  # part b's copy is the complete one
            assert len(dialogue.turns) == len(repeated[dialogue.dialogue_id]["messages"])
    first = load.dialogues[0]
    assert [t.role for t in first.turns[:2]] == ["seeker", "recommender"]
    mention = first.turns[2].mentions[0]
    film = next(f for f in RICH + REDIAL_ONLY if redial_id(f) == mention.key)
    assert mention.title == film.name and film.name in first.turns[2].text
    assert "@" not in first.turns[2].text


def test_redial_samples_have_targets_and_no_shortcut(fx):
    from rar.data.registry import load_samples_from_file

    samples = load_samples_from_file(fx / "redial" / "train_part_c.jsonl")
    assert len(samples) >= 3 * 18 and all(s.dataset == "redial" and s.targets for s in samples)
    for sample in samples:
        earlier = {m.key for t in sample.context for m in t.mentions}
        assert not earlier & {m.key for m in sample.targets}


def test_inspired_tsv_and_jsonl_hold_the_same_dialogues(fx):
    tsv = load_inspired_tsv(fx / "inspired" / "dialog_data" / "dev.tsv")
    jsonl = load_inspired_jsonl(fx / "inspired" / "dev_annotated.jsonl")
    assert len(tsv) == len(jsonl) == N_INSPIRED_DEV
    assert sum(len(d.turns) for d in tsv) == 8 * N_INSPIRED_DEV
    assert jsonl[0].dialogue_id == "dev_annotated:1"
    assert tsv[0].turns[0].role == "recommender" and tsv[0].turns[1].role == "seeker"
    for a, b in zip(tsv, jsonl, strict=True):
        assert [t.text for t in a.turns] == [t.text for t in b.turns]
        assert [[m.key for m in t.mentions] for t in a.turns] == [
            [m.key for m in t.mentions] for t in b.turns
        ]
    keys = [m.key for t in tsv[0].turns for m in t.mentions]
    assert len(keys) == 4 and all(k.endswith(")") for k in keys)  # "Title (Year)"


def test_context_targets_csv_reads_as_the_custom_format(fx):
    records = load_custom(fx / "inspired" / "context_targets" / "train.csv", "inspired")
    samples = [s for r in records for s in r.samples]
    assert len(samples) == 40 and not sum(r.dropped for r in records)
    first = samples[0]
    assert first.context[0].role == "recommender" and first.context[-1].role == "seeker"
    assert first.targets and all(m.key for m in first.targets)


def test_registry_splits_are_8_1_1_and_pool_the_inspired_files(fx):
    redial = load_conversation_data("redial", fx, "all")
    stats = redial.split_stats
    assert stats["all"].dialogues == N_REDIAL and stats["all"].duplicates == DUPLICATES
    assert (stats["train"].dialogues, stats["val"].dialogues, stats["test"].dialogues) == (
        N_REDIAL * 8 // 10 + 1,
        N_REDIAL // 10 + 1,
        N_REDIAL // 10,
    )  # 168 = 16 x 10 + 8: the 17th val dialogue comes before the 17th test one
    parts = {s: load_conversation_samples("redial", fx, s) for s in ("train", "val", "test")}
    assert sum(len(v) for v in parts.values()) == len(redial.samples)
    ids = {s: {x.dialogue_id for x in v} for s, v in parts.items()}
    assert not ids["train"] & ids["val"] and not ids["val"] & ids["test"]
    assert all(split_of("redial", x.dialogue_id) == "test" for x in parts["test"])
    data = load_conversation_data("inspired", fx, "train")
    assert set(data.sources) == {
        "inspired/dialog_data/dev.tsv",
        "inspired/context_targets/train.csv",
    }  # dev_annotated.jsonl holds the dev dialogues again: not read


def test_cli_data_stats_on_the_fixture_dir(fx, tmp_path):
    out = tmp_path / "stats.json"
    result = CliRunner().invoke(app, ["data", "stats", "--data-dir", str(fx), "--json", str(out)])
    assert result.exit_code == 0, result.output
    stats = json.loads(out.read_text())
    assert set(stats) == {"redial", "inspired", "movielens-ml-100k", "movielens-ml-latest-small"}
    assert stats["redial"]["dialogues"] == N_REDIAL
    assert stats["redial"]["duplicates"] == DUPLICATES
    assert stats["movielens-ml-100k"]["users"] == 90


# ------------------------------------------------------------------ MovieLens


def test_movielens_releases_in_their_formats(fx):
    ml100k = load_movielens(fx / "movielens" / "ml-100k")
    assert ml100k.format == "100k" and ml100k.ratings["userId"].nunique() == 90
    assert len(ml100k.movies) == len(ml100k_films()) + 1  # + the 'unknown' placeholder
    assert ml100k.movies["imdbId"].isna().all()
    toy = ml100k.movies.set_index("movieId").loc[1]
    assert toy["title"] == "Toy Story (1995)" and toy["genres"] == "Adventure|Animation|Comedy"
    small = load_movielens(fx / "movielens" / "ml-latest-small")
    assert small.format == "csv" and small.variant == "ml-latest-small"
    assert list(small.ratings.columns) == ["userId", "movieId", "rating", "timestamp"]
    toy = small.movies.set_index("movieId").loc[1]
    assert toy["title"] == "Toy Story (1995)" and toy["imdbId"] == "tt0114709"
    dat = load_movielens_movies(fx / "movielens" / "ml-1m-movies.dat")
    assert dat["title"].str.contains("é").any()  # latin-1 decoded


def test_movielens_sessions_split_deterministically(fx):
    splits = movielens_splits(fx / "movielens" / "ml-100k", seed=0)
    sizes = {k: len(v) for k, v in splits.items()}
    assert sum(sizes.values()) == 90 * 2 + 45 and min(sizes.values()) > 0
    again = movielens_splits(fx / "movielens" / "ml-100k", seed=0)
    assert [s.items for s in again["val"]] == [s.items for s in splits["val"]]
    assert all(4 <= len(s) <= 8 for split in splits.values() for s in split)


# ------------------------------------------------------------------ corpus sources and build


def test_every_source_reader_on_its_fixture_file(fx):
    result = redial_movies.read([fx / "redial/movies_with_mentions.csv"], SkipLog())
    assert len(result.records) == len(RICH) + len(REDIAL_ONLY)
    headhunter = result.records[0]
    assert (headhunter.title, headhunter.year) == ("Headhunter", 2009)
    meta = redial_metadata.read(
        [fx / "metadata/redial_id2info.json", fx / "metadata/redial_movie_db.jsonl"], SkipLog()
    )
    matrix = next(r for r in meta.records if r.imdb_id == "tt0133093")
    assert matrix.year == 1999 and "Keanu Reeves" in matrix.cast and matrix.plot
    weak = [r for r in meta.records if r.weak]
    assert weak and all(r.title.islower() for r in weak)
    skips = SkipLog()
    ml = movielens.read(
        [fx / "movielens/ml-100k", fx / "movielens/ml-latest-small", fx / "movielens/ml-1m-movies.dat"],
        skips,
    )  # fmt: skip
    assert len(ml.dataset_keys["movielens-ml-100k"]) == len(ml100k_films())
    assert skips.counts["movielens"]["placeholder movie"] == 1
    toy = ml.records[ml.dataset_keys["movielens-ml-latest-small"]["1"]]
    assert (toy.title, toy.year, toy.imdb_id) == ("Toy Story", 1995, "tt0114709")
    skips = SkipLog()
    titles = inspired.read(find_inputs(fx, inspired.DEFAULT_PATHS, explicit=False), skips)
    assert "Knives Out" in str(list(titles.dataset_keys["inspired"]))
    # the broken movie_dict literal repeats on each of its dialogue's 8 rows: one skip per row
    assert (
        skips.counts["inspired"]["bad value"] == 8 and "dev.tsv:" in skips.examples["inspired"][0]
    )
    with pytest.raises(BadInputError, match=r"dev\.tsv:\d+: bad value"):
        inspired.read([fx / "inspired/dialog_data/dev.tsv"], SkipLog(strict=True))
    catalogue = reddit.read([fx / "reddit_movie/entity2id.json"], SkipLog())
    assert len(catalogue.records) == len(RICH)
    top = imdb_top1000.read([fx / "metadata/imdb_top_1000.csv"], SkipLog())
    assert top.records and all(r.title and r.year for r in top.records)
    gg = imdb_ggplot2movies.read([fx / "metadata/imdb_titles_ggplot2movies.csv"], SkipLog())
    assert gg.records and all(r.votes for r in gg.records)
    wiki = wikipedia_summaries.read([fx / "metadata/wikipedia_movie_summaries.json"], SkipLog())
    assert wiki.records and all(r.weak and r.plot for r in wiki.records)
    assert any(r.source_id.endswith("(film)") and "(" not in r.title for r in wiki.records)


def test_corpus_build_on_the_fixture_dir_links_every_redial_movie(fx, tmp_path):
    corpus = build_corpus(fx, tmp_path / "corpus", mini_config(), progress=False)
    manifest = corpus.manifest
    corpus = Corpus.load(tmp_path / "corpus")
    assert corpus.datasets == [
        "movielens-ml-100k",
        "movielens-ml-1m",
        "movielens-ml-latest-small",
        "reddit",
        "redial",
    ]
    # every film once across its title forms and sources (+ "Misérables, Les" of ml-1m only)
    assert len(corpus) == len(RICH) + len(REDIAL_ONLY) + len(ML_ONLY) + 1
    links = manifest["links"]["redial"]
    assert links["keys"] == len(RICH) + len(REDIAL_ONLY) and links["key_link_rate"] == 1.0
    assert manifest["skips"]["total"] == 1  # the u.item placeholder
    toy = corpus.movie(corpus.index_of(corpus.link_table("movielens-ml-100k")["1"]))
    assert (toy.title, toy.year, toy.corpus_id) == ("Toy Story", 1995, "tt0114709")
    # a film from ReDial, ML-100K and ML-latest-small under three title forms is one movie
    shining = corpus.link_table("redial")[redial_id(RICH[9])]
    assert corpus.movie(corpus.index_of(shining)).title == RICH[9].title
    ml_key = str(ml100k_films().index(RICH[9]) + 1)  # "Shining, The (1980)" in u.item
    assert corpus.link_table("movielens-ml-100k")[ml_key] == shining == "tt0081505"
