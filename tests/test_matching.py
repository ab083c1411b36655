"""Title normalisation and matching (rar.matching), on hand-written cases and real MovieLens titles."""

from __future__ import annotations

import random

import pandas as pd
import pytest

from rar.matching import (
    Match,
    ParsedTitle,
    TitleMatcher,
    display_title,
    extract_year,
    normalize_title,
    parse_title,
    split_title_year,
    title_keys,
    title_prefix,
    title_similarity,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # case, whitespace
        ("  The   MATRIX ", "matrix"),
        # leading / trailing English articles, with and without years
        ("Matrix, The", "matrix"),
        ("Matrix, The (1999)", "matrix"),
        ("Dark Knight, The (2008)", "dark knight"),
        ("Bug's Life, A (1998)", "bugs life"),
        ("A Bug's Life", "bugs life"),
        ("American Tail, An (1986)", "american tail"),
        # foreign trailing articles move to the front and stay
        ("Misérables, Les (1995)", "les miserables"),
        ("Blechtrommel, Die (1979)", "die blechtrommel"),
        ("Postino, Il", "il postino"),
        ("Haine, La", "la haine"),
        ("Uomo delle stelle, L'", "luomo delle stelle"),
        ("L'uomo delle stelle", "luomo delle stelle"),
        ("Dorado, El", "el dorado"),
        ("Nostri anni, I", "i nostri anni"),
        ("Me, Myself & I", "me myself and i"),
        ("Boot, Das", "das boot"),
        # a leading foreign article is not an English one: "Die Hard" must not become "hard"
        ("Die Hard", "die hard"),
        # accents
        ("Amélie", "amelie"),
        ("Léon", "leon"),
        # punctuation, apostrophes, & / and
        ("Schindler's List", "schindlers list"),
        ("Singin’ in the Rain", "singin in the rain"),
        ("Fast & Furious", "fast and furious"),
        ("Fast and Furious", "fast and furious"),
        ("Mission: Impossible", "mission impossible"),
        ("WALL·E", "wall e"),
        # years and Wikipedia disambiguators
        ("Vertigo (film)", "vertigo"),
        ("Breathless (1960 film)", "breathless"),
        ("Crash (2004 American film)", "crash"),
        ("Headhunter  (2009)", "headhunter"),
        ("Heat [1995]", "heat"),
        # MovieLens alternative titles in parentheses keep the main title
        ("Seven (a.k.a. Se7en) (1995)", "seven"),
        (
            "City of Lost Children, The (Cité des enfants perdus, La) (1995)",
            "city of lost children",
        ),
        # Roman numerals are digits
        ("Rocky II", "rocky 2"),
        ("Godfather: Part II, The (1974)", "godfather part 2"),
        # numbers that are part of the title stay
        ("Blade Runner 2049", "blade runner 2049"),
        ("(500) Days of Summer (2009)", "500 days of summer"),
        ("1917", "1917"),
        ("", ""),
    ],
)
def test_normalize_title(raw: str, expected: str) -> None:
    assert normalize_title(raw) == expected


def test_article_forms_agree() -> None:
    forms = ["Matrix, The", "The Matrix", "the matrix (1999)", "Matrix, The (1999)", "MATRIX"]
    assert {normalize_title(f) for f in forms} == {"matrix"}


def test_split_title_year() -> None:
    assert split_title_year("Dark Knight, The (2008)") == ("Dark Knight, The", 2008)
    assert split_title_year("Breathless (1960 film)") == ("Breathless", 1960)
    assert split_title_year("Vertigo (film)") == ("Vertigo", None)
    assert split_title_year("Blade Runner 2049") == ("Blade Runner 2049", None)
    assert split_title_year("Heat") == ("Heat", None)
    # a title that is only a parenthesised year keeps it; an impossible year is not a year
    assert split_title_year("(1999)") == ("(1999)", None)
    assert split_title_year("Code (0042)") == ("Code (0042)", None)
    assert split_title_year("Lost (2004–2010)") == ("Lost", 2004)
    assert extract_year("Halloween (1978)") == 1978
    assert extract_year("Halloween") is None


