"""Movie-title normalisation and matching, shared by the corpus linker and ranker-output parsing.

Titles arrive in many spellings: MovieLens ``"Matrix, The (1999)"`` with alternative titles in
parentheses (``"Seven (a.k.a. Se7en) (1995)"``), Wikipedia ``"Vertigo (film)"``, ReDial
``"Headhunter  (2009)"``, and free text from users and LLMs (``"the matrix"``, ``"Amélie"``).
:func:`normalize_title` maps them all to one comparable key; :class:`TitleMatcher` links a text
to an entry of a title list: exact normalised hits first, then rapidfuzz, with a year rule to tell
same-named movies apart (rules in ``docs/matching_metrics.md`` and on :class:`TitleMatcher`).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from rapidfuzz import fuzz
from rapidfuzz.distance import Indel
from rapidfuzz.process import cdist

DEFAULT_THRESHOLD = 0.85
LARGE_LIST_YEARLESS_THRESHOLD = 0.92
"""Fuzzy bar without a confirming year, for lists of more than SMALL_LIST titles."""
SMALL_LIST = 1000
NUMBER_MISMATCH_FACTOR = 0.8
"""Similarity multiplier when the two titles' numbers differ ("Toy Story 2" vs "Toy Story 3")."""

MIN_YEAR, MAX_YEAR = 1870, 2100

# "(1999)", "[1999]", "(1999 film)", "(film)", "(2004 American film)", "(TV film)", "(1999 movie)",
# and year ranges "(2004–2010)" (the first year counts)
_YEAR_SUFFIX = re.compile(
    r"\s*[(\[]\s*(?:(?P<year>\d{4})(?:\s*[-–]\s*(?:\d{4})?)?\s*)?"
    r"(?P<kind>(?:[^\W\d_]+\s+){0,2}(?:film|movie))?\s*[)\]]\s*$",
    re.IGNORECASE,
)
# IMDb's "Crash (I) (2004)" numbering of same-named titles: not an alternative title
_IMDB_NUMBER = re.compile(r"^[IVX]+$")
_AKA_PREFIX = re.compile(r"^\s*(?:a\.?k\.?a\.?|also known as)[\s:]+", re.IGNORECASE)

ENGLISH_ARTICLES = ("the", "a", "an")
# Articles MovieLens (and IMDb lists) move to the end: "Misérables, Les", "Uomo delle stelle, L'".
TRAILING_ARTICLES = (
    *ENGLISH_ARTICLES,
    "le", "la", "les", "l'", "il", "lo", "i", "gli", "el", "los", "las", "die", "der", "das", "den",
    "det", "de", "het", "un", "une", "una", "uno", "ein", "eine", "o", "os", "as",
)  # fmt: skip
_TRAILING_ARTICLE = re.compile(
    r"^(?P<rest>.+?),\s*(?P<article>"
    + "|".join(re.escape(a) for a in TRAILING_ARTICLES)
    + r")\s*$",
    re.IGNORECASE,
)
_APOSTROPHES = re.compile(r"['’‘`´ʼ]")
_NON_WORD = re.compile(r"[\W_]+")
# Roman numerals II-XX as digits ("Rocky II" == "Rocky 2"); "i", "v", "x" stay words
# ("I, Robot", "V for Vendetta").
_ROMAN_NUMERALS = (
    "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x", "xi", "xii", "xiii", "xiv", "xv",
    "xvi", "xvii", "xviii", "xix", "xx",
)  # fmt: skip
_ROMAN = {
    numeral: str(value)
    for value, numeral in enumerate(_ROMAN_NUMERALS, start=2)
    if numeral not in ("v", "x")
}


def _valid_year(value: int) -> bool:
    return MIN_YEAR <= value <= MAX_YEAR


def split_title_year(text: str) -> tuple[str, int | None]:
    """Split a trailing year or Wikipedia-style suffix off a title.

    ``"Dark Knight, The (2008)"`` -> ``("Dark Knight, The", 2008)``;
    ``"Breathless (1960 film)"`` -> ``("Breathless", 1960)``; ``"Vertigo (film)"`` ->
    ``("Vertigo", None)``. Bare numbers are left alone ("Blade Runner 2049", "1917").
    """
    title = " ".join(str(text).split())
    year: int | None = None
    match = _YEAR_SUFFIX.search(title)
    if match and (match.group("year") or match.group("kind")) and match.start() > 0:
        raw_year = match.group("year")
        if raw_year is None or _valid_year(int(raw_year)):
            year = int(raw_year) if raw_year else None
            title = title[: match.start()].rstrip()
    return title, year


