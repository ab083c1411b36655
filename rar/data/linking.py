"""Map a sample's mentions (dataset keys and titles) to corpus ids, counting what does not link.

Why: metrics compare corpus ids, the retriever reads corpus rows. The corpus's link table for
the sample's dataset is used first (built once by the corpus builder); mentions it does not
know (custom files, new dialogues) are matched by title against the whole corpus.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from rar.data.types import Mention, Sample

if TYPE_CHECKING:
    from rar.corpus import Corpus
    from rar.matching import TitleMatcher


Protocol = Literal["per_turn", "per_item"]
PROTOCOLS: tuple[str, ...] = ("per_turn", "per_item")
PROTOCOL_LABELS = {
    "per_turn": "per-turn (one row per recommender turn, all its new movies as targets)",
    "per_item": "per-item (He et al. 2023: one row per ground-truth movie of a turn)",
}


@dataclass
class LinkedSample:
    sample: Sample
    history_ids: list[str]  # corpus ids, oldest first
    target_ids: list[str]
    turn_id: str | None = None  # per-item rows: the sample id of the turn the row came from


@dataclass
class SampleLinkStats:
    """What linking conversation samples kept and dropped (nothing is dropped silently)."""

    samples_in: int = 0
    samples_kept: int = 0  # linked samples (with a target in the corpus)
    samples_evaluated: int = 0  # of those, the ones evaluated (after `max_samples`)
    dropped_no_linked_target: int = 0
    targets: int = 0
    targets_unlinked: int = 0
    targets_in_history: int = 0  # a target that links to a movie already in the history
    history_mentions: int = 0
    history_unlinked: int = 0
    linked_by_title: int = 0
    unlinked_examples: list[str] = field(default_factory=list)
    protocol: str = "per_turn"  # how evaluated turns became rows (see `expand_rows`)
    rows: int = 0  # rows the metrics average over (per_turn: = samples_evaluated)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class MentionLinker:
    """Mention -> corpus id via the corpus link tables, then title matching."""

    def __init__(self, corpus: Corpus, threshold: float = 0.85):
        self.corpus = corpus
        self.threshold = threshold
        self._tables: dict[str, dict[str, str | None]] = {}
        self._matcher: TitleMatcher | None = None
        self._by_title: dict[str, str | None] = {}

    def _table(self, dataset: str) -> dict[str, str | None]:
        if dataset not in self._tables:
            try:
                table = self.corpus.link_table(dataset)
            except (KeyError, FileNotFoundError, ValueError):
                table = {}
            self._tables[dataset] = dict(table or {})
        return self._tables[dataset]

    def _title_match(self, title: str) -> str | None:
        if title not in self._by_title:
            if self._matcher is None:
                from rar.matching import TitleMatcher

                movies = self.corpus.movies
                self._matcher = TitleMatcher(
                    movies["title"].tolist(), movies["year"].tolist(), threshold=self.threshold
                )
            match = self._matcher.match(title) if title.strip() else None
            self._by_title[title] = self.corpus.ids[match.index] if match is not None else None
        return self._by_title[title]

    def link(self, dataset: str, mention: Mention) -> tuple[str | None, bool]:
        """(corpus id or None, whether the title matcher was needed)."""
        table = self._table(dataset)
        if mention.key in table and table[mention.key]:
            return str(table[mention.key]), False
        if mention.title:
            found = self._title_match(mention.title)
            return found, found is not None
        return None, False


def link_samples(
    samples: Sequence[Sample],
    corpus: Corpus,
    threshold: float = 0.85,
    linker: MentionLinker | None = None,
) -> tuple[list[LinkedSample], SampleLinkStats]:
    """Link every sample; samples with no target in the corpus are dropped and counted."""
    linker = linker or MentionLinker(corpus, threshold)
    stats = SampleLinkStats(samples_in=len(samples))
    out: list[LinkedSample] = []
    for sample in samples:
        history: list[str] = []
        for mention in sample.history:
            stats.history_mentions += 1
            cid, by_title = linker.link(sample.dataset, mention)
            stats.linked_by_title += by_title
            if cid is None:
                stats.history_unlinked += 1
            else:  # two keys may link to one movie: keep it once, at its latest position
                if cid in history:
                    history.remove(cid)
                history.append(cid)
        targets: list[str] = []
        for mention in sample.targets:
            stats.targets += 1
            cid, by_title = linker.link(sample.dataset, mention)
            stats.linked_by_title += by_title
            if cid is None:
                stats.targets_unlinked += 1
                if len(stats.unlinked_examples) < 10:
                    stats.unlinked_examples.append(f"{sample.sample_id}: {mention.title!r}")
            elif cid in history:
                stats.targets_in_history += 1
            elif cid not in targets:
                targets.append(cid)
        if not targets:
            stats.dropped_no_linked_target += 1
            continue
        out.append(LinkedSample(sample, history, targets))
    stats.samples_kept = len(out)
    stats.samples_evaluated = len(out)
    stats.rows = len(out)
    return out, stats


def check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        from rar.errors import InputError

        raise InputError(
            f"unknown evaluation protocol {protocol!r} (choose {' or '.join(PROTOCOLS)})"
        )
    return protocol


def expand_rows(linked: Sequence[LinkedSample], protocol: str = "per_turn") -> list[LinkedSample]:
    """The rows an evaluation protocol scores.

    - `per_turn`: one row per recommender turn, all its (new, linked) movies as targets; recall
      is the share of them found.
    - `per_item` (He et al. 2023): one row per target movie of a turn, with the turn's history
      and context; only that movie counts as a hit for the row. As in He et al.'s evaluation
      code, the other targets are not masked: they keep their places in the ranking (and a
      ranker sees the same input for every row of a turn). Row ids are `<turn id>#<n>`."""
    check_protocol(protocol)
    if protocol == "per_turn":
        return list(linked)
    rows: list[LinkedSample] = []
    for item in linked:
        if len(item.target_ids) == 1:
            rows.append(replace(item, turn_id=item.sample.sample_id))
            continue
        for n, target in enumerate(item.target_ids, 1):
            rows.append(
                LinkedSample(
                    _RowSample.of(item.sample, n), item.history_ids, [target], item.sample.sample_id
                )
            )
    return rows


@dataclass
class _RowSample(Sample):
    """A turn's sample as one per-item row: the same fields, the id `<turn id>#<n>`."""

    row: int = 1

    @classmethod
    def of(cls, sample: Sample, row: int) -> _RowSample:
        fields = {k: getattr(sample, k) for k in sample.__dataclass_fields__}
        return cls(**fields, row=row)

    @property
    def sample_id(self) -> str:
        return f"{super().sample_id}#{self.row}"
