"""The sample rules: one sample per recommender turn with a movie, history, no-shortcut."""

from __future__ import annotations

from rar.data.samples import (
    MAX_HISTORY,
    make_sample,
    samples_from_dialogue,
    summarize,
    unique_keep_first,
    unique_keep_last,
)
from rar.data.types import Dialogue, Mention, Turn


def m(key: str) -> Mention:
    return Mention(key, f"Movie {key}")


def dialogue(*turns: tuple[str, str, list[str]]) -> Dialogue:
    return Dialogue("d1", [Turn(role, text, [m(k) for k in keys]) for role, text, keys in turns])


def test_one_sample_per_recommender_turn_with_a_new_movie():
    d = dialogue(
        ("seeker", "hi, I loved A", ["A"]),
        ("recommender", "try B", ["B"]),
        ("seeker", "seen B. and C?", ["B", "C"]),
        ("recommender", "no movie here", []),
        ("recommender", "then D or A again", ["D", "A"]),
    )
    result = samples_from_dialogue(d, "test")
    assert [s.turn_index for s in result.samples] == [1, 4]
    first, second = result.samples
    assert [x.key for x in first.history] == ["A"]
    assert [x.key for x in first.targets] == ["B"]
    assert [t.text for t in first.context] == ["hi, I loved A"]
    # history: mentions in order of last mention, both roles; targets drop already-mentioned A
    assert [x.key for x in second.history] == ["A", "B", "C"]
    assert [x.key for x in second.targets] == ["D"]
    assert [t.role for t in second.context] == ["seeker", "recommender", "seeker", "recommender"]
    assert second.sample_id == "test:d1:4"
    assert result.dropped == 0
    assert result.mention_keys == ["A", "B", "B", "C", "D", "A"]


def test_no_shortcut_drops_and_counts_turns_with_only_repeated_movies():
    d = dialogue(
        ("seeker", "I like A and B", ["A", "B"]),
        ("recommender", "A is great, so is B", ["A", "B"]),
        ("recommender", "or C", ["C"]),
        ("seeker", "C?", ["C"]),
        ("recommender", "yes C", ["C"]),
    )
    result = samples_from_dialogue(d, "test")
    assert [s.turn_index for s in result.samples] == [2]
    assert result.dropped == 2
    stats = summarize([result])
    assert (stats.dialogues, stats.samples, stats.dropped, stats.movies, stats.mentions) == (
        1,
        1,
        2,
        3,
        7,
    )


def test_seeker_turns_never_make_samples_and_same_speaker_turns_stay_separate():
    d = dialogue(
        ("recommender", "hello", []),
        ("recommender", "have you seen A?", ["A"]),
        ("seeker", "B!", ["B"]),
        ("seeker", "and C", ["C"]),
    )
    result = samples_from_dialogue(d, "test")
    assert [s.turn_index for s in result.samples] == [1]
    assert result.samples[0].context[0].text == "hello"
    assert result.samples[0].history == []


def test_history_keeps_last_occurrence_and_is_capped_at_64_most_recent():
    keys = [str(i) for i in range(100)]
    turns = [("seeker", "many", keys), ("seeker", "again 5", ["5"]), ("recommender", "X", ["X"])]
    sample = samples_from_dialogue(dialogue(*turns), "test").samples[0]
    history = [x.key for x in sample.history]
    assert len(history) == MAX_HISTORY
    assert history[-1] == "5"  # re-mentioned: moved to the most recent position
    assert history[0] == "37"  # 99 distinct before '5' moves: keep 37..99 minus 5, plus 5
    assert "5" not in history[:-1]


def test_make_sample_excludes_history_from_targets_and_dedupes_targets():
    sample = make_sample("t", "d", 3, [], [m("A"), m("B"), m("A")], [m("A"), m("C"), m("C")])
    assert [x.key for x in sample.history] == ["B", "A"]
    assert [x.key for x in sample.targets] == ["C"]
    assert make_sample("t", "d", 3, [], [m("A")], [m("A")]) is None
    capped = make_sample("t", "d", 1, [], [m("A"), m("B"), m("C")], [m("A"), m("D")], 2)
    assert [x.key for x in capped.history] == ["B", "C"]
    assert [x.key for x in capped.targets] == ["D"]  # A is excluded although capped away


def test_unique_helpers():
    items = [m("A"), m("B"), m("A"), m("C")]
    assert [x.key for x in unique_keep_last(items)] == ["B", "A", "C"]
    assert [x.key for x in unique_keep_first(items)] == ["A", "B", "C"]
