"""Baselines: hand-made sequences with known answers (co-occurrence counts, EASE against a direct
per-column ridge solve, masking, ties, determinism), then real ReDial data through the same
evaluation path as the runs, and the guard against scoring the data a baseline was fitted on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from rar.baselines import FitLeakError, NotFittedError, build_baseline, fit_on_dataset
from rar.baselines.ease import ease_weights
from rar.corpus import Corpus
from rar.data.linking import LinkedSample, link_samples
from rar.data.types import Sample
from rar.evaluation.evaluate_config import EvaluateConfig
from rar.evaluation.evaluator import evaluate_systems
from rar.pipeline import System

MOVIES = ["A", "B", "C", "D", "E", "F"]  # corpus rows 0..5


@pytest.fixture
def tiny_corpus() -> Corpus:
    movies = pd.DataFrame({"corpus_id": MOVIES, "title": [f"Movie {m}" for m in MOVIES]})
    return Corpus(Path("tiny-corpus"), movies, {})


def linked(dialogue: str, turn: int, history: list[str], targets: list[str]) -> LinkedSample:
    return LinkedSample(Sample("toy", dialogue, turn, [], [], []), history, targets)


# d1: A → B, then A,B → C;  d2: A → B;  d3: B → D, E
TRAIN = [
    linked("d1", 1, ["A"], ["B"]),
    linked("d1", 3, ["A", "B"], ["C"]),
    linked("d2", 1, ["A"], ["B"]),
    linked("d3", 2, ["B"], ["D", "E"]),
]


def top(model, corpus: Corpus, history: list[str], k: int) -> tuple[list[str | None], list[float]]:
    tokens = torch.tensor([[corpus.index_of(h) + 1 for h in history]], dtype=torch.int64)
    rows, values = model.topk(tokens, k)
    names = [corpus.ids[r] if r >= 0 else None for r in rows[0].tolist()]
    return names, values[0].tolist()


def test_itemknn_counts_the_pairs_of_the_training_samples(tiny_corpus):
    model = build_baseline("itemknn", {"pop_weight": 0.0}).fit(TRAIN, tiny_corpus)
    counts = model.counts.toarray()
    row = {m: i for i, m in enumerate(MOVIES)}
    expected = np.zeros((6, 6))
    for h, c, n in [("A", "B", 2), ("A", "C", 1), ("B", "C", 1), ("B", "D", 1), ("B", "E", 1)]:
        expected[row[h], row[c]] = n
    np.testing.assert_array_equal(counts, expected)
    np.testing.assert_array_equal(model.popularity, [0, 2, 1, 1, 1, 0])


def test_itemknn_scores_weight_history_items_by_recency(tiny_corpus):
    model = build_baseline("itemknn", {"decay": 0.5, "pop_weight": 0.0}).fit(TRAIN, tiny_corpus)
    # history A then B (B latest): C = 0.5·1 + 1·1, D = E = 1·1, F = 0; D/E tie by row
    names, values = top(model, tiny_corpus, ["A", "B"], 5)
    assert names == ["C", "D", "E", "F", None]  # A and B masked: only four rows remain
    np.testing.assert_allclose(values[:4], [1.5, 1.0, 1.0, 0.0])
    assert values[4] == float("-inf")
    with_pop = build_baseline("itemknn", {"decay": 0.5, "pop_weight": 0.1}).fit(TRAIN, tiny_corpus)
    _, values = top(with_pop, tiny_corpus, ["A", "B"], 3)
    np.testing.assert_allclose(values, [1.5 + 0.05, 1.05, 1.05])  # + 0.1 · count / max count


def test_itemknn_source_normalisation_is_p_of_candidate_given_item(tiny_corpus):
    params = {"decay": 0.5, "normalise": "source", "pop_weight": 0.0}
    model = build_baseline("itemknn", params).fit(TRAIN, tiny_corpus)
    names, values = top(model, tiny_corpus, ["A", "B"], 3)
    # A's 3 outgoing pairs: B 2/3, C 1/3; B's 3: C, D, E 1/3 each
    assert names == ["C", "D", "E"]
    np.testing.assert_allclose(values, [0.5 / 3 + 1 / 3, 1 / 3, 1 / 3])


def direct_ease(x: np.ndarray, l2: float) -> np.ndarray:
    """EASE by its definition: per item j, ridge regression of column j on the other columns."""
    n = x.shape[1]
    b = np.zeros((n, n))
    for j in range(n):
        others = [i for i in range(n) if i != j]
        xo = x[:, others]
        b[others, j] = np.linalg.solve(xo.T @ xo + l2 * np.eye(n - 1), xo.T @ x[:, j])
    return b


def test_ease_closed_form_equals_the_direct_ridge_solve():
    x = (np.random.default_rng(0).random((40, 12)) < 0.3).astype(float)
    for l2 in (0.5, 10.0):
        np.testing.assert_allclose(ease_weights(x, l2), direct_ease(x, l2), atol=1e-10)


def test_ease_fits_one_row_per_dialogue_over_the_items_seen(tiny_corpus):
    model = build_baseline("ease", {"l2": 1.0}).fit(TRAIN, tiny_corpus)
    assert model.seen_rows.tolist() == [0, 1, 2, 3, 4]  # F never appears in training
    x = np.array([[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [0, 1, 0, 1, 1]], dtype=float)  # d1, d2, d3
    weights = direct_ease(x, 1.0)
    names, values = top(model, tiny_corpus, ["A"], 5)
    expected = {MOVIES[j]: weights[0, j] for j in range(1, 5)}
    order = sorted(expected, key=lambda m: -expected[m])
    assert names == [*order, "F"]  # the unseen movie comes last
    np.testing.assert_allclose(values[:4], [expected[m] for m in order], atol=1e-10)


def test_most_popular_ranks_training_targets_by_count_and_masks_the_history(tiny_corpus):
    model = build_baseline("most-popular").fit(TRAIN, tiny_corpus)
    assert top(model, tiny_corpus, [], 6)[0] == ["B", "C", "D", "E", "A", "F"]
    assert top(model, tiny_corpus, ["C", "B"], 3)[0] == ["D", "E", "A"]


def test_rankings_are_deterministic_across_fits(tiny_corpus):
    for name in ("most-popular", "itemknn", "ease"):
        a = build_baseline(name).fit(TRAIN, tiny_corpus)
        b = build_baseline(name).fit(list(TRAIN), tiny_corpus)
        for history in ([], ["A"], ["B", "A"], ["E"]):
            assert top(a, tiny_corpus, history, 6) == top(b, tiny_corpus, history, 6)


def test_unknown_names_bad_params_and_unfitted_use_are_clear_errors(tiny_corpus):
    with pytest.raises(ValueError, match="unknown baseline 'knn'; choose from most-popular"):
        build_baseline("knn")
    with pytest.raises(ValueError, match="unknown key 'decy'; did you mean 'decay'"):
        build_baseline("itemknn", {"decy": 0.5})
    with pytest.raises(NotFittedError, match="not fitted"):
        top(build_baseline("ease"), tiny_corpus, ["A"], 2)


def test_the_guard_refuses_samples_from_fitted_dialogues(tiny_corpus):
    model = build_baseline("itemknn").fit(TRAIN, tiny_corpus)
    unseen = [linked("d9", 1, ["A"], ["C"])]
    assert len(model.recommend(unseen, tiny_corpus, 3)[0]) == 3
    leaked = [*unseen, linked("d3", 4, ["B"], ["F"])]  # a later turn of a fitted dialogue
    with pytest.raises(FitLeakError, match=r"1 of the 2 samples .*toy:d3:4"):
        model.recommend(leaked, tiny_corpus, 3)


# ---- real ReDial data, the real evaluation path ----------------------------------------------
@pytest.fixture(scope="module")
def corpus(small_corpus) -> Corpus:
    return Corpus.load(small_corpus)


@pytest.fixture(scope="module")
def redial_test(data_dir):
    from rar.data.registry import load_conversation_samples

    return load_conversation_samples("redial", data_dir, "test")


@pytest.fixture(scope="module")
def fitted(corpus, data_dir):
    return {
        name: fit_on_dataset(name, "redial", data_dir, corpus)
        for name in ("most-popular", "itemknn", "ease")
    }


def test_fit_reads_only_train_and_val_and_logs_the_grid(corpus, data_dir, monkeypatch):
    import rar.data.registry as registry

    real, asked = registry.load_conversation_samples, []

    def spy(dataset, root, split="all", seed=0):
        asked.append(split)
        return real(dataset, root, split, seed)

    monkeypatch.setattr(registry, "load_conversation_samples", spy)
    fit = fit_on_dataset("itemknn", "redial", data_dir, corpus)
    assert asked == ["train", "val"]
    assert len(fit.grid) == 16 and all("ndcg@10" in row for row in fit.grid)
    best = max(fit.grid, key=lambda row: row["ndcg@10"])
    assert fit.params == {k: best["params"][k] for k in ("decay", "normalise", "pop_weight")}
    assert fit.baseline.fit_split == "train" and fit.val_samples > 0


def test_baselines_on_redial_through_the_evaluator(fitted, corpus, redial_test, data_dir):
    systems = [System(f.baseline.label, f.baseline, None, f.source()) for f in fitted.values()]
    report = evaluate_systems(
        redial_test, corpus, systems, EvaluateConfig(k=25), dataset="redial", progress=False
    )
    n10 = {s.name: s.metrics["ndcg@10"] for s in report.systems}
    assert n10["ItemKNN"] > n10["most-popular"] and n10["EASE"] > n10["most-popular"]
    test_dialogues = {("redial", s.dialogue_id) for s in redial_test}
    for f in fitted.values():
        assert not f.baseline.fit_dialogues & test_dialogues
    for record in report.system("ItemKNN").records:
        assert len(record["candidates"]) == 25
        assert not set(record["candidates"]) & set(record["history"])


def test_a_baseline_fitted_on_test_data_is_refused_by_the_evaluator(corpus, redial_test):
    leaked, _ = link_samples(redial_test, corpus)
    model = build_baseline("itemknn").fit(leaked, corpus, split="test")
    with pytest.raises(FitLeakError, match="fitted on .* dialogues \\(split 'test'\\)"):
        evaluate_systems(
            redial_test,
            corpus,
            [System("ItemKNN", model)],
            EvaluateConfig(k=25, max_samples=30),
            dataset="redial",
            progress=False,
        )


@pytest.mark.slow
def test_cli_shows_baselines_next_to_a_run_with_and_without_the_ranker(
    small_corpus, data_dir, tmp_path
):
    from test_eval_evaluator import make_run

    from rar.cli import app

    run = make_run(small_corpus, tmp_path / "tiny-lrurec")
    out = tmp_path / "eval"
    result = CliRunner().invoke(
        app,
        [
            "evaluate", "--run", str(run), "--baseline", "itemknn", "-b", "most_popular",
            "--dataset", "redial", "--data", str(data_dir), "--ranker", "semantic",
            "--set", "ranker.cache.enabled=false", "--max-samples", "30", "--out", str(out),
            "--quiet",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads((out / "evaluation.json").read_text())
    assert list(data["systems"]) == [
        "ItemKNN", "ItemKNN + semantic", "most-popular", "most-popular + semantic",
        "tiny-lrurec", "tiny-lrurec + semantic",
    ]  # fmt: skip
    assert data["systems"]["ItemKNN"]["source"].startswith(
        "baseline itemknn fitted on redial/train"
    )
    fits = json.loads((out / "baselines.json").read_text())
    assert [f["baseline"] for f in fits] == ["itemknn", "most-popular"]
    assert fits[0]["fit_split"] == "train" and len(fits[0]["grid"]) == 16
    bad = CliRunner().invoke(
        app,
        ["evaluate", "--baseline", "knn", "--corpus", str(small_corpus), "--data", str(data_dir)],
    )
    assert bad.exit_code == 2 and "unknown baseline 'knn'" in " ".join(bad.output.split())
