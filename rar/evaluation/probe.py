"""A ranker probe on real conversations: each request holds the true movie plus k-1 other
linked movies in random order, so any ranker can be compared with that random order (what a
ranker adds when the retriever did its job and the true movie is among the candidates)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rar.data.types import Sample
from rar.rankers.types import RankRequest

if TYPE_CHECKING:
    from rar.corpus import Corpus


@dataclass
class Probe:
    requests: list[RankRequest]
    targets: list[set[str]]  # corpus ids of each request's true movies
    skipped: int  # samples without a linked target (counted, not silently dropped)


def build_probe(
    samples: list[Sample],
    corpus: Corpus,
    dataset: str,
    k: int = 25,
    seed: int = 0,
    max_samples: int | None = None,
) -> Probe:
    """Requests with the first linked target + (k-1) random other linked movies, shuffled."""
    links = corpus.link_table(dataset)
    pool = sorted({cid for cid in links.values() if cid in set(corpus.ids)})
    rng = random.Random(seed)
    requests, targets, skipped = [], [], 0
    for s in samples:
        linked = [links[m.key] for m in s.targets if m.key in links]
        if not linked or not s.context:
            skipped += 1
            continue
        target = linked[0]
        exclude = set(linked) | {links[m.key] for m in s.history if m.key in links}
        negatives: list[str] = []
        while len(negatives) < k - 1:
            cid = pool[rng.randrange(len(pool))]
            if cid not in exclude and cid not in negatives:
                negatives.append(cid)
        cands = [target, *negatives]
        rng.shuffle(cands)
        requests.append(RankRequest(s.sample_id, s.context, cands))
        targets.append(set(linked))
        if max_samples is not None and len(requests) >= max_samples:
            break
    return Probe(requests, targets, skipped)
