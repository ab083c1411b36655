"""Prompt builder and reply parser: the formats real LLMs answer in."""

from __future__ import annotations

import pytest

from rar.data.types import Turn
from rar.rankers.parser import extract_items, parse_ranking
from rar.rankers.prompt import INSTRUCTIONS, Candidate, build_prompt, format_candidate, prompt_order
from rar.rankers.ranker_config import PromptConfig

TITLES = ["The Matrix", "Titanic", "Star Wars", "Star Wars", "2001: A Space Odyssey", "Se7en"]
YEARS = [1999, 1997, 1977, 1997, 1968, 1995]


def ranked_titles(reply: str, append: bool = False) -> tuple[list[int], list[str]]:
    parsed = parse_ranking(reply, TITLES, YEARS, append_missing=append)
    return parsed.indices, parsed.hallucinations


def test_numbered_list_with_years_and_reasons():
    reply = "1. Titanic (1997) - a romance\n2) The Matrix (1999): mind-bending\n3. Star Wars (1977)"
    assert ranked_titles(reply) == ([1, 0, 2], [])


def test_year_disambiguates_same_title():
    assert ranked_titles("1. Star Wars (1997)\n2. Star Wars (1977)")[0] == [3, 2]


def test_markdown_bullets_chatter_and_bold():
    reply = (
        "Sure! Based on the conversation, here is my ranking:\n\n"
        "## Ranking\n"
        "- **Se7en** (1995) — dark thriller\n"
        "* __2001: A Space Odyssey__\n"
        "**3. The Matrix**\n"
        "Hope this helps! Let me know if you want more.\n"
    )
    assert ranked_titles(reply) == ([5, 4, 0], [])


def test_json_arrays_of_strings_and_objects():
    assert ranked_titles('["Titanic", "The Matrix (1999)"]')[0] == [1, 0]
    reply = 'Here you go:\n```json\n[{"title": "Se7en", "year": 1995}, {"name": "Titanic"}]\n```'
    assert ranked_titles(reply)[0] == [5, 1]


def test_hallucinations_duplicates_and_appended_candidates():
    reply = "1. Titanic\n2. Inception (2010)\n3. titanic\n4. The Matrix"
    parsed = parse_ranking(reply, TITLES, YEARS, append_missing=True)
    assert parsed.indices[:2] == [1, 0]
    assert parsed.hallucinations == ["Inception (2010)"]
    assert parsed.n_duplicates == 1
    assert sorted(parsed.indices) == list(range(len(TITLES)))  # every candidate once
    assert parsed.indices[2:] == [2, 3, 4, 5]  # omitted ones in retriever order
    assert parsed.n_appended == 4


def test_plain_lines_without_markers_and_reply_that_is_not_a_list():
    assert ranked_titles("Titanic\nThe Matrix")[0] == [1, 0]
    parsed = parse_ranking("I cannot help with that.", TITLES, YEARS)
    assert parsed.n_matched == 0 and parsed.hallucinations == []  # a refusal invents no movie
    assert parsed.non_titles == ["I cannot help with that."] and parsed.n_items == 0
    assert parsed.indices == list(range(len(TITLES))) and parsed.n_appended == len(TITLES)


def test_chatter_is_not_a_hallucination_but_an_unmatched_list_item_is():
    reply = (
        "I'm glad you enjoyed the conversation! Here are some movies you might like:\n"
        "## My picks\n"
        "1. Titanic (1997)\n"
        "   A sweeping romance on a doomed ship.\n"
        "2. Inception (2010)\n"
        "- **Classics:**\n"
        "- Se7en\n"
        "---\n"
        "Enjoy your movie night, and let me know how it goes!\n"
    )
    parsed = parse_ranking(reply, TITLES, YEARS, append_missing=True)
    assert parsed.indices[:2] == [1, 5] and parsed.n_matched == 2
    assert parsed.hallucinations == ["Inception (2010)"]  # a list item naming no candidate
    assert parsed.n_items == 3  # title attempts: the three list items that are not headers
    assert parsed.non_titles == [
        "I'm glad you enjoyed the conversation! Here are some movies you might like:",
        "My picks",
        "A sweeping romance on a doomed ship.",
        "Classics:",
        "Enjoy your movie night, and let me know how it goes!",
    ]
    assert parsed.n_appended == len(TITLES) - 2


