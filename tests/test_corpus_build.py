"""End-to-end builds on a tiny official-format data dir: outputs, manifest, determinism,
filter reporting, link tables, atomic replacement."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpus_builder import build as build_module
from corpus_builder.build import build_corpus
from corpus_builder.corpus import Corpus
from corpus_builder.testing import mini_config, write_mini_data_dir


@pytest.fixture(scope="module")
def mini_data(tmp_path_factory, data_dir):
    return write_mini_data_dir(data_dir, tmp_path_factory.mktemp("mini_data"))


@pytest.fixture(scope="module")
def mini_corpus(tmp_path_factory, mini_data):
    out = tmp_path_factory.mktemp("mini") / "corpus"
    build_corpus(mini_data, out, mini_config(), progress=False)
    return out


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
    assert movie["title"] == "Headhunter" and movie["year"] == 2009
    assert set(json.loads(movie["provenance"]).values()) <= {
        "redial_movies",
        "redial_metadata",
        "movielens",
        "reddit",
    }


def test_link_tables_map_keys_to_corpus_ids(mini_corpus):
    corpus = Corpus.load(mini_corpus)
    ml = corpus.link_table("movielens-ml-100k")
    toy = corpus.movie(corpus.index_of(ml["1"]))
    assert toy["title"] == "Toy Story" and toy["year"] == 1995
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
    assert all(corpus.movie(i)["plot"] for i in range(len(corpus)))
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
