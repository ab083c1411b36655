"""End-to-end builds on a tiny official-format data dir: outputs, manifest, determinism,
filter reporting, link tables, atomic replacement."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpus_builder import build as build_module
from corpus_builder.build import build_corpus
from corpus_builder.corpus_config import CorpusConfig
from corpus_builder.testing import mini_config, write_mini_data_dir
from rar.corpus import Corpus


@pytest.fixture(scope="module")
def mini_data(tmp_path_factory, data_dir):
    return write_mini_data_dir(data_dir, tmp_path_factory.mktemp("mini_data"))


@pytest.fixture(scope="module")
def mini_corpus(tmp_path_factory, mini_data):
    out = tmp_path_factory.mktemp("mini") / "corpus"
    build_corpus(mini_data, out, mini_config(), progress=False)
    return out


@pytest.mark.needs_data
def test_outputs_and_manifest(mini_corpus, mini_data):
    corpus = Corpus.load(mini_corpus)
    manifest = corpus.manifest
    assert len(corpus) == manifest["counts"]["movies"] > 150
    assert corpus.ids == sorted(corpus.ids)
    schema = pq.read_schema(mini_corpus / "movies.parquet")
    assert schema.names[:3] == ["corpus_id", "title", "year"]
    assert pa.types.is_list(schema.field("genres").type) and pa.types.is_int64(
        schema.field("year").type
    )
    assert corpus.datasets == ["movielens-ml-100k", "reddit", "redial"]
    # every input file is hashed, every source reported
    assert {i["path"] for i in manifest["inputs"]} >= {
        "redial/movies_with_mentions.csv",
        "movielens/ml-100k/u.item",
    }
    assert all(len(i["sha256"]) == 64 for i in manifest["inputs"])
    assert manifest["sources"]["imdb_tsv"]["status"] == "absent"
    assert manifest["skips"]["total"] == 0  # the first 150 u.item lines are clean
    assert manifest["merge"]["records"] >= manifest["counts"]["movies"]
    assert manifest["config"]["filter"]["required_fields"] == ["title"]
    links = manifest["links"]["redial"]
    assert links["keys"] == 150 and links["key_link_rate"] == 1.0
    # provenance is valid JSON naming real sources
    movie = corpus.movie(corpus.index_of(corpus.link_table("redial")["75796"]))
    assert movie.title == "Headhunter" and movie.year == 2009
    assert set(json.loads(movie.provenance).values()) <= {
        "redial_movies",
        "redial_metadata",
        "movielens",
        "reddit",
    }


@pytest.mark.needs_data
def test_link_tables_map_keys_to_corpus_ids(mini_corpus):
    corpus = Corpus.load(mini_corpus)
    ml = corpus.link_table("movielens-ml-100k")
    toy = corpus.movie(corpus.index_of(ml["1"]))
    assert toy.title == "Toy Story" and toy.year == 1995
    frame = corpus.link_frame("redial")
    assert list(frame.columns) == ["key", "title", "corpus_id", "score", "method", "mentions"]
    assert set(frame["method"]) == {"catalogue"}
    # ReDial metadata carries IMDb ids, so ReDial movies with metadata get IMDb corpus ids
    assert sum(cid.startswith("tt") for cid in corpus.link_table("redial").values()) > 100
    with pytest.raises(KeyError, match="no link table"):
        corpus.link_table("nope")


def test_rebuild_is_byte_identical(tmp_path, mini_data, mini_corpus):
    out = tmp_path / "again"
    build_corpus(mini_data, out, mini_config(), progress=False)
    for name in (
        "movies.parquet",
        "manifest.json",
        "links/redial.parquet",
        "links/movielens-ml-100k.parquet",
    ):
        assert (out / name).read_bytes() == (mini_corpus / name).read_bytes(), name


def test_filter_reports_linked_movies_and_config_decides(tmp_path, mini_data):
    keep = build_corpus(
        mini_data,
        tmp_path / "keep",
        mini_config(filter={"required_fields": ["plot"], "keep_linked": True}),
        progress=False,
    )
    report = keep.manifest["filter"]
    assert report["kept_linked_incomplete"] > 0 and report["dropped_linked"] == 0
    drop = build_corpus(
        mini_data,
        tmp_path / "drop",
        mini_config(filter={"required_fields": ["plot"], "keep_linked": False}),
        progress=False,
    )
    report = drop.manifest["filter"]
    assert 0 < report["dropped_linked"] <= report["dropped"]["missing plot"]
    example = report["dropped_linked_examples"][0]
    assert example["reason"] == "missing plot" and example["datasets"]
    links = drop.manifest["links"]["movielens-ml-100k"]
    assert links["key_link_rate"] < 1.0 and links["methods"]["filtered"] == links["unlinked_total"]
    corpus = Corpus.load(tmp_path / "drop")
    assert all(corpus.movie(i).plot for i in range(len(corpus)))
    capped = build_corpus(
        mini_data, tmp_path / "cap", mini_config(filter={"max_movies": 50}), progress=False
    )
    assert (
        capped.manifest["counts"]["movies"] == 50
        and capped.manifest["filter"]["dropped_by_max_movies"] > 0
    )


def test_crash_mid_build_keeps_the_old_corpus(tmp_path, mini_data, monkeypatch):
    out = tmp_path / "corpus"
    build_corpus(mini_data, out, mini_config(), progress=False)
    before = (out / "movies.parquet").read_bytes()

    def boom(*args, **kwargs):
        raise RuntimeError("simulated crash while writing links")

    monkeypatch.setattr(build_module, "write_links", boom)
    with pytest.raises(RuntimeError, match="simulated crash"):
        build_corpus(mini_data, out, mini_config(filter={"max_movies": 10}), progress=False)
    assert (out / "movies.parquet").read_bytes() == before
    assert (out / "manifest.json").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["corpus"]  # no temp dirs left behind


def test_refuses_to_replace_a_non_corpus_directory(tmp_path, mini_data):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a corpus directory"):
        build_corpus(mini_data, out, mini_config(), progress=False)
    assert (out / "notes.txt").read_text() == "keep me"


def test_bad_config_and_missing_inputs(tmp_path, mini_data):
    with pytest.raises(ValueError, match="unknown corpus source"):
        build_corpus(mini_data, tmp_path / "x", mini_config(sources=["nonsense"]), progress=False)
    with pytest.raises(FileNotFoundError, match="input not found"):
        build_corpus(
            mini_data,
            tmp_path / "x",
            mini_config(source_paths={"movielens": ["movielens/ml-25m"]}),
            progress=False,
        )
    with pytest.raises(FileNotFoundError, match="no corpus source files"):
        build_corpus(tmp_path, tmp_path / "x", mini_config(), progress=False)


def _write_colliding_sources(root: Path) -> Path:
    """Real-format source files reproducing how two IMDb ids came to share a title and year.

    - ReDial's `redial_id2info.json` tags 77161 "A Nightmare on Elm Street (1984)" with the 2010
      remake's id tt1179056, as it tags 119295 "(2010)": a tied year vote for tt1179056.
    - An id-less MovieLens ml-1m "Armageddon (1998)" (ranked first for fields) next to ReDial's
      tt0183892 "Armageddon (1997)": joining the neighbouring year gave that id the year 1998.
    - Two real films called "Black Rain" (1989) with two ids: a collision nothing resolves.
    """
    remake = {"genre": ["horror"], "director": ["Samuel Bayer"], "imdb_id": "tt1179056"}
    id2info = {
        "77161": {"name": "A Nightmare on Elm Street (1984)", **remake},
        "119295": {"name": "A Nightmare on Elm Street (2010)", **remake},
        "148871": {"name": "Armageddon (1997)", "director": ["Gordon Chan"], "imdb_id": "tt0183892"},
        "157564": {"name": "Black Rain (1989)", "director": ["Ridley Scott"], "imdb_id": "tt0096933"},
    }  # fmt: skip
    reddit = {
        "A Nightmare on Elm Street (1984)": "tt0087800",
        "Armageddon (1998)": "tt0120591",
        "Black Rain (1989)": "tt0097694",
    }
    (root / "metadata").mkdir(parents=True)
    (root / "metadata" / "redial_id2info.json").write_text(json.dumps(id2info), encoding="utf-8")
    (root / "reddit_movie").mkdir()
    (root / "reddit_movie" / "entity2id.json").write_text(json.dumps(reddit), encoding="utf-8")
    (root / "redial").mkdir()
    (root / "redial" / "movies_with_mentions.csv").write_text(
        "movieId,movieName,nbMentions\n77161,A Nightmare on Elm Street (1984),14\n"
        "119295,A Nightmare on Elm Street  (2010),2\n148871,Armageddon  (1997),42\n",
        encoding="utf-8",
    )
    (root / "movielens").mkdir()
    (root / "movielens" / "ml-1m-movies.dat").write_text(
        "1917::Armageddon (1998)::Action|Sci-Fi\n", encoding="latin-1"
    )
    return root


def test_distinct_imdb_ids_never_share_a_title_and_year(tmp_path):
    data = _write_colliding_sources(tmp_path / "data")
    config = CorpusConfig.model_validate(
        {
            "sources": ["movielens", "redial_movies", "redial_metadata", "reddit"],
            "link": {"datasets": ["redial", "reddit", "movielens"], "use_data_loaders": False},
            "embedding": {"enabled": False},
        }
    )
    corpus = Corpus.load(build_corpus(data, tmp_path / "c", config, progress=False).path)
    movies = corpus.movies.set_index("corpus_id")
    assert int(movies.loc["tt1179056", "year"]) == 2010  # the remake, not a second 1984 film
    assert int(movies.loc["tt0087800", "year"]) == 1984
    assert int(movies.loc["tt0183892", "year"]) == 1997  # its own record's year
    redial = pq.read_table(tmp_path / "c" / "links" / "redial.parquet").to_pandas()
    links = dict(zip(redial.key, redial.corpus_id, strict=True))
    assert links["77161"] == "tt0087800" and links["119295"] == "tt1179056"
    assert links["148871"] == "tt0183892"
    ml = pq.read_table(tmp_path / "c" / "links" / "movielens-ml-1m.parquet").to_pandas()
    assert dict(zip(ml.key, ml.corpus_id, strict=True)) == {"1917": "tt0120591"}
    # the build check counts what is left: the two real 1989 "Black Rain" films
    check = corpus.manifest["checks"]["title_year_collisions"]
    assert (check["count"], check["movies"]) == (1, 2)
    assert check["examples"] == [
        {"title": "Black Rain", "year": 1989, "imdb_ids": ["tt0096933", "tt0097694"]}
    ]
