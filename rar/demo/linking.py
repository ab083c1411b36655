"""Movie mentions in a typed message -> corpus movies, with the project's title matcher.

Two kinds of mention are found, in text order:

- **quoted** titles, `"Heat"`, `“Heat”` or `*Heat*` (the convention of `rar recommend`): matched
  with :meth:`rar.matching.TitleMatcher.candidates`, so typos and a `(1995)` year work;
- **unquoted** title-case spans, `I loved The Dark Knight`: only exact title (or alternative
  title) keys count, longest span first, so ordinary words do not turn into movies. Single words
  on a small list of common sentence words are skipped ("Hi", "Thanks", "Love").

A mention is **ambiguous** when several corpus movies match about equally well (same title,
different years: "The Thing" 1982 / 2011) or when the best match is only fuzzy; the app then asks
"is this the movie you meant?". A choice the user made is kept in `choices` (key: the mention's
normalised text) and wins over the matcher's order from then on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rar.matching import normalize_core, normalize_title, split_title_year, title_keys

if TYPE_CHECKING:
    from rar.corpus import Corpus

MAX_SPAN_WORDS = 8
MAX_OPTIONS = 5
CLOSE_SCORE = 0.03  # options within this of the best score are equally good guesses
_QUOTED = re.compile(r'"([^"\n]{1,120})"|“([^”\n]{1,120})”|\*([^*\n]{1,120})\*')
_WORD = re.compile(r"\S+")
_YEAR_TOKEN = re.compile(r"^\(?((?:18|19|20)\d\d)\)?[.,!?;:]*$")
_STRIP_END = ".,!?;:)]\"'”’"
_STRIP_START = "([\"'“‘"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


FUNCTION_WORDS = _words(
    "a an and at by for from in into of on or the to vs vs. with without de la le"
)
COMMON_WORDS = _words(
    """i i'm i've i'd me my we you your it it's its he she they them this that these those
    hi hey hello thanks thank please yes no ok okay sure great nice good cool fine well so
    and but or also then now today tonight recently lately actually really just not maybe
    what which who whom whose when where why how any anything something nothing everything
    can could do does did done would should will shall may might must let let's is are was
    were be been have has had am love like liked loved enjoy enjoyed want wanted need watch
    watched seen saw movie movies film films show shows series comedy comedies horror action
    drama dramas thriller thrillers romance romantic animated animation documentary sci-fi
    scifi fantasy western musical crime mystery family kids adventure war classic classics
    one two three first last new old more most some all every many much other another
    there here yeah yep nope oh wow haha lol"""
)


@dataclass(frozen=True)
class MovieOption:
    """One corpus movie a mention may refer to."""

    corpus_id: str
    title: str
    year: int | None = None
    director: str | None = None
    score: float = 1.0
    method: str = "exact"

    @property
    def label(self) -> str:
        """`Title (Year)`: what a chip shows."""
        return f"{self.title} ({self.year})" if self.year else self.title

    @property
    def long_label(self) -> str:
        """`Title (Year), dir. Name`: what the "did you mean" choice shows."""
        return self.label + (f", dir. {self.director}" if self.director else "")


@dataclass
class LinkedMention:
    """A mention as typed, where it is, and the corpus movies it may be (best first)."""

    text: str
    start: int
    end: int
    quoted: bool
    options: list[MovieOption] = field(default_factory=list)
    chosen_id: str | None = None
    ambiguous: bool = False
    confirmed: bool = False  # the user picked `chosen_id` themselves

    @property
    def key(self) -> str:
        """The key of the user's choice for this mention (normalised title, plus its year)."""
        title, year = split_title_year(self.text)
        return normalize_title(title) + (f" ({year})" if year else "")

    @property
    def movie(self) -> MovieOption | None:
        for option in self.options:
            if option.corpus_id == self.chosen_id:
                return option
        return None

    @property
    def needs_choice(self) -> bool:
        return self.ambiguous and not self.confirmed