def test_parse_title_aliases_and_display() -> None:
    parsed = parse_title("Léon: The Professional (a.k.a. The Professional) (Léon) (1994)")
    assert parsed.title == "Léon: The Professional"
    assert parsed.year == 1994
    assert parsed.aliases == ("The Professional", "Léon")
    assert title_keys("Seven (a.k.a. Se7en) (1995)") == ["seven", "se7en"]
    assert parse_title("Crash (I) (2004)") == ParsedTitle("Crash", 2004, ())  # IMDb numbering
    assert display_title("Dark Knight, The (2008)") == "The Dark Knight"
    assert display_title("Dark Knight, The (2008)", with_year=True) == "The Dark Knight (2008)"
    assert display_title("Star Maker, The (Uomo delle stelle, L') (1995)") == "The Star Maker"
    assert title_prefix("Star Wars: Episode IV - A New Hope") == "Star Wars"
    assert title_prefix("2001: A Space Odyssey") is None
    assert title_prefix("Heat") is None


def test_title_similarity_values() -> None:
    assert title_similarity("The Matrix (1999)", "Matrix, The") == 1.0
    # one dropped letter out of 20: Indel 2*19/(19+20) = 0.974
    assert title_similarity("Shawshank Redemtion", "Shawshank Redemption, The (1994)") == (
        pytest.approx(38 / 39)
    )
    # a short title inside a long one is not rewarded: "up" vs "up in the air" = 2*2/(2+13)
    assert title_similarity("Up", "Up in the Air") == pytest.approx(4 / 15)
    # numbers must agree: "toy story 2" vs "toy story 3" = 20/22, times 0.8
    assert title_similarity("Toy Story 2", "Toy Story 3") == pytest.approx(20 / 22 * 0.8)
    assert title_similarity("Toy Story II", "Toy Story 2") == 1.0
    # a sequel is not its original: "dark knight rises" vs "dark knight" = 22/28
    assert title_similarity("The Dark Knight Rises", "The Dark Knight") == pytest.approx(22 / 28)
    # reordered words count half: plain r = 24/34 ("resurrection" shared), sorted s = 30/34
    assert title_similarity("Resurrection Man", "Alien: Resurrection") == pytest.approx(27 / 34)
    assert title_similarity("", "Heat") == 0.0
    for a, b in [("Heat", "Heal"), ("Alien", "Aliens"), ("Se7en", "Seven")]:
        assert 0.0 <= title_similarity(a, b) == title_similarity(b, a) <= 1.0


def test_accents_and_ampersand_match_exactly() -> None:
    matcher = TitleMatcher(["Amélie (2001)", "Romeo & Juliet (1968)", "Léon (1994)"])
    assert matcher.match("Amelie").index == 0
    assert matcher.match("AMÉLIE").score == 1.0
    assert matcher.match("Romeo and Juliet").index == 1
    assert matcher.match("Leon").index == 2


def test_year_disambiguation_between_same_named_movies() -> None:
    titles = ["Halloween (1978)", "Halloween (2018)", "Halloween II (1981)"]
    matcher = TitleMatcher(titles)
    assert matcher.match("Halloween (1978)").index == 0
    assert matcher.match("Halloween (2018)").index == 1
    assert matcher.match("Halloween", year=2018).index == 1
    # within the tolerance of 1 year, the nearest year wins
    assert matcher.match("Halloween (2019)").index == 1
    assert matcher.match("Halloween (1979)").index == 0
    # more than a year away from both: rejected, not guessed
    assert matcher.match("Halloween (2007)") is None
    # no year: the first (or the most popular) one
    assert matcher.match("Halloween").index == 0
    popular = TitleMatcher(titles, popularity=[10, 500, 3])
    assert popular.match("Halloween").index == 1
    # the sequel is not a fuzzy hit for the original
    assert matcher.match("Halloween 2", year=1981).index == 2
    assert TitleMatcher(["Halloween II (1981)"]).match("Halloween") is None