def extract_year(text: str) -> int | None:
    """The year of a trailing ``(1999)`` / ``(1999 film)``, or None."""
    return split_title_year(text)[1]


def _trailing_group(title: str) -> int | None:
    """Start of a final balanced ``(...)`` group that has some title before it, else None."""
    if not title.endswith(")"):
        return None
    depth = 0
    for pos in range(len(title) - 1, -1, -1):
        char = title[pos]
        if char == ")":
            depth += 1
        elif char == "(":
            depth -= 1
            if depth == 0:
                return pos if title[:pos].strip() else None
    return None


@dataclass(frozen=True)
class ParsedTitle:
    """A title split into its main form, year, and alternative titles (MovieLens a.k.a. groups)."""

    title: str
    year: int | None
    aliases: tuple[str, ...] = ()


def parse_title(text: str) -> ParsedTitle:
    """Split year and trailing parenthesised alternative titles off a title.

    ``"Léon: The Professional (a.k.a. The Professional) (Léon) (1994)"`` ->
    ``ParsedTitle("Léon: The Professional", 1994, ("Léon", "The Professional"))``.
    """
    title, year = split_title_year(text)
    aliases: list[str] = []
    while (start := _trailing_group(title)) is not None:
        inner = _AKA_PREFIX.sub("", title[start + 1 : -1]).strip()
        title = title[:start].rstrip()
        if inner and not _IMDB_NUMBER.match(inner):
            aliases.append(inner)
    return ParsedTitle(title, year, tuple(reversed(aliases)))


_SUBTITLE = re.compile(r"\s*(?::|\s-\s|\s–\s)\s*")


def title_prefix(title: str) -> str | None:
    """The part of a title before its subtitle ("Star Wars: Episode IV - A New Hope" -> "Star Wars").

    Returns None when there is no subtitle or the prefix is a bare number ("2001: A Space Odyssey").
    """
    parts = _SUBTITLE.split(title, maxsplit=1)
    if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
        return None
    prefix = parts[0].strip()
    return None if prefix.isdigit() else prefix


def move_trailing_article(title: str) -> str:
    """``"Matrix, The"`` -> ``"The Matrix"``; ``"Uomo delle stelle, L'"`` -> ``"L'Uomo delle stelle"``."""
    match = _TRAILING_ARTICLE.match(title)
    if not match:
        return title
    article, rest = match.group("article"), match.group("rest").strip()
    article = article[:1].upper() + article[1:]
    return f"{article}{rest}" if article.endswith("'") else f"{article} {rest}"


def display_title(text: str, with_year: bool = False) -> str:
    """A human-readable title: main title, article in front, optional ``(year)``.

    ``"Dark Knight, The (2008)"`` -> ``"The Dark Knight"`` (or ``"The Dark Knight (2008)"``).
    """
    parsed = parse_title(text)
    title = move_trailing_article(parsed.title)
    return f"{title} ({parsed.year})" if with_year and parsed.year else title


def _strip_accents(text: str) -> str:
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def normalize_core(title: str) -> str:
    """Normalise a title that has no year/alternative-title suffix left (see :func:`normalize_title`)."""
    text = move_trailing_article(" ".join(_strip_accents(title).split())).casefold()
    text = _APOSTROPHES.sub("", text).replace("&", " and ")
    tokens = _NON_WORD.sub(" ", text).split()
    tokens = [_ROMAN.get(tok, tok) for tok in tokens]
    if len(tokens) > 1 and tokens[0] in ENGLISH_ARTICLES:
        tokens = tokens[1:]
    return " ".join(tokens)


def normalize_title(text: str) -> str:
    """The comparison key of a title.

    Steps: drop a trailing ``(1999)`` / ``(film)`` / ``(1999 film)`` and MovieLens alternative
    titles in parentheses; strip accents (Unicode NFKD); casefold; move a trailing article to the
    front ("Matrix, The", "Misérables, Les"); delete apostrophes; ``&`` -> ``and``; other
    punctuation -> space; Roman numerals II-XX -> digits; drop one leading English article
    (the/a/an); collapse whitespace. ``"Dark Knight, The (2008)"`` and ``"the dark knight"`` both
    give ``"dark knight"``. Foreign articles are kept ("les miserables"), since dropping them would
    turn "Die Hard" into "hard".
    """
    if text is None:
        return ""
    return normalize_core(parse_title(str(text)).title)


def title_keys(text: str) -> list[str]:
    """Normalised keys of the main title followed by those of its alternative titles (deduplicated)."""
    parsed = parse_title(str(text))
    keys: list[str] = []
    for variant in (parsed.title, *parsed.aliases):
        key = normalize_core(variant)
        if key and key not in keys:
            keys.append(key)
    return keys