class ChatLinker:
    """Finds and links the movie mentions of chat messages against one corpus.

    Uses the runtime corpus's `title_matcher` (a :class:`rar.matching.TitleMatcher` over its
    titles, in row order), `ids` and `movie(row)`.
    """

    def __init__(self, corpus: Corpus):
        self.corpus = corpus
        self.matcher = corpus.title_matcher
        self._keys: set[str] = set()
        for title in self.matcher.titles:
            self._keys.update(title_keys(title))

    # ------------------------------------------------------------------ options
    def option(self, row: int, score: float = 1.0, method: str = "exact") -> MovieOption:
        movie = self.corpus.movie(row)
        return MovieOption(
            corpus_id=movie.corpus_id,
            title=movie.title,
            year=movie.year,
            director=movie.directors[0] if movie.directors else None,
            score=float(score),
            method=method,
        )

    def options_for(self, text: str) -> list[MovieOption]:
        """Corpus movies matching `text`, best first (the matcher's order)."""
        found = self.matcher.candidates(text, limit=MAX_OPTIONS)
        return [self.option(m.index, m.score, m.method) for m in found]

    def movie(self, corpus_id: str) -> MovieOption:
        return self.option(self.corpus.index_of(corpus_id))

    # ------------------------------------------------------------------ finding mentions
    def _unquoted(self, text: str, offset: int) -> list[LinkedMention]:
        words = [(m.start(), m.end()) for m in _WORD.finditer(text)]
        found: list[LinkedMention] = []
        i = 0
        while i < len(words):
            hit = None
            for j in range(min(len(words), i + MAX_SPAN_WORDS), i, -1):
                span = self._span(text, words, i, j)
                if span is not None:
                    hit = (j, span)
                    break
            if hit is None:
                i += 1
                continue
            j, (start, end) = hit
            # a following "(1999)" gives the year
            if j < len(words) and _YEAR_TOKEN.match(token := text[words[j][0] : words[j][1]]):
                end = words[j][0] + len(token.rstrip(".,!?;:"))
                j += 1
            found.append(LinkedMention(text[start:end], offset + start, offset + end, quoted=False))
            i = j
        return found

    def _span(self, text: str, words: list[tuple[int, int]], i: int, j: int):
        """(start, end) of words i..j-1 when they look like and are exactly a corpus title."""
        start, end = words[i][0], words[j - 1][1]
        chunk = text[start:end]
        stripped_start = chunk.lstrip(_STRIP_START)
        start += len(chunk) - len(stripped_start)
        chunk = stripped_start.rstrip(_STRIP_END)
        end = start + len(chunk)
        if not chunk:
            return None
        tokens = chunk.split()
        if not (tokens[0][0].isupper() or tokens[0][0].isdigit()):
            return None
        for token in tokens[1:]:
            head = token.lstrip(_STRIP_START)[:1]
            titled = bool(head) and (head.isupper() or head.isdigit() or not head.isalpha())
            if not titled and token.lower().strip(_STRIP_END) not in FUNCTION_WORDS:
                return None
        # inner sentence punctuation ends a title span ("Heat. Then Alien")
        if any(t.rstrip("\"'”’")[-1:] in ".!?;" for t in tokens[:-1]):
            return None
        if len(tokens) == 1:
            word = chunk.casefold()
            if word in COMMON_WORDS or len(normalize_core(chunk)) < 3:
                return None
        if normalize_core(chunk) not in self._keys:
            return None
        return start, end

    def find(self, text: str) -> list[LinkedMention]:
        """Every mention in `text`, in order, not yet linked."""
        mentions: list[LinkedMention] = []
        cursor = 0
        for match in _QUOTED.finditer(text):
            mentions.extend(self._unquoted(text[cursor : match.start()], cursor))
            inner = next(g for g in match.groups() if g is not None)
            if inner.strip():
                mentions.append(
                    LinkedMention(inner.strip(), match.start(), match.end(), quoted=True)
                )
            cursor = match.end()
        mentions.extend(self._unquoted(text[cursor:], cursor))
        return mentions

    # ------------------------------------------------------------------ linking
    def link(self, text: str, choices: dict[str, str] | None = None) -> list[LinkedMention]:
        """Find and link every mention; `choices` (mention key -> corpus id) are the user's."""
        choices = choices or {}
        out = []
        for mention in self.find(text):
            mention.options = self.options_for(mention.text)
            if mention.options:
                best = mention.options[0]
                close = {
                    (o.title.casefold(), o.year)
                    for o in mention.options
                    if o.score >= best.score - CLOSE_SCORE
                }
                mention.ambiguous = len(close) > 1 or (
                    best.method == "fuzzy" and len(mention.options) > 1
                )
                mention.chosen_id = best.corpus_id
            chosen = choices.get(mention.key)
            if chosen is not None:
                if all(o.corpus_id != chosen for o in mention.options):
                    try:
                        mention.options.insert(0, self.movie(chosen))
                    except KeyError:
                        chosen = None
                if chosen is not None:
                    mention.chosen_id = chosen
                    mention.confirmed = True
            out.append(mention)
        return out


def linked_movies(mentions: list[LinkedMention]) -> list[MovieOption]:
    """The movies the mentions link to, in order, each once."""
    seen: set[str] = set()
    out = []
    for mention in mentions:
        movie = mention.movie
        if movie is not None and movie.corpus_id not in seen:
            seen.add(movie.corpus_id)
            out.append(movie)
    return out
