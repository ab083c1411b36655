"""LLM misses are not hidden: a label the LLM did not output scores 0 in evaluation and in
the RL reward, although `ranked_ids` stays complete (the model's part, then the rest).

The loopback server plays an LLM that names only 3 of the 25 candidates (through the real
OpenAI SDK); the evaluator and the reward are the project's own code paths."""

from __future__ import annotations

import pytest
from servers.llm_server import FakeLLMServer, Fault, prompt_candidates
from servers.redial_corpus import redial_metadata_corpus

from rar.corpus import Corpus
from rar.data.linking import LinkedSample
from rar.data.types import Mention, Sample, Turn
from rar.evaluation.evaluate_config import EvaluateConfig
from rar.evaluation.evaluator import Evaluator
from rar.pipeline import System
from rar.rankers import RankerConfig, RankRequest, build_ranker
from rar.rl.rewards import result_reward

K = 25
RETURNED = 3


@pytest.fixture(scope="module")
def corpus(data_dir) -> Corpus:
    return redial_metadata_corpus(data_dir, n=60)


def three_titles(prompt: str) -> str:
    """An LLM that lists the first 3 candidates of the prompt and stops."""
    return "\n".join(f"{i}. {t}" for i, t in enumerate(prompt_candidates(prompt)[:RETURNED], 1))


def make_ranker(server: FakeLLMServer, corpus: Corpus, tmp_path, **parser):
    cfg = RankerConfig(
        backend="openai",
        model="test-model",
        base_url=server.openai_base_url,
        cache={"path": str(tmp_path / "cache.sqlite")},
        parser=parser,
    )
    return build_ranker(cfg, corpus)


def linked_sample(name: str, context: list[Turn], target: str, title: str) -> LinkedSample:
    sample = Sample("redial", name, 1, context, [], [Mention(target, title)])
    return LinkedSample(sample, [], [target])


@pytest.mark.parametrize("score_appended", [False, True])
def test_label_the_llm_did_not_output_is_a_miss(corpus, tmp_path, score_appended):
    cands = corpus.ids[:K]
    context = [Turn("seeker", "A thriller please.")]
    hit_label, missed_label = cands[1], cands[5]  # returned by the LLM / left out by it
    with FakeLLMServer(responder=three_titles) as server:
        ranker = make_ranker(server, corpus, tmp_path, score_appended=score_appended)
        [result] = ranker.rank([RankRequest("s", context, cands)])
        assert result.error is None
        assert result.ranked_ids[:RETURNED] == cands[:RETURNED] and len(result.ranked_ids) == K
        assert result.n_model_ranked == RETURNED and result.n_appended == K - RETURNED
        reward, rank = result_reward(result, [missed_label])
        hit_reward, hit_rank = result_reward(result, [hit_label])
        assert hit_rank == 1 and hit_reward > 0
        if score_appended:
            assert rank == 5 and reward > 0  # the appended tail counts when asked
        else:
            assert result.scored_ids == cands[:RETURNED]
            assert (reward, rank) == (0.0, None)

        linked = [
            linked_sample("a", context, missed_label, "missed"),
            linked_sample("b", context, hit_label, "hit"),
        ]
        evaluator = Evaluator(corpus, EvaluateConfig(ks=[10], k=K), progress=False)
        # the retrieval is given (the evaluator reuses it), so the retriever is never called
        spec = System("LLM ranker", retriever="retrieval given below", ranker=ranker)
        res = evaluator.evaluate(spec, linked, [list(cands), list(cands)])
    missed, hit = res.records
    assert hit["metrics"]["ndcg@10"] > 0
    assert (missed["metrics"]["ndcg@10"] > 0) is score_appended
    assert missed["n_model_ranked"] == RETURNED and missed["n_appended"] == K - RETURNED
    assert res.ranker["appended"] == 2 * (K - RETURNED)
    assert res.ranker["appended_share"] == pytest.approx((K - RETURNED) / K)


def test_failed_call_scores_as_a_miss_not_as_the_retriever_order(corpus, tmp_path):
    cands = corpus.ids[:K]
    with FakeLLMServer() as server:
        server.push(Fault("status", 400))  # not retried: the call fails at once
        ranker = make_ranker(server, corpus, tmp_path)
        [result] = ranker.rank([RankRequest("s", [Turn("seeker", "hi")], cands)])
    assert result.error is not None and result.ranked_ids == cands  # complete for callers
    assert result.scored_ids == [] and result_reward(result, [cands[0]]) == (0.0, None)
