"""Map a sample's mentions (dataset keys and titles) to corpus ids, counting what does not link.

Why: metrics compare corpus ids, the retriever reads corpus rows. The corpus's link table for
the sample's dataset is used first (built once by the corpus builder); mentions it does not
know (custom files, new dialogues) are matched by title against the whole corpus.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from rar.data.types import Mention, Sample

if TYPE_CHECKING:
    from rar.corpus import Corpus


@dataclass
class LinkedSample:
    sample: Sample
    history_ids: list[str]  # corpus ids, oldest first
    target_ids: list[str]


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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class MentionLinker:
    """Mention -> corpus id via the corpus link tables, then title matching."""

    def __init__(self, corpus: Corpus, threshold: float = 0.85):
        self.corpus = corpus
        self.threshold = threshold
        self._tables: dict[str, dict[str, str | None]] = {}
        self._matcher = None
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
    return out, stats
