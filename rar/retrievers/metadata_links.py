"""Metadata links: movies that share a person or a title word with the movies named so far.

Why: a movie that was never a training target has no co-occurrence and no trained per-movie
parameters, so the item tower and the prior cannot reach it, and the text tower's frozen
vectors match it only loosely. Its metadata can: in ReDial, a recommender often answers
Schwarzenegger films with another Schwarzenegger film, or a Batman film with a Superman one.
`experiments/cold_ceiling.py` measured it: ranked among never-target movies, the people
links alone find the target more often than the text tower.

Two fixed item-item matrices are built from the corpus metadata alone (no training data, so
warm and cold movies are treated alike):

- people: movies sharing a director or one of the first `CAST_BILLING` cast members;
- title: movies sharing a title word (stop words and words under three letters dropped).

A shared key weighs its inverse document frequency log(N / df); keys held by one movie, or by
more than `max_df` movies, link nothing. A history scores movie j by the summed weights of
its links to the history's movies. The parts enter the score only through the fusion weights
fitted on validation (fusion.py), so an unfitted retriever scores exactly as before.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from rar.retrievers.sparse_item_matrix import SparseItemMatrix

if TYPE_CHECKING:
    from rar.corpus import Corpus

#: the link parts, in score order
LINK_PARTS = ("people", "title")
CAST_BILLING = 5  # cast members per movie that link it (billing order)
MAX_DF = 200  # a key shared by more movies links nothing (too common to say anything)
TITLE_STOP_WORDS = frozenset(
    [
        "the",
        "and",
        "of",
        "in",
        "on",
        "to",
        "for",
        "with",
        "at",
        "by",
        "from",
        "is",
        "it",
        "an",
        "a",
        "part",
        "ii",
        "iii",
        "iv",
        "vi",
        "movie",
        "film",
    ]
)
_WORD = re.compile(r"[a-z0-9']+")


def people_keys(directors: Iterable[str], cast: Iterable[str]) -> set[str]:
    """A movie's people keys: its directors and its first CAST_BILLING cast members."""
    return {name.strip().lower() for name in directors if name.strip()} | {
        name.strip().lower() for name in list(cast)[:CAST_BILLING] if name.strip()
    }


def title_keys(title: str) -> set[str]:
    """A movie's title words: lower-case, three letters or more, stop words dropped."""
    words = _WORD.findall(title.lower())
    return {w for w in words if len(w) >= 3 and w not in TITLE_STOP_WORDS}


def link_weights(
    keys: list[set[str]], max_df: int = MAX_DF
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(src, dst, weight) of movie pairs sharing keys; a pair's weight sums log(N / df) over
    its shared keys (no self links)."""
    holders: dict[str, list[int]] = defaultdict(list)
    for row, row_keys in enumerate(keys):
        for key in row_keys:
            holders[key].append(row)
    total: dict[tuple[int, int], float] = defaultdict(float)
    for rows in holders.values():
        if not 2 <= len(rows) <= max_df:
            continue
        idf = math.log(len(keys) / len(rows))
        for a in rows:
            for b in rows:
                if a != b:
                    total[(a, b)] += idf
    if not total:
        return np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.float32)
    pairs = np.array(list(total), dtype=np.int32)
    return pairs[:, 0], pairs[:, 1], np.array(list(total.values()), dtype=np.float32)


def corpus_link_keys(corpus: Corpus) -> dict[str, list[set[str]]]:
    """Each link part's keys for every corpus row (row order)."""
    movies = corpus.movies
    key_of: dict[str, Callable[[int], set[str]]] = {
        "people": lambda i: people_keys(movies["directors"].iat[i], movies["cast"].iat[i]),
        "title": lambda i: title_keys(str(movies["title"].iat[i] or "")),
    }
    return {part: [key_of[part](i) for i in range(len(corpus))] for part in LINK_PARTS}


class MetadataLinks(nn.Module):
    """The link matrices (fixed buffers, empty until `build`; saved with the checkpoint)."""

    def __init__(self, num_items: int):
        super().__init__()
        self.people = SparseItemMatrix(num_items)
        self.title = SparseItemMatrix(num_items)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: ANN001
        # checkpoints written before the links existed load with empty ones (no link parts)
        for part in LINK_PARTS:
            for name in ("src", "dst"):
                state_dict.setdefault(f"{prefix}{part}.{name}", torch.zeros(0, dtype=torch.int32))
            state_dict.setdefault(f"{prefix}{part}.weight", torch.zeros(0, dtype=torch.float32))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def matrices(self) -> dict[str, SparseItemMatrix]:
        return {"people": self.people, "title": self.title}

    @property
    def is_built(self) -> bool:
        return any(not m.is_empty for m in self.matrices().values())

    def build(self, corpus: Corpus, max_df: int = MAX_DF) -> MetadataLinks:
        """Fill the matrices from `corpus`'s metadata (the retriever's corpus, same rows)."""
        if len(corpus) != self.people.num_items:
            raise ValueError(f"{len(corpus)} corpus rows for {self.people.num_items} items")
        for part, keys in corpus_link_keys(corpus).items():
            self.matrices()[part].set_weights(*link_weights(keys, max_df))
        return self

    def scores(self, history: torch.Tensor) -> dict[str, torch.Tensor]:
        """[B, L] tokens -> {part: [B, N]} for each built part (none before `build`)."""
        return {
            part: matrix.history_scores(history)
            for part, matrix in self.matrices().items()
            if not matrix.is_empty
        }