def _numbers(key: str) -> tuple[str, ...]:
    return tuple(sorted(tok for tok in key.split() if tok.isdigit()))


def _sort_tokens(key: str) -> str:
    return " ".join(sorted(key.split()))


def normalized_similarity(a: str, b: str) -> float:
    """Similarity in [0, 1] of two already-normalised keys (see :func:`title_similarity`)."""
    if not a or not b:
        return 0.0
    if a == b:
        return 1.0
    plain = Indel.normalized_similarity(a, b)
    reordered = Indel.normalized_similarity(_sort_tokens(a), _sort_tokens(b))
    score = (plain + max(plain, reordered)) / 2.0
    if _numbers(a) != _numbers(b):
        score *= NUMBER_MISMATCH_FACTOR
    return float(score)


def title_similarity(a: str, b: str) -> float:
    """Similarity in [0, 1] of two titles after :func:`normalize_title` (years are ignored).

    With ``r`` = rapidfuzz ``fuzz.ratio`` (normalised Indel similarity) of the keys and ``s`` =
    the same on their alphabetically sorted tokens (``token_sort_ratio``), the score is
    ``(r + max(r, s)) / 2 / 100``: reordered words help, but only by half, so "Resurrection Man"
    vs "Alien: Resurrection" (r 0.71, s 0.88) scores 0.79. Unlike ``partial_ratio``/``WRatio``
    it does not reward a short title for being inside a long one: "Up" vs "Up in the Air"
    scores 0.27. If the titles' numbers differ ("Toy Story 2" vs "Toy Story 3") the score is
    multiplied by 0.8, so such a pair never reaches the default threshold 0.85. At 0.85 about
    15% of the characters of the two keys may differ: "Shawshank Redemtion" matches "The
    Shawshank Redemption" (0.97); "Dark Knight Rises" vs "The Dark Knight" (0.79) does not.
    Short keys are the weak spot: one changed letter in 7 ("Twisted"/"Twister") is 0.857.
    """
    return normalized_similarity(normalize_title(a), normalize_title(b))


@dataclass(frozen=True)
class Match:
    """A matched title: its position in the matcher's list, score in [0, 1] and how it was found."""

    index: int
    score: float
    title: str
    method: str = "exact"  # "exact" (main title), "alias" (alternative title), "prefix", "fuzzy"
    year: int | None = None


@dataclass
class _Query:
    keys: list[str]
    year: int | None


def _as_year(value: object) -> int | None:
    if value is None:
        return None
    try:
        if isinstance(value, float) and math.isnan(value):
            return None
        year = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
    return year if _valid_year(year) else None