def test_year_rule_applies_to_fuzzy_matches_and_explicit_years() -> None:
    matcher = TitleMatcher(["Shawshank Redemption, The", "Heat"], years=[1994, None])
    assert matcher.years == [1994, None]
    assert matcher.match("Shawshank Redemtion (1994)").method == "fuzzy"
    assert matcher.match("Shawshank Redemtion (2001)") is None
    # a candidate without a year is kept when the query has one
    assert matcher.match("Heat (1995)").index == 1
    # given years override years in the titles; NaN / None mean unknown
    m = TitleMatcher(["Heat (1995)", "Heat"], years=[float("nan"), 1986])
    assert m.years == [1995, 1986]
    assert m.match("Heat", year=1986).index == 1


def test_threshold_behaviour() -> None:
    titles = ["Shawshank Redemption, The (1994)", "Twister (1996)"]
    # "shawshank redemtion" vs "shawshank redemption" = 38/39 = 0.974
    assert TitleMatcher(titles, threshold=0.97).match("Shawshank Redemtion").index == 0
    assert TitleMatcher(titles, threshold=0.98).match("Shawshank Redemtion") is None
    # "twisted" vs "twister" = 12/14 = 0.857: with a confirming year, inside the default 0.85
    # and outside 0.86
    assert TitleMatcher(titles).match("Twisted (1996)").score == pytest.approx(12 / 14)
    assert TitleMatcher(titles, threshold=0.86).match("Twisted (1996)") is None
    assert TitleMatcher(titles).match("Completely Different") is None


def test_yearless_fuzzy_matches_need_the_higher_bar() -> None:
    titles = ["Toy Story (1995)", "Man on Fire (2004)", "Shawshank Redemption, The (1994)"]
    matcher = TitleMatcher(titles, yearless_threshold=0.92)
    # without a year to confirm them, one-letter neighbours are other films:
    # "tokyo story"/"toy story" = 1 - 2/20 = 0.90, "man on wire"/"man on fire" = 1 - 2/22 = 0.91,
    # both below the yearless bar 0.92
    assert matcher.match("Tokyo Story") is None
    assert matcher.match("Man on Wire") is None
    # ... and a year more than 1 away rejects them outright
    assert matcher.match("Tokyo Story (1953)") is None
    # a clear typo passes without a year: 38/39 = 0.974 >= 0.92
    assert matcher.match("Shawshank Redemtion").index == 2
    # with a matching year the ordinary threshold applies: 0.90 >= 0.85
    assert matcher.match("Toy Stori", year=1995).index == 0
    # a candidate with no year cannot confirm either
    undated = TitleMatcher(["Man on Fire"], yearless_threshold=0.92)
    assert undated.match("Man on Wire (2008)") is None
    # None: one threshold for all
    assert TitleMatcher(titles, yearless_threshold=None).match("Man on Wire").index == 1
    with pytest.raises(ValueError, match="yearless_threshold"):
        TitleMatcher(titles, yearless_threshold=1.5)
    with pytest.raises(ValueError, match="yearless_threshold"):
        TitleMatcher(titles, yearless_threshold="high")  # type: ignore[arg-type]


def test_yearless_threshold_auto_depends_on_list_size() -> None:
    # a short candidate list (a ranker's): a near miss is a typo of a listed title
    small = TitleMatcher(["Toy Story (1995)", "Heat (1995)"])
    assert small.yearless_threshold == 0.85
    assert small.match("Tokyo Story").index == 0
    # a corpus-sized list: without a confirming year the bar is 0.92
    filler = [f"Filler Movie {i} ({1950 + i % 50})" for i in range(1001)]
    large = TitleMatcher(["Toy Story (1995)", *filler])
    assert large.yearless_threshold == 0.92
    assert large.match("Tokyo Story") is None
    assert large.match("Toy Stori (1995)").index == 0
    assert TitleMatcher(filler, threshold=0.95).yearless_threshold == 0.95  # never below threshold