def test_unmarked_reply_title_shaped_lines_are_attempts_prose_only_if_it_matches():
    reply = (
        "Sure, I can help with ranking these movies for you.\n"
        "Inception\n"
        "Titanic - a classic romance that everybody in the family will enjoy watching.\n"
        "The Matrix\n"
    )
    parsed = parse_ranking(reply, TITLES, YEARS, append_missing=False)
    assert parsed.indices == [1, 0]  # the long prose line names a candidate: it counts
    assert parsed.hallucinations == ["Inception"]  # title-shaped, matches nothing
    assert parsed.non_titles == ["Sure, I can help with ranking these movies for you."]
    assert parsed.n_items == 3


def test_json_reply_chatter_around_the_array_is_not_a_title():
    reply = 'Here you go:\n["Titanic", "Memento"]\nThese fit the mood you described.'
    parsed = parse_ranking(reply, TITLES, YEARS, append_missing=False)
    assert parsed.indices == [1] and parsed.hallucinations == ["Memento"]
    assert parsed.non_titles == ["Here you go:", "These fit the mood you described."]


def test_fuzzy_threshold_is_applied():
    assert ranked_titles("1. The Matrx")[0] == [0]  # typo, similar enough
    assert ranked_titles("1. Matrix Reloaded")[0] == []  # a different movie


def test_title_starting_with_number_is_not_a_list_marker():
    assert extract_items("1. 2001: A Space Odyssey\n2. Se7en") == ["2001: A Space Odyssey", "Se7en"]


def _cands() -> list[Candidate]:
    meta = {
        "genres": ["Action", "Sci-Fi", "Thriller", "Extra"],
        "directors": ["Lana Wachowski"],
        "cast": ["Keanu Reeves"],
        "plot": "A hacker learns the truth about reality and joins a rebellion " * 5,
    }
    return [
        Candidate("c1", "The Matrix", 1999, meta),
        Candidate("c2", "Titanic", 1997, {"genres": []}),
    ]


def test_prompt_has_figure5_text_candidates_and_conversation():
    cfg = PromptConfig(plot_max_chars=40, max_list_items=3)
    ctx = [Turn("seeker", "I like sci-fi"), Turn("recommender", "Any actors?")]
    text = build_prompt(ctx, _cands(), cfg)
    assert text.startswith(INSTRUCTIONS)
    assert "Rank all 2 candidate movies." in text
    line = format_candidate(_cands()[0], cfg)
    assert line.startswith(
        "The Matrix (1999) | Genre: Action, Sci-Fi, Thriller | Director: Lana Wachowski"
    )
    assert "Extra" not in line and line.endswith("...") and len(line.split("Plot: ")[1]) <= 43
    assert text.index("Candidate movies:") < text.index("Conversation history:")
    assert text.rstrip().endswith("User: I like sci-fi\nRecommender: Any actors?")
    no_plot = format_candidate(_cands()[0], PromptConfig(fields=["title", "year", "genres"]))
    assert "Plot" not in no_plot and "Director" not in no_plot


def test_prompt_order_is_seeded_and_per_sample():
    cfg = PromptConfig(candidate_order="shuffled", seed=3)
    a, b = prompt_order("s1", 25, cfg), prompt_order("s1", 25, cfg)
    assert a == b and sorted(a) == list(range(25)) and a != list(range(25))
    assert prompt_order("s2", 25, cfg) != a
    assert prompt_order("s1", 25, PromptConfig()) == list(range(25))


@pytest.mark.parametrize("num_items", [3])
def test_prompt_asks_for_top_n(num_items):
    text = build_prompt([], _cands() * 3, PromptConfig(num_items=num_items))
    assert f"Return the top {num_items} of the 6 candidate movies." in text