class TitleMatcher:
    """Link free-text titles to a list of known titles (e.g. a 337k-movie corpus).

    Rules, in order:

    1. **Exact**: the query's normalised main title (then its alternative titles) is looked up in
       a dict of every list entry's normalised main and alternative titles, and of the part of
       its main title before a subtitle ("Star Wars: Episode IV - A New Hope" is found by
       "Star Wars", method "prefix"; prefixes are not used by the fuzzy stage). Score 1.0.
    2. **Fuzzy** (only when no exact hit survives the year rule): rapidfuzz scores the query's key
       against every key (:func:`normalized_similarity`, computed with ``process.cdist`` over the
       keys whose length allows the threshold, so nothing above it is missed); candidates at or
       above ``threshold`` survive when both the query and the candidate have a year (checked by
       rule 3); when either year is unknown the bar is ``yearless_threshold``, because short
       titles one letter apart are often different films ("Tokyo Story" / "Toy Story" 0.90,
       "Man on Wire" / "Man on Fire" 0.91, "Hero" / "Her" 0.86). Its default ``"auto"`` is
       0.92 for lists of more than 1,000 titles (a corpus, where such neighbours exist) and
       ``threshold`` for shorter lists (a ranker's candidates, where a near miss is a typo);
       ``None`` means ``threshold`` always.
    3. **Year rule**: when the query has a year (``year=`` or a ``(1999)`` in the text) and a
       candidate has one, a candidate whose year differs by more than ``year_tolerance``
       (default 1, release years differ between sources) is rejected. Candidates without a year
       are kept.
    4. **Tie-breaks**, exact hits: year distance (0, then 1, then unknown), main title before
       alternative title before prefix, higher ``popularity``, lower index. Fuzzy hits: higher
       score first, then the same order.
    """

    def __init__(
        self,
        titles: Sequence[str],
        years: Sequence[object] | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        popularity: Sequence[float] | None = None,
        year_tolerance: int = 1,
        max_candidates: int = 32,
        yearless_threshold: float | Literal["auto"] | None = "auto",
    ):
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        if yearless_threshold == "auto":
            large = len(titles) > SMALL_LIST
            yearless_threshold = LARGE_LIST_YEARLESS_THRESHOLD if large else None
        if yearless_threshold is not None and (
            isinstance(yearless_threshold, str) or not 0.0 < yearless_threshold <= 1.0
        ):
            raise ValueError(
                f"yearless_threshold must be in (0, 1], 'auto' or None, got {yearless_threshold!r}"
            )
        titles = [("" if t is None else str(t)) for t in titles]
        n = len(titles)
        if years is not None and len(years) != n:
            raise ValueError(f"years has {len(years)} entries but titles has {n}")
        if popularity is not None and len(popularity) != n:
            raise ValueError(f"popularity has {len(popularity)} entries but titles has {n}")
        self.titles = titles
        self.threshold = float(threshold)
        # never below `threshold`; None means "same as threshold"
        self.yearless_threshold = max(self.threshold, float(yearless_threshold or 0.0))
        self.year_tolerance = int(year_tolerance)
        self.max_candidates = int(max_candidates)
        self.popularity = (
            np.zeros(n)
            if popularity is None
            else np.nan_to_num(np.asarray(popularity, dtype=float), nan=0.0)
        )
        self.years: list[int | None] = []
        # key -> list of (title index, level) where level 0 = main title, 1 = alternative title
        self._entries: dict[str, list[tuple[int, int]]] = {}
        # main-title part before a subtitle ("Interview with the Vampire") -> title indices
        self._prefix: dict[str, list[int]] = {}
        for i, title in enumerate(titles):
            parsed = parse_title(title)
            given = _as_year(years[i]) if years is not None else None
            self.years.append(given if given is not None else parsed.year)
            seen: set[str] = set()
            for level, variant in enumerate((parsed.title, *parsed.aliases)):
                key = normalize_core(variant)
                if key and key not in seen:
                    seen.add(key)
                    self._entries.setdefault(key, []).append((i, min(level, 1)))
            prefix = title_prefix(parsed.title)
            if prefix and (key := normalize_core(prefix)) and key not in seen and len(key) >= 3:
                self._prefix.setdefault(key, []).append(i)
        keys = sorted(self._entries, key=len)
        self._keys = keys
        self._sorted_keys = [_sort_tokens(k) for k in keys]
        self._key_lengths = np.fromiter((len(k) for k in keys), dtype=np.int64, count=len(keys))

    def __len__(self) -> int:
        return len(self.titles)

    # ----------------------------------------------------------------- candidate ordering
    def _year_gap(self, index: int, year: int | None) -> int | None:
        """0 / 1 .. tolerance for agreeing years, 99 for unknown, None when rejected."""
        own = self.years[index]
        if year is None:
            return 0
        if own is None:
            return 99
        gap = abs(own - year)
        return gap if gap <= self.year_tolerance else None

    def _best(
        self,
        scored: Iterable[tuple[int, int, float]],
        year: int | None,
        method_of_level: tuple[str, ...],
    ) -> list[Match]:
        """Order (index, level, score) candidates by the tie-break rules; drop year rejects."""
        best: dict[int, tuple[tuple, Match]] = {}
        for index, level, score in scored:
            gap = self._year_gap(index, year)
            if gap is None:
                continue
            rank = (-round(score, 6), gap, level, -self.popularity[index], index)
            if index not in best or rank < best[index][0]:
                match = Match(
                    index,
                    float(score),
                    self.titles[index],
                    method_of_level[level],
                    self.years[index],
                )
                best[index] = (rank, match)
        return [m for _, m in sorted(best.values(), key=lambda item: item[0])]

    def _exact(self, query: _Query) -> list[Match]:
        scored = []
        for qlevel, key in enumerate(query.keys):
            for index, level in self._entries.get(key, ()):
                scored.append((index, max(level, min(qlevel, 1)), 1.0))
            for index in self._prefix.get(key, ()):
                scored.append((index, 2, 1.0))
        return self._best(scored, query.year, ("exact", "alias", "prefix"))

    def _fuzzy_rows(self, keys: list[str]) -> list[list[tuple[int, float]]]:
        """For each query key, (key position, base score) pairs >= threshold, via chunked cdist."""
        out: list[list[tuple[int, float]]] = [[] for _ in keys]
        if not keys or not self._keys:
            return out
        t = self.threshold
        lo_factor, hi_factor = t / (2.0 - t), (2.0 - t) / t  # Indel similarity bound on lengths
        cutoff = t * 100.0 - 1e-6
        order = sorted(range(len(keys)), key=lambda i: len(keys[i]))
        budget = 4_000_000  # score cells per cdist call (float32: 16 MB)
        start = 0
        while start < len(order):
            first_len = len(keys[order[start]])
            lo = int(np.searchsorted(self._key_lengths, math.floor(first_len * lo_factor), "left"))
            stop = start + 1
            while stop < len(order) and stop - start < 512:
                hi_len = math.ceil(len(keys[order[stop]]) * hi_factor)
                width = int(np.searchsorted(self._key_lengths, hi_len, "right")) - lo
                if (stop - start + 1) * max(width, 1) > budget:
                    break
                stop += 1
            rows = order[start:stop]
            hi = int(
                np.searchsorted(
                    self._key_lengths, math.ceil(len(keys[rows[-1]]) * hi_factor), "right"
                )
            )
            block = self._keys[lo:hi]
            if block:
                qs = [keys[i] for i in rows]
                plain = cdist(qs, block, scorer=fuzz.ratio, score_cutoff=cutoff, workers=-1)
                sorted_scores = cdist(
                    [_sort_tokens(q) for q in qs], self._sorted_keys[lo:hi],
                    scorer=fuzz.ratio, score_cutoff=cutoff, workers=-1,
                )  # fmt: skip
                np.maximum(plain, sorted_scores, out=plain)
                for r, qi in enumerate(rows):
                    hits = np.flatnonzero(plain[r] >= cutoff)
                    if len(hits) > self.max_candidates:
                        top = np.argpartition(-plain[r, hits], self.max_candidates - 1)
                        hits = hits[top[: self.max_candidates]]
                    out[qi] = [(lo + int(h), float(plain[r, h]) / 100.0) for h in hits]
            start = stop
        return out

    def _fuzzy(self, query: _Query, rows: list[tuple[int, float]]) -> list[Match]:
        scored = []
        for pos, _bound in rows:
            key = self._keys[pos]
            score = normalized_similarity(query.keys[0], key)  # exact score; cdist gave a bound
            if score + 1e-9 < self.threshold:
                continue
            for index, level in self._entries[key]:
                dated = query.year is not None and self.years[index] is not None
                if dated or score + 1e-9 >= self.yearless_threshold:
                    scored.append((index, level, score))
        return self._best(scored, query.year, ("fuzzy", "fuzzy", "fuzzy"))

    # ---------------------------------------------------------------------- public API
    def _query(self, text: str, year: object = None) -> _Query:
        parsed = parse_title("" if text is None else str(text))
        keys = []
        for variant in (parsed.title, *parsed.aliases):
            key = normalize_core(variant)
            if key and key not in keys:
                keys.append(key)
        given = _as_year(year)
        return _Query(keys, given if given is not None else parsed.year)

    def candidates(self, text: str, year: object = None, limit: int = 5) -> list[Match]:
        """The best `limit` matches in rule order (exact hits, else fuzzy hits), for inspection."""
        query = self._query(text, year)
        if not query.keys:
            return []
        found = self._exact(query)
        if not found:
            found = self._fuzzy(query, self._fuzzy_rows([query.keys[0]])[0])
        return found[:limit]

    def match(self, text: str, year: object = None) -> Match | None:
        """The best match of `text` (a year in `text` or `year=` enables the year rule), or None."""
        found = self.candidates(text, year, limit=1)
        return found[0] if found else None

    def match_many(
        self, texts: Sequence[str], years: Sequence[object] | None = None
    ) -> list[Match | None]:
        """:meth:`match` for many texts; the fuzzy stage runs batched (cdist, all cores)."""
        if years is not None and len(years) != len(texts):
            raise ValueError(f"years has {len(years)} entries but texts has {len(texts)}")
        queries = [
            self._query(t, years[i] if years is not None else None) for i, t in enumerate(texts)
        ]
        results: list[Match | None] = [None] * len(queries)
        pending: list[int] = []
        for i, query in enumerate(queries):
            if not query.keys:
                continue
            exact = self._exact(query)
            if exact:
                results[i] = exact[0]
            else:
                pending.append(i)
        # one fuzzy search per distinct main key
        distinct = sorted({queries[i].keys[0] for i in pending})
        rows = dict(zip(distinct, self._fuzzy_rows(distinct), strict=True))
        for i in pending:
            found = self._fuzzy(queries[i], rows[queries[i].keys[0]])
            results[i] = found[0] if found else None
        return results