def test_exact_hits_beat_fuzzy_and_aliases_and_prefixes() -> None:
    titles = [
        "Seven (a.k.a. Se7en) (1995)",
        "Se7en Days (2010)",
        "Star Wars: Episode IV - A New Hope (1977)",
        "Star Wars: Episode V - The Empire Strikes Back (1980)",
        "Alien (1979)",
        "Alien: Resurrection (1997)",
    ]
    matcher = TitleMatcher(titles)
    se7en = matcher.match("Se7en")
    assert (se7en.index, se7en.method, se7en.score) == (0, "alias", 1.0)
    assert matcher.match("Star Wars") == Match(2, 1.0, titles[2], "prefix", 1977)
    assert matcher.match("Star Wars (1980)").index == 3
    assert matcher.match("Alien").method == "exact"
    assert matcher.match("Alien").index == 4
    assert matcher.match("Alien (1997)").index == 5
    assert [m.index for m in matcher.candidates("Alien", limit=5)] == [4, 5]


def test_match_many_equals_match() -> None:
    titles = [
        "Matrix, The (1999)",
        "Matrix Reloaded, The (2003)",
        "Heat (1995)",
        "Toy Story (1995)",
    ]
    matcher = TitleMatcher(titles)
    queries = [
        "the matrix",
        "Matrix Reloded",
        "Toy Story 2",
        "",
        "heat",
        "Heat (2003)",
        "Toy Stroy",
    ]
    years = [None, 2003, None, None, 1995, None, 1995]
    many = matcher.match_many(queries, years=years)
    assert many == [matcher.match(q, year=y) for q, y in zip(queries, years, strict=True)]
    assert [m.index if m else None for m in many] == [0, 1, None, None, 2, None, 3]
    with pytest.raises(ValueError, match="years has 1 entries but texts has 7"):
        matcher.match_many(queries, years=[1])


@pytest.mark.needs_data
def test_real_movielens_titles_link_across_releases(data_dir) -> None:
    """ML-1M titles (latin-1 .dat) against ml-latest-small: same movies, some renamed since."""
    small = pd.read_csv(data_dir / "movielens" / "ml-latest-small" / "movies.csv")
    matcher = TitleMatcher(small["title"].tolist())
    lines = (data_dir / "movielens" / "ml-1m-movies.dat").read_text("latin-1").splitlines()
    ml1m = [line.split("::")[1] for line in lines]
    matches = matcher.match_many(ml1m)
    linked = [m for m in matches if m is not None]
    # most ML-1M movies are in the (later, smaller) release; exact normalised hits dominate
    assert len(linked) / len(ml1m) > 0.75
    assert sum(m.method == "exact" for m in linked) / len(linked) > 0.95
    by_title = dict(zip(ml1m, matches, strict=True))
    assert by_title["Matrix, The (1999)"].title == "Matrix, The (1999)"
    assert by_title["Twelve Monkeys (1995)"].title == "Twelve Monkeys (a.k.a. 12 Monkeys) (1995)"
    assert by_title["U.S. Marshalls (1998)"].title == "U.S. Marshals (1998)"
    assert by_title["Interview with the Vampire (1994)"].method == "prefix"
    # same-named movies keep their years apart
    for text, match in by_title.items():
        if match is not None and match.year is not None and extract_year(text) is not None:
            assert abs(match.year - extract_year(text)) <= 1
    assert matcher.match("Se7en").title == "Seven (a.k.a. Se7en) (1995)"


@pytest.mark.slow
def test_scale_100k_titles_build_and_match() -> None:
    rng = random.Random(0)
    words = [f"{a}{b}{c}" for a in "bcdfghklmnprst" for b in "aeiou" for c in "lmnrstxz"]
    titles = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 4))) for _ in range(100_000)]
    years = [rng.randint(1920, 2020) for _ in titles]
    matcher = TitleMatcher(titles, years=years)
    assert len(matcher) == 100_000
    picks = rng.sample(range(len(titles)), 300)
    queries = [titles[i] + "s" for i in picks]  # one extra letter: a fuzzy hit
    results = matcher.match_many(queries, years=[years[i] for i in picks])
    found = [r for r in results if r is not None]
    assert len(found) / len(picks) > 0.9
    for r, i in zip(results, picks, strict=True):
        if r is not None:
            assert r.score >= 0.85
            assert abs(r.year - years[i]) <= 1
