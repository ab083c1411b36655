"""`rar build-corpus` and `rar corpus stats|show|search` through typer's CliRunner."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from corpus_builder.testing import write_mini_data_dir
from rar.cli import app

runner = CliRunner()


def test_build_stats_show(tmp_path, data_dir):
    data = write_mini_data_dir(data_dir, tmp_path / "data", n_movies=60)
    config = tmp_path / "corpus.yaml"
    config.write_text(
        "sources: [movielens, redial_metadata, redial_movies]\n"
        "link: {datasets: [redial, movielens], use_data_loaders: false}\n"
        "embedding: {enabled: false}\n",
        encoding="utf-8",
    )
    out = tmp_path / "corpus"
    result = runner.invoke(app, ["build-corpus", "--data-dir", str(data), "--out", str(out), "--config", str(config),
                                 "--set", "filter.max_movies=80", "--quiet"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "80 movies" in result.output and "redial" in result.output
    stats = runner.invoke(app, ["corpus", "stats", str(out)])
    assert stats.exit_code == 0 and "80 movies" in stats.output and "merge:" in stats.output
    show = runner.invoke(app, ["corpus", "show", str(out), "Toy Story"])
    assert show.exit_code == 0 and "Toy Story" in show.output and "provenance" in show.output


def test_bad_inputs_exit_with_one_clear_line(tmp_path):
    bad_key = runner.invoke(app, ["build-corpus", "--data-dir", str(tmp_path), "--out", str(tmp_path / "c"),
                                  "--set", "filter.max_movie=5"])  # fmt: skip
    assert bad_key.exit_code == 2 and "did you mean 'filter.max_movies'" in bad_key.output
    missing = runner.invoke(app, ["corpus", "stats", str(tmp_path / "nothing")])
    assert missing.exit_code == 2 and "not a corpus directory" in missing.output


@pytest.mark.needs_data
@pytest.mark.slow  # loads the sentence-transformers model in-process
def test_search_command(small_corpus):
    result = runner.invoke(
        app, ["corpus", "search", str(small_corpus), "a quiet sci-fi about time travel", "-k", "5"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("tt") >= 3


def _build_into(data, config, out):
    return runner.invoke(app, ["build-corpus", "--data-dir", str(data), "--out", str(out),
                               "--config", str(config), "--quiet"])  # fmt: skip


def test_build_corpus_never_replaces_a_directory_that_is_not_a_corpus(tmp_path, data_dir):
    """A manifest.json alone is no proof: the directory and its other files are kept."""
    data = write_mini_data_dir(data_dir, tmp_path / "data", n_movies=30)
    config = tmp_path / "corpus.yaml"
    config.write_text(
        "sources: [movielens, redial_metadata, redial_movies]\n"
        "link: {datasets: [redial, movielens], use_data_loaders: false}\n"
        "embedding: {enabled: false}\n",
        encoding="utf-8",
    )
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "manifest.json").write_text('{"name":"app"}', encoding="utf-8")
    (app_dir / "notes.txt").write_text("keep me", encoding="utf-8")
    refused = _build_into(data, config, app_dir)
    assert refused.exit_code == 2, refused.output
    message = " ".join(refused.output.split())
    assert "not a corpus directory" in message and '"format": "rar-corpus"' in message
    assert "another --out" in message
    assert (app_dir / "notes.txt").read_text(encoding="utf-8") == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app", "corpus.yaml", "data"]

    empty = tmp_path / "empty"
    empty.mkdir()
    assert _build_into(data, config, empty).exit_code == 0
    assert (empty / "movies.parquet").is_file()
    # a corpus this tool wrote is replaced; one holding a foreign file is not
    assert _build_into(data, config, empty).exit_code == 0
    (empty / "notes.txt").write_text("mine", encoding="utf-8")
    foreign = _build_into(data, config, empty)
    assert foreign.exit_code == 2 and "notes.txt" in foreign.output
    assert (empty / "notes.txt").exists()


def test_config_errors_name_the_yaml_line(tmp_path):
    config = tmp_path / "corpus.yaml"
    config.write_text("sources: [movielens]\nmerge:\n  fuzzy_treshold: 0.8\n", encoding="utf-8")
    result = runner.invoke(app, ["build-corpus", "--data-dir", str(tmp_path), "--out",
                                 str(tmp_path / "c"), "--config", str(config)])  # fmt: skip
    output = " ".join(result.output.split())
    assert result.exit_code == 2 and f"{config}:3: unknown key 'merge.fuzzy_treshold'" in output
